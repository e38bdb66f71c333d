//! `[verify]`: when the daemon verifies the plan's points, and how much of
//! their data each run reads.

use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;

use super::Validator;
use crate::plan::raw::{RawVerify, S};
use crate::plan::{VerifyDepth, VerifySpec};
use crate::schedule::Timing;

impl Validator<'_> {
    /// `None` without the table, or when it is invalid (the errors are
    /// recorded). The time zone defaults to the backup's.
    pub(super) fn verify(
        &mut self,
        raw: Option<&S<RawVerify>>,
        backup_tz: Option<Tz>,
    ) -> Option<VerifySpec> {
        let v = raw?.get_ref();
        let tz = match &v.timezone {
            Some(_) => self.timezone(v.timezone.as_ref()),
            None => backup_tz,
        };
        let jitter = self.optional_duration("jitter", v.jitter.as_ref(), Duration::ZERO);
        let cron = self.cron(&v.schedule);
        if let (Some(cron), Some(tz), Some(jitter), Some(span)) =
            (&cron, tz, jitter, v.jitter.as_ref().map(|j| j.span()))
        {
            if let Some(gaps) = cron.gap_bounds(Utc::now(), tz) {
                self.check_jitter(gaps, jitter, span);
            }
        }
        let depth = self.verify_depth(v);
        Some(VerifySpec {
            timing: Timing {
                cron: cron?,
                timezone: tz?,
                jitter: jitter?,
            },
            depth: depth?,
        })
    }

    /// `read_data` and `read_data_subset`: at most one of them.
    fn verify_depth(&mut self, v: &RawVerify) -> Option<VerifyDepth> {
        let read_data = v.read_data.as_ref().is_some_and(|r| *r.get_ref());
        let Some(subset) = &v.read_data_subset else {
            return Some(if read_data {
                VerifyDepth::ReadData
            } else {
                VerifyDepth::Presence
            });
        };
        if read_data {
            self.error(
                subset.span(),
                "give `read_data = true` (every byte at every run) or `read_data_subset` (a part at each run), not both",
            );
            return None;
        }
        let parts = self.subset_parts(subset)?;
        Some(VerifyDepth::ReadDataSubset { parts })
    }

    /// M of `"1/M"`: each run reads one part in M, the daemon moving to
    /// the next part at each run, so N is always 1.
    fn subset_parts(&mut self, subset: &S<String>) -> Option<u64> {
        let text = subset.get_ref();
        let parsed = text
            .split_once('/')
            .map(|(n, m)| (n.trim().parse::<u64>(), m.trim().parse::<u64>()));
        match parsed {
            Some((Ok(1), Ok(m))) if m >= 1 => Some(m),
            Some((Ok(n), Ok(m))) if n >= 1 && n <= m => {
                self.error(
                    subset.span(),
                    format!(
                        "`read_data_subset` is the share each run reads, written 1/M: the daemon moves to the next part at each run by itself; write \"1/{m}\" (got `{text}`)"
                    ),
                );
                None
            }
            _ => {
                self.error(
                    subset.span(),
                    format!(
                        "`read_data_subset` must be 1/M with M a whole number from 1, e.g. \"1/10\": each run reads the next tenth of the points (got `{text}`)"
                    ),
                );
                None
            }
        }
    }
}
