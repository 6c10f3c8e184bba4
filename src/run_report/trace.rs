//! Bounded records of quantities over event time, for drawing: at most [`BUCKETS`] buckets of
//! equal width, each summarising the values that fell in it. When a value falls past the last
//! bucket, neighbouring buckets merge and the width doubles, so a run of any length keeps a few
//! kilobytes per line and still shows every spike. A [`Trace`] keeps each bucket's first,
//! lowest, highest and last point (the M4 reduction that [`crate::plot::Chart::line`] applies
//! per pixel column); a [`Band`] only its time span and its lowest and highest values, all a
//! filled band or a row of alarm ticks needs.

use augur_dataflows::types::Time;

/// Buckets kept at most: over half a pixel column each on a 900-pixel chart.
pub const BUCKETS: i64 = 512;

/// What a bucket keeps of the values that fell in it.
pub trait Summary: Copy {
    /// What one push gives.
    type Value: Copy;
    /// A bucket of one value.
    fn of(time: Time, value: Self::Value, seq: u64) -> Self;
    /// Takes one more value, later than the ones taken.
    fn take(&mut self, time: Time, value: Self::Value, seq: u64);
    /// `self` followed by `later`, as one bucket.
    fn merged(self, later: Self) -> Self;
    /// Whether a value is drawable (finite).
    fn finite(value: Self::Value) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    time: Time,
    value: f64,
    /// Its place among the trace's points: ties in time keep the order they came in.
    seq: u64,
}

/// A line's bucket: its first, lowest, highest and last points.
#[derive(Clone, Copy, Debug)]
pub struct M4 {
    first: Point,
    low: Point,
    high: Point,
    last: Point,
}

impl Summary for M4 {
    type Value = f64;

    fn of(time: Time, value: f64, seq: u64) -> M4 {
        let point = Point { time, value, seq };
        M4 {
            first: point,
            low: point,
            high: point,
            last: point,
        }
    }

    fn take(&mut self, time: Time, value: f64, seq: u64) {
        let point = Point { time, value, seq };
        if value < self.low.value {
            self.low = point;
        }
        if value > self.high.value {
            self.high = point;
        }
        self.last = point;
    }

    fn merged(self, later: M4) -> M4 {
        M4 {
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

    fn finite(value: f64) -> bool {
        value.is_finite()
    }
}

/// A band's bucket: its first and last times, its lowest low and highest high, and the high's
/// time (where an alarm is ticked).
#[derive(Clone, Copy, Debug)]
pub struct Extent {
    from: Time,
    to: Time,
    low: f64,
    high: f64,
    high_at: Time,
    last: (f64, f64),
}

impl Summary for Extent {
    type Value = (f64, f64);

    fn of(time: Time, (low, high): (f64, f64), _seq: u64) -> Extent {
        Extent {
            from: time,
            to: time,
            low,
            high,
            high_at: time,
            last: (low, high),
        }
    }

    fn take(&mut self, time: Time, (low, high): (f64, f64), _seq: u64) {
        self.to = time;
        self.low = self.low.min(low);
        if high > self.high {
            self.high = high;
            self.high_at = time;
        }
        self.last = (low, high);
    }

    fn merged(self, later: Extent) -> Extent {
        let (high, high_at) = if later.high > self.high {
            (later.high, later.high_at)
        } else {
            (self.high, self.high_at)
        };
        Extent {
            from: self.from,
            to: later.to,
            low: self.low.min(later.low),
            high,
            high_at,
            last: later.last,
        }
    }

    fn finite((low, high): (f64, f64)) -> bool {
        low.is_finite() && high.is_finite()
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket<S> {
    index: i64,
    summary: S,
}

/// Values over time, reduced as they come (see the module's note).
#[derive(Clone, Debug)]
pub struct Timeline<S> {
    origin: Time,
    /// Bucket width in milliseconds, a power of two.
    width: i64,
    buckets: Vec<Bucket<S>>,
    pushed: u64,
}

impl<S> Default for Timeline<S> {
    fn default() -> Self {
        Timeline {
            origin: 0,
            width: 1,
            buckets: Vec::new(),
            pushed: 0,
        }
    }
}

/// A line: each bucket's first, lowest, highest and last points.
pub type Trace = Timeline<M4>;
/// A band between a low and a high value over time.
pub type Band = Timeline<Extent>;

impl<S: Summary> Timeline<S> {
    /// Takes `value` at `time`. Times should not go backwards (a run's epochs do not); one
    /// that does joins the newest bucket. Non-finite values are not drawn and are skipped.
    pub fn push(&mut self, time: Time, value: S::Value) {
        if !S::finite(value) {
            return;
        }
        let seq = self.pushed;
        self.pushed += 1;
        if self.buckets.is_empty() {
            self.origin = time;
            self.width = 1;
            // Allocated once, whole: the buckets never outgrow it (a vector grown by doubling
            // and reallocated by each coarsening left the allocator twice the memory).
            self.buckets = Vec::with_capacity(BUCKETS as usize);
            self.buckets.push(Bucket {
                index: 0,
                summary: S::of(time, value, seq),
            });
            return;
        }
        let mut index = self.index_of(time);
        while index >= BUCKETS {
            self.coarsen();
            index = self.index_of(time);
        }
        match self.buckets.last_mut() {
            Some(last) if last.index >= index => last.summary.take(time, value, seq),
            _ => self.buckets.push(Bucket {
                index,
                summary: S::of(time, value, seq),
            }),
        }
    }

    fn index_of(&self, time: Time) -> i64 {
        let offset = (i128::from(time) - i128::from(self.origin)) / i128::from(self.width);
        offset.clamp(0, i128::from(i64::MAX)) as i64
    }

    /// Doubles the width, merging each pair of buckets that now share one, in place.
    fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let mut kept = 0;
        for read in 0..self.buckets.len() {
            let bucket = self.buckets[read];
            let index = bucket.index / 2;
            if kept > 0 && self.buckets[kept - 1].index == index {
                let earlier = &mut self.buckets[kept - 1];
                earlier.summary = earlier.summary.merged(bucket.summary);
            } else {
                self.buckets[kept] = Bucket {
                    index,
                    summary: bucket.summary,
                };
                kept += 1;
            }
        }
        self.buckets.truncate(kept);
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl Trace {
    /// The kept points in time order (at most four per bucket), as (time, value).
    pub fn points(&self) -> Vec<(Time, f64)> {
        let mut points = Vec::with_capacity(self.buckets.len() * 4);
        for bucket in &self.buckets {
            let m4 = &bucket.summary;
            let mut four = [m4.first, m4.low, m4.high, m4.last];
            four.sort_by_key(|point| point.seq);
            for (index, point) in four.iter().enumerate() {
                if index == 0 || four[index - 1].seq != point.seq {
                    points.push((point.time, point.value));
                }
            }
        }
        points
    }

    /// The newest value, if any.
    pub fn last(&self) -> Option<f64> {
        self.buckets.last().map(|bucket| bucket.summary.last.value)
    }

    /// The largest value, if any.
    pub fn highest(&self) -> Option<f64> {
        self.buckets
            .iter()
            .map(|bucket| bucket.summary.high.value)
            .reduce(f64::max)
    }
}

impl Band {
    /// Per bucket: its first and last times, its lowest low and its highest high.
    pub fn extents(&self) -> impl Iterator<Item = (Time, Time, f64, f64)> + '_ {
        self.buckets.iter().map(|bucket| {
            let e = &bucket.summary;
            (e.from, e.to, e.low, e.high)
        })
    }

    /// The newest (low, high), if any.
    pub fn last(&self) -> Option<(f64, f64)> {
        self.buckets.last().map(|bucket| bucket.summary.last)
    }

    /// The largest high, if any.
    pub fn highest(&self) -> Option<f64> {
        self.buckets
            .iter()
            .map(|bucket| bucket.summary.high)
            .reduce(f64::max)
    }

    /// Each bucket's highest high with its time: where a score crossed a line.
    pub fn highs(&self) -> impl Iterator<Item = (Time, f64)> + '_ {
        self.buckets
            .iter()
            .map(|bucket| (bucket.summary.high_at, bucket.summary.high))
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
    fn a_band_keeps_each_buckets_span_and_extremes_bounded() {
        let mut band = Band::default();
        for t in 0..100_000i64 {
            let spike = if t == 4_321 { 9.0 } else { 0.0 };
            band.push(t * 1000, (-(t % 7) as f64, (t % 5) as f64 + spike));
        }
        band.push(5, (f64::NAN, 1.0));
        let extents: Vec<_> = band.extents().collect();
        assert!(extents.len() <= BUCKETS as usize);
        assert_eq!(extents[0].0, 0);
        assert_eq!(extents.last().map(|e| e.1), Some(99_999_000));
        assert!(
            extents.windows(2).all(|w| w[0].1 < w[1].0),
            "spans in order"
        );
        assert_eq!(band.highest(), Some(10.0));
        assert!(band.highs().any(|high| high == (4_321_000, 10.0)));
        assert_eq!(
            band.last(),
            Some((-(99_999 % 7) as f64, (99_999 % 5) as f64))
        );
        assert!(
            extents.iter().all(|e| e.2 == -6.0),
            "every bucket keeps its lowest"
        );
    }

    #[test]
    fn a_time_going_back_joins_the_newest_bucket() {
        let mut trace = Trace::default();
        trace.push(100, 1.0);
        trace.push(200, 2.0);
        trace.push(150, 3.0);
        assert_eq!(trace.last(), Some(3.0));
        assert_eq!(trace.highest(), Some(3.0));
        // In the newest bucket (200's), not in one of its own before it.
        assert_eq!(trace.buckets.len(), 2);
        assert_eq!(trace.points(), vec![(100, 1.0), (200, 2.0), (150, 3.0)]);
    }
}
