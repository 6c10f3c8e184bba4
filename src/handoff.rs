//! Moving a value onto a thread of its own, without losing it when no thread can be started.
//! `ReadAhead` and `WriteBehind` move the feed and the sink this way.

use std::sync::mpsc::sync_channel;
use std::thread::JoinHandle;

/// Starts a thread named `name` that runs `body` on `value`. The value is handed over only
/// once the thread exists, so if it cannot be started (or ends before taking it) the value
/// comes back as the error and the caller goes on without a thread.
pub fn spawn_owning<T, R>(
    name: &str,
    value: T,
    body: impl FnOnce(T) -> R + Send + 'static,
) -> Result<JoinHandle<R>, T>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (hand_over, taken) = sync_channel::<T>(1);
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            body(
                taken
                    .recv()
                    .expect("the value is handed over right after the spawn"),
            )
        });
    let Ok(thread) = spawned else {
        return Err(value);
    };
    match hand_over.send(value) {
        Ok(()) => Ok(thread),
        Err(std::sync::mpsc::SendError(value)) => Err(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_runs_on_the_named_thread_and_comes_back() {
        let thread = spawn_owning("augur:test", vec![1, 2, 3], |mut values: Vec<i32>| {
            values.push(4);
            (std::thread::current().name().map(str::to_string), values)
        });
        let (name, values) = thread.ok().map(|t| t.join()).and_then(Result::ok).unzip();
        assert_eq!(name.flatten().as_deref(), Some("augur:test"));
        assert_eq!(values, Some(vec![1, 2, 3, 4]));
    }
}
