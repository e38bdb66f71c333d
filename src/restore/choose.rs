//! Which point of each resource a drill or a restore uses: one rule for
//! both, so that what the drills measured is what the operator restores.
//!
//! A plan with several resources is put back to one moment. When one
//! backup run holds a usable point of every resource chosen, the points of
//! one such run are taken (the newest, the oldest, a random one, or the
//! newest at or before `--at`); only when no run holds them all (a
//! resource added later, a copy that failed in every run, points rebuilt
//! from a vault) does each resource get its newest point at or before a
//! common instant. Pure: the candidates come from the catalog.

use std::collections::BTreeMap;

use rand::seq::IndexedRandom;

use crate::catalog::Point;
use crate::plan::PointChoice;
use crate::time::Millis;

/// What to put back.
#[derive(Debug, Clone)]
pub enum Moment {
    /// The newest, oldest or a random moment the points allow.
    Choice(PointChoice),
    /// The newest moment whose data is at or before this instant.
    At(Millis),
    /// This point for its resource; the others at its moment.
    Pinned(Box<Point>),
}

/// One resource's usable points, newest data first, as
/// [`crate::catalog::Catalog::complete_points`] lists them.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// The resource's name.
    pub resource: String,
    /// Its usable points, newest data first.
    pub points: Vec<Point>,
}

/// The chosen point of each resource (in the order given; `None` when a
/// resource has no point at or before the moment), and how they were
/// chosen, for the output.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Per resource, the point chosen.
    pub points: Vec<Option<Point>>,
    /// The backup run all the points come from, when one run held them
    /// all; `None` when each resource got its newest point at or before
    /// a common instant.
    pub run: Option<i64>,
}

/// Chooses a point per resource for `moment` among `candidates`.
pub fn choose(candidates: &[Candidates], moment: &Moment) -> Chosen {
    let usable: Vec<Vec<&Point>> = candidates
        .iter()
        .map(|c| match moment {
            Moment::At(t) => c
                .points
                .iter()
                .filter(|p| p.data_time.is_some_and(|d| d <= *t))
                .collect(),
            _ => c.points.iter().collect(),
        })
        .collect();
    let runs = whole_runs(&usable);
    let run = match moment {
        Moment::Choice(PointChoice::Latest) | Moment::At(_) => runs.last(),
        Moment::Choice(PointChoice::Oldest) => runs.first(),
        Moment::Choice(PointChoice::Random) => runs.choose(&mut rand::rng()),
        Moment::Pinned(p) => runs.iter().find(|r| r.id == p.run_id.unwrap_or(i64::MIN)),
    };
    if let Some(run) = run {
        return Chosen {
            points: run.points.iter().map(|p| Some((*p).clone())).collect(),
            run: Some(run.id),
        };
    }
    let at = match moment {
        Moment::Choice(PointChoice::Latest) => Millis::MAX,
        Moment::At(t) => *t,
        Moment::Pinned(p) => p.data_time.unwrap_or(Millis::MIN),
        Moment::Choice(PointChoice::Oldest) => earliest_whole(&usable),
        Moment::Choice(PointChoice::Random) => {
            let all: Vec<Millis> = usable
                .iter()
                .flatten()
                .filter_map(|p| p.data_time)
                .collect();
            let drawn = all.choose(&mut rand::rng()).copied().unwrap_or(Millis::MAX);
            drawn.max(earliest_whole(&usable))
        }
    };
    let points = candidates
        .iter()
        .zip(&usable)
        .map(|(c, points)| match moment {
            Moment::Pinned(p) if p.resource == c.resource => Some((**p).clone()),
            _ => newest_at_or_before(points, at).cloned(),
        })
        .collect();
    Chosen { points, run: None }
}

/// A backup run holding a usable point of every resource.
struct WholeRun<'a> {
    id: i64,
    /// The newest data time among its points: when the moment is.
    time: Millis,
    points: Vec<&'a Point>,
}

/// The runs holding a point of every resource, oldest first.
fn whole_runs<'a>(usable: &[Vec<&'a Point>]) -> Vec<WholeRun<'a>> {
    if usable.is_empty() {
        return Vec::new();
    }
    // Per run, the newest point of each resource in it.
    let mut by_run: BTreeMap<i64, Vec<Option<&Point>>> = BTreeMap::new();
    for (i, points) in usable.iter().enumerate() {
        for p in points {
            let Some(run) = p.run_id else { continue };
            let slot = by_run
                .entry(run)
                .or_insert_with(|| vec![None; usable.len()]);
            // Newest first: the first point seen of a run is its newest.
            slot[i].get_or_insert(p);
        }
    }
    let mut runs: Vec<WholeRun> = by_run
        .into_iter()
        .filter_map(|(id, points)| {
            let points: Vec<&Point> = points.into_iter().collect::<Option<_>>()?;
            let time = points.iter().filter_map(|p| p.data_time).max()?;
            Some(WholeRun { id, time, points })
        })
        .collect();
    runs.sort_by_key(|r| (r.time, r.id));
    runs
}

/// The earliest instant at which every resource has a point: the newest
/// of the resources' oldest data times.
fn earliest_whole(usable: &[Vec<&Point>]) -> Millis {
    usable
        .iter()
        .filter_map(|points| points.iter().filter_map(|p| p.data_time).min())
        .max()
        .unwrap_or(Millis::MAX)
}

/// The newest of `points` (newest first) whose data is at or before `at`.
fn newest_at_or_before<'a>(points: &[&'a Point], at: Millis) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| p.data_time.is_some_and(|d| d <= at))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PointStatus;
    use crate::resource::Kind;

    fn point(id: i64, resource: &str, run: Option<i64>, data_time: Millis) -> Point {
        Point {
            id,
            plan: "shop".into(),
            resource: resource.into(),
            kind: Kind::Path,
            region: "dr".into(),
            run_id: run,
            source_point_id: None,
            origin_point_id: None,
            status: PointStatus::Complete,
            started_at: data_time,
            data_time: Some(data_time),
            completed_at: Some(data_time + 1),
            deleted_at: None,
            size_bytes: None,
            content_bytes: None,
            file_count: None,
            sha256: None,
            manifest_sha256: None,
            location: None,
            stored: None,
            flags: Default::default(),
            error: None,
            locked_until: None,
            damaged_at: None,
            damage: None,
        }
    }

    fn ids(c: &Chosen) -> Vec<Option<i64>> {
        c.points.iter().map(|p| p.as_ref().map(|p| p.id)).collect()
    }

    /// Runs 1–3 each hold `files` and `db`; run 4 holds `files` only
    /// (the copy of `db` failed).
    fn history() -> Vec<Candidates> {
        let files = [
            point(7, "files", Some(4), 4000),
            point(5, "files", Some(3), 3000),
            point(3, "files", Some(2), 2000),
            point(1, "files", Some(1), 1000),
        ];
        let db = [
            point(6, "db", Some(3), 3010),
            point(4, "db", Some(2), 2010),
            point(2, "db", Some(1), 1010),
        ];
        vec![
            Candidates {
                resource: "files".into(),
                points: files.to_vec(),
            },
            Candidates {
                resource: "db".into(),
                points: db.to_vec(),
            },
        ]
    }

    #[test]
    fn latest_is_the_newest_run_holding_every_resource() {
        let c = choose(&history(), &Moment::Choice(PointChoice::Latest));
        assert_eq!(ids(&c), [Some(5), Some(6)]);
        assert_eq!(c.run, Some(3));
    }

    #[test]
    fn oldest_is_the_oldest_whole_run() {
        let c = choose(&history(), &Moment::Choice(PointChoice::Oldest));
        assert_eq!(ids(&c), [Some(1), Some(2)]);
    }

    #[test]
    fn random_always_draws_one_whole_run() {
        for _ in 0..50 {
            let c = choose(&history(), &Moment::Choice(PointChoice::Random));
            let run = c.run.expect("a whole run");
            for p in c.points.iter().flatten() {
                assert_eq!(p.run_id, Some(run), "{c:?}");
            }
        }
    }

    #[test]
    fn at_takes_the_newest_run_whose_data_is_not_after_it() {
        let c = choose(&history(), &Moment::At(2500));
        assert_eq!(ids(&c), [Some(3), Some(4)]);
        // Run 2's db point is 10 ms after its files point: 2005 is before it.
        let c = choose(&history(), &Moment::At(2005));
        assert_eq!(ids(&c), [Some(1), Some(2)]);
        let c = choose(&history(), &Moment::At(999));
        assert_eq!(ids(&c), [None, None]);
    }

    #[test]
    fn a_pinned_point_brings_the_rest_of_its_run() {
        let pinned = point(4, "db", Some(2), 2010);
        let c = choose(&history(), &Moment::Pinned(Box::new(pinned)));
        assert_eq!(ids(&c), [Some(3), Some(4)]);
        // Run 4 holds no db point: the db gets its newest at or before.
        let pinned = point(7, "files", Some(4), 4000);
        let c = choose(&history(), &Moment::Pinned(Box::new(pinned)));
        assert_eq!(ids(&c), [Some(7), Some(6)]);
        assert_eq!(c.run, None);
    }

    #[test]
    fn without_a_whole_run_each_gets_its_newest_at_or_before_one_instant() {
        // Rebuilt points carry no run.
        let mut h = history();
        for c in &mut h {
            for p in &mut c.points {
                p.run_id = None;
            }
        }
        let c = choose(&h, &Moment::Choice(PointChoice::Latest));
        assert_eq!(ids(&c), [Some(7), Some(6)]);
        let c = choose(&h, &Moment::At(3005));
        assert_eq!(ids(&c), [Some(5), Some(4)]);
        // The oldest moment at which both exist: db's oldest, 1010.
        let c = choose(&h, &Moment::Choice(PointChoice::Oldest));
        assert_eq!(ids(&c), [Some(1), Some(2)]);
    }

    #[test]
    fn a_resource_without_points_gets_none_and_the_others_still_theirs() {
        let mut h = history();
        h.push(Candidates {
            resource: "new".into(),
            points: Vec::new(),
        });
        let c = choose(&h, &Moment::Choice(PointChoice::Latest));
        assert_eq!(ids(&c), [Some(7), Some(6), None]);
    }
}
