//! Names as bytes and times as numbers: the small conversions both sides
//! of a `path` point share (archive names, PAX times, what messages show).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS: i128 = 1_000_000_000;

/// `name` as a path (Unix names are bytes).
pub(super) fn as_path(name: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(name))
}

/// An archive entry's name as a plain relative name (`a/b`), or `None`
/// when it would leave the restore folder: absolute, or with a `..`.
/// `.` and empty components are dropped.
pub(super) fn safe_relative(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.first() == Some(&b'/') {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A name for messages: as is when UTF-8, else with the bytes that are
/// not escaped (`\xff`), so two names differing there stay distinct.
pub(super) fn shown(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => s.to_string(),
        Err(_) => name.escape_ascii().to_string(),
    }
}

/// A time as PAX writes it: seconds since the epoch with nine decimals,
/// negative before 1970 (`-1.500000000` is 1.5 s before the epoch).
pub(super) fn pax_time(sec: i64, nsec: u32) -> String {
    let total = i128::from(sec) * NANOS + i128::from(nsec);
    let sign = if total < 0 { "-" } else { "" };
    let abs = total.abs();
    format!("{sign}{}.{:09}", abs / NANOS, abs % NANOS)
}

/// Parses a PAX time (`[-]SECONDS[.FRACTION]`) into seconds and
/// nanoseconds (digits past the ninth are dropped).
pub(super) fn parse_pax_time(text: &str) -> Option<(i64, u32)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i128 = 0;
    for i in 0..9 {
        let d = fraction.as_bytes().get(i).map_or(0, |b| b - b'0');
        nanos = nanos * 10 + i128::from(d);
    }
    let whole: i128 = whole.parse().ok()?;
    let mut total = whole.checked_mul(NANOS)?.checked_add(nanos)?;
    if negative {
        total = -total;
    }
    let sec = i64::try_from(total.div_euclid(NANOS)).ok()?;
    Some((sec, total.rem_euclid(NANOS) as u32))
}

/// Seconds and nanoseconds since the epoch as a `SystemTime`.
pub(super) fn system_time(sec: i64, nsec: u32) -> SystemTime {
    let since = Duration::new(sec.unsigned_abs(), 0);
    let base = if sec >= 0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    };
    base + Duration::from_nanos(u64::from(nsec))
}

/// A time for messages: RFC 3339 with nanoseconds.
pub(super) fn shown_time(sec: i64, nsec: i64) -> String {
    match chrono::DateTime::from_timestamp(sec, nsec as u32) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => format!("{sec}.{nsec:09}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_names_are_refused() {
        assert_eq!(safe_relative(b"../etc/passwd"), None);
        assert_eq!(safe_relative(b"/etc/passwd"), None);
        assert_eq!(safe_relative(b"a/../../b"), None);
        assert_eq!(safe_relative(b"a/.."), None);
        assert_eq!(safe_relative(b"."), None);
        assert_eq!(safe_relative(b"./a//b/"), Some(b"a/b".to_vec()));
        assert_eq!(safe_relative(b"a/\xff..b"), Some(b"a/\xff..b".to_vec()));
    }

    #[test]
    fn pax_times_round_trip_with_nanoseconds_and_before_1970() {
        for (sec, nsec) in [
            (0, 0),
            (1_700_000_000, 123_456_789),
            (-1, 0),
            (-2, 500_000_000),
            (-86_400 * 365, 1),
        ] {
            let text = pax_time(sec, nsec);
            assert_eq!(parse_pax_time(&text), Some((sec, nsec)), "{text}");
        }
        assert_eq!(pax_time(-2, 500_000_000), "-1.500000000");
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time("1.0000000019"), Some((1, 1)));
        assert_eq!(parse_pax_time("x"), None);
        assert_eq!(parse_pax_time("1.2e3"), None);
        assert_eq!(parse_pax_time(""), None);
    }

    #[test]
    fn system_times_before_and_after_1970() {
        let t = system_time(-2, 500_000_000);
        assert_eq!(
            UNIX_EPOCH.duration_since(t).unwrap(),
            Duration::from_millis(1500)
        );
        let t = system_time(5, 7);
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap(), Duration::new(5, 7));
    }

    #[test]
    fn names_that_are_not_utf8_show_their_bytes() {
        assert_eq!(shown(b"a\xffb"), "a\\xffb");
        assert_eq!(shown("é".as_bytes()), "é");
    }
}
