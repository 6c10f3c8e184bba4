//! Writing the outputs on a thread of their own, behind the dataflow.
//!
//! The sink of a file-fed `run` keeps the current map, forecasts and scale-out advice and writes
//! the JSONL outputs: work that depends on the engine's results but that the engine never
//! waits for. With [`WriteBehind`] worker 0 hands each group of epochs' changes, as captured,
//! to an `augur:sink` thread (which also splits them per epoch) and goes on with the next
//! group; the sink sees the same calls in the same order, so its outputs do not change.
//!
//! A sink's error reaches the engine one call later than inline (the call that finds the
//! thread gone returns it), and a sink written behind cannot be checkpointed (its state runs
//! behind the engine's), so checkpointed runs write inline.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use augur_dataflows::types::Time;

use crate::engine::{
    DurationUpdate, EpochGroup, EpochReport, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate,
    VariantUpdate,
};
use crate::handoff::spawn_owning;

/// Messages (groups of up to the source's pipeline depth of epochs, or single epochs) the
/// engine may have handed over before it waits for the sink thread: a few, since a group holds
/// every change of its epochs (16 ran no faster on the benchmark's logs).
pub const WRITE_BEHIND_GROUPS: usize = 4;

/// What the sink thread is sent: a group of epochs as the engine captured them, or one epoch
/// gathered from direct calls.
enum Message {
    Group(EpochGroup),
    Epoch(EpochReport),
}

/// A [`MapSink`] that, once given its first epoch, runs its inner sink on a thread of its own
/// (or inline, when built with `threaded: false`).
pub struct WriteBehind<Snk: MapSink> {
    state: State<Snk>,
    threaded: bool,
    pending: EpochReport,
}

type Ended<Snk> = (Snk, Option<<Snk as MapSink>::Error>);

enum State<Snk: MapSink> {
    Inline(Snk),
    Writing {
        messages: SyncSender<Message>,
        writer: JoinHandle<Ended<Snk>>,
    },
    /// Only inside `start` and `finish`.
    Gone,
}

impl<Snk> WriteBehind<Snk>
where
    Snk: MapSink + Send + 'static,
{
    /// Wraps `sink`; it runs on a thread of its own from the first epoch if `threaded`.
    pub fn new(sink: Snk, threaded: bool) -> WriteBehind<Snk> {
        WriteBehind {
            state: State::Inline(sink),
            threaded,
            pending: EpochReport::default(),
        }
    }

    /// The inner sink once it has taken every epoch handed over, or the error it stopped at.
    pub fn into_inner(mut self) -> Result<Snk, Snk::Error> {
        let (sink, error) = self.finish();
        match error {
            Some(error) => Err(error),
            None => Ok(sink),
        }
    }

    /// Waits for the thread to take what it was sent and takes the sink back.
    fn finish(&mut self) -> Ended<Snk> {
        match std::mem::replace(&mut self.state, State::Gone) {
            State::Inline(sink) => (sink, None),
            State::Writing { messages, writer } => {
                // Closing the channel ends the thread's loop once it has drained it.
                drop(messages);
                match writer.join() {
                    Ok(ended) => ended,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            State::Gone => unreachable!("the sink is gone only while `finish` runs"),
        }
    }

    /// Hands `message` to the sink thread (started on the first message); inline, if no
    /// thread could be started.
    fn send(&mut self, message: Message) -> Result<(), Snk::Error> {
        if self.threaded && matches!(self.state, State::Inline(_)) {
            self.start();
        }
        match &mut self.state {
            State::Inline(sink) => match message {
                Message::Group(group) => sink.group(group),
                Message::Epoch(report) => report.replay(sink),
            },
            State::Writing { messages, .. } => {
                if messages.send(message).is_ok() {
                    return Ok(());
                }
                // The thread stopped at an error: that error is this call's.
                let (sink, error) = self.finish();
                self.threaded = false;
                self.state = State::Inline(sink);
                error.map_or(Ok(()), Err)
            }
            State::Gone => Ok(()),
        }
    }

    /// Moves the sink to its thread; if no thread can be started it stays inline.
    fn start(&mut self) {
        let State::Inline(sink) = std::mem::replace(&mut self.state, State::Gone) else {
            return;
        };
        let (messages, received) = sync_channel::<Message>(WRITE_BEHIND_GROUPS);
        self.state = match spawn_owning("augur:sink", sink, move |sink| write(sink, received)) {
            Ok(writer) => State::Writing { messages, writer },
            Err(sink) => {
                self.threaded = false;
                State::Inline(sink)
            }
        };
    }
}

/// The sink thread: hands on everything it is sent until the channel closes or a call fails.
fn write<Snk: MapSink>(mut sink: Snk, received: Receiver<Message>) -> Ended<Snk> {
    for message in received {
        let written = match message {
            Message::Group(group) => sink.group(group),
            Message::Epoch(report) => report.replay(&mut sink),
        };
        if let Err(error) = written {
            return (sink, Some(error));
        }
    }
    (sink, None)
}

impl<Snk> MapSink for WriteBehind<Snk>
where
    Snk: MapSink + Send + 'static,
{
    type Error = Snk::Error;

    fn epoch(
        &mut self,
        time: Time,
        changes: &[MapUpdate],
        latency: Duration,
    ) -> Result<(), Snk::Error> {
        let mut report = std::mem::take(&mut self.pending);
        report.time = time;
        report.map = changes.to_vec();
        report.latency = latency;
        self.send(Message::Epoch(report))
    }

    fn group(&mut self, group: EpochGroup) -> Result<(), Snk::Error> {
        self.send(Message::Group(group))
    }

    // Single calls (the engine makes none: it hands over groups) gather until their epoch's
    // `epoch` call, then go as one report.
    fn forecasts(&mut self, _time: Time, changes: &[ForecastUpdate]) -> Result<(), Snk::Error> {
        self.pending.forecasts.extend_from_slice(changes);
        Ok(())
    }

    fn durations(&mut self, _time: Time, changes: &[DurationUpdate]) -> Result<(), Snk::Error> {
        self.pending.durations.extend_from_slice(changes);
        Ok(())
    }

    fn prewarm(&mut self, _time: Time, changes: &[PrewarmUpdate]) -> Result<(), Snk::Error> {
        self.pending.prewarm.extend_from_slice(changes);
        Ok(())
    }

    fn variants(&mut self, _time: Time, changes: &[VariantUpdate]) -> Result<(), Snk::Error> {
        self.pending.variants.extend_from_slice(changes);
        Ok(())
    }

    /// Inline, the sink's own snapshot; written behind, none (the sink runs behind the engine).
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Snk::Error> {
        match &mut self.state {
            State::Inline(sink) => sink.snapshot(),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_dataflows::contention_forecast::SeriesForecast;
    use augur_dataflows::types::{Resource, TaskKey};

    /// Writes down every call it gets; fails the epoch call at `fail_at`, if set.
    #[derive(Default)]
    struct Recording {
        calls: Vec<String>,
        fail_at: Option<Time>,
    }

    impl MapSink for Recording {
        type Error = String;

        fn epoch(
            &mut self,
            time: Time,
            changes: &[MapUpdate],
            latency: Duration,
        ) -> Result<(), String> {
            if self.fail_at == Some(time) {
                return Err(format!("failed at {time}"));
            }
            self.calls
                .push(format!("epoch {time} {changes:?} {}", latency.as_micros()));
            Ok(())
        }

        fn forecasts(&mut self, time: Time, changes: &[ForecastUpdate]) -> Result<(), String> {
            self.calls.push(format!("forecasts {time} {changes:?}"));
            Ok(())
        }

        fn durations(&mut self, time: Time, changes: &[DurationUpdate]) -> Result<(), String> {
            self.calls.push(format!("durations {time} {changes:?}"));
            Ok(())
        }

        fn prewarm(&mut self, time: Time, changes: &[PrewarmUpdate]) -> Result<(), String> {
            self.calls.push(format!("prewarm {time} {changes:?}"));
            Ok(())
        }

        fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
            Ok(Some(self.calls.len().to_le_bytes().to_vec()))
        }
    }

    /// Feeds `epochs` epochs as the engine reports them (some with forecasts, durations or
    /// warm-up advice first); returns the first error and the sink.
    fn feed(mut sink: WriteBehind<Recording>, epochs: Time) -> Result<Recording, String> {
        let forecast = SeriesForecast {
            latest: 1,
            predicted: 2,
            sigma: 3,
            anomaly: 4,
        };
        for time in 1..=epochs {
            if time % 3 == 0 {
                sink.forecasts(time, &[(((1, Resource::Cpu), forecast), 1)])?;
            }
            if time % 5 == 0 {
                sink.durations(time, &[(((2, 0), 1_000 + time as u64), 1)])?;
                sink.prewarm(time, &[((0, 1), 1)])?;
            }
            let task = TaskKey {
                workflow: 0,
                task: time as u32,
            };
            sink.epoch(time, &[((task, 1), 1)], Duration::from_micros(time as u64))?;
        }
        sink.into_inner()
    }

    #[test]
    fn written_behind_the_sink_gets_the_calls_it_gets_inline() {
        let epochs = 3 * WRITE_BEHIND_GROUPS as Time + 7;
        let inline = feed(WriteBehind::new(Recording::default(), false), epochs).expect("no error");
        let behind = feed(WriteBehind::new(Recording::default(), true), epochs).expect("no error");
        assert_eq!(
            inline.calls.len(),
            epochs as usize + 2 * (epochs / 5) as usize + (epochs / 3) as usize
        );
        assert_eq!(behind.calls, inline.calls);
    }

    /// Groups of epochs as the engine captures them: `groups` groups of `size` epochs, each
    /// epoch with a placement and a retracted one, some with a forecast.
    fn feed_groups(
        mut sink: WriteBehind<Recording>,
        groups: Time,
        size: Time,
    ) -> Result<Recording, String> {
        let forecast = SeriesForecast {
            latest: 1,
            predicted: 2,
            sigma: 3,
            anomaly: 4,
        };
        for group in 0..groups {
            let mut captured = EpochGroup::default();
            for time in group * size + 1..=(group + 1) * size {
                captured
                    .epochs
                    .push((time, Duration::from_micros(time as u64)));
                let task = |task: u32| TaskKey { workflow: 0, task };
                captured.map.push(((task(time as u32), 1), time, 1));
                captured.map.push(((task(time as u32 - 1), 1), time, -1));
                if time % 3 == 0 {
                    captured
                        .forecasts
                        .push((((1, Resource::Cpu), forecast), time, 1));
                }
            }
            sink.group(captured)?;
        }
        sink.into_inner()
    }

    #[test]
    fn groups_written_behind_reach_the_sink_as_inline() {
        let inline =
            feed_groups(WriteBehind::new(Recording::default(), false), 40, 7).expect("no error");
        let behind =
            feed_groups(WriteBehind::new(Recording::default(), true), 40, 7).expect("no error");
        assert_eq!(inline.calls.len(), 280 + 280 / 3);
        assert_eq!(behind.calls, inline.calls);
        for fail_at in [1, 9, 280] {
            let failing = Recording {
                fail_at: Some(fail_at),
                ..Recording::default()
            };
            let behind = feed_groups(WriteBehind::new(failing, true), 40, 7);
            assert_eq!(behind.err(), Some(format!("failed at {fail_at}")));
        }
    }

    #[test]
    fn a_sink_error_reaches_the_caller_inline_and_behind() {
        for fail_at in [1, 2, WRITE_BEHIND_GROUPS as Time + 3, 1_000] {
            let failing = Recording {
                fail_at: Some(fail_at),
                ..Recording::default()
            };
            let inline = feed(WriteBehind::new(failing, false), 1_000);
            assert_eq!(inline.err(), Some(format!("failed at {fail_at}")));
            let failing = Recording {
                fail_at: Some(fail_at),
                ..Recording::default()
            };
            let behind = feed(WriteBehind::new(failing, true), 1_000);
            assert_eq!(behind.err(), Some(format!("failed at {fail_at}")));
        }
    }

    #[test]
    fn only_an_inline_sink_can_be_checkpointed() {
        let mut inline = WriteBehind::new(Recording::default(), false);
        inline.epoch(1, &[], Duration::ZERO).expect("no error");
        assert_eq!(inline.snapshot(), Ok(Some(1usize.to_le_bytes().to_vec())));
        let mut behind = WriteBehind::new(Recording::default(), true);
        behind.epoch(1, &[], Duration::ZERO).expect("no error");
        assert_eq!(behind.snapshot(), Ok(None));
        assert_eq!(behind.into_inner().map(|s| s.calls.len()), Ok(1));
    }
}
