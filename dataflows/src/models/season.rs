//! Detection of a seasonal period in a window of a series.

/// Periods tried when none is configured, in steps of 5-minute data: a day, 12, 8, 4, 2 and 1
/// hours ([`season_candidates`] of 300,000 ms).
pub const DEFAULT_SEASON_CANDIDATES: [usize; 6] = [288, 144, 96, 48, 24, 12];

/// The periods sought, in hours, longest first.
const SEASON_HOURS: [f64; 6] = [24.0, 12.0, 8.0, 4.0, 2.0, 1.0];

/// The most values a series keeps so that a season can be found (three cycles are needed): three
/// days of one-minute samples with 6% to spare for the error of an estimated interval, 36 KiB a
/// series. Longer seasons are not sought.
pub const MAX_SEASON_WINDOW: usize = 4608;

/// The periods sought in a series sampled every `interval_ms`: a day, 12, 8, 4, 2 and 1 hours,
/// in steps of it (rounded), as [`detect_period`] takes them. A period shorter than 2 steps, or
/// whose three cycles would not fit in [`MAX_SEASON_WINDOW`], is 0, which is never chosen.
pub fn season_candidates(interval_ms: f64) -> [usize; 6] {
    SEASON_HOURS.map(|hours| {
        let steps = (hours * 3_600_000.0 / interval_ms).round();
        if steps >= 2.0 && 3.0 * steps <= MAX_SEASON_WINDOW as f64 {
            steps as usize
        } else {
            0
        }
    })
}

/// The history a seasonal model needs to try `candidates`: three cycles of the longest, and at
/// least `window`.
pub(crate) fn season_window(candidates: &[usize], window: usize) -> usize {
    window.max(3 * candidates.iter().copied().max().unwrap_or(0))
}

/// Adjusted seasonal strength a period needs to be used. Below it, the profile explains little
/// more than noise would, and a seasonal model only adds variance.
const MIN_STRENGTH: f64 = 0.25;

/// The candidate period (at least 2, with three whole cycles in `values`) whose seasonal profile
/// explains the most variance, if it explains enough; of near ties, the shortest.
///
/// For each period the series is detrended by a moving average over one period (so trends and
/// level shifts do not pass for seasonality), the profile is the mean by phase, and the strength
/// is 1 - var(remainder) / var(detrended), corrected for what a profile fitted to pure noise
/// explains.
pub fn detect_period(values: &[f64], candidates: &[usize]) -> Option<usize> {
    let prefix = prefix_sums(values);
    let scored: Vec<(usize, f64)> = candidates
        .iter()
        .filter_map(|&period| Some((period, strength(values, &prefix, period)?)))
        .collect();
    let strongest = scored.iter().map(|&(_, s)| s).fold(0.0, f64::max);
    if strongest < MIN_STRENGTH {
        return None;
    }
    // Every multiple of the true period fits as well as the period itself: take the shortest
    // period that comes close to the strongest.
    scored
        .into_iter()
        .filter(|&(_, s)| s >= strongest - HARMONIC_SLACK)
        .map(|(period, _)| period)
        .min()
}

fn prefix_sums(values: &[f64]) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(values.len() + 1);
    let mut total = 0.0;
    prefix.push(total);
    for y in values {
        total += y;
        prefix.push(total);
    }
    prefix
}

/// How much weaker than the strongest candidate a shorter period may be and still be chosen.
const HARMONIC_SLACK: f64 = 0.05;

/// The corrected seasonal strength of `period` in `values`, in [0, 1]; `None` with fewer than
/// three cycles or no variation. `prefix` holds the prefix sums of `values`.
fn strength(values: &[f64], prefix: &[f64], period: usize) -> Option<f64> {
    let n = values.len();
    if period < 2 || n < 3 * period {
        return None;
    }
    let half = period / 2;
    let points = half..=n - (period - half);
    // A moving average over one period removes any trend and level; what is left at each point
    // is season plus noise. Two passes over it rather than storing it: this runs at refits.
    let detrended = |i: usize| {
        let start = i - half;
        values[i] - (prefix[start + period] - prefix[start]) / period as f64
    };
    let count = points.clone().count() as f64;
    let mut sums = vec![0.0; period];
    let mut counts = vec![0.0f64; period];
    let mut overall = 0.0;
    for i in points.clone() {
        let d = detrended(i);
        overall += d;
        sums[i % period] += d;
        counts[i % period] += 1.0;
    }
    overall /= count;
    let profile: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| if *c > 0.0 { s / c - overall } else { 0.0 })
        .collect();
    let (mut total, mut remainder) = (0.0, 0.0);
    for i in points {
        let centred = detrended(i) - overall;
        total += centred * centred;
        let rest = centred - profile[i % period];
        remainder += rest * rest;
    }
    // Relative to the values' scale, so float noise on a constant or linear series is no season.
    let scale = values.iter().map(|y| y * y).sum::<f64>() / n as f64;
    let negligible = 1e-18 * count * scale.max(f64::MIN_POSITIVE);
    if total.is_nan() || total <= negligible || !total.is_finite() {
        return None;
    }
    let raw = 1.0 - remainder / total;
    // A profile fitted to pure noise explains one part in (points per phase).
    let noise = period as f64 / count;
    Some(((raw - noise) / (1.0 - noise)).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{seasonal, Noise};
    use super::*;

    #[test]
    fn finds_the_period_of_a_noisy_seasonal_series() {
        let mut noise = Noise::new(9);
        let values: Vec<f64> = (0..2016)
            .map(|t| seasonal(t, 288) + 3.0 * noise.next())
            .collect();
        assert_eq!(
            detect_period(&values, &DEFAULT_SEASON_CANDIDATES),
            Some(288)
        );
        let short: Vec<f64> = (0..200).map(|t| seasonal(t, 24)).collect();
        assert_eq!(detect_period(&short, &DEFAULT_SEASON_CANDIDATES), Some(24));
    }

    #[test]
    fn candidates_are_hours_in_steps_of_the_interval_within_the_window_cap() {
        assert_eq!(season_candidates(300_000.0), DEFAULT_SEASON_CANDIDATES);
        // One-minute samples: a day is 1,440 steps, and three of them just fit.
        assert_eq!(season_candidates(60_000.0), [1440, 720, 480, 240, 120, 60]);
        assert_eq!(season_window(&season_candidates(60_000.0), 1008), 4320);
        // Ten-second samples: a day and 12 hours would need more than the cap.
        assert_eq!(season_candidates(10_000.0), [0, 0, 0, 1440, 720, 360]);
        // Hourly samples: only the day is 2 steps or more.
        assert_eq!(season_candidates(3_600_000.0), [24, 12, 8, 4, 2, 0]);
        // Five-minute data keeps its window: three days of 288 fit in 1,008.
        assert_eq!(season_window(&DEFAULT_SEASON_CANDIDATES, 1008), 1008);
        assert_eq!(season_window(&[0; 6], 1008), 1008);
    }

    #[test]
    fn a_daily_season_of_one_minute_samples_is_found_among_its_candidates() {
        let mut noise = Noise::new(10);
        let values: Vec<f64> = (0..4320)
            .map(|t| seasonal(t, 1440) + 3.0 * noise.next())
            .collect();
        assert_eq!(
            detect_period(&values, &season_candidates(60_000.0)),
            Some(1440)
        );
        // The fixed 5-minute candidates cannot see it.
        assert_ne!(
            detect_period(&values, &DEFAULT_SEASON_CANDIDATES),
            Some(1440)
        );
    }

    #[test]
    fn noise_steps_and_constants_have_no_period() {
        let mut noise = Noise::new(4);
        let white: Vec<f64> = (0..2016).map(|_| noise.next()).collect();
        assert_eq!(detect_period(&white, &DEFAULT_SEASON_CANDIDATES), None);
        let steps: Vec<f64> = (0..2016)
            .map(|t| if t < 1000 { 1.0 } else { 5.0 } + 0.1 * noise.next())
            .collect();
        assert_eq!(detect_period(&steps, &DEFAULT_SEASON_CANDIDATES), None);
        assert_eq!(detect_period(&[2.0; 900], &DEFAULT_SEASON_CANDIDATES), None);
        assert_eq!(detect_period(&[], &DEFAULT_SEASON_CANDIDATES), None);
    }
}
