//! A member's last fit of a constant window, so that refitting the same window costs a lookup.
//!
//! A device that does not move reports the same value for days (an idle machine's memory, a
//! disk at rest), and every refit of its series would search the same parameters over the
//! same window again: most of what such a series costs. The fits of EWMA, Holt and Holt-Winters
//! (for a given period) are functions of the window alone, so when the window is
//! bitwise one value of the same length as at the last fit, the last fit's result is exactly
//! what the fit would compute, and is restored instead. Any other window is fitted as before;
//! telling a constant window apart stops at its first differing value. AR needs no memo: it
//! fits a constant window as that value, at the cost of this same check.

/// The result of the last fit, if its window was constant. Boxed, so that a member that never
/// sees a constant window carries one pointer, and the state read at every sample stays as
/// compact as it was.
#[derive(Clone, Debug)]
pub(crate) struct FitMemo<S>(Option<Box<Memo<S>>>);

#[derive(Clone, Debug)]
struct Memo<S> {
    /// The constant's bits, the window's length and whatever else the fit depends on (the
    /// season's period for Holt-Winters).
    key: (u64, usize, usize),
    /// What the fit returned (`None`: it found nothing usable, and changed nothing).
    result: Option<S>,
}

impl<S> Default for FitMemo<S> {
    fn default() -> Self {
        FitMemo(None)
    }
}

impl<S: Clone> FitMemo<S> {
    /// `fit()`'s result for `values`, recalled when `values` is the constant window (with the
    /// same `extra`) that was last fitted.
    pub(crate) fn fit_or_recall(
        &mut self,
        values: &[f64],
        extra: usize,
        fit: impl FnOnce() -> Option<S>,
    ) -> Option<S> {
        let Some(bits) = constant_value(values).map(f64::to_bits) else {
            self.0 = None;
            return fit();
        };
        let key = (bits, values.len(), extra);
        if let Some(memo) = self.0.as_deref().filter(|memo| memo.key == key) {
            return memo.result.clone();
        }
        let result = fit();
        self.0 = Some(Box::new(Memo {
            key,
            result: result.clone(),
        }));
        result
    }
}

/// The value every element of `values` has, if there is one (and `values` is not empty).
/// Bitwise, so 0.0 and -0.0 differ, and a NaN is one value only with itself.
pub(crate) fn constant_value(values: &[f64]) -> Option<f64> {
    let first = *values.first()?;
    let bits = first.to_bits();
    values
        .iter()
        .all(|value| value.to_bits() == bits)
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::super::ar::Ar;
    use super::super::ewma::Ewma;
    use super::super::holt::Holt;
    use super::super::holt_winters::HoltWinters;
    use super::super::{History, Member};
    use super::FitMemo;

    /// A member refitted on a constant window it has fitted before (so the fit is recalled),
    /// against a new member fitted on the same window: their forecasts are equal to the bit,
    /// then and after the series moves (which shows their parameters too). In between, the
    /// first is shown other values, which the refit must wipe out as a fit does.
    fn recalled_fit_is_a_fresh_fit<M: Member>(make: impl Fn() -> M) {
        let window = [0.37; 1008];
        let mut history = History::new(window.len());
        window.iter().for_each(|&value| history.push(value));
        let mut recalled = make();
        recalled.refit(&window);
        for step in 0..288 {
            recalled.observe(step as f64, &history);
        }
        recalled.refit(&window);
        let mut fresh = make();
        fresh.refit(&window);
        for value in [0.37, 0.5, 0.9, 0.1, 0.45] {
            for h in [1, 6, 12] {
                let [a, b] = [&recalled, &fresh].map(|m| m.forecast(h, &history).to_bits());
                assert_eq!(a, b, "h = {h}");
                let [a, b] = [&recalled, &fresh].map(|m| m.mean_over(h, &history).to_bits());
                assert_eq!(a, b, "mean over {h}");
            }
            recalled.observe(value, &history);
            fresh.observe(value, &history);
            history.push(value);
        }
    }

    #[test]
    fn every_member_recalls_exactly_its_own_fit() {
        recalled_fit_is_a_fresh_fit(Ewma::new);
        recalled_fit_is_a_fresh_fit(|| Holt::new(true));
        recalled_fit_is_a_fresh_fit(|| HoltWinters::new(None, true));
        recalled_fit_is_a_fresh_fit(|| HoltWinters::new(Some(12), true));
        recalled_fit_is_a_fresh_fit(|| Ar::new(8));
    }

    #[test]
    fn a_constant_window_is_fitted_once_per_value_length_and_extra() {
        let mut memo = FitMemo::default();
        let fits = Cell::new(0);
        let mut fit = |values: &[f64], extra: usize| {
            memo.fit_or_recall(values, extra, || {
                fits.set(fits.get() + 1);
                Some(values.len() + extra)
            })
        };
        assert_eq!(fit(&[2.0; 8], 0), Some(8));
        assert_eq!(fit(&[2.0; 8], 0), Some(8));
        assert_eq!(fits.get(), 1);
        // Another value, another length, another extra, a signed zero: fitted again.
        fit(&[3.0; 8], 0);
        fit(&[3.0; 9], 0);
        fit(&[3.0; 9], 1);
        fit(&[0.0; 9], 1);
        fit(&[-0.0; 9], 1);
        assert_eq!(fits.get(), 6);
        assert_eq!(fit(&[-0.0; 9], 1), Some(10));
        assert_eq!(fits.get(), 6);
        // A window that moves in between is fitted, and so is the constant after it.
        fit(&[-0.0, 1.0], 1);
        fit(&[-0.0; 9], 1);
        assert_eq!(fits.get(), 8);
    }

    #[test]
    fn a_window_that_moves_is_always_fitted_and_a_failed_fit_is_recalled_as_failed() {
        let mut memo = FitMemo::default();
        let fits = Cell::new(0);
        let mut fit = |values: &[f64], result: Option<usize>| {
            memo.fit_or_recall(values, 0, || {
                fits.set(fits.get() + 1);
                result
            })
        };
        for _ in 0..3 {
            fit(&[1.0, 1.0, 1.5], Some(0));
        }
        assert_eq!(fits.get(), 3);
        assert_eq!(fit(&[4.0; 4], None), None);
        // Recalled: the fit (which would now say otherwise) is not run.
        assert_eq!(fit(&[4.0; 4], Some(1)), None);
        assert_eq!(fits.get(), 4);
        // An empty window is never taken for a constant one.
        fit(&[], None);
        fit(&[], None);
        assert_eq!(fits.get(), 6);
    }
}
