//! Pure next-run maths: crontab expressions in a time zone, with a stable
//! per-plan jitter. `now` is always a parameter so tests state exact times.
//!
//! Expressions mean what they mean in a crontab. The `cron` crate numbers
//! days of the week Quartz-style (1 = Sunday) and ANDs day-of-month with
//! day-of-week, so an expression is translated before it reaches the crate:
//! a 5-field expression gets a leading `0` seconds field, the day-of-week
//! field is expanded to day names, and when both day fields are restricted
//! the schedule is the union of the two (Vixie cron's rule).

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

/// Why a crontab expression was refused; each says what is wrong in the
/// words of the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression has no fields (empty or only whitespace).
    #[error("cron expression is empty")]
    Empty,
    /// Not 5, 6 or 7 whitespace-separated fields.
    #[error("cron expression `{expr}` has {fields} fields; expected 5 (min hour day month weekday), or 6/7 with seconds first (and year last)")]
    FieldCount {
        /// The expression as written.
        expr: String,
        /// How many fields it has.
        fields: usize,
    },
    /// Refused by the `cron` crate, with the reason it gives.
    #[error("invalid cron expression `{expr}`: {reason}")]
    Invalid {
        /// The expression as written (not as translated for the crate).
        expr: String,
        /// The last line of the crate's message, which says what is wrong.
        reason: String,
    },
    /// Valid, but matches no instant after now (`0 0 30 2 *`): refused
    /// rather than loaded as a plan that silently never runs. Holds the
    /// expression.
    #[error("cron expression `{0}` never fires")]
    NeverFires(String),
    /// A day-of-week number above 7; holds the number as written.
    #[error("day of week `{0}` is out of range 0-7")]
    DayOutOfRange(String),
    /// A day-of-week token that is neither a number nor a day name (`MON`
    /// or `monday`, any case); holds the token.
    #[error("`{0}` is not a day of the week (0-7 or SUN-SAT)")]
    NotADay(String),
    /// A day-of-week step (after `/`) that is not a number from 1 to 7;
    /// holds the step as written.
    #[error("day-of-week step `{0}` must be a number from 1 to 7")]
    DayStep(String),
    /// A day-of-week range whose first day comes after its last (`FRI-MON`,
    /// or `FRI-SUN` since `SUN` is 0): ranges do not wrap around the week.
    /// Holds the range.
    #[error("day-of-week range `{0}` runs backwards; write it as two ranges")]
    BackwardsDays(String),
    /// The day-of-week field expanded to no day; holds the field. A
    /// safeguard: every item the other checks accept selects a day.
    #[error("day-of-week field `{0}` selects no day")]
    NoDay(String),
}

/// A parsed crontab expression (5, 6 or 7 fields).
#[derive(Debug, Clone)]
pub struct Cron {
    source: String,
    /// Day-of-week restricted (or neither day field restricted).
    main: cron::Schedule,
    /// When both day fields are restricted: the day-of-month alternative.
    alternative: Option<cron::Schedule>,
    /// How long until the expression's pattern repeats (a day, a week or a
    /// year), which bounds how far `gap_bounds` must look.
    period_days: i64,
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses a crontab expression.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let (mut fields, dom_index): (Vec<String>, usize) = match fields.len() {
            5 => (
                std::iter::once("0")
                    .chain(fields.iter().copied())
                    .map(String::from)
                    .collect(),
                3,
            ),
            6 | 7 => (fields.iter().map(|s| s.to_string()).collect(), 3),
            0 => return Err(CronError::Empty),
            n => {
                return Err(CronError::FieldCount {
                    expr: expr.to_string(),
                    fields: n,
                })
            }
        };
        let dow_index = dom_index + 2;
        let dow_restricted = !is_any(&fields[dow_index]);
        let dom_restricted = !is_any(&fields[dom_index]);
        // Vixie cron: the two day fields are ORed only when neither starts
        // with `*` (so `*/2` in one of them still means AND).
        let union = !fields[dow_index].starts_with('*')
            && !fields[dom_index].starts_with('*')
            && !fields[dow_index].starts_with('?')
            && !fields[dom_index].starts_with('?');
        if dow_restricted {
            fields[dow_index] = translate_day_of_week(&fields[dow_index])?;
        } else {
            fields[dow_index] = "*".into();
        }
        if !dom_restricted {
            fields[dom_index] = "*".into();
        }
        let build = |fields: &[String]| -> Result<cron::Schedule, CronError> {
            let text = fields.join(" ");
            cron::Schedule::from_str(&text).map_err(|e| {
                // The crate's message draws a caret under the expression;
                // its last line says what is wrong.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                CronError::Invalid {
                    expr: expr.to_string(),
                    reason,
                }
            })
        };
        let (main, alternative) = if dow_restricted && dom_restricted && union {
            let mut by_dow = fields.clone();
            by_dow[dom_index] = "*".into();
            let mut by_dom = fields.clone();
            by_dom[dow_index] = "*".into();
            (build(&by_dow)?, Some(build(&by_dom)?))
        } else {
            (build(&fields)?, None)
        };
        // An expression that can never fire (e.g. 30 February) is an error,
        // not a plan that silently never runs.
        let yearly = dom_restricted
            || !is_any(&fields[dom_index + 1])
            || fields.get(dom_index + 3).is_some_and(|y| !is_any(y));
        let period_days = if yearly {
            366
        } else if dow_restricted {
            7
        } else {
            1
        };
        let probe = Cron {
            source: expr.to_string(),
            main,
            alternative,
            period_days,
        };
        if probe.next_after(Utc::now(), chrono_tz::UTC).is_none() {
            return Err(CronError::NeverFires(expr.to_string()));
        }
        Ok(probe)
    }

    /// The expression as written in the plan.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first slot strictly after `after`, evaluated in `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz);
        // In the hour a DST change repeats, the crate can answer with the
        // earlier of two instants, which may be before `after`: skip those.
        let first_after = |s: &cron::Schedule| {
            s.after(&local)
                .map(|t| t.with_timezone(&Utc))
                .take(100)
                .find(|t| *t > after)
        };
        let a = first_after(&self.main);
        let b = self.alternative.as_ref().and_then(first_after);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next `n` slots strictly after `after`.
    pub fn slots_after(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor, tz) {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }

    /// Shortest and longest gap between consecutive slots over one period
    /// of the expression after `from` (a day, a week or a year, plus a day;
    /// at most `MAX_SAMPLES` slots), used by validation: the jitter must be
    /// shorter than the shortest gap, and the longest gap bounds the RPO the
    /// schedule can keep.
    pub fn gap_bounds(&self, from: DateTime<Utc>, tz: Tz) -> Option<(Duration, Duration)> {
        const MAX_SAMPLES: usize = 100_000;
        let horizon = from + chrono::Duration::days(self.period_days + 1);
        let mut prev = self.next_after(from, tz)?;
        let mut min = Duration::MAX;
        let mut max = Duration::ZERO;
        for _ in 0..MAX_SAMPLES {
            let Some(next) = self.next_after(prev, tz) else {
                break;
            };
            let gap = (next - prev).to_std().unwrap_or_default();
            min = min.min(gap);
            max = max.max(gap);
            if next > horizon {
                break;
            }
            prev = next;
        }
        (min != Duration::MAX).then_some((min, max))
    }
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

fn day_number(token: &str) -> Result<u32, CronError> {
    if let Ok(n) = token.parse::<u32>() {
        if n <= 7 {
            return Ok(n % 7);
        }
        return Err(CronError::DayOutOfRange(token.to_string()));
    }
    let lower = token.to_ascii_lowercase();
    let full = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    for (i, name) in full.iter().enumerate() {
        if lower == name[..3] || lower == *name {
            return Ok(i as u32);
        }
    }
    Err(CronError::NotADay(token.to_string()))
}

/// Expands a crontab day-of-week field (0-7, 0 and 7 = Sunday, names,
/// ranges, steps, lists) to an explicit list of day names.
fn translate_day_of_week(field: &str) -> Result<String, CronError> {
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| (1..=7).contains(s))
                    .ok_or_else(|| CronError::DayStep(s.to_string()))?;
                (r, step)
            }
            None => (item, 1),
        };
        // Numbers are kept raw (7 stays 7) so `5-7` means Fri..Sun.
        let raw = |t: &str| -> Result<u32, CronError> {
            match t.parse::<u32>() {
                Ok(n) if n <= 7 => Ok(n),
                Ok(_) => Err(CronError::DayOutOfRange(t.to_string())),
                Err(_) => day_number(t),
            }
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 7)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (raw(a)?, raw(b)?);
            if a > b {
                return Err(CronError::BackwardsDays(range.to_string()));
            }
            (a, b)
        } else {
            let a = raw(range)?;
            if item.contains('/') {
                (a, 7)
            } else {
                (a, a)
            }
        };
        let mut d = lo;
        while d <= hi {
            days.insert(d % 7);
            d += step;
        }
    }
    if days.is_empty() {
        return Err(CronError::NoDay(field.to_string()));
    }
    Ok(days
        .iter()
        .map(|d| DAY_NAMES[*d as usize])
        .collect::<Vec<_>>()
        .join(","))
}

/// Stable jitter offset in `[0, jitter)` for one slot of one plan's job kind:
/// a hash of plan, kind and slot, so restarts do not move runs and plans
/// sharing a cron expression do not fire together.
pub fn jitter_offset(plan: &str, kind: &str, slot: DateTime<Utc>, jitter: Duration) -> Duration {
    let jitter_ms = jitter.as_millis() as u64;
    if jitter_ms == 0 {
        return Duration::ZERO;
    }
    let mut hasher = Sha256::new();
    hasher.update(plan.as_bytes());
    hasher.update([0]);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(slot.timestamp_millis().to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % jitter_ms)
}

/// One scheduled run: the cron slot and the jittered instant it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The instant the cron expression matches. The catalog keys jobs on it
    /// (one per plan, kind and slot) and the jitter offset hashes it.
    pub slot: DateTime<Utc>,
    /// When the run is due: `slot` plus the stable jitter offset, so never
    /// before `slot` and less than the jitter after it. Its start window
    /// opens here.
    pub start: DateTime<Utc>,
}

impl Run {
    /// When its start window closes: a run not started by then is missed.
    /// The window runs from the jittered start, so a jitter longer than the
    /// window (a drill's hour against the plan's ten minutes) does not make
    /// most runs miss.
    pub fn window_end(&self, window: Duration) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(window).unwrap_or_default()
    }
}

/// A job's timing: cron, time zone and jitter, and the names it hashes.
#[derive(Debug, Clone)]
pub struct Timing {
    /// When the slots fall.
    pub cron: Cron,
    /// The zone `cron` is read in (the plan's IANA `timezone`): `0 3 * * *`
    /// is 03:00 local time on either side of a DST change.
    pub timezone: Tz,
    /// Runs start at their slot plus a stable offset in `[0, jitter)`
    /// (millisecond steps); zero starts them on the slot. Validation keeps
    /// it shorter than the shortest gap between slots.
    pub jitter: Duration,
}

impl Timing {
    /// The run of `slot` for a plan's job kind: it starts at the slot plus
    /// the stable jitter offset.
    pub fn run(&self, plan: &str, kind: &str, slot: DateTime<Utc>) -> Run {
        let offset = jitter_offset(plan, kind, slot, self.jitter);
        Run {
            slot,
            start: slot + chrono::Duration::from_std(offset).unwrap_or_default(),
        }
    }

    /// The next `n` runs whose jittered start is after `now`.
    pub fn upcoming(&self, plan: &str, kind: &str, now: DateTime<Utc>, n: usize) -> Vec<Run> {
        // A slot up to `jitter` in the past may still start in the future.
        let from = now - chrono::Duration::from_std(self.jitter).unwrap_or_default();
        let mut runs: Vec<Run> = self
            .cron
            .slots_after(from, self.timezone, n + 2)
            .into_iter()
            .map(|slot| self.run(plan, kind, slot))
            .filter(|r| r.start > now)
            .collect();
        runs.truncate(n);
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    use rstest::rstest;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[rstest]
    #[case("0 3 * * 1", Weekday::Mon)]
    #[case("0 3 * * 0", Weekday::Sun)]
    #[case("0 3 * * 7", Weekday::Sun)]
    #[case("0 3 * * SUN", Weekday::Sun)]
    #[case("0 3 * * sat", Weekday::Sat)]
    #[case("0 0 3 * * 5", Weekday::Fri)]
    fn day_of_week_numbers_mean_what_crontab_means(#[case] expr: &str, #[case] day: Weekday) {
        let cron = Cron::parse(expr).unwrap();
        // 2026-11-25 is a Wednesday.
        let slots = cron.slots_after(utc(2026, 11, 25, 0, 0), chrono_tz::UTC, 5);
        assert_eq!(slots.len(), 5);
        for s in slots {
            assert_eq!(s.weekday(), day, "{expr} fired at {s}");
            assert_eq!((s.hour(), s.minute(), s.second()), (3, 0, 0));
        }
    }

    #[test]
    fn ranges_and_steps_follow_crontab() {
        let weekdays = translate_day_of_week("1-5").unwrap();
        assert_eq!(weekdays, "MON,TUE,WED,THU,FRI");
        assert_eq!(translate_day_of_week("5-7").unwrap(), "SUN,FRI,SAT");
        assert_eq!(translate_day_of_week("*/2").unwrap(), "SUN,TUE,THU,SAT");
        assert_eq!(
            translate_day_of_week("MON-WED,FRI").unwrap(),
            "MON,TUE,WED,FRI"
        );
        assert_eq!(
            translate_day_of_week("8"),
            Err(CronError::DayOutOfRange("8".into()))
        );
        assert_eq!(
            translate_day_of_week("FRI-MON"),
            Err(CronError::BackwardsDays("FRI-MON".into()))
        );
        assert_eq!(
            translate_day_of_week("7/4294967295"),
            Err(CronError::DayStep("4294967295".into()))
        );
    }

    #[test]
    fn a_star_prefixed_day_field_intersects() {
        // Every other day of the month, but only when it is a Monday.
        let cron = Cron::parse("0 3 */2 * 1").unwrap();
        for s in cron.slots_after(utc(2026, 11, 25, 0, 0), chrono_tz::UTC, 6) {
            assert_eq!(s.weekday(), Weekday::Mon);
            assert_eq!(s.day() % 2, 1, "{s}");
        }
    }

    #[test]
    fn dst_repeated_hour_never_goes_back() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let cron = Cron::parse("* * * * *").unwrap();
        // 2026-11-01 05:20 UTC is 01:20 EDT; 06:20 UTC is 01:20 EST (repeated hour).
        for start in [utc(2026, 11, 1, 5, 20), utc(2026, 11, 1, 6, 20)] {
            let next = cron.next_after(start, tz).unwrap();
            assert_eq!(next, start + chrono::Duration::minutes(1), "from {start}");
        }
    }

    #[test]
    fn both_day_fields_restricted_is_a_union() {
        // 1st of the month OR Mondays.
        let cron = Cron::parse("0 0 1 * 1").unwrap();
        let slots = cron.slots_after(utc(2026, 11, 25, 0, 0), chrono_tz::UTC, 3);
        // Mon 30 Nov, Tue 1 Dec, Mon 7 Dec.
        let days: Vec<u32> = slots.iter().map(|s| s.day()).collect();
        assert_eq!(days, vec![30, 1, 7]);
    }

    #[test]
    fn five_fields_run_at_second_zero_and_bad_ones_are_refused() {
        let cron = Cron::parse("*/15 * * * *").unwrap();
        let next = cron
            .next_after(utc(2026, 11, 25, 14, 1), chrono_tz::UTC)
            .unwrap();
        assert_eq!(next, utc(2026, 11, 25, 14, 15));
        assert_eq!(
            Cron::parse("* * *").unwrap_err(),
            CronError::FieldCount {
                expr: "* * *".into(),
                fields: 3
            }
        );
        assert!(matches!(
            Cron::parse("61 * * * *"),
            Err(CronError::Invalid { .. })
        ));
        assert_eq!(
            Cron::parse("0 0 30 2 *").unwrap_err().to_string(),
            "cron expression `0 0 30 2 *` never fires"
        );
    }

    #[test]
    fn time_zone_is_honoured() {
        let cron = Cron::parse("0 3 * * *").unwrap();
        let tz: Tz = "America/New_York".parse().unwrap();
        let next = cron.next_after(utc(2026, 11, 25, 0, 0), tz).unwrap();
        assert_eq!(next, utc(2026, 11, 25, 8, 0));
    }

    #[test]
    fn jitter_is_stable_bounded_and_differs_between_plans() {
        let slot = utc(2026, 11, 25, 14, 0);
        let j = Duration::from_secs(120);
        let a = jitter_offset("orders", "backup", slot, j);
        assert_eq!(a, jitter_offset("orders", "backup", slot, j));
        assert!(a < j);
        let offsets: BTreeSet<_> = (0..20)
            .map(|i| jitter_offset(&format!("plan-{i}"), "backup", slot, j))
            .collect();
        assert!(
            offsets.len() > 15,
            "jitter should spread plans: {offsets:?}"
        );
        assert_eq!(
            jitter_offset("x", "backup", slot, Duration::ZERO),
            Duration::ZERO
        );
    }

    #[test]
    fn gap_bounds_see_irregular_schedules() {
        let cron = Cron::parse("0 0 * * 1-5").unwrap();
        let (min, max) = cron
            .gap_bounds(utc(2026, 11, 25, 0, 0), chrono_tz::UTC)
            .unwrap();
        assert_eq!(min, Duration::from_secs(86_400));
        assert_eq!(max, Duration::from_secs(3 * 86_400));
    }
}

/// One upcoming run of some plan, for the schedule preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    /// The plan's name.
    pub plan: String,
    /// `backup` or `drill`, spelt as the jitter offset hashes it (and as
    /// the catalog stores job kinds).
    pub kind: &'static str,
    /// Where the run puts its load: the primary region for backups, the
    /// drill region for drills.
    pub region: String,
    /// The cron slot (see [`Run::slot`]).
    pub slot: DateTime<Utc>,
    /// The jittered start (see [`Run::start`]); collisions compare these.
    pub start: DateTime<Utc>,
}

/// The most collisions [`collisions`] lists: many plans on one region
/// with a wide window (`plan show --all --next 1000 --collision-window
/// 30d`) collide in hundreds of millions of pairs, gigabytes to hold and
/// minutes to find, and nobody reads past the first few.
pub const MAX_COLLISIONS: usize = 10_000;

/// Pairs (indices into `runs`, sorted by start) of runs of different plans
/// on the same region starting less than `window` apart: load that could be
/// spread with jitter or another minute. The earliest
/// [`MAX_COLLISIONS`] only.
pub fn collisions(runs: &[PlannedRun], window: Duration) -> Vec<(usize, usize)> {
    let window = chrono::Duration::from_std(window).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            if runs[j].start - runs[i].start >= window {
                break;
            }
            if runs[i].plan != runs[j].plan && runs[i].region == runs[j].region {
                if out.len() == MAX_COLLISIONS {
                    return out;
                }
                out.push((i, j));
            }
        }
    }
    out
}

#[cfg(test)]
mod preview_tests {
    use super::*;
    use chrono::TimeZone;

    fn run(plan: &str, region: &str, secs: i64) -> PlannedRun {
        let t =
            Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap() + chrono::Duration::seconds(secs);
        PlannedRun {
            plan: plan.into(),
            kind: "backup",
            region: region.into(),
            slot: t,
            start: t,
        }
    }

    #[test]
    fn collisions_need_two_plans_one_region_and_a_short_gap() {
        let runs = vec![
            run("a", "east", 0),
            run("b", "east", 20),
            run("c", "west", 25),
            run("a", "east", 50),
            run("d", "east", 200),
        ];
        assert_eq!(
            collisions(&runs, Duration::from_secs(60)),
            vec![(0, 1), (1, 3)]
        );
        assert!(collisions(&runs, Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn collisions_stop_at_their_bound() {
        let runs: Vec<PlannedRun> = (0..1000)
            .map(|i| run(&format!("p{}", i % 50), "east", i))
            .collect();
        let pairs = collisions(&runs, Duration::from_secs(30 * 86_400));
        assert_eq!(pairs.len(), MAX_COLLISIONS);
        assert_eq!(pairs[0], (0, 1));
    }
}
