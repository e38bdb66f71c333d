//! `[placement]`: which daemons of a fleet may own the plan. A plan whose
//! data only one host can read (a local path, a SQLite file) is pinned to
//! the daemons started with the same `--labels`.

use super::Validator;
use crate::plan::raw::{RawPlacement, S};

impl Validator<'_> {
    /// The labels a daemon must carry to own the plan, without repeats.
    pub(super) fn placement(&mut self, raw: Option<&S<RawPlacement>>) -> Vec<String> {
        let mut labels: Vec<String> = Vec::new();
        let Some(raw) = raw else {
            return labels;
        };
        for label in raw
            .get_ref()
            .labels
            .as_ref()
            .map(|l| l.get_ref().as_slice())
            .unwrap_or(&[])
        {
            let text = label.get_ref();
            if !crate::plan::is_label(text) {
                self.error(
                    label.span(),
                    format!("label `{text}` must be 1 to 63 characters of a-z, 0-9, '-', '_' and '.' (as given to `daemon --labels`)"),
                );
            } else if !labels.contains(text) {
                labels.push(text.clone());
            }
        }
        labels
    }
}
