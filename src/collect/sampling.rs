//! The `augur collect` command: samples the live collectors on a fixed clock into the output
//! file, or reads a Prometheus history into it once.
//!
//! Samples are due at start + k × interval (k = 0, 1, ...), not interval after the previous one
//! ended, so slow scrapes do not make the clock drift; a round that overran skips the ticks it
//! missed. Ctrl-C and SIGTERM end the run between
//! samples, with every written line whole and flushed; a second Ctrl-C exits at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{CollectConfig, Mode};
use super::sink::RecordWriter;
use super::{now_ms, CollectError, Collector, Sampled};
use crate::prometheus::read_history;

/// How long the loop sleeps at most before looking at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectSummary {
    /// Sampling rounds (live), or queries' worth of history (1).
    pub rounds: u64,
    /// Records written.
    pub records: u64,
    /// Samples or scrapes that failed.
    pub failures: u64,
    /// Whether a signal ended the run.
    pub interrupted: bool,
}

/// Runs `augur collect`; `progress` receives one line at a time (stderr in the binary).
pub fn collect(
    config: &CollectConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<CollectSummary, CollectError> {
    let mut say = |line: &str| {
        if config.progress {
            progress(line);
        }
    };
    match &config.mode {
        Mode::History { url, query } => {
            let history = read_history(url, query).map_err(|source| CollectError::Source {
                source_name: url.clone(),
                source,
            })?;
            if history.records.is_empty() {
                return Err(CollectError::Nothing(format!(
                    "{url} has no node_exporter series in that range ({} points skipped); \
                     is it scraping a node_exporter?",
                    history.skipped_points
                )));
            }
            let mut writer = RecordWriter::create(&config.out, config.format)?;
            writer.write(&history.records)?;
            // Live mode refuses such names up front; history's come from the labels it reads.
            if writer.refused() > 0 {
                say(&format!(
                    "augur collect: {} records not written: their device name holds a line \
                     break, which CSV cannot (write .jsonl)",
                    writer.refused()
                ));
            }
            if writer.written() == 0 {
                return Err(CollectError::Nothing(format!(
                    "none of the {} records from {url} could be written to CSV (device names \
                     with line breaks); write .jsonl",
                    writer.refused()
                )));
            }
            say(&format!(
                "augur collect: {} records from {url} ({} points skipped, {} series without an instance label)",
                writer.written(),
                history.skipped_points,
                history.unlabelled_series
            ));
            Ok(CollectSummary {
                rounds: 1,
                records: writer.written(),
                failures: 0,
                interrupted: false,
            })
        }
        Mode::Host { .. } | Mode::NodeExporters { .. } => {
            let collectors = config.collectors()?;
            live(config, collectors, &mut say)
        }
    }
}

fn live(
    config: &CollectConfig,
    mut collectors: Vec<Box<dyn Collector>>,
    say: &mut dyn FnMut(&str),
) -> Result<CollectSummary, CollectError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag before the second handler sets it: a second
        // signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(CollectError::Signal)?;
    }
    let mut writer = RecordWriter::create(&config.out, config.format)?;
    let started = Instant::now();
    let mut summary = CollectSummary::default();
    // What was last said missing, per device, so that it is said once, not every round.
    let mut said_missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // The index of the sample now due: rounds that overran the interval skip the ticks they
    // missed rather than firing them in a burst.
    let mut tick: u32 = 0;
    loop {
        let mut parts = Vec::new();
        for collector in collectors.iter_mut() {
            // Each collector's own time: scrapes run one after another, and a rate is only
            // right over the time that really passed between two of the same target's.
            match collector.sample(now_ms()) {
                Ok(Sampled { records, missing }) => {
                    writer.write(&records)?;
                    let values: Vec<String> = records
                        .iter()
                        .map(|r| format!("{} {:.3}", r.resource.name(), r.value))
                        .collect();
                    parts.push(format!("{} {}", collector.device(), values.join(" ")));
                    let previous = said_missing
                        .entry(collector.device().to_string())
                        .or_default();
                    if !missing.is_empty() && *previous != missing {
                        say(&format!(
                            "augur collect: {}: {}",
                            collector.device(),
                            missing.join("; ")
                        ));
                    }
                    *previous = missing;
                }
                Err(error) => {
                    summary.failures += 1;
                    say(&format!("augur collect: {}: {error}", collector.device()));
                }
            }
        }
        summary.rounds += 1;
        say(&format!(
            "augur collect: +{:.1}s {}",
            started.elapsed().as_secs_f64(),
            parts.join(", ")
        ));
        let elapsed = started.elapsed().as_nanos() / config.interval.as_nanos().max(1);
        tick = tick
            .saturating_add(1)
            .max(u32::try_from(elapsed.saturating_add(1)).unwrap_or(u32::MAX));
        let Some(due) = config.interval.checked_mul(tick) else {
            break;
        };
        if config.duration.is_some_and(|limit| due > limit) {
            break;
        }
        if wait_until(started + due, &stop) {
            summary.interrupted = true;
            break;
        }
    }
    summary.records = writer.written();
    if writer.refused() > 0 {
        say(&format!(
            "augur collect: {} records not written: their device name holds a line break, \
             which CSV cannot (write .jsonl)",
            writer.refused()
        ));
    }
    say(&format!(
        "augur collect: {} records in {} rounds ({} failed samples){}; written to {}",
        summary.records,
        summary.rounds,
        summary.failures,
        if summary.interrupted {
            ", stopped by a signal"
        } else {
            ""
        },
        config.out.display()
    ));
    if summary.records == 0 && summary.failures > 0 {
        return Err(CollectError::Nothing(format!(
            "all {} samples failed",
            summary.failures
        )));
    }
    // Targets that answered, but with nothing augur reads (an HTML page, an empty body), are
    // as good as none: an empty file and exit 0 read as success.
    if summary.records == 0 && summary.rounds > 0 && !summary.interrupted {
        return Err(CollectError::Nothing(format!(
            "{} rounds gave no record: the targets answered without the series augur reads",
            summary.rounds
        )));
    }
    Ok(summary)
}

/// Sleeps until `due`; `true` when the stop flag was raised first.
fn wait_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(STOP_POLL));
    }
}
