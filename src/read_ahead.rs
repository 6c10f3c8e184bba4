//! Reading the inputs on a thread of their own, ahead of the dataflow.
//!
//! A file-fed `run` spends about a third of its time parsing and admitting records (the
//! reorder buffers, device lookup, accounting) and the rest in the dataflow. Both ran in turn
//! on worker 0; with [`ReadAhead`] the source runs on an `augur:feed` thread that keeps up to
//! [`READ_AHEAD_EPOCHS`] epochs ready, so on a machine with a spare core the two overlap and a
//! run takes about the longer of the two instead of their sum.
//!
//! The epochs are the same batches in the same order (the source is the same code on another
//! thread), so outputs do not change. What is given up: a source read ahead cannot be
//! checkpointed, since its state has moved past the epochs the engine has seen, so checkpointed
//! runs read inline.

use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::thread::JoinHandle;

use augur_dataflows::types::{InputBatch, Time};

use crate::engine::BatchSource;
use crate::handoff::spawn_owning;

/// Epochs the feed thread may have ready before it waits for the engine: as many as `run`
/// feeds before it waits on the probe, so reading ahead at most doubles the parsed batches a
/// run holds (an epoch can be large: every sample at one timestamp), never the whole file.
/// (256 ran no faster on the benchmark's logs.)
pub const READ_AHEAD_EPOCHS: usize = 64;

type Batch<E> = Result<Option<(Time, InputBatch)>, E>;

/// A [`BatchSource`] that, once asked for its first batch, reads its inner source on a thread
/// of its own (or inline, when built with `threaded: false`).
pub struct ReadAhead<Src: BatchSource> {
    state: State<Src>,
    threaded: bool,
    depth: usize,
}

enum State<Src: BatchSource> {
    /// Reading in the caller's thread (not started yet, or never to be threaded).
    Inline(Src),
    /// The feed thread reads; `ended` once it has sent the end of input or an error.
    Reading {
        batches: Receiver<Batch<Src::Error>>,
        reader: Option<JoinHandle<Src>>,
        ended: bool,
        /// A batch taken off the channel by [`BatchSource::batch_ready`], given next.
        ready: Option<Batch<Src::Error>>,
    },
    /// Only between the two states, and after a failed hand-over.
    Gone,
}

impl<Src> ReadAhead<Src>
where
    Src: BatchSource + Send + 'static,
{
    /// Wraps `source`; it is read on a thread of its own from the first batch if `threaded`.
    pub fn new(source: Src, threaded: bool) -> ReadAhead<Src> {
        ReadAhead {
            depth: source.pipeline_depth(),
            state: State::Inline(source),
            threaded,
        }
    }

    /// The inner source, after the feed thread stopped (it stops at the end of input, at an
    /// error, or as soon as it sees that nobody takes its batches any more).
    pub fn into_inner(self) -> Src {
        match self.state {
            State::Inline(source) => source,
            State::Reading {
                batches, reader, ..
            } => {
                // The thread's next send fails and it returns the source.
                drop(batches);
                match reader.map(JoinHandle::join) {
                    Some(Ok(source)) => source,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => unreachable!("the feed thread is joined only on the way out"),
                }
            }
            State::Gone => unreachable!("a feed is gone only inside `start`, which restores it"),
        }
    }

    /// Moves the source to its thread; if no thread can be started it stays inline.
    fn start(&mut self) {
        let State::Inline(source) = std::mem::replace(&mut self.state, State::Gone) else {
            return;
        };
        let (send, batches) = sync_channel::<Batch<Src::Error>>(READ_AHEAD_EPOCHS);
        let spawned = spawn_owning("augur:feed", source, move |mut source: Src| {
            loop {
                let batch = source.next_batch();
                let last = !matches!(batch, Ok(Some(_)));
                if send.send(batch).is_err() || last {
                    break;
                }
            }
            source
        });
        self.state = match spawned {
            Ok(reader) => State::Reading {
                batches,
                reader: Some(reader),
                ended: false,
                ready: None,
            },
            Err(source) => {
                self.threaded = false;
                State::Inline(source)
            }
        };
    }
}

impl<Src> BatchSource for ReadAhead<Src>
where
    Src: BatchSource + Send + 'static,
{
    type Error = Src::Error;

    fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, Src::Error> {
        if self.threaded && matches!(self.state, State::Inline(_)) {
            self.start();
        }
        match &mut self.state {
            State::Inline(source) => source.next_batch(),
            State::Reading { ended: true, .. } => Ok(None),
            State::Reading {
                batches,
                reader,
                ended,
                ready,
            } => match ready.take().map_or_else(|| batches.recv(), Ok) {
                Ok(batch) => {
                    *ended = !matches!(batch, Ok(Some(_)));
                    batch
                }
                // The thread is gone without saying why: it panicked. The panic goes on here,
                // where the engine turns a worker's panic into an error.
                Err(_) => {
                    *ended = true;
                    match reader.take().map(JoinHandle::join) {
                        Some(Err(panic)) => std::panic::resume_unwind(panic),
                        // It returned without a last batch: it never does; end the input.
                        Some(Ok(source)) => {
                            self.state = State::Inline(source);
                            self.threaded = false;
                            Ok(None)
                        }
                        None => Ok(None),
                    }
                }
            },
            State::Gone => Ok(None),
        }
    }

    /// Inline, the source's own snapshot; read ahead, none (the source is past the engine).
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Src::Error> {
        match &mut self.state {
            State::Inline(source) => source.snapshot(),
            _ => Ok(None),
        }
    }

    fn read_extents(&self) -> Vec<(String, u64)> {
        match &self.state {
            State::Inline(source) => source.read_extents(),
            _ => Vec::new(),
        }
    }

    fn live_collections(&self) -> InputBatch {
        match &self.state {
            State::Inline(source) => source.live_collections(),
            _ => InputBatch::default(),
        }
    }

    fn pipeline_depth(&self) -> usize {
        self.depth
    }

    /// Read ahead: whether the feed thread has a batch waiting (kept for the next call), or
    /// has gone; inline, always (the batch is made when asked).
    fn batch_ready(&mut self) -> bool {
        match &mut self.state {
            State::Reading {
                ended: false,
                batches,
                ready,
                ..
            } => {
                if ready.is_none() {
                    match batches.try_recv() {
                        Ok(batch) => *ready = Some(batch),
                        Err(TryRecvError::Empty) => return false,
                        // `next_batch` finds out why it stopped.
                        Err(TryRecvError::Disconnected) => {}
                    }
                }
                true
            }
            _ => true,
        }
    }

    // A source read on a thread of its own runs ahead by construction: only one that always
    // can may be read that way (files, not the simulator).
    fn can_run_ahead(&self) -> bool {
        match &self.state {
            State::Inline(source) => source.can_run_ahead(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_dataflows::types::{Resource, Sample};

    /// Batches at times 1, 2, … `len`, each one sample whose value is its time; fails instead
    /// of giving batch `fail_at`, if set. Counts what it was asked for.
    struct Counting {
        given: u64,
        len: u64,
        fail_at: Option<u64>,
    }

    impl Counting {
        fn new(len: u64, fail_at: Option<u64>) -> Counting {
            Counting {
                given: 0,
                len,
                fail_at,
            }
        }
    }

    impl BatchSource for Counting {
        type Error = String;

        fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, String> {
            if self.given >= self.len {
                return Ok(None);
            }
            self.given += 1;
            if self.fail_at == Some(self.given) {
                return Err(format!("failed at {}", self.given));
            }
            let mut batch = InputBatch::default();
            batch.samples.push(Sample {
                device: 0,
                resource: Resource::Cpu,
                value: self.given as f64,
            });
            Ok(Some((self.given as Time, batch)))
        }

        fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
            Ok(Some(self.given.to_le_bytes().to_vec()))
        }

        fn read_extents(&self) -> Vec<(String, u64)> {
            vec![("counting".into(), self.given)]
        }

        fn pipeline_depth(&self) -> usize {
            7
        }
    }

    /// Every batch until the end or the first error: (time, value) pairs, then the error.
    fn drain<S: BatchSource<Error = String>>(source: &mut S) -> (Vec<(Time, f64)>, Option<String>) {
        let mut seen = Vec::new();
        loop {
            match source.next_batch() {
                Ok(Some((time, batch))) => seen.push((time, batch.samples[0].value)),
                Ok(None) => return (seen, None),
                Err(error) => return (seen, Some(error)),
            }
        }
    }

    #[test]
    fn read_ahead_gives_the_batches_inline_reading_gives() {
        let len = 3 * READ_AHEAD_EPOCHS as u64 + 5;
        for fail_at in [None, Some(1), Some(READ_AHEAD_EPOCHS as u64 + 2)] {
            let mut inline = ReadAhead::new(Counting::new(len, fail_at), false);
            let mut ahead = ReadAhead::new(Counting::new(len, fail_at), true);
            assert_eq!(ahead.pipeline_depth(), 7);
            let expected = drain(&mut inline);
            assert_eq!(drain(&mut ahead), expected, "fail at {fail_at:?}");
            // After the end or an error, the input stays ended.
            assert!(matches!(ahead.next_batch(), Ok(None)));
            let inner = ahead.into_inner();
            assert_eq!(inner.given, inline.into_inner().given);
        }
    }

    #[test]
    fn asking_whether_a_batch_is_ready_loses_and_reorders_nothing() {
        let len = 2 * READ_AHEAD_EPOCHS as u64 + 3;
        for fail_at in [None, Some(READ_AHEAD_EPOCHS as u64 + 2)] {
            let expected = drain(&mut ReadAhead::new(Counting::new(len, fail_at), false));
            let mut ahead = ReadAhead::new(Counting::new(len, fail_at), true);
            // Not started: ready, since the first call reads (and starts the thread).
            assert!(ahead.batch_ready());
            let mut seen = Vec::new();
            let mut error = None;
            let mut waits = 0;
            loop {
                // Asked once, twice, or not at all before each batch: a batch taken off the
                // channel to answer is the next one given, once.
                for _ in 0..(seen.len() % 3) {
                    if !ahead.batch_ready() {
                        waits += 1;
                    }
                }
                match ahead.next_batch() {
                    Ok(Some((time, batch))) => seen.push((time, batch.samples[0].value)),
                    Ok(None) => break,
                    Err(failed) => {
                        error = Some(failed);
                        break;
                    }
                }
            }
            assert_eq!(
                (seen, error),
                expected,
                "fail at {fail_at:?} ({waits} waits)"
            );
            // Once the feed thread has ended, asking never blocks and says ready.
            assert!(ahead.batch_ready());
            assert!(matches!(ahead.next_batch(), Ok(None)));
        }
    }

    #[test]
    fn a_ready_batch_is_given_without_waiting_and_an_idle_feed_reads_not_ready() {
        // A source that gives one batch, then waits for a go-ahead before the next.
        struct Gated {
            given: u64,
            gate: std::sync::mpsc::Receiver<()>,
        }
        impl BatchSource for Gated {
            type Error = String;
            fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, String> {
                if self.given > 0 && self.gate.recv().is_err() {
                    return Ok(None);
                }
                self.given += 1;
                Ok(Some((self.given as Time, InputBatch::default())))
            }
        }
        let (open, gate) = std::sync::mpsc::channel();
        let mut ahead = ReadAhead::new(Gated { given: 0, gate }, true);
        assert!(matches!(ahead.next_batch(), Ok(Some((1, _)))));
        // The feed thread now waits at the gate: nothing is ready.
        assert!(!ahead.batch_ready());
        open.send(()).expect("the feed thread is alive");
        // Once it has made batch 2, readiness says so and the batch comes at once.
        while !ahead.batch_ready() {
            std::thread::yield_now();
        }
        assert!(matches!(ahead.next_batch(), Ok(Some((2, _)))));
        drop(open);
        assert!(matches!(ahead.next_batch(), Ok(None)));
    }

    #[test]
    fn a_source_left_unread_is_given_back_and_its_thread_stops() {
        let mut ahead = ReadAhead::new(Counting::new(u64::MAX, None), true);
        for expected in 1..=3 {
            let (time, _) = ahead.next_batch().expect("no error").expect("a batch");
            assert_eq!(time, expected);
        }
        // The thread read at most its channel's worth beyond what was taken, and stopped.
        let inner = ahead.into_inner();
        assert!(inner.given >= 3 && inner.given <= 3 + READ_AHEAD_EPOCHS as u64 + 1);
    }

    #[test]
    fn only_an_inline_source_can_be_checkpointed() {
        let mut inline = ReadAhead::new(Counting::new(5, None), false);
        inline.next_batch().expect("no error");
        assert_eq!(inline.snapshot(), Ok(Some(1u64.to_le_bytes().to_vec())));
        // What it read goes with its snapshot: a store hashes the logs up to there.
        assert_eq!(inline.read_extents(), vec![("counting".to_string(), 1)]);
        let mut ahead = ReadAhead::new(Counting::new(5, None), true);
        // Before its first batch it is still inline.
        assert_eq!(ahead.snapshot(), Ok(Some(0u64.to_le_bytes().to_vec())));
        ahead.next_batch().expect("no error");
        assert_eq!(ahead.snapshot(), Ok(None));
        assert!(ahead.read_extents().is_empty());
    }
}
