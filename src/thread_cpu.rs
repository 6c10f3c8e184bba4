//! CPU time per thread name while a piece of work runs, read from `/proc/self/task` (Linux):
//! what bounds a run whose reader, workers and writer each have a thread. A run's threads are
//! gone when it returns, so a watcher reads them every few milliseconds while it runs and keeps
//! each thread's last reading; the few milliseconds after the last reading are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the watcher reads the threads: a thread's CPU time after its last reading (up to
/// this long) is not counted.
const PERIOD: Duration = Duration::from_millis(20);

/// The kernel's clock ticks per second for `utime` and `stime` (USER_HZ, 100 on Linux).
pub(crate) const TICKS_PER_S: f64 = 100.0;

/// The name the watcher's own thread goes by, left out of what it reports.
const WATCHER: &str = "augur:cpu-watch";

/// A watcher reading every thread of this process until [`ThreadCpu::finish`].
pub struct ThreadCpu {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<HashMap<u64, (String, u64)>>>,
}

impl ThreadCpu {
    /// Starts watching; `None` where `/proc/self/task` cannot be read (not Linux) or no thread
    /// can be started.
    pub fn start() -> Option<ThreadCpu> {
        // Threads already running (the caller's) count from here, not from their start.
        let mut before = HashMap::new();
        if !read_tasks(&mut before) {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(WATCHER.into())
            .spawn(move || {
                let mut seen = HashMap::new();
                while !flag.load(Ordering::Relaxed) {
                    read_tasks(&mut seen);
                    std::thread::sleep(PERIOD);
                }
                read_tasks(&mut seen);
                for (tid, (_, ticks)) in &mut seen {
                    if let Some((_, earlier)) = before.get(tid) {
                        *ticks = ticks.saturating_sub(*earlier);
                    }
                }
                seen
            })
            .ok()?;
        Some(ThreadCpu {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops watching; CPU seconds per thread name while watched (threads that share a name
    /// summed, the watcher left out).
    pub fn finish(mut self) -> BTreeMap<String, f64> {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self
            .handle
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        by_name(seen.into_values())
    }
}

impl Drop for ThreadCpu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sums ticks per name, in seconds, leaving the watcher out.
fn by_name(threads: impl Iterator<Item = (String, u64)>) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for (name, ticks) in threads {
        if name != WATCHER {
            *totals.entry(name).or_insert(0.0) += ticks as f64 / TICKS_PER_S;
        }
    }
    totals
}

/// Reads every task of this process into `seen` (thread id to name and ticks, the latest
/// reading kept); false where the task folder cannot be listed.
fn read_tasks(seen: &mut HashMap<u64, (String, u64)>) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        // A thread may end between the listing and the read: it keeps its last reading.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
            if let Some(reading) = parse_stat(&stat) {
                seen.insert(tid, reading);
            }
        }
    }
    true
}

/// The name and `utime + stime` ticks of one `/proc/.../stat` line (a process's or a thread's).
pub(crate) fn parse_stat(stat: &str) -> Option<(String, u64)> {
    // The name sits in parentheses and may hold spaces or parentheses itself; the fields after
    // its last closing parenthesis do not.
    let open = stat.find('(')?;
    let (inside, rest) = stat[open + 1..].rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((inside.to_owned(), ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_ticks_even_with_parentheses_in_the_name() {
        let line = "4242 (augur:feed) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("augur:feed".to_owned(), 175)));
        let odd = "7 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 3 4 0 0";
        assert_eq!(parse_stat(odd), Some(("a (b) c".to_owned(), 7)));
        assert_eq!(parse_stat("7 (short) S 1 2"), None);
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn threads_of_one_name_are_summed_and_the_watcher_left_out() {
        let totals = by_name(
            [
                ("timely:work-0".to_owned(), 250),
                ("timely:work-1".to_owned(), 50),
                ("augur:feed".to_owned(), 100),
                ("augur:feed".to_owned(), 20),
                (WATCHER.to_owned(), 3),
            ]
            .into_iter(),
        );
        assert_eq!(totals.get("timely:work-0"), Some(&2.5));
        assert_eq!(totals.get("augur:feed"), Some(&1.2));
        assert_eq!(totals.get(WATCHER), None);
        assert_eq!(totals.len(), 3);
    }

    /// On Linux, a thread that spins while watched shows up under its name.
    #[test]
    fn a_busy_thread_is_seen_under_its_name() {
        let Some(watch) = ThreadCpu::start() else {
            return; // not Linux: nothing to read
        };
        std::thread::Builder::new()
            .name("cpu-watch-test".into())
            .spawn(|| {
                let started = std::time::Instant::now();
                let mut x = 0u64;
                while started.elapsed() < Duration::from_millis(300) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
            .expect("a thread starts")
            .join()
            .expect("the thread ends");
        let totals = watch.finish();
        // Present, with some time: how much depends on what else the machine runs.
        assert!(
            totals.get("cpu-watch-test").is_some_and(|&s| s > 0.0),
            "{totals:?}"
        );
    }
}
