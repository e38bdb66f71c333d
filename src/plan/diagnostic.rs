//! A problem found in a plan file, with its position.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Whether a problem rejects the plan. Errors sort before warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The plan is rejected (`plan validate` exits 2).
    Error,
    /// The plan loads; something in it deserves a look.
    Warning,
}

/// `FILE:LINE:COL: message` (warnings say `warning:` after the position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The plan file, as it was named when loaded.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (not bytes).
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, and what to do where that is knowable.
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic at a byte offset of `text`.
    pub fn at(
        file: &Path,
        text: &str,
        offset: usize,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = line_column(text, offset);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            severity,
            message: message.into(),
        }
    }

    /// An error at the start of `span` (byte offsets into `text`).
    pub fn error_at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::at(file, text, span.start, Severity::Error, message)
    }

    /// A warning at the start of `span` (byte offsets into `text`).
    pub fn warning_at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::at(file, text, span.start, Severity::Warning, message)
    }

    /// Whether this rejects the plan.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\né = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }
}
