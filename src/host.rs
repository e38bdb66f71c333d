//! The name of the host this process runs on: recorded with what it
//! does (who ran a restore), so that a fleet's records say where.

/// The host name (`gethostname`), or `unknown` when the system will not
/// say.
pub fn name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match String::from_utf8_lossy(&buf[..end]).trim() {
        "" => "unknown".into(),
        name => name.to_string(),
    }
}
