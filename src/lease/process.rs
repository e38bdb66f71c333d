//! Who this process is, as a lease records it, and whether another process
//! of this machine still exists: the two questions std does not answer
//! (`gethostname`, `kill(pid, 0)`).

use std::sync::OnceLock;

/// This process as a lease holder.
#[derive(Debug)]
pub(super) struct Me {
    /// Our process id.
    pub pid: i64,
    /// The host name, for people.
    pub host: String,
    /// Where our pid means something: the kernel's boot id and our pid
    /// namespace. Two processes with the same node see the same pids; a
    /// container that shares a host name but not our pid namespace (or a
    /// machine rebooted since) does not, so its pids are never judged here.
    pub node: String,
}

/// This process, read once.
pub(super) fn me() -> &'static Me {
    static ME: OnceLock<Me> = OnceLock::new();
    ME.get_or_init(|| {
        let host = crate::host::name();
        Me {
            pid: i64::from(std::process::id()),
            node: node().unwrap_or_else(|| format!("host:{host}")),
            host,
        }
    })
}

/// Linux's boot id and our pid namespace; `None` elsewhere (the host name
/// stands in).
fn node() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// Whether process `pid` of this node still exists. Unsure answers are
/// "alive": a lease is never taken from a process that may be running.
/// A zombie (exited, not yet reaped by its parent) runs no code: dead.
pub(super) fn alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // 0 and negative numbers name process groups, not a process.
    if pid <= 0 {
        return true;
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if matches!(state, Some("Z" | "X")) {
            return false;
        }
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process
    // exists and that we may signal it.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(i64::from(std::process::id())));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        assert!(!alive(pid));
        // Not a process: never judged dead.
        assert!(alive(0));
        assert!(alive(-1));
        assert!(alive(i64::MAX));
        let me = me();
        assert!(!me.host.is_empty());
        assert!(!me.node.is_empty());
    }

    #[test]
    fn a_zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        // Exited but not reaped until `wait`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(pid) {
            assert!(std::time::Instant::now() < deadline, "still alive");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
    }
}
