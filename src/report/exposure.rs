//! RPO exposure over time, exactly as DESIGN.md defines it, in one ordered
//! pass over the points' validity intervals (no sampling).
//!
//! Exposure at t = t − the newest `data_time` among each resource's points
//! usable at t, taking the worst resource; before a resource has any point,
//! t − the protection start (the plan's first backup attempt).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::time::Millis;

/// A point's contribution: usable from `valid_from` (its completion, or its
/// verification for the verified RPO) until `valid_to` (deletion), if any.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The point's resource, as its index in the plan's resource list; an
    /// index out of range is ignored.
    pub resource: usize,
    /// The instant whose data the point holds (catalog ms).
    pub data_time: Millis,
    /// From when the point counts (catalog ms).
    pub valid_from: Millis,
    /// When it stopped counting: prune started deleting it. `None` while
    /// it is still there.
    pub valid_to: Option<Millis>,
}

/// A period during which the exposure exceeded the objective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The first instant over the objective (catalog ms).
    pub start: Millis,
    /// The end, excluded: when a newer point became usable, or the
    /// window's end.
    pub end: Millis,
    /// The highest exposure of the period, in milliseconds (reached just
    /// before `end`).
    pub worst_ms: i64,
}

/// A region's RPO exposure over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// The worst exposure reached in the window (just before a point
    /// became usable, or at the window's end).
    pub worst_ms: i64,
    /// Share of the window (from protection start) within the objective.
    pub within_ratio: f64,
    /// Newest data time usable at the window's end (worst resource).
    pub newest_data_time: Option<Millis>,
    /// The periods over the objective, oldest first.
    pub breaches: Vec<Breach>,
}

/// Receives the stretches of the walk: `[a, b)` during which the baseline
/// (the worst resource's newest usable data time, or the protection start)
/// stays `base`, so the exposure at t in it is t − base.
pub trait Stretches {
    /// Over `[a, b)` the exposure at t is t − `base`.
    fn stretch(&mut self, a: Millis, b: Millis, base: Millis);
}

/// Walks the exposure timeline over `[start, to)` in one ordered pass:
/// points are fed in the order they became usable ([`Walker::add`]); their
/// ends (deletions) wait in a heap until their time comes. Memory holds
/// only the points usable at the moment, never the whole history, so the
/// caller can stream millions of points from the catalog.
///
/// At one instant, ends are applied before starts, and a stretch is only
/// reported between two distinct instants.
pub struct Walker<S> {
    /// Per resource: the data times usable now, with how many points hold each.
    usable: Vec<BTreeMap<Millis, u32>>,
    /// Pending ends: (time, resource, data time).
    ends: BinaryHeap<Reverse<(Millis, usize, Millis)>>,
    protection_start: Millis,
    to: Millis,
    cursor: Millis,
    sink: S,
}

impl<S: Stretches> Walker<S> {
    /// A walk over `[start, to)`; `None` when the window ends before
    /// protection started, or there is no resource.
    pub fn new(
        resources: usize,
        protection_start: Millis,
        from: Millis,
        to: Millis,
        sink: S,
    ) -> Option<Walker<S>> {
        let start = from.max(protection_start);
        if start >= to || resources == 0 {
            return None;
        }
        Some(Walker {
            usable: vec![BTreeMap::new(); resources],
            ends: BinaryHeap::new(),
            protection_start,
            to,
            cursor: start,
            sink,
        })
    }

    /// Adds a point. Points must come in `valid_from` order (a point out
    /// of order counts from the walk's current instant).
    pub fn add(&mut self, iv: &Interval) {
        if iv.resource >= self.usable.len() || iv.valid_to.is_some_and(|end| end <= iv.valid_from) {
            return; // not one of the plan's resources, or never usable
        }
        if iv.valid_from >= self.to {
            return;
        }
        self.ends_until(iv.valid_from);
        self.reach(iv.valid_from);
        *self.usable[iv.resource].entry(iv.data_time).or_insert(0) += 1;
        if let Some(end) = iv.valid_to {
            self.ends.push(Reverse((end, iv.resource, iv.data_time)));
        }
    }

    /// Ends the walk at `to`: the baseline then and whether every resource
    /// had a point, and the sink.
    pub fn finish(mut self) -> (Millis, bool, S) {
        self.ends_until(self.to - 1);
        let (base, all_have) = self.baseline();
        if self.to > self.cursor {
            self.sink.stretch(self.cursor, self.to, base);
        }
        (base, all_have, self.sink)
    }

    /// Applies the ends at or before `t`, in time order.
    fn ends_until(&mut self, t: Millis) {
        while let Some(Reverse((end, resource, data_time))) = self.ends.peek().copied() {
            if end > t {
                break;
            }
            self.ends.pop();
            self.reach(end);
            let set = &mut self.usable[resource];
            if let Some(n) = set.get_mut(&data_time) {
                *n -= 1;
                if *n == 0 {
                    set.remove(&data_time);
                }
            }
        }
    }

    /// Reports the stretch up to `t` (before the events at `t` apply).
    fn reach(&mut self, t: Millis) {
        if t > self.cursor {
            let (base, _) = self.baseline();
            self.sink.stretch(self.cursor, t, base);
            self.cursor = t;
        }
    }

    /// The oldest "newest data time" across resources (the protection
    /// start for a resource without a point), and whether all have one.
    fn baseline(&self) -> (Millis, bool) {
        let mut all_have = true;
        let b = self
            .usable
            .iter()
            .map(|s| match s.keys().next_back() {
                Some(t) => *t,
                None => {
                    all_have = false;
                    self.protection_start
                }
            })
            .min()
            .unwrap_or(self.protection_start);
        (b, all_have)
    }
}

/// The summary numbers, accumulated from the stretches.
#[derive(Debug)]
pub struct Summary {
    rpo_ms: i64,
    worst: i64,
    within: i64,
    total: i64,
    breaches: Vec<Breach>,
}

impl Summary {
    /// An empty summary against the objective `rpo_ms`.
    pub fn new(rpo_ms: i64) -> Summary {
        Summary {
            rpo_ms,
            worst: i64::MIN,
            within: 0,
            total: 0,
            breaches: Vec::new(),
        }
    }

    /// A summary from its stored parts (see [`Summary::parts`]).
    pub fn from_parts(
        rpo_ms: i64,
        worst: i64,
        within: i64,
        total: i64,
        breaches: Vec<Breach>,
    ) -> Summary {
        Summary {
            rpo_ms,
            worst,
            within,
            total,
            breaches,
        }
    }

    /// The worst exposure, the time within the objective, the time
    /// covered, and the breaches.
    pub fn parts(&self) -> (i64, i64, i64, &[Breach]) {
        (self.worst, self.within, self.total, &self.breaches)
    }

    /// Extends this summary by the one of the span that follows it: a
    /// breach running across the seam is one breach.
    pub fn append(&mut self, later: Summary) {
        self.worst = self.worst.max(later.worst);
        self.within += later.within;
        self.total += later.total;
        let mut rest = later.breaches.into_iter();
        if let Some(first) = rest.next() {
            match self.breaches.last_mut() {
                Some(last) if last.end == first.start => {
                    last.end = first.end;
                    last.worst_ms = last.worst_ms.max(first.worst_ms);
                }
                _ => self.breaches.push(first),
            }
        }
        self.breaches.extend(rest);
    }

    /// The exposure these numbers give, with the newest data time usable
    /// at the end.
    pub fn into_exposure(self, newest_data_time: Option<Millis>) -> Exposure {
        Exposure {
            worst_ms: self.worst,
            within_ratio: if self.total > 0 {
                self.within as f64 / self.total as f64
            } else {
                1.0
            },
            newest_data_time,
            breaches: self.breaches,
        }
    }
}

impl Stretches for Summary {
    fn stretch(&mut self, a: Millis, b: Millis, base: Millis) {
        self.worst = self.worst.max(b - base);
        self.total += b - a;
        let limit = base + self.rpo_ms;
        self.within += (limit.min(b) - a).clamp(0, b - a);
        if b > limit {
            let bs = a.max(limit);
            match self.breaches.last_mut() {
                Some(last) if last.end == bs => {
                    last.end = b;
                    last.worst_ms = last.worst_ms.max(b - base);
                }
                _ => self.breaches.push(Breach {
                    start: bs,
                    end: b,
                    worst_ms: b - base,
                }),
            }
        }
    }
}

/// The polyline `(t, exposure_ms)` for a chart: the exposure rises with
/// slope 1 and drops when a newer point becomes usable, so a vertex at
/// each stretch's start and one at its end (just before the drop) draw it
/// exactly. Stretches with an unchanged baseline are merged.
#[derive(Debug, Default)]
pub struct Timeline {
    /// `(t, exposure_ms)` in time order; two vertices at one `t` draw a drop.
    pub vertices: Vec<(Millis, i64)>,
    last_base: Option<Millis>,
}

impl Stretches for Timeline {
    fn stretch(&mut self, a: Millis, b: Millis, base: Millis) {
        if self.last_base == Some(base) {
            // Same line continues: move its end vertex instead of adding one.
            if let Some(end) = self.vertices.last_mut() {
                *end = (b, b - base);
            }
        } else {
            self.vertices.push((a, a - base));
            self.vertices.push((b, b - base));
            self.last_base = Some(base);
        }
    }
}

/// The summary and, when asked for (charts), the timeline, from one walk:
/// the chart and the table can never disagree.
#[derive(Debug)]
pub struct Both {
    /// The numbers of the report's table.
    pub summary: Summary,
    /// The chart's polyline; `None` unless a chart was asked for.
    pub timeline: Option<Timeline>,
}

impl Stretches for Both {
    fn stretch(&mut self, a: Millis, b: Millis, base: Millis) {
        self.summary.stretch(a, b, base);
        if let Some(t) = &mut self.timeline {
            t.stretch(a, b, base);
        }
    }
}

/// A region's exposure walk for the report.
pub type RegionWalk = Walker<Both>;

/// Starts a region's walk; `None` when the window ends before protection.
pub fn region_walk(
    resources: usize,
    protection_start: Millis,
    from: Millis,
    to: Millis,
    rpo_ms: i64,
    with_timeline: bool,
) -> Option<RegionWalk> {
    let sink = Both {
        summary: Summary::new(rpo_ms),
        timeline: with_timeline.then(Timeline::default),
    };
    Walker::new(resources, protection_start, from, to, sink)
}

/// Ends a region's walk: its exposure and timeline (empty unless asked for).
pub fn finish_region(walk: RegionWalk) -> (Exposure, Vec<(Millis, i64)>) {
    let (base, all_have, both) = walk.finish();
    let timeline = both.timeline.map(|t| t.vertices).unwrap_or_default();
    (
        both.summary.into_exposure(all_have.then_some(base)),
        timeline,
    )
}

fn sorted(intervals: &[Interval]) -> Vec<&Interval> {
    let mut v: Vec<&Interval> = intervals.iter().collect();
    v.sort_by_key(|iv| iv.valid_from);
    v
}

/// Exposure over `[from, to)` for `resources` resources, from intervals in
/// any order. `None` when the window ends before protection started.
pub fn compute(
    resources: usize,
    intervals: &[Interval],
    protection_start: Millis,
    from: Millis,
    to: Millis,
    rpo_ms: i64,
) -> Option<Exposure> {
    let mut walk = Walker::new(resources, protection_start, from, to, Summary::new(rpo_ms))?;
    for iv in sorted(intervals) {
        walk.add(iv);
    }
    let (base, all_have, summary) = walk.finish();
    Some(summary.into_exposure(all_have.then_some(base)))
}

/// The exposure over `[from, to)` as a polyline (see [`Timeline`]). Empty
/// when the window ends before protection.
pub fn timeline(
    resources: usize,
    intervals: &[Interval],
    protection_start: Millis,
    from: Millis,
    to: Millis,
) -> Vec<(Millis, i64)> {
    let Some(mut walk) = Walker::new(resources, protection_start, from, to, Timeline::default())
    else {
        return Vec::new();
    };
    for iv in sorted(intervals) {
        walk.add(iv);
    }
    walk.finish().2.vertices
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
    fn deleting_the_newest_point_falls_back_to_an_older_one() {
        // Data at 0 (usable from 1m) and at 10m (usable 11m..20m).
        let mut newer = iv(0, 10 * M, 11 * M);
        newer.valid_to = Some(20 * M);
        let ivs = vec![newer, iv(0, 0, M)];
        let e = compute(1, &ivs, 0, 0, 30 * M, 15 * M).unwrap();
        // From 20m the baseline is 0 again: exposure 30m at the end.
        assert_eq!(e.worst_ms, 30 * M);
        assert_eq!(e.newest_data_time, Some(0));
        assert_eq!(
            e.breaches,
            vec![Breach {
                start: 20 * M,
                end: 30 * M,
                worst_ms: 30 * M
            }]
        );
    }

    #[test]
    fn a_streamed_walk_equals_the_whole_computation() {
        // Many points in two resources, some deleted, fed in completion order.
        let mut ivs = Vec::new();
        for i in 0..200i64 {
            let data = i * 7 * M;
            let mut p = iv((i % 2) as usize, data, data + (i % 5) * M + M);
            if i % 3 == 0 {
                p.valid_to = Some(data + 40 * M);
            }
            ivs.push(p);
        }
        let whole = compute(2, &ivs, 0, 100 * M, 1200 * M, 15 * M).unwrap();
        let mut walk = region_walk(2, 0, 100 * M, 1200 * M, 15 * M, true).unwrap();
        let mut sorted = ivs.clone();
        sorted.sort_by_key(|p| p.valid_from);
        for p in &sorted {
            walk.add(p);
        }
        let (streamed, chart) = finish_region(walk);
        assert_eq!(streamed, whole);
        assert_eq!(chart, timeline(2, &ivs, 0, 100 * M, 1200 * M));
        assert_eq!(chart.iter().map(|v| v.1).max(), Some(whole.worst_ms));
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
