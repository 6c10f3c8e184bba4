//! The median of the last few samples: a level that does not follow a lone spike.
//!
//! On utilisation that idles near zero between rare bursts (many Bitbrains VMs), every smoother
//! chases a one-sample spike and is wrong twice, on the spike's next value and on the drop back;
//! the recent median stays put until a change lasts more than half its window.

use serde::{Deserialize, Serialize};

use super::{History, Member};

/// Samples the median is taken over: odd, so it is always one of them.
const WINDOW: usize = 5;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Median {
    level: f64,
}

impl Median {
    pub(crate) fn new() -> Median {
        Median::default()
    }
}

/// `x`'s place in `f64::total_cmp`'s order as an integer (the same transform `total_cmp`
/// makes), so that comparisons need no branches. Its own inverse.
fn total_key(x: i64) -> i64 {
    x ^ (((x >> 63) as u64) >> 1) as i64
}

/// The median of five in [`f64::total_cmp`]'s order, the value `sort_by(total_cmp)` puts in
/// the middle, by a sorting network on integer keys: sorting at every sample was a tenth of
/// an `auto` update.
fn median_of_five(values: [f64; WINDOW]) -> f64 {
    let mut k = values.map(|v| total_key(v.to_bits() as i64));
    let mut exchange = |a: usize, b: usize| {
        let (low, high) = (k[a].min(k[b]), k[a].max(k[b]));
        k[a] = low;
        k[b] = high;
    };
    // Knuth's 9-comparator network for five.
    for (a, b) in [
        (0, 3),
        (1, 4),
        (0, 2),
        (1, 3),
        (0, 1),
        (2, 4),
        (1, 2),
        (3, 4),
        (2, 3),
    ] {
        exchange(a, b);
    }
    f64::from_bits(total_key(k[2]) as u64)
}

impl Member for Median {
    fn observe(&mut self, value: f64, history: &History) {
        // `history` does not hold `value` yet: the window is it and the newest kept before it.
        let kept = history.len.min(WINDOW - 1);
        let mut window = [0.0; WINDOW];
        window[0] = value;
        for (back, slot) in window.iter_mut().skip(1).take(kept).enumerate() {
            *slot = history.lag(back);
        }
        self.level = if kept + 1 == WINDOW {
            median_of_five(window)
        } else {
            let window = &mut window[..=kept];
            window.sort_by(f64::total_cmp);
            window[window.len() / 2]
        };
    }

    fn refit(&mut self, _values: &[f64]) {}

    fn forecast(&self, _h: usize, _history: &History) -> f64 {
        self.level
    }

    /// The forecast is flat, so its mean over any horizon is the level itself: summing h
    /// copies of it (the default) only added rounding, 60 additions per sample at 10-second
    /// samples and a 10-minute horizon.
    fn mean_over(&self, _h: usize, _history: &History) -> f64 {
        self.level
    }

    fn variance_factor(&self, h: usize) -> f64 {
        // A flat forecast of a level that wanders: the error grows like a random walk's.
        h.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Noise;
    use super::super::{ModelConfig, ModelKind, SeriesModel};
    use super::{median_of_five, WINDOW};

    #[test]
    fn the_network_median_is_the_sorted_middle_to_the_bit() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e-310,
            -1e-310,
            f64::MAX,
            f64::MIN,
            0.5,
        ];
        let mut noise = Noise::new(5);
        for round in 0..20_000 {
            let window: [f64; WINDOW] = std::array::from_fn(|_| {
                let pick = ((noise.next() + 1.0) * 8.0) as usize;
                if round % 2 == 0 && pick < specials.len() {
                    specials[pick]
                } else {
                    (noise.next() * 4.0).round() / 2.0
                }
            });
            let mut sorted = window;
            sorted.sort_by(f64::total_cmp);
            assert_eq!(
                median_of_five(window).to_bits(),
                sorted[2].to_bits(),
                "{window:?}"
            );
        }
    }

    #[test]
    fn a_lone_spike_does_not_move_the_median() {
        let mut model = SeriesModel::new(&ModelConfig::new(ModelKind::Median));
        for _ in 0..20 {
            model.update(0.0);
        }
        model.update(5.0);
        assert_eq!(model.forecast(1), 0.0);
        model.update(7.0);
        assert_eq!(model.forecast(1), 0.0);
        for _ in 0..3 {
            model.update(6.0);
        }
        assert_eq!(model.forecast(1), 6.0, "a change that lasts takes over");
    }
}
