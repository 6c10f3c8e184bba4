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

impl Member for Median {
    fn observe(&mut self, value: f64, history: &History) {
        // `history` does not hold `value` yet: the window is it and the newest kept before it.
        let kept = history.len.min(WINDOW - 1);
        let mut window = [0.0; WINDOW];
        window[0] = value;
        for (back, slot) in window.iter_mut().skip(1).take(kept).enumerate() {
            *slot = history.lag(back);
        }
        let window = &mut window[..=kept];
        window.sort_by(f64::total_cmp);
        self.level = window[window.len() / 2];
    }

    fn refit(&mut self, _values: &[f64]) {}

    fn forecast(&self, _h: usize, _history: &History) -> f64 {
        self.level
    }

    fn variance_factor(&self, h: usize) -> f64 {
        // A flat forecast of a level that wanders: the error grows like a random walk's.
        h.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ModelConfig, ModelKind, SeriesModel};

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
