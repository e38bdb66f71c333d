//! A region's RPO exposure over a window, from the days the catalog keeps
//! (migration 0014) and a walk over the points of the window's two ends
//! only: a report reads rows in proportion to plans × days, not to points
//! (issue 17). Each closed UTC day is walked once, when a report first
//! needs it, and stored with what else its numbers depend on; a change to
//! a point of that day (a rebuild, a deletion set in the past) drops it
//! and the next report walks it again.
//!
//! The numbers are exactly those of one walk over the whole window: the
//! walk's stretches are cut at midnight and the pieces put back together
//! in order (a breach across midnight is one breach), which the
//! integration test `the_walk_over_the_catalogs_usable_points_equals_the_whole_computation`
//! checks against the whole computation.

use std::collections::BTreeMap;

use tracing::debug;

use super::exposure::{Breach, Exposure, Interval, Stretches, Summary, Walker};
use crate::catalog::{Catalog, CatalogError, ExposureDay};
use crate::time::Millis;

const DAY: Millis = 86_400_000;

fn midnight(t: Millis) -> Millis {
    t - t.rem_euclid(DAY)
}

/// What one region's exposure is asked over.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The plan's name.
    pub plan: &'a str,
    /// The region.
    pub region: &'a str,
    /// The plan's resources, in order.
    pub resources: &'a [&'a str],
    /// The plan's first backup attempt.
    pub protection_start: Millis,
    /// The RPO objective.
    pub rpo_ms: i64,
    /// The window, `[from, to)`.
    pub from: Millis,
    /// The window's end, excluded.
    pub to: Millis,
    /// Now: only days that ended by then are kept.
    pub now: Millis,
}

impl Ask<'_> {
    /// Everything besides the points that a day's numbers depend on.
    fn basis(&self) -> String {
        format!(
            "{}/{}/{}",
            self.rpo_ms,
            self.protection_start,
            self.resources.join(",")
        )
    }
}

/// The exposure of `ask.region` over the window; `None` when the window
/// ends before protection started.
pub async fn region_exposure(
    cat: &Catalog,
    ask: &Ask<'_>,
) -> Result<Option<Exposure>, CatalogError> {
    let start = ask.from.max(ask.protection_start);
    if start >= ask.to || ask.resources.is_empty() {
        return Ok(None);
    }
    // Whole days from the first midnight at or after the start to the last
    // one before the end (so the tail, which gives the newest data time at
    // the end, is never empty), and only days already over.
    let days_from = midnight(start + DAY - 1);
    let days_to = midnight(ask.to - 1).min(midnight(ask.now));
    if days_to <= days_from {
        let mut s = Summary::new(ask.rpo_ms);
        let (base, all_have) = walk(cat, ask, start, ask.to, &mut s).await?;
        return Ok(Some(s.into_exposure(all_have.then_some(base))));
    }
    let mut summary = Summary::new(ask.rpo_ms);
    if start < days_from {
        walk(cat, ask, start, days_from, &mut summary).await?;
    }
    for day in kept_days(cat, ask, days_from, days_to).await? {
        summary.append(day);
    }
    let mut tail = Summary::new(ask.rpo_ms);
    let (base, all_have) = walk(cat, ask, days_to, ask.to, &mut tail).await?;
    summary.append(tail);
    Ok(Some(summary.into_exposure(all_have.then_some(base))))
}

/// Walks `[from, to)` into `sink`; the baseline at `to` and whether every
/// resource had a point then.
async fn walk<S: Stretches>(
    cat: &Catalog,
    ask: &Ask<'_>,
    from: Millis,
    to: Millis,
    sink: S,
) -> Result<(Millis, bool), CatalogError> {
    let Some(mut walker) = Walker::new(ask.resources.len(), ask.protection_start, from, to, sink)
    else {
        return Ok((ask.protection_start, false));
    };
    feed(cat, ask, from, to, &mut walker).await?;
    let (base, all_have, _) = walker.finish();
    Ok((base, all_have))
}

/// Hands `walker` the points of `ask.region` that can matter over
/// `[from, to)`, streamed from the catalog in the order they became usable.
pub(super) async fn feed<S: Stretches>(
    cat: &Catalog,
    ask: &Ask<'_>,
    from: Millis,
    to: Millis,
    walker: &mut Walker<S>,
) -> Result<(), CatalogError> {
    cat.for_each_usable_point(ask.plan, ask.region, ask.resources, from, to, |p| {
        walker.add(&Interval {
            resource: p.resource,
            data_time: p.data_time,
            valid_from: p.completed_at,
            valid_to: p.deleted_at,
        });
    })
    .await
}

impl<S: Stretches> Stretches for &mut S {
    fn stretch(&mut self, a: Millis, b: Millis, base: Millis) {
        (**self).stretch(a, b, base);
    }
}

/// Stretches cut at midnight, one summary per day.
struct ByDay {
    rpo_ms: i64,
    days: BTreeMap<Millis, Summary>,
}

impl Stretches for ByDay {
    fn stretch(&mut self, mut a: Millis, b: Millis, base: Millis) {
        while a < b {
            let day = midnight(a);
            let end = b.min(day + DAY);
            self.days
                .entry(day)
                .or_insert_with(|| Summary::new(self.rpo_ms))
                .stretch(a, end, base);
            a = end;
        }
    }
}

/// The summaries of the days `[from, to)`, oldest first: the stored ones
/// with today's basis, the others walked (each run of missing days in one
/// walk) and stored for the next report.
async fn kept_days(
    cat: &Catalog,
    ask: &Ask<'_>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Summary>, CatalogError> {
    let basis = ask.basis();
    // Read before the walk: a point changed while walking bumps it, and
    // what was walked is then not stored.
    let epoch = cat.exposure_epoch(ask.plan, ask.region).await?;
    let mut days: BTreeMap<Millis, Summary> = BTreeMap::new();
    for row in cat.exposure_days(ask.plan, ask.region, from, to).await? {
        if row.basis == basis {
            if let Some(s) = decode(ask.rpo_ms, &row) {
                days.insert(row.day, s);
            }
        }
    }
    let mut walked = Vec::new();
    let mut day = from;
    while day < to {
        if days.contains_key(&day) {
            day += DAY;
            continue;
        }
        let mut end = day + DAY;
        while end < to && !days.contains_key(&end) {
            end += DAY;
        }
        let mut by_day = ByDay {
            rpo_ms: ask.rpo_ms,
            days: BTreeMap::new(),
        };
        walk(cat, ask, day, end, &mut by_day).await?;
        for (d, s) in by_day.days {
            walked.push(encode(d, &basis, &s));
            days.insert(d, s);
        }
        day = end;
    }
    if !walked.is_empty() {
        // A cache: a catalog that cannot be written (read-only, busy)
        // costs the next report the same walk, nothing else.
        match cat
            .store_exposure_days(ask.plan, ask.region, epoch, &walked)
            .await
        {
            Ok(true) => {}
            Ok(false) => debug!(
                plan = ask.plan,
                region = ask.region,
                "points changed during the walk; days not kept"
            ),
            Err(e) => {
                debug!(plan = ask.plan, region = ask.region, error = %e, "cannot keep the exposure days")
            }
        }
    }
    Ok(days.into_values().collect())
}

fn encode(day: Millis, basis: &str, s: &Summary) -> ExposureDay {
    let (worst_ms, within_ms, total_ms, breaches) = s.parts();
    ExposureDay {
        day,
        basis: basis.to_string(),
        worst_ms,
        within_ms,
        total_ms,
        breaches: breaches
            .iter()
            .map(|b| format!("{}:{}:{}", b.start, b.end, b.worst_ms))
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// `None` for a row that does not parse (then walked again).
fn decode(rpo_ms: i64, row: &ExposureDay) -> Option<Summary> {
    let mut breaches = Vec::new();
    for b in row.breaches.split(';').filter(|b| !b.is_empty()) {
        let mut parts = b.split(':').map(|n| n.parse::<i64>().ok());
        let (Some(Some(start)), Some(Some(end)), Some(Some(worst_ms)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        breaches.push(Breach {
            start,
            end,
            worst_ms,
        });
    }
    Some(Summary::from_parts(
        rpo_ms,
        row.worst_ms,
        row.within_ms,
        row.total_ms,
        breaches,
    ))
}
