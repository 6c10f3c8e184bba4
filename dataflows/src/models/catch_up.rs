//! Catching a model up on a stretch of past values for less than updating it at each one.
//!
//! A member's refit sets its whole state from the window (EWMA, Holt and AR; Holt-Winters when
//! it seeks its period again), so every refit that another refit of the same member follows
//! within the stretch is work that the later one overwrites. A catch-up first leaps: the values
//! before the last few refit cycles are not stepped through at all, only their newest window
//! kept and the counts moved on (Holt-Winters is left a run of refits that includes one seeking
//! its period). Then it takes the values in order as [`SeriesModel::update`] does (the window,
//! the members' own steps, every counter) but skips the refits a later one overwrites, and
//! skips `auto`'s blend bookkeeping until the last [`SETTLE`] values, which are plain updates:
//! the blend relearns its members' errors there. So a rolling evaluation pays for the refits
//! the test region needs and little more, however long the history before it.
//!
//! What it leaves, when every fit in the stretch succeeds: every member exactly as `update`
//! would (tested to the bit) from the start of the last [`SETTLE`] values on; `auto`'s blend
//! weights learnt from those values' errors, which carry all but 0.98^500 = 4e-5 of the weight
//! an uninterrupted run gives its errors (so the blend is all but the same, not to the bit: in
//! a rolling evaluation of the bundled traces `auto`'s MAE moved by 1e-4 relative at most, by
//! 4e-8 at the median, and no mean MASE in the fourth decimal); and the one-step errors behind
//! the single models' `sigma` from that stretch alone (all but 0.995^500 = 8% of their weight).
//! A fit that fails (a window whose scores overflow) keeps the state before it in an update,
//! and a catch-up that skipped that earlier state, or resized a season ahead of the fit, may
//! then differ.

use std::borrow::Cow;

use super::{Core, SeriesModel};

/// The values at the end of a catch-up taken by ordinary updates, so that `auto`'s error means
/// (memory 0.98 a step) hold all but 0.98^500 = 4e-5 of the weight an uninterrupted run's do.
/// (700, at 1e-6, moved the bundled traces' scores no more and cost a tenth more time.)
pub(crate) const SETTLE: usize = 500;

impl SeriesModel {
    /// Takes `values` as [`SeriesModel::update`] would, one after the other, for a fraction of
    /// the cost: refits that a later refit within `values` overwrites are skipped, and `auto`
    /// keeps its blend only over the last 500 of them (`SETTLE`), as the single models keep
    /// their one-step errors (for `sigma`): see the module's notes for what that leaves.
    /// Non-finite values are ignored, as by `update`.
    pub fn catch_up(&mut self, values: &[f64]) {
        let finite: Cow<'_, [f64]> = if values.iter().all(|v| v.is_finite()) {
            Cow::Borrowed(values)
        } else {
            Cow::Owned(values.iter().copied().filter(|v| v.is_finite()).collect())
        };
        let values = &*finite;
        let quick = values.len().saturating_sub(SETTLE);
        if quick == 0 {
            values.iter().for_each(|&value| self.update(value));
            return;
        }
        // The quick stretch leaves every member as updates would by its end, so that the blend
        // learns from the members' true forecasts over the whole settle.
        let until = self.seen + quick as u64;
        if let Core::Auto(auto) = &mut self.core {
            // Its pending forecasts would be scored against values the quick stretch passes by.
            auto.forget_pending();
        }
        let leapt = match self.leap_target(until, quick as u64) {
            Some(target) => {
                let over = (target - self.seen) as usize;
                self.leap(&values[..over]);
                over
            }
            None => 0,
        };
        for &value in &values[leapt..quick] {
            self.step_ahead(value, until);
        }
        values[quick..].iter().for_each(|&value| self.update(value));
    }

    /// Where a catch-up to `until` samples may leap to, taking at most `quick` values: the
    /// sample before the latest cycle start from which every member still has the run of
    /// refits that settles it ([`super::Member::refits_to_settle`]) by `until`, over a full window.
    /// `None` when no such start lies ahead, or some member's state can outlive its refits.
    fn leap_target(&self, until: u64, quick: u64) -> Option<u64> {
        let every = self.refit_every as u64;
        let window = self.history.ring.len();
        let plan: Vec<(usize, Option<u64>)> = match &self.core {
            Core::Auto(auto) => auto.refit_plan(self.refit_every, window).to_vec(),
            core => vec![(0, core.refits_to_settle(window))],
        };
        let needs = plan
            .iter()
            .map(|&(_, need)| need)
            .collect::<Option<Vec<u64>>>()?;
        let longest = needs.iter().copied().max().unwrap_or(1).max(1);
        // A cycle start (every member's offset is within a cycle of it), then back one cycle at
        // a time while a member with a later offset would be short of its run by `until`.
        let mut start =
            until.checked_sub(longest.saturating_sub(1).saturating_mul(every))? / every * every;
        let settles = |start: u64| {
            plan.iter().zip(&needs).all(|(&(offset, _), &need)| {
                later_refits(start - 1, until, self.refit_every, offset) >= need
            })
        };
        // Mature and full at `start`, so that its refits see the window they would have.
        let ready = |start: u64| start >= every.max(16) && start >= window as u64;
        while ready(start) && !settles(start) {
            start -= every;
        }
        // Ahead of the model, and within the values it may take without the blend.
        let target = start.checked_sub(1)?;
        (ready(start) && target > self.seen && target - self.seen <= quick).then_some(target)
    }

    /// Takes `over` as a catch-up would, without stepping through them: the window keeps their
    /// newest values, the counts move on, and each member passes the refits in between. What
    /// it skips, the refits from the next cycle start on overwrite ([`Self::leap_target`]); the
    /// range the forecasts are held to is narrowed to the window there too.
    fn leap(&mut self, over: &[f64]) {
        let (older, window) = over.split_at(over.len().saturating_sub(self.history.ring.len()));
        self.history.nonnegative &= older.iter().all(|&value| value >= 0.0);
        window.iter().for_each(|&value| self.history.push(value));
        let from = self.seen;
        self.seen += over.len() as u64;
        match &mut self.core {
            Core::Auto(auto) => auto.pass_refits(from, self.seen, self.refit_every),
            core => {
                let count = later_refits(from, self.seen, self.refit_every, 0);
                core.member_mut().pass_refits(count);
            }
        }
    }

    /// One value of a catch-up to `until` samples: `update` without the blend or the residual,
    /// and with the refits that a later one overwrites skipped.
    fn step_ahead(&mut self, value: f64, until: u64) {
        match &mut self.core {
            Core::Auto(auto) => auto.observe_members(value, &self.history),
            core => core.member_mut().observe(value, &self.history),
        }
        self.history.push(value);
        self.seen += 1;
        self.refit_what_is_due(until);
    }
}

/// How many of the sample counts `seen + 1 ..= until` are refit points ([`super::refit_due`] with
/// `every` and `offset`), without visiting each.
pub(crate) fn later_refits(seen: u64, until: u64, every: usize, offset: usize) -> u64 {
    if until <= seen {
        return 0;
    }
    let every = every.max(1) as u64;
    let mut count = 0;
    // While the series is young: the powers of two from 16 below `every`.
    let mut point: u64 = 16;
    while point < every && point <= until {
        if point > seen {
            count += 1;
        }
        let Some(next) = point.checked_mul(2) else {
            break;
        };
        point = next;
    }
    // Then one in every `every`, `offset` past a multiple of it (and never before 16).
    let low = seen.saturating_add(1).max(every).max(16);
    if low <= until {
        let target = offset as u64 % every;
        let ahead =
            (u128::from(target) + u128::from(every) - u128::from(low % every)) % u128::from(every);
        let first = u128::from(low) + ahead;
        if first <= u128::from(until) {
            count += ((u128::from(until) - first) / u128::from(every) + 1) as u64;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::super::{refit_due, ModelConfig, ModelKind};
    use super::*;

    #[test]
    fn later_refits_counts_what_refit_due_says() {
        for every in [1, 5, 16, 17, 64, 100, 288] {
            for offset in [0, 1, 3, 72, 144, 300] {
                for seen in [0, 1, 15, 16, 17, 31, 32, 100, 287, 288, 289, 1000] {
                    for until in [seen, seen + 1, seen + 17, seen + 288, seen + 2000] {
                        let brute = (seen + 1..=until)
                            .filter(|&s| refit_due(s, every, offset))
                            .count() as u64;
                        assert_eq!(
                            later_refits(seen, until, every, offset),
                            brute,
                            "every {every} offset {offset} seen {seen} until {until}"
                        );
                    }
                }
            }
        }
        // Nothing overflows at the extremes.
        let top = u64::from(refit_due(u64::MAX, usize::MAX, usize::MAX));
        assert_eq!(
            later_refits(u64::MAX - 1, u64::MAX, usize::MAX, usize::MAX),
            top
        );
        // 2^4 ..= 2^63, then u64::MAX itself, a multiple of `every`.
        assert_eq!(later_refits(0, u64::MAX, usize::MAX, 0), 61);
        assert_eq!(later_refits(0, 0, 0, 0), 0);
    }

    /// A series that exercises every member: a daily-like season, a drifting level, a flat
    /// stretch (constant windows, AR's flat fit) and noise.
    fn series(len: usize, seed: u64) -> Vec<f64> {
        let mut noise = Noise::new(seed);
        (0..len)
            .map(|t| {
                if (1_500..2_700).contains(&t) {
                    25.0
                } else {
                    seasonal(t, 48) + 0.002 * t as f64 + 2.0 * noise.next()
                }
            })
            .collect()
    }

    fn models(kind: ModelKind, values: &[f64], split: usize) -> (SeriesModel, SeriesModel) {
        let config = ModelConfig::new(kind);
        let mut updated = SeriesModel::new(&config);
        values.iter().for_each(|&v| updated.update(v));
        let mut caught = SeriesModel::new(&config);
        caught.catch_up(&values[..split]);
        values[split..].iter().for_each(|&v| caught.update(v));
        (updated, caught)
    }

    #[test]
    fn caught_up_members_forecast_to_the_bit_what_updated_ones_do() {
        let single = [
            ModelKind::Ewma,
            ModelKind::Holt,
            ModelKind::HoltWinters,
            ModelKind::Ar,
            ModelKind::Median,
        ];
        for seed in [1, 2] {
            let values = series(6_000, seed);
            // Splits inside the young series, at and around refit points, in the flat stretch.
            for split in [0, 300, 701, 1_008, 1_152, 1_296, 2_000, 3_313, 4_608, 5_999] {
                for kind in single {
                    let (updated, caught) = models(kind, &values[..6_000], split);
                    for h in [1, 2, 6, 12, 24, 60] {
                        assert_eq!(
                            updated.forecast(h).to_bits(),
                            caught.forecast(h).to_bits(),
                            "{kind} seed {seed} split {split} h {h}"
                        );
                        assert_eq!(
                            updated.mean_over(h).to_bits(),
                            caught.mean_over(h).to_bits()
                        );
                    }
                    assert_eq!(updated.len(), caught.len());
                    assert_eq!(updated.season(), caught.season());
                }
                let (updated, caught) = models(ModelKind::Auto, &values, split);
                assert_eq!(updated.season(), caught.season());
                for h in [1, 6, 12, 24] {
                    let (a, b) = (updated.forecast(h), caught.forecast(h));
                    assert!(
                        (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                        "auto seed {seed} split {split} h {h}: {a} against {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn auto_members_are_exact_after_a_catch_up() {
        for (seed, len, split) in [
            (3, 5_000, 4_000),
            (1, 6_000, 5_999),
            (1, 6_000, 4_608),
            (2, 6_000, 3_313),
        ] {
            let values = series(len, seed);
            let (updated, caught) = models(ModelKind::Auto, &values, split);
            let (Core::Auto(a), Core::Auto(b)) = (&updated.core, &caught.core) else {
                panic!("auto models");
            };
            let (mut ha, mut hb) = (updated.history.clone(), caught.history.clone());
            assert_eq!(
                a.members_forecasts(&ha).map(|f| f.map(f64::to_bits)),
                b.members_forecasts(&hb).map(|f| f.map(f64::to_bits)),
                "seed {seed} split {split}"
            );
            assert_eq!(
                ha.contiguous(),
                hb.contiguous(),
                "seed {seed} split {split}"
            );
        }
    }

    /// Every member's forecasts, to the bit: the model's own for a single model, each member's
    /// for `auto`.
    fn member_bits(model: &SeriesModel) -> Vec<u64> {
        match &model.core {
            Core::Auto(auto) => {
                let mut history = model.history.clone();
                let forecasts = auto.members_forecasts(&history);
                let mut bits: Vec<u64> = forecasts.iter().flatten().map(|f| f.to_bits()).collect();
                bits.extend(history.contiguous().iter().map(|v| v.to_bits()));
                bits.push(auto.holt_winters().refit_count());
                bits
            }
            core => {
                let mut bits: Vec<u64> = [1, 2, 6, 12, 24, 60]
                    .iter()
                    .flat_map(|&h| [model.forecast(h).to_bits(), model.mean_over(h).to_bits()])
                    .collect();
                if let Core::HoltWinters(hw) = core {
                    bits.push(hw.refit_count());
                }
                bits
            }
        }
    }

    #[test]
    fn members_are_exact_under_other_configurations_and_repeated_catch_ups() {
        let values = series(4_000, 6);
        let kinds = [
            ModelKind::Ewma,
            ModelKind::Holt,
            ModelKind::HoltWinters,
            ModelKind::Ar,
            ModelKind::Auto,
        ];
        type Configure = fn(ModelKind) -> ModelConfig;
        let configs: Vec<(&str, Configure)> = vec![
            ("short cycles", |kind| ModelConfig {
                refit_every: 50,
                window: 300,
                ..ModelConfig::new(kind)
            }),
            ("fixed season", |kind| ModelConfig {
                season: Some(48),
                ..ModelConfig::new(kind)
            }),
            // One-minute samples: day-long seasons, a grown window, no leap for Holt-Winters.
            ("one-minute interval", |kind| ModelConfig {
                interval_ms: Some(60_000.0),
                ..ModelConfig::new(kind)
            }),
            ("refit every sample", |kind| ModelConfig {
                refit_every: 1,
                window: 64,
                ..ModelConfig::new(kind)
            }),
        ];
        for (name, config) in configs {
            for kind in kinds {
                let config = config(kind);
                let mut updated = SeriesModel::new(&config);
                values.iter().for_each(|&v| updated.update(v));
                // Updated a while, caught up twice in a row, then updated again.
                let mut caught = SeriesModel::new(&config);
                values[..700].iter().for_each(|&v| caught.update(v));
                caught.catch_up(&values[700..2_300]);
                caught.catch_up(&values[2_300..3_900]);
                values[3_900..].iter().for_each(|&v| caught.update(v));
                assert_eq!(updated.len(), caught.len(), "{name} {kind}");
                assert_eq!(member_bits(&updated), member_bits(&caught), "{name} {kind}");
                assert_eq!(updated.season(), caught.season(), "{name} {kind}");
            }
        }
    }

    #[test]
    fn extreme_and_degenerate_values_never_panic_and_keep_the_count() {
        let mut noise = Noise::new(9);
        let wild: Vec<f64> = (0..3_000)
            .map(|t| match t % 7 {
                0 => 1e300 * noise.next(),
                1 => f64::MIN_POSITIVE,
                2 => -1e-300,
                3 if t % 11 == 0 => f64::NAN,
                4 if t % 13 == 0 => f64::NEG_INFINITY,
                _ => 1e6 * noise.next(),
            })
            .collect();
        let flat = vec![3.5; 3_000];
        for values in [&wild, &flat] {
            for kind in ModelKind::ALL {
                let config = ModelConfig::new(kind);
                let mut updated = SeriesModel::new(&config);
                values.iter().for_each(|&v| updated.update(v));
                let mut caught = SeriesModel::new(&config);
                caught.catch_up(values);
                assert_eq!(updated.len(), caught.len(), "{kind}");
                for h in [1, 6, 12, 24] {
                    let _ = (caught.forecast(h), caught.mean_over(h), caught.sigma(h));
                }
            }
        }
        // The flat series is fitted at every refit: the members agree to the bit there too.
        let (updated, caught) = models(ModelKind::Auto, &flat, 3_000);
        assert_eq!(member_bits(&updated), member_bits(&caught));
    }

    #[test]
    fn a_catch_up_within_the_settle_is_plain_updates_and_ignores_what_update_ignores() {
        // Plain updates when nothing is left to skip: bit-identical, blend included.
        let values = series(SETTLE, 4);
        let (updated, caught) = models(ModelKind::Auto, &values, SETTLE);
        assert_eq!(updated.forecast(1).to_bits(), caught.forecast(1).to_bits());
        // Ignored values are ignored by both.
        let mut odd = series(3_000, 5);
        odd[10] = f64::NAN;
        odd[2_500] = f64::INFINITY;
        let (updated, caught) = models(ModelKind::Holt, &odd, 2_900);
        assert_eq!(updated.len(), caught.len());
        assert_eq!(updated.forecast(3).to_bits(), caught.forecast(3).to_bits());
    }
}
