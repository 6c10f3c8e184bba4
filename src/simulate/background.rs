//! Background load: real utilisation traces mapped onto the simulated devices.
//!
//! Trace `i` (in the order the files and their series are given) loads device `i`, cycling when
//! there are more devices than traces. Each trace is shifted so its first point is the start of
//! the simulation (with `--seed N`, N > 0, each device starts at a pseudo-random point of its
//! trace instead, so seeds give different windows of the same traces), holds each value until
//! the next point, and wraps around at its end.

use std::path::PathBuf;

use crate::series::{load_series_counted, SeriesFormat};

use super::SimError;

/// The most load a background trace may put on a device, as a fraction of its capacity: ten
/// times over (a trace in percent read as fractions would claim a hundred times).
pub const MAX_LOAD: f64 = 10.0;

/// One trace: times in seconds from its first point, values as fractions of capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Where it came from (`file` or `file:machine`).
    pub name: String,
    times: Vec<f64>,
    values: Vec<f64>,
    period: f64,
}

impl Trace {
    /// A trace from `(seconds, fraction)` points in time order; `None` without points.
    /// Values outside `0..=MAX_LOAD` are clamped into it (see [`Trace::clamped`] for how
    /// many there were).
    pub fn new(name: String, points: &[(f64, f64)]) -> Option<Trace> {
        let first = points.first()?.0;
        let times: Vec<f64> = points.iter().map(|(t, _)| t - first).collect();
        let values: Vec<f64> = points
            .iter()
            .map(|(_, v)| {
                if v.is_finite() {
                    v.clamp(0.0, MAX_LOAD)
                } else {
                    0.0
                }
            })
            .collect();
        let last = times.last().copied().unwrap_or(0.0);
        // The step after the last point is the trace's typical step, so a wrapped trace keeps
        // its rhythm; a one-point trace is a constant.
        let step = if times.len() > 1 {
            (last / (times.len() - 1) as f64).max(1.0)
        } else {
            1.0
        };
        Some(Trace {
            name,
            times,
            values,
            period: last + step,
        })
    }

    /// How many of `points` [`Trace::new`] clamps: negative, non-finite or over `MAX_LOAD`.
    pub fn clamped(points: &[(f64, f64)]) -> usize {
        points
            .iter()
            .filter(|(_, v)| !(0.0..=MAX_LOAD).contains(v))
            .count()
    }

    fn locate(&self, t: f64) -> (usize, f64) {
        let phase = t.rem_euclid(self.period);
        let index = self
            .times
            .partition_point(|&x| x <= phase)
            .saturating_sub(1);
        (index, phase)
    }

    /// The value at `t` seconds into the trace.
    pub fn value(&self, t: f64) -> f64 {
        self.values.get(self.locate(t).0).copied().unwrap_or(0.0)
    }

    /// The first time after `t` at which the value may change.
    pub fn next_change(&self, t: f64) -> f64 {
        let (index, phase) = self.locate(t);
        let base = t - phase;
        match self.times.get(index + 1) {
            Some(next) => base + next,
            None => base + self.period,
        }
    }

    /// Mean over `[from, to)` seconds (the value at `from` when the window is empty).
    pub fn mean(&self, from: f64, to: f64) -> f64 {
        if to <= from {
            return self.value(from);
        }
        let mut t = from;
        let mut sum = 0.0;
        while t < to {
            let next = self.next_change(t).min(to).max(t + 1e-9);
            sum += self.value(t) * (next - t);
            t = next;
        }
        sum / (to - from)
    }
}

/// Which trace loads which device, and from where in it.
#[derive(Clone, Debug, Default)]
pub struct Background {
    traces: Vec<Trace>,
    offsets: Vec<f64>,
    devices: usize,
}

impl Background {
    /// No background load.
    pub fn none(devices: usize) -> Background {
        Background {
            traces: Vec::new(),
            offsets: vec![0.0; devices],
            devices,
        }
    }

    /// Reads every series of every file, as traces in the order given, with a note per file
    /// that lost rows or had values clamped (the caller says them: nothing is dropped silently).
    pub fn read_traces(
        files: &[PathBuf],
        format: SeriesFormat,
    ) -> Result<(Vec<Trace>, Vec<String>), SimError> {
        let mut traces = Vec::new();
        let mut notes = Vec::new();
        for path in files {
            let column = (format == SeriesFormat::Long).then_some("cpu");
            let (series, count) = load_series_counted(path, format, column)
                .map_err(|e| SimError::Background(e.to_string()))?;
            let file = path.display().to_string();
            notes.extend(count.note(&file));
            // Trace formats give percentages; the long format gives fractions.
            let scale = if format == SeriesFormat::Long {
                1.0
            } else {
                0.01
            };
            let mut clamped = 0;
            for s in series {
                let points: Vec<(f64, f64)> = s
                    .times
                    .iter()
                    .zip(&s.values)
                    .map(|(t, v)| (*t as f64 / 1000.0, v * scale))
                    .collect();
                clamped += Trace::clamped(&points);
                traces.extend(Trace::new(s.name, &points));
            }
            if clamped > 0 {
                notes.push(format!(
                    "{file}: {clamped} background values outside 0..={}% of a device were \
                     clamped into that range",
                    MAX_LOAD * 100.0
                ));
            }
        }
        if traces.is_empty() && !files.is_empty() {
            return Err(SimError::Background(
                "the background files hold no usable series".to_string(),
            ));
        }
        Ok((traces, notes))
    }

    /// Maps traces onto devices in order, cycling.
    pub fn from_traces(traces: Vec<Trace>, devices: usize, seed: u64) -> Background {
        let offsets = (0..devices)
            .map(|device| match traces.get(device % traces.len().max(1)) {
                Some(trace) if seed != 0 => {
                    let r = splitmix64(seed ^ (device as u64).wrapping_mul(0x9e37_79b9));
                    (r >> 11) as f64 / (1u64 << 53) as f64 * trace.period
                }
                _ => 0.0,
            })
            .collect();
        Background {
            traces,
            offsets,
            devices,
        }
    }

    /// Whether any device has a trace.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The trace and offset of a device.
    fn of(&self, device: usize) -> Option<(&Trace, f64)> {
        if device >= self.devices {
            return None;
        }
        let trace = self.traces.get(device % self.traces.len().max(1))?;
        Some((trace, self.offsets.get(device).copied().unwrap_or(0.0)))
    }

    /// The name of a device's trace.
    pub fn trace_name(&self, device: usize) -> Option<&str> {
        self.of(device).map(|(t, _)| t.name.as_str())
    }

    /// A device's background utilisation at simulation time `t` (seconds).
    pub fn value(&self, device: usize, t: f64) -> f64 {
        self.of(device)
            .map_or(0.0, |(trace, offset)| trace.value(t + offset))
    }

    /// When a device's background next changes after `t`, if it has any.
    pub fn next_change(&self, device: usize, t: f64) -> Option<f64> {
        self.of(device)
            .map(|(trace, offset)| trace.next_change(t + offset) - offset)
    }

    /// A device's mean background over `[from, to)`.
    pub fn mean(&self, device: usize, from: f64, to: f64) -> f64 {
        self.of(device).map_or(0.0, |(trace, offset)| {
            trace.mean(from + offset, to + offset)
        })
    }
}

/// A small, well-mixed hash for seeding (Steele, Lea and Flood's SplitMix64).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_values_and_wraps() {
        let trace = Trace::new("t".into(), &[(100.0, 0.1), (110.0, 0.5), (120.0, 0.2)])
            .expect("valid trace");
        assert_eq!(trace.value(0.0), 0.1);
        assert_eq!(trace.value(15.0), 0.5);
        assert_eq!(trace.value(25.0), 0.2);
        assert_eq!(trace.value(30.0), 0.1);
        assert_eq!(trace.next_change(0.0), 10.0);
        assert_eq!(trace.next_change(25.0), 30.0);
        assert!((trace.mean(0.0, 20.0) - 0.3).abs() < 1e-9);
    }

    #[test]
    fn values_out_of_range_are_clamped_and_counted() {
        let points = [(0.0, -0.5), (1.0, 0.5), (2.0, 12.0), (3.0, f64::NAN)];
        assert_eq!(Trace::clamped(&points), 3);
        let trace = Trace::new("t".into(), &points).expect("valid trace");
        assert_eq!(trace.value(0.5), 0.0);
        assert_eq!(trace.value(2.5), MAX_LOAD);
        assert_eq!(trace.value(3.5), 0.0);
    }

    #[test]
    fn traces_cycle_over_devices() {
        let a = Trace::new("a".into(), &[(0.0, 0.1)]).expect("valid trace");
        let b = Trace::new("b".into(), &[(0.0, 0.2)]).expect("valid trace");
        let bg = Background::from_traces(vec![a, b], 3, 0);
        assert_eq!(bg.value(0, 5.0), 0.1);
        assert_eq!(bg.value(1, 5.0), 0.2);
        assert_eq!(bg.value(2, 5.0), 0.1);
        assert_eq!(bg.value(3, 5.0), 0.0);
    }
}
