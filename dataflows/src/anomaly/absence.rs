//! Silence where a series usually bursts: the anomaly that leaves no residual.
//!
//! A series whose load comes in bursts (a batch job every few hours) can fail by *stopping*:
//! its samples then sit at the quiet level, every residual is ordinary, and the residual
//! detectors see nothing. This keeps the rhythm instead: the time since the last *burst* (a
//! residual of at least `burst_scales` scales) and the longest silence between bursts on
//! record. A silence that outlasts the record by `absence_ratio` is new, as a residual that
//! outgrows the recent maximum is for the record detector: an irregular series has long
//! silences on record and alarms only when it beats them, and a series that never bursts has
//! no rhythm and never alarms.
//!
//! Bursts closer than `burst_episode_steps` are one episode (the samples of one burst are no
//! silence of each other). The record may decay with a half-life in steps, so that a job that
//! has sped up is held to its new rhythm; the detector is armed only once
//! `absence_min_silences` silences have been measured, because with fewer the longest on
//! record says little about the rhythm; and a silence alarms at most once. State is a handful of numbers per series; a sample costs a compare
//! and, while a silence outlasts the record, a division.

use serde::{Deserialize, Serialize};

use crate::types::Time;

use super::AnomalyParams;

/// The rhythm of one series' bursts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Absence {
    /// Time of the latest burst sample; `None` before the first or after a sampling gap.
    last_burst: Option<Time>,
    /// Silences (gaps between episodes) measured so far, counted up to `absence_min_silences`.
    silences: u32,
    /// The longest silence on record, in milliseconds, decayed to the latest sample.
    longest_ms: f64,
    /// Whether the current silence has already alarmed.
    reported: bool,
}

impl Absence {
    /// A series with no bursts seen.
    pub fn new() -> Absence {
        Absence::default()
    }

    /// Takes the sample at `now`: `burst` when its residual is a burst, `step_ms` the nominal
    /// step, `decay` the record's decay over this sample's gap. Returns the silence's score:
    /// 0 until the silence outlasts the record, 0.5 when it reaches `absence_ratio` times it,
    /// 1 at `2 absence_ratio − 1` times; 0 once this silence has alarmed.
    pub fn update(
        &mut self,
        now: Time,
        burst: bool,
        step_ms: f64,
        decay: f64,
        p: &AnomalyParams,
    ) -> f64 {
        self.longest_ms *= decay;
        let Some(last) = self.last_burst else {
            if burst {
                self.last_burst = Some(now);
                self.reported = false;
            }
            return 0.0;
        };
        let silence = now.saturating_sub(last).max(0) as f64;
        if burst {
            if silence > p.burst_episode_steps * step_ms {
                self.longest_ms = self.longest_ms.max(silence);
                self.silences = (self.silences + 1).min(p.absence_min_silences);
            }
            self.last_burst = Some(now);
            self.reported = false;
            return 0.0;
        }
        let ratio = p.absence_ratio;
        if self.reported
            || self.silences < p.absence_min_silences
            || silence <= self.longest_ms
            || ratio <= 1.0
        {
            return 0.0;
        }
        // NaN (a record decayed to 0 over an absurd gap) reads as no score.
        let score = 0.5 * (silence / self.longest_ms - 1.0) / (ratio - 1.0);
        if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        }
    }

    /// The current silence has alarmed: it scores 0 until the next burst.
    pub fn report(&mut self) {
        self.reported = true;
    }

    /// Samples stopped for longer than the scorer trusts: whether the series burst meanwhile is
    /// unknown, so the current silence is forgotten (the record is kept).
    pub fn restart(&mut self) {
        self.last_burst = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Time = 300_000;

    /// Feeds `bursts` (steps at which a sample bursts) and quiet samples in between, every step
    /// from 0 to `end`, and returns the steps whose score reaches 0.5, reporting each as the
    /// scorer does.
    fn alarms(bursts: &[i64], end: i64, p: &AnomalyParams) -> Vec<i64> {
        let mut absence = Absence::new();
        let mut found = Vec::new();
        for step in 0..end {
            let burst = bursts.contains(&step);
            if absence.update(step * STEP, burst, STEP as f64, 1.0, p) >= 0.5 {
                absence.report();
                found.push(step);
            }
        }
        found
    }

    #[test]
    fn rhythm_that_stops_alarms_once_at_the_ratio() {
        let p = AnomalyParams::default();
        // A burst every 36 steps (3 hours), then none for a day: the silence reaches 1.25 times
        // the longest on record (36 steps) 45 steps after the last burst, and alarms only then.
        let bursts: Vec<i64> = (0..10).map(|k| k * 36).collect();
        assert_eq!(alarms(&bursts, 9 * 36 + 288, &p), vec![9 * 36 + 45]);
        // The score is exactly the ratio's line: 0.5 at 1.25 times, 1 at 1.5 times.
        let mut absence = Absence::new();
        for k in 0..6 {
            absence.update(k * 36 * STEP, true, STEP as f64, 1.0, &p);
        }
        let last = 5 * 36;
        let at = |a: &mut Absence, s: i64| a.update((last + s) * STEP, false, STEP as f64, 1.0, &p);
        assert_eq!(at(&mut absence, 36), 0.0);
        assert_eq!(at(&mut absence, 45), 0.5);
        assert_eq!(at(&mut absence, 54), 1.0);
    }

    #[test]
    fn an_episode_of_bursts_is_one_burst() {
        // Three burst samples in a row every 36 steps: the silences run from each episode's
        // last sample to the next one's first (34 steps), so the alarm comes at 1.25 · 34 = 42.5
        // steps, i.e. at the 43rd.
        let bursts: Vec<i64> = (0..8)
            .flat_map(|k| [k * 36, k * 36 + 1, k * 36 + 2])
            .collect();
        let last = 7 * 36 + 2;
        assert_eq!(
            alarms(&bursts, last + 200, &AnomalyParams::default()),
            vec![last + 43]
        );
    }

    #[test]
    fn irregular_rhythm_alarms_only_beyond_its_longest_silence() {
        // Gaps of 13 to 96 steps in no order, the longest among the first four: no silence
        // after it outlasts 96 steps by a quarter, so nothing alarms, for as long as the
        // pattern goes on.
        let gaps = [40, 13, 96, 25, 70, 18, 88, 31, 76, 50];
        let mut bursts = vec![0];
        for k in 0..50 {
            bursts.push(bursts[k] + gaps[k % gaps.len()]);
        }
        let end = bursts[bursts.len() - 1];
        assert_eq!(alarms(&bursts, end, &AnomalyParams::default()), vec![]);
        // And it alarms when the pattern stops, at 1.25 · 96 = 120 steps.
        assert_eq!(
            alarms(&bursts, end + 300, &AnomalyParams::default()),
            vec![end + 120]
        );
    }

    #[test]
    fn no_bursts_no_alarm_and_too_few_silences_no_alarm() {
        let p = AnomalyParams::default();
        assert_eq!(alarms(&[], 10_000, &p), vec![]);
        // Four bursts measure three silences: the rhythm is not known yet (warm-up).
        assert_eq!(alarms(&[0, 36, 72, 108], 10_000, &p), vec![]);
        // A fifth burst measures the fourth.
        assert_eq!(alarms(&[0, 36, 72, 108, 144], 10_000, &p), vec![144 + 45]);
        // A ratio of 1 turns the detector off.
        let off = AnomalyParams {
            absence_ratio: 1.0,
            ..p
        };
        assert_eq!(alarms(&[0, 36, 72, 108, 144], 10_000, &off), vec![]);
    }

    #[test]
    fn a_burst_rearms_and_a_sampling_gap_forgets_the_silence() {
        let p = AnomalyParams::default();
        // Two long silences, each alarming once: after the first alarm, a burst at 300 starts
        // a new silence. The record is now 300 − 144 = 156 steps, so the next alarm is at
        // 300 + 195.
        assert_eq!(
            alarms(&[0, 36, 72, 108, 144, 300], 1000, &p),
            vec![144 + 45, 300 + 195]
        );
        let mut absence = Absence::new();
        for k in 0..5 {
            absence.update(k * 36 * STEP, true, STEP as f64, 1.0, &p);
        }
        absence.restart();
        for s in 0..1000 {
            assert_eq!(
                absence.update((144 + s) * STEP, false, STEP as f64, 1.0, &p),
                0.0
            );
        }
    }

    #[test]
    fn the_record_fades_with_its_decay() {
        // With the record halved by decay, the same silence scores as if the rhythm were twice
        // as fast.
        let p = AnomalyParams::default();
        let mut absence = Absence::new();
        for k in 0..5 {
            absence.update(k * 36 * STEP, true, STEP as f64, 1.0, &p);
        }
        let score = absence.update((144 + 23) * STEP, false, STEP as f64, 0.5, &p);
        // 23 steps over a record of 18: 0.5 · (23/18 − 1) / 0.25.
        assert!((score - 2.0 * (23.0 / 18.0 - 1.0)).abs() < 1e-12, "{score}");
    }
}
