//! `[retention]`, and a region's `retention` override.

use super::Validator;
use crate::plan::raw::{RawRetention, S};
use crate::plan::Retention;

impl Validator<'_> {
    /// Left out, it keeps everything.
    pub(super) fn retention(&mut self, raw: Option<&S<RawRetention>>) -> Retention {
        let Some(raw) = raw else {
            return Retention::default();
        };
        let raw = raw.get_ref();
        Retention {
            keep_last: self.count("keep_last", raw.keep_last.as_ref()),
            keep_hourly: self.count("keep_hourly", raw.keep_hourly.as_ref()),
            keep_daily: self.count("keep_daily", raw.keep_daily.as_ref()),
            keep_weekly: self.count("keep_weekly", raw.keep_weekly.as_ref()),
            keep_monthly: self.count("keep_monthly", raw.keep_monthly.as_ref()),
            max_age: raw
                .max_age
                .as_ref()
                .and_then(|v| self.positive_duration("max_age", v)),
        }
    }

    /// How many points a `keep_*` rule keeps.
    fn count(&mut self, key: &str, value: Option<&S<i64>>) -> Option<u32> {
        let v = value?;
        match u32::try_from(*v.get_ref()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    v.span(),
                    format!("`{key}` must be a whole number from 0 to 4294967295"),
                );
                None
            }
        }
    }
}
