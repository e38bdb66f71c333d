//! RPO exposure over time, exactly as DESIGN.md defines it, in one ordered
//! pass over the points' validity intervals (no sampling).
//!
//! Exposure at t = t − the newest `data_time` among each resource's points
//! usable at t, taking the worst resource; before a resource has any point,
//! t − the protection start (the plan's first backup attempt).

use std::collections::BTreeMap;

use crate::time::Millis;

/// A point's contribution: usable from `valid_from` (its completion, or its
/// verification for the verified RPO) until `valid_to` (deletion), if any.
#[derive(Debug, Clone)]
pub struct Interval {
    pub resource: usize,
    pub data_time: Millis,
    pub valid_from: Millis,
    pub valid_to: Option<Millis>,
}

/// A period during which the exposure exceeded the objective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub start: Millis,
    pub end: Millis,
    pub worst_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// The worst exposure reached in the window (just before a point
    /// became usable, or at the window's end).
    pub worst_ms: i64,
    /// Share of the window (from protection start) within the objective.
    pub within_ratio: f64,
    /// Newest data time usable at the window's end (worst resource).
    pub newest_data_time: Option<Millis>,
    pub breaches: Vec<Breach>,
}

/// Walks the exposure timeline over `[start, to)` in one ordered pass over
/// the intervals' start and end events, calling `segment(a, b, base)` for
/// each stretch `[a, b)` during which the baseline (the worst resource's
/// newest usable data time, or the protection start) stays `base`; the
/// exposure at t in that stretch is t − base. Returns the baseline at `to`
/// and whether every resource had a point then. Shared by [`compute`] and
/// [`timeline`] so the summary and the chart can never disagree.
fn walk(
    resources: usize,
    intervals: &[Interval],
    protection_start: Millis,
    start: Millis,
    to: Millis,
    mut segment: impl FnMut(Millis, Millis, Millis),
) -> (Millis, bool) {
    // Events: (time, +1 add / -1 remove, interval index). Sorted by time.
    let mut events: Vec<(Millis, i8, usize)> = Vec::with_capacity(intervals.len() * 2);
    for (i, iv) in intervals.iter().enumerate() {
        if iv.resource >= resources {
            continue;
        }
        events.push((iv.valid_from, 1, i));
        if let Some(end) = iv.valid_to {
            events.push((end, -1, i));
        }
    }
    events.sort_unstable();
    let mut usable: Vec<BTreeMap<Millis, u32>> = vec![BTreeMap::new(); resources];
    let apply = |usable: &mut Vec<BTreeMap<Millis, u32>>, kind: i8, i: usize| {
        let iv = &intervals[i];
        let set = &mut usable[iv.resource];
        if kind > 0 {
            *set.entry(iv.data_time).or_insert(0) += 1;
        } else if let Some(n) = set.get_mut(&iv.data_time) {
            *n -= 1;
            if *n == 0 {
                set.remove(&iv.data_time);
            }
        }
    };
    // Baseline: the oldest "newest data time" across resources.
    let baseline = |usable: &Vec<BTreeMap<Millis, u32>>| -> (Millis, bool) {
        let mut all_have = true;
        let b = usable
            .iter()
            .map(|s| match s.keys().next_back() {
                Some(t) => *t,
                None => {
                    all_have = false;
                    protection_start
                }
            })
            .min()
            .unwrap_or(protection_start);
        (b, all_have)
    };

    let mut idx = 0;
    while idx < events.len() && events[idx].0 <= start {
        apply(&mut usable, events[idx].1, events[idx].2);
        idx += 1;
    }
    let mut cursor = start;
    while idx < events.len() && events[idx].0 < to {
        let t = events[idx].0;
        let (base, _) = baseline(&usable);
        if t > cursor {
            segment(cursor, t, base);
        }
        while idx < events.len() && events[idx].0 == t {
            apply(&mut usable, events[idx].1, events[idx].2);
            idx += 1;
        }
        cursor = t;
    }
    let (base, all_have) = baseline(&usable);
    if to > cursor {
        segment(cursor, to, base);
    }
    (base, all_have)
}

/// Exposure over `[from, to)` for `resources` resources. `None` when the
/// window ends before protection started.
pub fn compute(
    resources: usize,
    intervals: &[Interval],
    protection_start: Millis,
    from: Millis,
    to: Millis,
    rpo_ms: i64,
) -> Option<Exposure> {
    let start = from.max(protection_start);
    if start >= to || resources == 0 {
        return None;
    }
    let mut worst = i64::MIN;
    let mut within: i64 = 0;
    let mut breaches: Vec<Breach> = Vec::new();
    let (base, all_have) = walk(
        resources,
        intervals,
        protection_start,
        start,
        to,
        |a, b, base| {
            worst = worst.max(b - base);
            let limit = base + rpo_ms;
            within += (limit.min(b) - a).clamp(0, b - a);
            if b > limit {
                let bs = a.max(limit);
                match breaches.last_mut() {
                    Some(last) if last.end == bs => {
                        last.end = b;
                        last.worst_ms = last.worst_ms.max(b - base);
                    }
                    _ => breaches.push(Breach {
                        start: bs,
                        end: b,
                        worst_ms: b - base,
                    }),
                }
            }
        },
    );
    Some(Exposure {
        worst_ms: worst,
        within_ratio: within as f64 / (to - start) as f64,
        newest_data_time: all_have.then_some(base),
        breaches,
    })
}

/// The exposure over `[from, to)` as a polyline `(t, exposure_ms)` for a
/// chart: the exposure rises with slope 1 and drops when a newer point
/// becomes usable, so a vertex at each stretch's start and one at its end
/// (just before the drop) draw it exactly. Stretches with an unchanged
/// baseline are merged. Empty when the window ends before protection.
pub fn timeline(
    resources: usize,
    intervals: &[Interval],
    protection_start: Millis,
    from: Millis,
    to: Millis,
) -> Vec<(Millis, i64)> {
    let start = from.max(protection_start);
    if start >= to || resources == 0 {
        return Vec::new();
    }
    let mut out: Vec<(Millis, i64)> = Vec::new();
    let mut last_base: Option<Millis> = None;
    walk(
        resources,
        intervals,
        protection_start,
        start,
        to,
        |a, b, base| {
            if last_base == Some(base) {
                // Same line continues: move its end vertex instead of adding one.
                if let Some(end) = out.last_mut() {
                    *end = (b, b - base);
                }
            } else {
                out.push((a, a - base));
                out.push((b, b - base));
                last_base = Some(base);
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    fn iv(resource: usize, data_time: i64, valid_from: i64) -> Interval {
        Interval {
            resource,
            data_time,
            valid_from,
            valid_to: None,
        }
    }

    #[test]
    fn no_point_yet_exposure_grows_from_protection_start() {
        let e = compute(1, &[], 0, 0, 30 * M, 15 * M).unwrap();
        assert_eq!(e.worst_ms, 30 * M);
        assert!((e.within_ratio - 0.5).abs() < 1e-9);
        assert_eq!(e.newest_data_time, None);
        assert_eq!(
            e.breaches,
            vec![Breach {
                start: 15 * M,
                end: 30 * M,
                worst_ms: 30 * M
            }]
        );
    }

    #[test]
    fn regular_points_keep_exposure_within() {
        // Points every 10 minutes, each taking 1 minute; RPO 15 minutes.
        let ivs: Vec<_> = (0..6).map(|i| iv(0, i * 10 * M, i * 10 * M + M)).collect();
        let e = compute(1, &ivs, 0, 0, 60 * M, 15 * M).unwrap();
        // Worst: just before a point completes: 11 minutes after the previous data time.
        assert_eq!(e.worst_ms, 11 * M);
        assert_eq!(e.within_ratio, 1.0);
        assert!(e.breaches.is_empty());
        assert_eq!(e.newest_data_time, Some(50 * M));
    }

    #[test]
    fn a_lagging_copy_counts_from_its_own_completion() {
        // Source data at 0, the copy only usable at 20m: DR exposure 20m at worst.
        let e = compute(1, &[iv(0, 0, 20 * M)], 0, 0, 25 * M, 15 * M).unwrap();
        assert_eq!(e.worst_ms, 25 * M);
        // Within until 15m, breach 15..20 (exposure t-0), then 20..25 exposure t-0 again > 15.
        assert_eq!(
            e.breaches,
            vec![Breach {
                start: 15 * M,
                end: 25 * M,
                worst_ms: 25 * M
            }]
        );
        assert!((e.within_ratio - 15.0 / 25.0).abs() < 1e-9);
    }

    #[test]
    fn worst_resource_wins_and_window_cuts_breach() {
        // Resource 0 fresh, resource 1 stale since 0.
        let ivs = vec![iv(0, 40 * M, 41 * M), iv(1, 0, M)];
        let e = compute(2, &ivs, 0, 30 * M, 50 * M, 15 * M).unwrap();
        assert_eq!(e.worst_ms, 50 * M);
        assert_eq!(
            e.breaches,
            vec![Breach {
                start: 30 * M,
                end: 50 * M,
                worst_ms: 50 * M
            }]
        );
        assert_eq!(e.within_ratio, 0.0);
        assert_eq!(e.newest_data_time, Some(0));
    }

    #[test]
    fn deleted_points_stop_counting() {
        let mut first = iv(0, 0, M);
        first.valid_to = Some(10 * M);
        let e = compute(1, &[first], 0, 0, 20 * M, 15 * M).unwrap();
        // After deletion at 10m, no point: exposure = t - protection start (0).
        assert_eq!(e.worst_ms, 20 * M);
        assert_eq!(e.newest_data_time, None);
    }

    #[test]
    fn timeline_is_a_sawtooth_with_a_vertex_before_each_drop() {
        // Points with data at 2m and 10m, usable 1m later; window 0..15m.
        let ivs = vec![iv(0, 2 * M, 3 * M), iv(0, 10 * M, 11 * M)];
        let t = timeline(1, &ivs, 0, 0, 15 * M);
        assert_eq!(
            t,
            vec![
                (0, 0),          // protection start, no point yet
                (3 * M, 3 * M),  // just before the first point is usable
                (3 * M, M),      // dropped to 3m - 2m
                (11 * M, 9 * M), // just before the second point
                (11 * M, M),     // dropped to 11m - 10m
                (15 * M, 5 * M), // window end
            ]
        );
        // The timeline's peak is the summary's worst.
        let e = compute(1, &ivs, 0, 0, 15 * M, 5 * M).unwrap();
        assert_eq!(t.iter().map(|v| v.1).max(), Some(e.worst_ms));
    }

    #[test]
    fn timeline_window_before_protection_is_empty() {
        assert!(timeline(1, &[], 100, 0, 50).is_empty());
    }

    #[test]
    fn window_before_protection_is_none() {
        assert!(compute(1, &[], 100, 0, 50, 10).is_none());
    }
}
