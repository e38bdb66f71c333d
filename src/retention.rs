//! Which points to keep and which to prune, and why: a pure function of the
//! points, the rules and an injected `now`.
//!
//! A point is kept when any `keep_*` rule keeps it (the newest `keep_last`
//! points; the newest point of each of the last N hours, days, ISO weeks and
//! months, in UTC) and it is not older than `max_age`. With only `max_age`,
//! every point younger than it is kept. The newest point is always kept, so
//! retention can never leave a region with nothing to restore.

use std::collections::HashSet;

use chrono::{Datelike, Timelike};

use crate::plan::Retention;
use crate::time::{to_datetime, Millis};

/// A complete point of one resource in one region, as retention sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The point's id.
    pub id: i64,
    /// The instant whose data the point holds: retention's clock.
    pub data_time: Millis,
}

/// Whether a point is kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The point's id.
    pub id: i64,
    /// Kept, or to be deleted.
    pub keep: bool,
    /// Why it is kept (rules that keep it) or pruned.
    pub reasons: Vec<String>,
}

type BucketFn = fn(Millis) -> i64;

/// The `keep_<name>` bucket rules: a point is kept when it is the newest of
/// its bucket (UTC hour, day, ISO week, month), for the newest N buckets
/// that hold a point (as restic's `forget` counts them).
fn bucket_rules(rules: &Retention) -> [(&'static str, Option<u32>, BucketFn); 4] {
    [
        ("keep_hourly", rules.keep_hourly, |t| {
            let d = to_datetime(t);
            d.num_days_from_ce() as i64 * 24 + d.hour() as i64
        }),
        ("keep_daily", rules.keep_daily, |t| {
            to_datetime(t).num_days_from_ce() as i64
        }),
        ("keep_weekly", rules.keep_weekly, |t| {
            // The ISO week's own year: 2027-01-01 is in 2026-W53.
            let w = to_datetime(t).iso_week();
            w.year() as i64 * 100 + w.week() as i64
        }),
        ("keep_monthly", rules.keep_monthly, |t| {
            let d = to_datetime(t);
            d.year() as i64 * 12 + d.month() as i64
        }),
    ]
}

/// Decides for every candidate; `points` may be in any order. The
/// decisions come newest first.
pub fn decide(points: &[Candidate], rules: &Retention, now: Millis) -> Vec<Decision> {
    let mut sorted: Vec<Candidate> = points.to_vec();
    sorted.sort_by(|a, b| b.data_time.cmp(&a.data_time).then(b.id.cmp(&a.id)));
    if rules.keeps_everything() {
        return sorted
            .iter()
            .map(|p| Decision {
                id: p.id,
                keep: true,
                reasons: vec!["no retention rule".into()],
            })
            .collect();
    }
    let kept_by = keep_rules(&sorted, rules);
    sorted
        .iter()
        .zip(kept_by)
        .enumerate()
        .map(|(i, (p, kept_by))| decide_one(p, kept_by, i == 0, rules, now))
        .collect()
}

/// For each point of `sorted` (newest first), the `keep_*` rules that keep it.
fn keep_rules(sorted: &[Candidate], rules: &Retention) -> Vec<Vec<String>> {
    let mut kept_by: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
    if let Some(n) = rules.keep_last {
        for r in kept_by.iter_mut().take(n as usize) {
            r.push("keep_last".into());
        }
    }
    for (name, count, bucket_of) in bucket_rules(rules) {
        let Some(n) = count else { continue };
        let mut seen = HashSet::new();
        for (i, p) in sorted.iter().enumerate() {
            if seen.len() >= n as usize {
                break;
            }
            if seen.insert(bucket_of(p.data_time)) {
                kept_by[i].push(name.into());
            }
        }
    }
    kept_by
}

/// One point's fate: the newest is always kept; past `max_age` a point
/// goes whatever keeps it; otherwise a `keep_*` rule must keep it (with
/// only `max_age`, its age alone does).
fn decide_one(
    p: &Candidate,
    kept_by: Vec<String>,
    newest: bool,
    rules: &Retention,
    now: Millis,
) -> Decision {
    let decision = |keep: bool, reasons: Vec<String>| Decision {
        id: p.id,
        keep,
        reasons,
    };
    if newest {
        let mut reasons = kept_by;
        reasons.push("newest point".into());
        return decision(true, reasons);
    }
    let too_old = rules
        .max_age
        .is_some_and(|age| now - p.data_time > age.as_millis() as i64);
    let has_keep_rules =
        rules.keep_last.is_some() || bucket_rules(rules).iter().any(|(_, n, _)| n.is_some());
    if too_old {
        decision(false, vec!["older than max_age".into()])
    } else if !kept_by.is_empty() {
        decision(true, kept_by)
    } else if !has_keep_rules {
        decision(true, vec!["within max_age".into()])
    } else {
        decision(false, vec!["kept by no rule".into()])
    }
}

#[cfg(test)]
mod tests {
    //! Tables of cases, each rendered as one line per point (newest first)
    //! with its ISO week, and kept as a reviewed insta snapshot.

    use std::fmt::Write;
    use std::time::Duration;

    use super::*;
    use crate::time::{parse_rfc3339, rfc3339};

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(text: &str) -> Millis {
        parse_rfc3339(text).unwrap()
    }

    /// The rules that are set, as a plan would write them.
    fn describe(rules: &Retention) -> String {
        let counts = [
            ("keep_last", rules.keep_last),
            ("keep_hourly", rules.keep_hourly),
            ("keep_daily", rules.keep_daily),
            ("keep_weekly", rules.keep_weekly),
            ("keep_monthly", rules.keep_monthly),
        ];
        let mut set: Vec<String> = counts
            .iter()
            .filter_map(|(k, v)| Some(format!("{k} = {}", (*v)?)))
            .collect();
        if let Some(age) = rules.max_age {
            set.push(format!("max_age = {}", humantime::format_duration(age)));
        }
        if set.is_empty() {
            "none".into()
        } else {
            set.join(", ")
        }
    }

    /// Decides for points with ids 1.. in the order of `times`, and renders
    /// the decisions.
    fn table(rules: &Retention, times: &[&str], now: &str) -> String {
        let points: Vec<Candidate> = times
            .iter()
            .enumerate()
            .map(|(i, t)| Candidate {
                id: i as i64 + 1,
                data_time: at(t),
            })
            .collect();
        let decisions = decide(&points, rules, at(now));
        assert_eq!(decisions.len(), points.len(), "one decision per point");
        let mut out = format!("rules: {}\nnow:   {now}\n", describe(rules));
        for d in &decisions {
            let t = points.iter().find(|p| p.id == d.id).unwrap().data_time;
            let week = to_datetime(t).iso_week();
            let _ = writeln!(
                out,
                "#{:<3} {}  {}-W{:02} {}  {:<6}  {}",
                d.id,
                rfc3339(t),
                week.year(),
                week.week(),
                to_datetime(t).weekday(),
                if d.keep { "keep" } else { "delete" },
                d.reasons.join(", ")
            );
        }
        out
    }

    #[test]
    fn no_rule_keeps_everything() {
        insta::assert_snapshot!(table(
            &Retention::default(),
            &[
                "2020-01-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-11-25T00:00:00Z"
            ],
            "2026-11-25T12:00:00Z"
        ));
    }

    #[test]
    fn keep_last_takes_the_newest_whatever_the_input_order() {
        // Ids 3 and 6 share a data time: the higher id counts as newer.
        insta::assert_snapshot!(table(
            &Retention {
                keep_last: Some(3),
                ..Default::default()
            },
            &[
                "2026-11-25T10:00:00Z",
                "2026-11-25T08:00:00Z",
                "2026-11-25T12:00:00Z",
                "2026-11-25T09:00:00Z",
                "2026-11-25T11:00:00Z",
                "2026-11-25T12:00:00Z",
            ],
            "2026-11-25T13:00:00Z"
        ));
    }

    #[test]
    fn keep_hourly_counts_hours_that_hold_a_point() {
        // No point in hour 13; 11:59:59.999 and 12:00 are different hours.
        insta::assert_snapshot!(table(
            &Retention {
                keep_hourly: Some(3),
                ..Default::default()
            },
            &[
                "2026-11-25T09:10:00Z",
                "2026-11-25T09:40:00Z",
                "2026-11-25T10:05:00Z",
                "2026-11-25T10:55:00Z",
                "2026-11-25T11:59:59.999Z",
                "2026-11-25T12:00:00Z",
                "2026-11-25T14:30:00Z",
            ],
            "2026-11-25T15:00:00Z"
        ));
    }

    #[test]
    fn keep_daily_takes_the_newest_of_each_utc_day() {
        // No point on the 23rd; midnight UTC splits the 21st from the 22nd.
        insta::assert_snapshot!(table(
            &Retention {
                keep_daily: Some(3),
                ..Default::default()
            },
            &[
                "2026-11-20T06:00:00Z",
                "2026-11-20T18:00:00Z",
                "2026-11-21T23:59:59.999Z",
                "2026-11-22T00:00:00Z",
                "2026-11-22T12:00:00Z",
                "2026-11-24T08:00:00Z",
                "2026-11-24T20:00:00Z",
            ],
            "2026-11-25T00:00:00Z"
        ));
    }

    #[test]
    fn keep_weekly_spans_the_year_end_in_iso_week_53() {
        // 2026 has 53 ISO weeks: 2026-12-28 (Mon) to 2027-01-03 (Sun) are
        // one week, 2027-W01 starts on 2027-01-04.
        let days: Vec<String> = (24..=31)
            .map(|d| format!("2026-12-{d}T12:00:00Z"))
            .chain((1..=5).map(|d| format!("2027-01-{d:02}T12:00:00Z")))
            .collect();
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        insta::assert_snapshot!(table(
            &Retention {
                keep_weekly: Some(3),
                ..Default::default()
            },
            &days,
            "2027-01-06T00:00:00Z"
        ));
    }

    #[test]
    fn keep_weekly_puts_late_december_in_the_next_iso_year() {
        // 2024-12-30 (Mon) is in 2025-W01, the week of 2025-01-02.
        insta::assert_snapshot!(table(
            &Retention {
                keep_weekly: Some(2),
                ..Default::default()
            },
            &[
                "2024-12-27T12:00:00Z",
                "2024-12-29T12:00:00Z",
                "2024-12-30T12:00:00Z",
                "2025-01-02T12:00:00Z",
            ],
            "2025-01-03T00:00:00Z"
        ));
    }

    #[test]
    fn keep_monthly_takes_the_newest_of_each_month_across_the_year_end() {
        insta::assert_snapshot!(table(
            &Retention {
                keep_monthly: Some(4),
                ..Default::default()
            },
            &[
                "2026-10-31T23:00:00Z",
                "2026-11-01T01:00:00Z",
                "2026-11-30T12:00:00Z",
                "2026-12-31T23:59:59.999Z",
                "2027-01-01T00:00:00Z",
                "2027-01-15T12:00:00Z",
                "2027-02-28T12:00:00Z",
            ],
            "2027-03-01T00:00:00Z"
        ));
    }

    #[test]
    fn max_age_alone_keeps_what_is_not_older() {
        // Exactly 30 days old is kept; one millisecond more is not.
        insta::assert_snapshot!(table(
            &Retention {
                max_age: Some(30 * DAY),
                ..Default::default()
            },
            &[
                "2026-10-01T00:00:00Z",
                "2026-10-31T23:59:59.999Z",
                "2026-11-01T00:00:00Z",
                "2026-11-15T00:00:00Z",
                "2026-11-30T00:00:00Z",
            ],
            "2026-12-01T00:00:00Z"
        ));
    }

    #[test]
    fn max_age_overrides_the_keep_rules() {
        let days: Vec<String> = (18..=24)
            .map(|d| format!("2026-11-{d}T12:00:00Z"))
            .collect();
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        insta::assert_snapshot!(table(
            &Retention {
                keep_daily: Some(7),
                max_age: Some(3 * DAY),
                ..Default::default()
            },
            &days,
            "2026-11-25T00:00:00Z"
        ));
    }

    #[test]
    fn the_newest_point_is_kept_even_past_max_age() {
        insta::assert_snapshot!(table(
            &Retention {
                max_age: Some(DAY),
                ..Default::default()
            },
            &[
                "2026-11-01T00:00:00Z",
                "2026-11-02T00:00:00Z",
                "2026-11-03T00:00:00Z",
            ],
            "2026-11-25T00:00:00Z"
        ));
    }

    #[test]
    fn design_example_over_35_days_of_twice_daily_points() {
        // DESIGN.md's plan: keep_last 8, keep_daily 7, keep_weekly 4, max_age 30d.
        let first = at("2026-10-22T00:00:00Z");
        let times: Vec<String> = (0..70)
            .map(|i| rfc3339(first + i * 12 * 3_600_000))
            .collect();
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        insta::assert_snapshot!(table(
            &Retention {
                keep_last: Some(8),
                keep_daily: Some(7),
                keep_weekly: Some(4),
                max_age: Some(30 * DAY),
                ..Default::default()
            },
            &times,
            "2026-11-25T13:00:00Z"
        ));
    }
}
