//! Tolerance for records that arrive slightly out of time order.
//!
//! Collectors flush per host, so a log interleaves hosts a few seconds apart. Downstream wants
//! times that never go backwards (inputs advance their frontier as they go), so each file's
//! records pass through a bounded buffer: anything within `lateness` of the newest time seen is
//! held and released in order; anything older than that is refused, since time has already
//! moved past it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use augur_dataflows::types::Time;

/// A reordering buffer; see the module documentation. Serialisable whole, so a checkpoint
/// keeps what it holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Reorder<T> {
    lateness_ms: i64,
    max_seen: Option<Time>,
    /// Keys only, so that `T` needs no `Ord`; the items wait in `items` under their `seq`.
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    items: HashMap<u64, T>,
}

impl<T> Reorder<T> {
    /// A buffer that accepts records up to `lateness_ms` older than the newest one seen
    /// (negative values count as zero).
    pub fn new(lateness_ms: i64) -> Reorder<T> {
        Reorder {
            lateness_ms: lateness_ms.max(0),
            max_seen: None,
            heap: BinaryHeap::new(),
            items: HashMap::new(),
        }
    }

    /// Buffers `item` at `time`; `seq` orders items of equal time (pass an insertion counter,
    /// unique per item). Refuses it with `Err(max_seen)` when it is later than the bound allows.
    pub fn push(&mut self, time: Time, seq: u64, item: T) -> Result<(), i64> {
        if let Some(max_seen) = self.max_seen {
            if time < max_seen.saturating_sub(self.lateness_ms) {
                return Err(max_seen);
            }
        }
        self.max_seen = Some(self.max_seen.map_or(time, |max_seen| max_seen.max(time)));
        self.heap.push(Reverse((time, seq)));
        self.items.insert(seq, item);
        Ok(())
    }

    /// The earliest buffered item, if no item still allowed to arrive could precede it.
    pub fn pop_ready(&mut self) -> Option<(Time, T)> {
        let watermark = self.max_seen?.saturating_sub(self.lateness_ms);
        match self.heap.peek() {
            Some(Reverse((time, _))) if *time <= watermark => self.pop_any(),
            _ => None,
        }
    }

    /// The earliest buffered item, ready or not (to drain at end of input).
    pub fn pop_any(&mut self) -> Option<(Time, T)> {
        while let Some(Reverse((time, seq))) = self.heap.pop() {
            // Always present unless a caller reused a `seq`; then the later item won and this
            // key is stale, so skip it rather than fail.
            if let Some(item) = self.items.remove(&seq) {
                return Some((time, item));
            }
        }
        None
    }

    /// Number of items buffered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The newest time pushed so far.
    pub fn max_seen(&self) -> Option<Time> {
        self.max_seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `(time, label)` pairs, popping what is ready after each, then drains.
    fn run(
        lateness: i64,
        input: &[(Time, &'static str)],
    ) -> (Vec<(Time, &'static str)>, Vec<usize>) {
        let mut reorder = Reorder::new(lateness);
        let mut output = Vec::new();
        let mut refused = Vec::new();
        for (seq, &(time, label)) in input.iter().enumerate() {
            if reorder.push(time, seq as u64, label).is_err() {
                refused.push(seq);
            }
            while let Some(ready) = reorder.pop_ready() {
                output.push(ready);
            }
        }
        while let Some(rest) = reorder.pop_any() {
            output.push(rest);
        }
        (output, refused)
    }

    #[test]
    fn emits_in_time_order_and_stable_for_ties() {
        let input = [
            (10, "a"),
            (8, "b"),
            (10, "c"),
            (9, "d"),
            (8, "e"),
            (12, "f"),
            (10, "g"),
        ];
        let (output, refused) = run(5, &input);
        assert!(refused.is_empty());
        assert_eq!(
            output,
            vec![
                (8, "b"),
                (8, "e"),
                (9, "d"),
                (10, "a"),
                (10, "c"),
                (10, "g"),
                (12, "f")
            ]
        );
    }

    #[test]
    fn refuses_records_later_than_the_bound() {
        let mut reorder = Reorder::new(5);
        assert_eq!(reorder.push(100, 0, ()), Ok(()));
        assert_eq!(reorder.push(95, 1, ()), Ok(()));
        assert_eq!(reorder.push(94, 2, ()), Err(100));
        assert_eq!(reorder.len(), 2);
    }

    #[test]
    fn holds_items_until_the_watermark_passes() {
        let mut reorder = Reorder::new(10);
        assert_eq!(reorder.push(100, 0, "x"), Ok(()));
        assert_eq!(reorder.pop_ready(), None);
        assert_eq!(reorder.push(110, 1, "y"), Ok(()));
        assert_eq!(reorder.pop_ready(), Some((100, "x")));
        assert_eq!(reorder.pop_ready(), None);
        assert_eq!(reorder.pop_any(), Some((110, "y")));
        assert!(reorder.is_empty());
    }

    #[test]
    fn zero_lateness_releases_immediately_and_output_never_decreases() {
        // A fixed pseudo-random walk, so the test is deterministic without a rand dependency.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut input = Vec::new();
        for step in 0..500 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let jitter = (state >> 33) % 20;
            input.push((step * 3 + jitter as i64, "r"));
        }
        for lateness in [0, 5, 30] {
            let (output, refused) = run(lateness, &input);
            assert_eq!(output.len() + refused.len(), input.len());
            assert!(output.windows(2).all(|pair| pair[0].0 <= pair[1].0));
        }
        let (_, refused) = run(30, &input);
        assert!(
            refused.is_empty(),
            "jitter of at most 19 fits a lateness of 30"
        );
    }
}
