//! The first phase: TOML syntax, then the shape of the raw plan (which keys
//! exist, of which types), as serde reports it.

use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Validator;
use crate::plan::raw::RawPlan;

/// Serde structure errors are reported one at a time; unknown keys are
/// removed and parsing retried, up to this many times.
const MAX_STRUCTURE_ROUNDS: usize = 50;

impl Validator<'_> {
    /// TOML syntax (every error the parser recovers from), then the serde
    /// structure. Unknown keys are removed and parsing retried so that every
    /// unknown key is reported in one go.
    pub(super) fn structure(&mut self) -> Option<RawPlan> {
        let (mut doc, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            for e in errors {
                let span = e.span().unwrap_or(0..0);
                self.error(span, e.message().trim().to_string());
            }
            return None;
        }
        for _ in 0..MAX_STRUCTURE_ROUNDS {
            let de = toml::de::Deserializer::from(doc.clone());
            match RawPlan::deserialize(de) {
                Ok(raw) => return Some(raw),
                Err(e) => {
                    let span = e.span().unwrap_or(0..0);
                    let message = e.message().trim().replace("unknown field", "unknown key");
                    let message = message.replace("missing field", "missing key");
                    let unknown = message.starts_with("unknown key");
                    self.error(span.clone(), message);
                    if !(unknown && remove_key_at(doc.get_mut(), &span)) {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// Removes the key whose span is `span` anywhere in the document, so the
/// next structure round can report the next problem.
fn remove_key_at(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    let found = table
        .iter()
        .find(|(k, _)| k.span() == *span)
        .map(|(k, _)| k.get_ref().clone());
    if let Some(k) = found {
        table.remove(k.as_ref());
        return true;
    }
    table.iter_mut().any(|(_, v)| remove_in_value(v, span))
}

fn remove_in_value(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    match value.get_mut() {
        DeValue::Table(t) => remove_key_at(t, span),
        DeValue::Array(a) => a.iter_mut().any(|v| remove_in_value(v, span)),
        _ => false,
    }
}
