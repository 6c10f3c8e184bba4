//! A bounded record of one quantity over event time, for drawing: at most [`BUCKETS`] buckets
//! of equal width, each keeping its first, lowest, highest and last point (the M4 reduction
//! that [`crate::plot::Chart::line`] applies per pixel column). When a point falls past the
//! last bucket, neighbouring buckets merge and the width doubles, so a run of any length keeps
//! a few kilobytes per line and still shows every spike.

use augur_dataflows::types::Time;

/// Buckets kept at most: over half a pixel column each on a 900-pixel chart.
pub const BUCKETS: i64 = 512;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    time: Time,
    value: f64,
    /// Its place among the trace's points: ties in time keep the order they came in.
    seq: u64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    index: i64,
    first: Point,
    low: Point,
    high: Point,
    last: Point,
}

impl Bucket {
    fn of(index: i64, point: Point) -> Bucket {
        Bucket {
            index,
            first: point,
            low: point,
            high: point,
            last: point,
        }
    }

    fn take(&mut self, point: Point) {
        if point.value < self.low.value {
            self.low = point;
        }
        if point.value > self.high.value {
            self.high = point;
        }
        self.last = point;
    }

    /// `self` followed by `later`, as one bucket.
    fn merged(self, later: Bucket, index: i64) -> Bucket {
        Bucket {
            index,
            first: self.first,
            low: if later.low.value < self.low.value {
                later.low
            } else {
                self.low
            },
            high: if later.high.value > self.high.value {
                later.high
            } else {
                self.high
            },
            last: later.last,
        }
    }
}

/// One quantity's points over time, reduced as they come (see the module's note).
#[derive(Clone, Debug, Default)]
pub struct Trace {
    origin: Time,
    /// Bucket width in milliseconds, a power of two.
    width: i64,
    buckets: Vec<Bucket>,
    pushed: u64,
}

impl Trace {
    /// Takes `value` at `time`. Times should not go backwards (a run's epochs do not); one
    /// that does joins the newest bucket. Non-finite values are not drawn and are skipped.
    pub fn push(&mut self, time: Time, value: f64) {
        if !value.is_finite() {
            return;
        }
        let point = Point {
            time,
            value,
            seq: self.pushed,
        };
        self.pushed += 1;
        if self.buckets.is_empty() {
            self.origin = time;
            self.width = 1;
            self.buckets.push(Bucket::of(0, point));
            return;
        }
        let mut index = self.index_of(time);
        while index >= BUCKETS {
            self.coarsen();
            index = self.index_of(time);
        }
        match self.buckets.last_mut() {
            Some(last) if last.index >= index => last.take(point),
            _ => self.buckets.push(Bucket::of(index, point)),
        }
    }

    fn index_of(&self, time: Time) -> i64 {
        let offset = (i128::from(time) - i128::from(self.origin)) / i128::from(self.width);
        offset.clamp(0, i128::from(i64::MAX)) as i64
    }

    /// Doubles the width, merging each pair of buckets that now share one.
    fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let mut merged: Vec<Bucket> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for bucket in self.buckets.drain(..) {
            let index = bucket.index / 2;
            match merged.last_mut() {
                Some(last) if last.index == index => *last = last.merged(bucket, index),
                _ => merged.push(Bucket { index, ..bucket }),
            }
        }
        self.buckets = merged;
    }

    /// The kept points in time order (at most four per bucket), as (time, value).
    pub fn points(&self) -> Vec<(Time, f64)> {
        let mut points = Vec::with_capacity(self.buckets.len() * 4);
        for bucket in &self.buckets {
            let mut four = [bucket.first, bucket.low, bucket.high, bucket.last];
            four.sort_by_key(|point| point.seq);
            for (index, point) in four.iter().enumerate() {
                if index == 0 || four[index - 1].seq != point.seq {
                    points.push((point.time, point.value));
                }
            }
        }
        points
    }

    /// Per bucket: its first and last times and its lowest and highest values. Two traces
    /// given values at the same times have the same buckets, so these pair up by position.
    pub fn extents(&self) -> impl Iterator<Item = (Time, Time, f64, f64)> + '_ {
        self.buckets.iter().map(|bucket| {
            (
                bucket.first.time,
                bucket.last.time,
                bucket.low.value,
                bucket.high.value,
            )
        })
    }

    /// The newest value, if any.
    pub fn last(&self) -> Option<f64> {
        self.buckets.last().map(|bucket| bucket.last.value)
    }

    /// The largest value, if any.
    pub fn highest(&self) -> Option<f64> {
        self.buckets
            .iter()
            .map(|bucket| bucket.high.value)
            .reduce(f64::max)
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The buckets' highest values with their times: where a trace of scores crossed a line.
    pub fn highs(&self) -> impl Iterator<Item = (Time, f64)> + '_ {
        self.buckets
            .iter()
            .map(|bucket| (bucket.high.time, bucket.high.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_trace_keeps_every_point() {
        let mut trace = Trace::default();
        for t in 0..100 {
            trace.push(t * 10, t as f64);
        }
        let points = trace.points();
        assert_eq!(points.len(), 100);
        assert_eq!(points[0], (0, 0.0));
        assert_eq!(points[99], (990, 99.0));
    }

    #[test]
    fn a_long_trace_is_bounded_and_keeps_its_extremes_and_ends() {
        let mut trace = Trace::default();
        let n: i64 = 1_000_000;
        for t in 0..n {
            // Noise with one spike up and one down.
            let value = match t {
                333_333 => 50.0,
                777_777 => -50.0,
                _ => ((t * 7919) % 101) as f64 / 100.0,
            };
            trace.push(t * 1000, value);
        }
        let points = trace.points();
        assert!(points.len() <= 4 * BUCKETS as usize, "{}", points.len());
        assert!(points.len() >= 2 * BUCKETS as usize / 2);
        assert!(points.contains(&(333_333_000, 50.0)));
        assert!(points.contains(&(777_777_000, -50.0)));
        assert_eq!(points[0].0, 0);
        assert_eq!(points.last().map(|p| p.0), Some((n - 1) * 1000));
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        assert_eq!(trace.highest(), Some(50.0));
        assert_eq!(trace.last(), Some(((n - 1) * 7919 % 101) as f64 / 100.0));
    }

    #[test]
    fn extreme_times_and_values_do_not_overflow() {
        let mut trace = Trace::default();
        trace.push(i64::MIN, 1.0);
        trace.push(0, f64::NAN);
        trace.push(0, 2.0);
        trace.push(i64::MAX, f64::MAX);
        trace.push(i64::MAX, -f64::MAX);
        let points = trace.points();
        assert!(points.len() <= 4 * BUCKETS as usize);
        assert_eq!(points[0], (i64::MIN, 1.0));
        assert_eq!(points.last(), Some(&(i64::MAX, -f64::MAX)));
        assert_eq!(trace.highest(), Some(f64::MAX));
    }

    #[test]
    fn a_time_going_back_joins_the_newest_bucket() {
        let mut trace = Trace::default();
        trace.push(100, 1.0);
        trace.push(200, 2.0);
        trace.push(150, 3.0);
        assert_eq!(trace.last(), Some(3.0));
        assert_eq!(trace.highest(), Some(3.0));
    }
}
