//! A throwaway MariaDB server for the tests: one per test binary, started
//! on first use, on a free loopback port, with password authentication so
//! a wrong password is really refused. It stands in for a restored RDS
//! MySQL/MariaDB instance: the AWS proxy points the restore's endpoint at
//! it (see `aws::sql_checks_run_on_a_restored_mariadb_instance…`).
//!
//! Stopped as the PostgreSQL one is (see `pg.rs`): a watchdog shell waits
//! for this test process to end, then kills the server and removes its
//! folder. As root (CI), the server runs as the `mysql` user the package
//! creates. Missing binaries fail the tests loudly, never skip them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// The server helpers the PostgreSQL harness already has.
use crate::pg::{free_port, is_root};

/// The user Lifeboat's checks connect as: SELECT on the test databases.
pub const USER: &str = "lifeboat";
pub const PASSWORD: &str = "lifeboat-my-5e21";

pub struct MariaDb {
    pub port: u16,
    socket: PathBuf,
}

static SERVER: OnceLock<MariaDb> = OnceLock::new();

/// The shared server, started on first use.
pub fn server() -> &'static MariaDb {
    SERVER.get_or_init(MariaDb::start)
}

fn find(program: &str) -> PathBuf {
    let dirs = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .collect::<Vec<_>>();
    dirs.iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} not found on the PATH nor in /usr/sbin: run ./scripts/test.sh, which \
                 installs MariaDB (apt-get install mariadb-server)"
            )
        })
}

/// `program args…`, as `mysql` when we are root.
fn as_server_user(root_user: bool, program: &Path) -> Command {
    if root_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "mysql", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl MariaDb {
    fn start() -> MariaDb {
        let root_user = is_root();
        let root = tempfile::Builder::new()
            .prefix("lifeboat-mariadb-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let s = |p: &Path| p.display().to_string();
        let (data, socket) = (root.join("data"), root.join("mysqld.sock"));
        let (pid, log) = (root.join("mysqld.pid"), root.join("error.log"));
        if root_user {
            let ok = Command::new("chown")
                .args(["-R", "mysql:"])
                .arg(&root)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "cannot give {} to the mysql user (installing mariadb-server creates it)",
                root.display()
            );
        }
        let out = as_server_user(root_user, &find("mariadb-install-db"))
            .args([
                "--no-defaults",
                &format!("--datadir={}", s(&data)),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        // Not waited for: the watchdog below stops it.
        #[allow(clippy::zombie_processes)]
        as_server_user(root_user, &find("mariadbd"))
            .args([
                "--no-defaults".to_string(),
                format!("--datadir={}", s(&data)),
                format!("--socket={}", s(&socket)),
                format!("--pid-file={}", s(&pid)),
                format!("--log-error={}", s(&log)),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                "--skip-name-resolve".into(),
                "--skip-log-bin".into(),
                "--innodb-buffer-pool-size=16M".into(),
                "--innodb-flush-log-at-trx-commit=0".into(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; \
             kill -9 $(cat '{pid}') 2>/dev/null; sleep 1; rm -rf '{root}'",
            me = std::process::id(),
            pid = s(&pid),
            root = s(&root),
        );
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server watchdog");
        let server = MariaDb { port, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.answers() {
            assert!(
                Instant::now() < deadline,
                "MariaDB did not start within 60 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server.admin_sql(&format!(
            "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'"
        ));
        server
    }

    fn answers(&self) -> bool {
        self.socket.exists()
            && Command::new(find("mariadb"))
                .args(["--no-defaults", "-u", "root", "-e", "SELECT 1"])
                .arg(format!("--socket={}", self.socket.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    }

    /// SQL as the server's root, through its socket.
    pub fn admin_sql(&self, sql: &str) -> String {
        let out = Command::new(find("mariadb"))
            .args(["--no-defaults", "-u", "root", "-N", "-B", "-e", sql])
            .arg(format!("--socket={}", self.socket.display()))
            .output()
            .expect("run mariadb");
        assert!(
            out.status.success(),
            "mariadb `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh database `db` with `rows` orders, readable by [`USER`].
    pub fn create_shop(&self, db: &str, rows: usize) {
        self.admin_sql(&format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};
             CREATE TABLE {db}.orders (id INT PRIMARY KEY, total DECIMAL(10, 2) NOT NULL);
             INSERT INTO {db}.orders SELECT seq, seq % 1000 / 10 FROM {db}.seq_1_to_{rows};
             GRANT SELECT ON {db}.* TO '{USER}'@'%';"
        ));
    }
}

/// A lifeboat command with the test user's MariaDB login and no stray
/// client settings from the environment.
pub fn with_mysql_env(mut cmd: Command, password: &str) -> Command {
    cmd.env("MYSQL_USER", USER)
        .env("MYSQL_PWD", password)
        .env_remove("MYSQL_DATABASE");
    cmd
}
