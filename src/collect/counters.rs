//! Monotonic counters to increases: the one rule that turns every cumulative source (the
//! kernel's byte counts through `sysinfo`, node_exporter's `_total` series) into rates.

use std::collections::BTreeMap;

/// Counter readings at one instant, by series (a CPU and mode, a disk, an interface...).
pub type CounterReadings = BTreeMap<String, f64>;

/// The increase of each series from `previous` to `current`. A counter that went down was reset
/// (a reboot, an exporter restart, a re-plugged interface) and counted up from zero again, so its
/// increase is its current value: Prometheus' own `rate()` rule. A series missing from either
/// reading, or with a non-finite or negative value, has no increase.
pub fn increases(previous: &CounterReadings, current: &CounterReadings) -> CounterReadings {
    current
        .iter()
        .filter_map(|(series, &now)| {
            let &before = previous.get(series)?;
            let usable = |value: f64| value.is_finite() && value >= 0.0;
            if !usable(before) || !usable(now) {
                return None;
            }
            let increase = if now >= before { now - before } else { now };
            Some((series.clone(), increase))
        })
        .collect()
}

/// The sum of the increases, `None` when no series could be compared.
pub fn total_increase(previous: &CounterReadings, current: &CounterReadings) -> Option<f64> {
    let increases = increases(previous, current);
    (!increases.is_empty()).then(|| increases.values().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(pairs: &[(&str, f64)]) -> CounterReadings {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn increase_per_series_with_resets_and_gaps() {
        let before = readings(&[("a", 10.0), ("b", 100.0), ("gone", 5.0), ("nan", 1.0)]);
        let after = readings(&[("a", 15.0), ("b", 3.0), ("new", 7.0), ("nan", f64::NAN)]);
        let got = increases(&before, &after);
        // b was reset: it counted 3 since its restart.
        assert_eq!(got, readings(&[("a", 5.0), ("b", 3.0)]));
        assert_eq!(total_increase(&before, &after), Some(8.0));
        assert_eq!(total_increase(&before, &readings(&[("other", 1.0)])), None);
    }
}
