//! Judging a SQL check's answer, the same way for every database kind: each
//! kind turns the first column of the first row into text (or NULL), and
//! [`judge`] decides. Keeping one judge means `expect = 42` or a bare
//! `SELECT count(*) > 0` mean the same thing on SQLite and PostgreSQL.

use super::Verdict;

/// Passes when `value` (the first column of the first row, as text; `None`
/// for NULL) is true / non-zero, or equals `expect` when the check has one.
pub fn judge(value: Option<&str>, expect: Option<&str>) -> Verdict {
    let shown = value.unwrap_or("NULL");
    match expect {
        Some(expected) => {
            if value == Some(expected) {
                Ok(format!("returned {shown}, as expected"))
            } else {
                Err(format!("returned {shown}, expected {expected}").into())
            }
        }
        None => {
            let truthy = match value {
                None => false,
                Some(t) => match t.parse::<f64>() {
                    Ok(n) => n != 0.0,
                    Err(_) => matches!(t.to_ascii_lowercase().as_str(), "true" | "t" | "yes" | "y"),
                },
            };
            if truthy {
                Ok(format!("returned {shown}"))
            } else {
                Err(format!("returned {shown}, which is not true").into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn truth() {
        assert!(judge(Some("1"), None).is_ok());
        assert!(judge(Some("0.5"), None).is_ok());
        assert!(judge(Some("true"), None).is_ok());
        assert!(judge(Some("t"), None).is_ok());
        assert!(judge(Some("0"), None).is_err());
        assert!(judge(Some("0.00"), None).is_err());
        assert!(judge(Some("false"), None).is_err());
        assert!(judge(Some("f"), None).is_err());
        assert!(judge(Some("nope"), None).is_err());
        assert_eq!(
            judge(None, None).unwrap_err().0,
            "returned NULL, which is not true"
        );
    }

    #[test]
    fn expect_compares_text() {
        assert_eq!(
            judge(Some("42"), Some("42")).unwrap(),
            "returned 42, as expected"
        );
        assert_eq!(
            judge(Some("41"), Some("42")).unwrap_err().0,
            "returned 41, expected 42"
        );
        // An expected zero passes where a bare truth test would fail.
        assert!(judge(Some("0"), Some("0")).is_ok());
        assert!(judge(None, Some("0")).is_err());
    }
}
