//! Tolerance for records that arrive slightly out of time order.
//!
//! Collectors flush per host, so a log interleaves hosts a few seconds apart. Downstream wants
//! times that never go backwards (inputs advance their frontier as they go), so each file's
//! records pass through a bounded buffer: anything within `lateness` of the newest time seen is
//! held and released in order; anything older than that is refused, since time has already
//! moved past it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use augur_dataflows::types::Time;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A reordering buffer; see the module documentation. Serialisable whole, so a checkpoint
/// keeps what it holds.
///
/// Most records arrive in order, so those wait in a queue in arrival order (pushing and
/// popping cost O(1)); only a record that arrives behind the queue's newest goes to the heap.
/// The earliest of the two heads is released first, so the order out is the same as with a
/// heap alone.
#[derive(Debug)]
pub struct Reorder<T> {
    lateness_ms: i64,
    max_seen: Option<Time>,
    /// Records that arrived in `(time, seq)` order, oldest first.
    queue: VecDeque<(Time, u64, T)>,
    /// The others. Keys only, so that `T` needs no `Ord`; the items wait in `items` under
    /// their `seq`.
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
            queue: VecDeque::new(),
            heap: BinaryHeap::new(),
            items: HashMap::new(),
        }
    }

    /// Whether [`Reorder::push`] would take a record at `time` (it is within the lateness of
    /// the newest time seen).
    pub fn admits(&self, time: Time) -> bool {
        self.max_seen
            .is_none_or(|max_seen| time >= max_seen.saturating_sub(self.lateness_ms))
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
        let in_order = self
            .queue
            .back()
            .is_none_or(|(last, last_seq, _)| (time, seq) > (*last, *last_seq));
        if in_order {
            self.queue.push_back((time, seq, item));
        } else {
            self.heap.push(Reverse((time, seq)));
            self.items.insert(seq, item);
        }
        Ok(())
    }

    /// The key of the earliest buffered item, and whether it is the queue's.
    fn earliest(&self) -> Option<((Time, u64), bool)> {
        let queued = self.queue.front().map(|(time, seq, _)| (*time, *seq));
        let heaped = self.heap.peek().map(|Reverse(key)| *key);
        match (queued, heaped) {
            (Some(q), Some(h)) if h < q => Some((h, false)),
            (Some(q), _) => Some((q, true)),
            (None, Some(h)) => Some((h, false)),
            (None, None) => None,
        }
    }

    /// The earliest buffered item, if no item still allowed to arrive could precede it.
    pub fn pop_ready(&mut self) -> Option<(Time, T)> {
        let watermark = self.max_seen?.saturating_sub(self.lateness_ms);
        match self.earliest() {
            Some(((time, _), _)) if time <= watermark => self.pop_any(),
            _ => None,
        }
    }

    /// The earliest buffered item if it is ready (as [`Self::pop_ready`]) and at `time`: an
    /// epoch's records are taken out in one loop, and in-order records (the queue, with nothing
    /// behind it in the heap) cost a comparison each.
    pub fn pop_ready_at(&mut self, time: Time) -> Option<T> {
        let watermark = self.max_seen?.saturating_sub(self.lateness_ms);
        if time > watermark {
            return None;
        }
        if self.heap.is_empty() {
            return match self.queue.front() {
                Some((first, _, _)) if *first == time => {
                    self.queue.pop_front().map(|(_, _, item)| item)
                }
                _ => None,
            };
        }
        match self.earliest() {
            Some(((first, _), _)) if first == time => self.pop_any().map(|(_, item)| item),
            _ => None,
        }
    }

    /// The earliest buffered item, ready or not (to drain at end of input).
    pub fn pop_any(&mut self) -> Option<(Time, T)> {
        while let Some((_, queued)) = self.earliest() {
            if queued {
                return self.queue.pop_front().map(|(time, _, item)| (time, item));
            }
            let Some(Reverse((time, seq))) = self.heap.pop() else {
                break;
            };
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
        self.queue.len() + self.items.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.items.is_empty()
    }

    /// The newest time pushed so far.
    pub fn max_seen(&self) -> Option<Time> {
        self.max_seen
    }
}

/// Checkpoints keep the layout of a buffer that had only the heap: every queued item is
/// written as a heap key and an item, so checkpoints of either build read in the other.
impl<T: Serialize> Serialize for Reorder<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Items<'a, T>(&'a HashMap<u64, T>, &'a VecDeque<(Time, u64, T)>);
        impl<T: Serialize> Serialize for Items<'_, T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let queued = self.1.iter().map(|(_, seq, item)| (seq, item));
                serializer.collect_map(self.0.iter().chain(queued))
            }
        }
        #[derive(Serialize)]
        #[serde(rename = "Reorder")]
        struct Wire<'a, T: Serialize> {
            lateness_ms: i64,
            max_seen: Option<Time>,
            heap: Vec<Reverse<(Time, u64)>>,
            items: Items<'a, T>,
        }
        let queued = self
            .queue
            .iter()
            .map(|(time, seq, _)| Reverse((*time, *seq)));
        Wire {
            lateness_ms: self.lateness_ms,
            max_seen: self.max_seen,
            heap: self.heap.iter().copied().chain(queued).collect(),
            items: Items(&self.items, &self.queue),
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Reorder<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "Reorder")]
        struct Wire<T> {
            lateness_ms: i64,
            max_seen: Option<Time>,
            heap: BinaryHeap<Reverse<(Time, u64)>>,
            items: HashMap<u64, T>,
        }
        let wire = Wire::<T>::deserialize(deserializer)?;
        Ok(Reorder {
            lateness_ms: wire.lateness_ms,
            max_seen: wire.max_seen,
            queue: VecDeque::new(),
            heap: wire.heap,
            items: wire.items,
        })
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
    fn taking_an_epoch_at_a_time_releases_what_pop_ready_does() {
        // Seeded times jittering around a rising clock, some late enough for the heap, some
        // refused; after every push, one buffer is drained record by record with `pop_ready`,
        // the other a head at a time and then `pop_ready_at` the head's time.
        let mut state: u64 = 7;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        for lateness in [0, 3, 20] {
            let (mut one, mut epochs) = (Reorder::new(lateness), Reorder::new(lateness));
            let (mut by_one, mut by_epoch) = (Vec::new(), Vec::new());
            for seq in 0..2_000u64 {
                let time = (seq / 4) as i64 - (next() % 8) as i64;
                assert_eq!(one.push(time, seq, seq), epochs.push(time, seq, seq));
                while let Some(ready) = one.pop_ready() {
                    by_one.push(ready);
                }
                while let Some((time, item)) = epochs.pop_ready() {
                    by_epoch.push((time, item));
                    while let Some(item) = epochs.pop_ready_at(time) {
                        by_epoch.push((time, item));
                    }
                }
                assert_eq!(by_one, by_epoch, "lateness {lateness}, after {seq}");
            }
        }
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

    #[test]
    fn a_restored_buffer_releases_what_the_original_would() {
        let input = [
            (10, "a"),
            (8, "b"),
            (10, "c"),
            (9, "d"),
            (12, "e"),
            (11, "f"),
        ];
        let mut reorder = Reorder::new(5);
        for (seq, &(time, label)) in input.iter().enumerate() {
            reorder
                .push(time, seq as u64, label.to_string())
                .expect("within lateness");
        }
        let bytes = serde_json::to_vec(&reorder).expect("encodes");
        let mut restored: Reorder<String> = serde_json::from_slice(&bytes).expect("decodes");
        assert_eq!(restored.len(), reorder.len());
        for (seq, time, label) in [(9, 13, "g"), (10, 10, "h")] {
            reorder
                .push(time, seq, label.to_string())
                .expect("within lateness");
            restored
                .push(time, seq, label.to_string())
                .expect("within lateness");
        }
        let drain = |buffer: &mut Reorder<String>| {
            std::iter::from_fn(|| buffer.pop_any()).collect::<Vec<_>>()
        };
        assert_eq!(drain(&mut restored), drain(&mut reorder));
    }
}
