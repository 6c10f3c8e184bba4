//! What each time of day usually does: the largest recent residual per quarter hour of the
//! (UTC) day, so that a nightly job's spike, seen on earlier days at about the same time, stops
//! counting as a surprise.
//!
//! HTM learns such a pattern as a sequence; this keeps only its envelope. Each of [`BINS`]
//! quarter-hour bins holds the largest absolute residual of its earlier *visits* (a visit: the
//! samples of one day that fall in the bin), decaying with a half-life of days so that a job
//! that stops is forgotten. A visit counts only once it is `VISIT_MS` old, so the profile
//! says what *earlier days* did at this time, never what the last few minutes did: a level
//! shift or a burst today is not explained away by itself. Lookups take the largest of the
//! neighbouring bins, because a scheduled job drifts by minutes from day to day.
//!
//! Memory is fixed (96 bins of 24 bytes per series) and a sample costs a handful of bin reads.

use serde::{Deserialize, Serialize};

use crate::types::Time;

/// Bins per day: a quarter of an hour each.
pub const BINS: usize = 96;
const DAY_MS: Time = 86_400_000;
const BIN_MS: Time = DAY_MS / BINS as Time;
/// A visit of a bin lasts half a day: samples of one bin closer than this are the same day.
const VISIT_MS: Time = DAY_MS / 2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Bin {
    /// When the current visit began; `None` before the first.
    visit_start: Option<Time>,
    /// Largest magnitude of the current visit.
    visit_max: f64,
    /// Largest magnitude of the earlier visits, decayed to `visit_start`.
    earlier_max: f64,
}

/// The daily envelope of one series' residuals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyProfile {
    /// Empty until the first sample, so a scorer that never sees one costs nothing.
    bins: Vec<Bin>,
}

impl Default for DailyProfile {
    fn default() -> Self {
        DailyProfile::new()
    }
}

impl DailyProfile {
    /// A profile that has seen nothing.
    pub fn new() -> DailyProfile {
        DailyProfile { bins: Vec::new() }
    }

    /// An upper bound of [`Self::expected`] at `time` that costs no decay: the largest
    /// undecayed magnitude within `reach` bins (decay only shrinks a value). When the bound
    /// cannot matter, the caller skips the exact figure.
    pub fn bound(&self, time: Time, reach: usize) -> f64 {
        if self.bins.is_empty() {
            return 0.0;
        }
        let centre = bin_of(time);
        let reach = reach.min(BINS / 2);
        (0..=2 * reach)
            .map(|k| {
                let bin = &self.bins[(centre + BINS + k - reach) % BINS];
                bin.earlier_max.max(bin.visit_max)
            })
            .fold(0.0, f64::max)
    }

    /// The largest magnitude seen on earlier days within `reach` bins of `time`'s time of day,
    /// decayed with a half-life of `half_life_days`; 0 when none.
    pub fn expected(&self, time: Time, reach: usize, half_life_days: f64) -> f64 {
        if self.bins.is_empty() || half_life_days <= 0.0 {
            return 0.0;
        }
        let centre = bin_of(time);
        let reach = reach.min(BINS / 2);
        (0..=2 * reach)
            .map(|k| {
                let index = (centre + BINS + k - reach) % BINS;
                self.bins[index].earlier(time, half_life_days)
            })
            .fold(0.0, f64::max)
    }

    /// Records a residual `magnitude` at `time`; nothing (and no memory) when `half_life_days`
    /// is not positive, which turns the profile off.
    pub fn record(&mut self, time: Time, magnitude: f64, half_life_days: f64) {
        if half_life_days <= 0.0 {
            return;
        }
        if self.bins.is_empty() {
            self.bins = vec![Bin::default(); BINS];
        }
        let bin = &mut self.bins[bin_of(time)];
        match bin.visit_start {
            Some(start) if time.saturating_sub(start) < VISIT_MS => {}
            Some(start) => {
                // A new day's visit: the finished one joins the earlier ones.
                let age = time.saturating_sub(start);
                bin.earlier_max = decay(bin.earlier_max.max(bin.visit_max), age, half_life_days);
                bin.visit_start = Some(time);
                bin.visit_max = 0.0;
            }
            None => bin.visit_start = Some(time),
        }
        bin.visit_max = bin.visit_max.max(magnitude);
    }
}

impl Bin {
    /// What earlier days put in this bin, as seen at `now`: the current visit counts once it is
    /// over.
    fn earlier(&self, now: Time, half_life_days: f64) -> f64 {
        let Some(start) = self.visit_start else {
            return 0.0;
        };
        let age = now.saturating_sub(start);
        let finished = if age >= VISIT_MS { self.visit_max } else { 0.0 };
        decay(self.earlier_max.max(finished), age, half_life_days)
    }
}

fn bin_of(time: Time) -> usize {
    (time.rem_euclid(DAY_MS) / BIN_MS) as usize
}

fn decay(value: f64, age_ms: Time, half_life_days: f64) -> f64 {
    if half_life_days <= 0.0 {
        return 0.0;
    }
    let days = age_ms.max(0) as f64 / DAY_MS as f64;
    value * (-days / half_life_days).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Time = 3_600_000;

    #[test]
    fn a_visit_counts_only_on_later_days() {
        let mut profile = DailyProfile::new();
        let three_am = 3 * HOUR;
        profile.record(three_am, 5.0, 3.0);
        // Minutes later it is still today's visit: nothing expected yet.
        assert_eq!(profile.expected(three_am + 600_000, 2, 3.0), 0.0);
        // A day later, at about the same time, it is expected, decayed by a third of a half-life.
        let next = profile.expected(DAY_MS + three_am + 20 * 60_000, 2, 3.0);
        assert!((next - 5.0 * 0.5_f64.powf((1.0 + 1.0 / 72.0) / 3.0)).abs() < 1e-9);
        // But not at noon, nor from beyond the reach.
        assert_eq!(profile.expected(DAY_MS + 12 * HOUR, 2, 3.0), 0.0);
        assert_eq!(profile.expected(DAY_MS + three_am + 2 * HOUR, 2, 3.0), 0.0);
    }

    #[test]
    fn reach_wraps_around_midnight_and_old_visits_fade() {
        let mut profile = DailyProfile::new();
        profile.record(DAY_MS - 60_000, 2.0, 1.0);
        profile.record(DAY_MS + 10 * 60_000, 1.0, 1.0);
        assert!(profile.expected(2 * DAY_MS + 5 * 60_000, 2, 1.0) > 0.9);
        // Ten half-lives later, the 23:59 visit is all but gone.
        assert!(profile.expected(11 * DAY_MS - 60_000, 0, 1.0) < 2.0 / 1000.0);
        // Times before the epoch fall in the right bin too.
        assert_eq!(bin_of(-60_000), BINS - 1);
    }

    #[test]
    fn turned_off_it_holds_nothing() {
        let mut profile = DailyProfile::new();
        profile.record(0, 5.0, 0.0);
        assert!(profile.bins.is_empty());
        assert_eq!(profile.expected(DAY_MS, 2, 0.0), 0.0);
    }
}
