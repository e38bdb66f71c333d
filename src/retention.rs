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

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub id: i64,
    pub data_time: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: i64,
    pub keep: bool,
    /// Why it is kept (rules that keep it) or pruned.
    pub reasons: Vec<String>,
}

/// Decides for every candidate; `points` may be in any order.
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
    let has_keep_rules = rules.keep_last.is_some()
        || rules.keep_hourly.is_some()
        || rules.keep_daily.is_some()
        || rules.keep_weekly.is_some()
        || rules.keep_monthly.is_some();
    type BucketFn = fn(Millis) -> i64;
    let buckets: [(&str, Option<u32>, BucketFn); 4] = [
        ("hourly", rules.keep_hourly, |t| {
            let d = to_datetime(t);
            d.num_days_from_ce() as i64 * 24 + d.hour() as i64
        }),
        ("daily", rules.keep_daily, |t| {
            to_datetime(t).num_days_from_ce() as i64
        }),
        ("weekly", rules.keep_weekly, |t| {
            let w = to_datetime(t).iso_week();
            w.year() as i64 * 100 + w.week() as i64
        }),
        ("monthly", rules.keep_monthly, |t| {
            let d = to_datetime(t);
            d.year() as i64 * 12 + d.month() as i64
        }),
    ];
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
    if let Some(n) = rules.keep_last {
        for r in reasons.iter_mut().take(n as usize) {
            r.push("keep_last".into());
        }
    }
    for (name, count, bucket_of) in buckets {
        let Some(n) = count else { continue };
        let mut seen = HashSet::new();
        for (i, p) in sorted.iter().enumerate() {
            if seen.len() >= n as usize {
                break;
            }
            if seen.insert(bucket_of(p.data_time)) {
                reasons[i].push(format!("keep_{name}"));
            }
        }
    }
    sorted
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let too_old = rules
                .max_age
                .is_some_and(|age| now - p.data_time > age.as_millis() as i64);
            let kept_by_rule = !has_keep_rules || !reasons[i].is_empty();
            if i == 0 {
                let mut r = reasons[i].clone();
                r.push("newest point".into());
                return Decision {
                    id: p.id,
                    keep: true,
                    reasons: r,
                };
            }
            if too_old {
                Decision {
                    id: p.id,
                    keep: false,
                    reasons: vec!["older than max_age".into()],
                }
            } else if kept_by_rule {
                let r = if reasons[i].is_empty() {
                    vec!["within max_age".into()]
                } else {
                    reasons[i].clone()
                };
                Decision {
                    id: p.id,
                    keep: true,
                    reasons: r,
                }
            } else {
                Decision {
                    id: p.id,
                    keep: false,
                    reasons: vec!["kept by no rule".into()],
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;
    // 2026-11-25T00:00:00Z
    const T0: i64 = 1_795_651_200_000;

    fn pts(times: &[i64]) -> Vec<Candidate> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| Candidate {
                id: i as i64 + 1,
                data_time: *t,
            })
            .collect()
    }

    fn kept(d: &[Decision]) -> Vec<i64> {
        let mut v: Vec<i64> = d.iter().filter(|d| d.keep).map(|d| d.id).collect();
        v.sort();
        v
    }

    #[test]
    fn no_rules_keep_everything() {
        let d = decide(&pts(&[T0, T0 + H]), &Retention::default(), T0 + D);
        assert_eq!(kept(&d), vec![1, 2]);
    }

    #[test]
    fn keep_last_and_daily() {
        // Points every 6 hours over 3 days: ids 1..=12, oldest first.
        let times: Vec<i64> = (0..12).map(|i| T0 + i * 6 * H).collect();
        let rules = Retention {
            keep_last: Some(2),
            keep_daily: Some(3),
            ..Default::default()
        };
        let d = decide(&pts(&times), &rules, T0 + 3 * D);
        // Last two: 12, 11. Daily: newest of each of the 3 days: 12, 8, 4.
        assert_eq!(kept(&d), vec![4, 8, 11, 12]);
        let why = d.iter().find(|d| d.id == 12).unwrap();
        assert!(why.reasons.contains(&"keep_last".to_string()));
        assert!(why.reasons.contains(&"keep_daily".to_string()));
    }

    #[test]
    fn max_age_prunes_but_never_the_newest() {
        let rules = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        let d = decide(&pts(&[T0, T0 + 10 * D]), &rules, T0 + 30 * D);
        assert_eq!(kept(&d), vec![2]);
        let d = decide(&pts(&[T0, T0 + H, T0 + 2 * D]), &rules, T0 + 2 * D + H);
        assert_eq!(kept(&d), vec![3]);
        assert_eq!(
            d.iter().find(|d| d.id == 1).unwrap().reasons,
            vec!["older than max_age"]
        );
    }
}
