//! Connecting the processes of a cluster run, and noticing when one goes away.
//!
//! timely's own connect loop retries a missing peer forever and prints "awaiting connections"
//! on stdout every second, and its network threads panic when a peer disappears, with nothing
//! that says which. augur therefore connects the processes itself, with a deadline and a
//! handshake, and hands timely the connected sockets wrapped in [`PeerStream`], which records
//! the first peer whose connection fails so the error can name it.
//!
//! The protocol: every process listens on its own address; process `i` connects to every
//! process `j < i` and sends `MAGIC, i, processes, workers, agreement (eight words)`; `j` answers the same
//! of its own. A connection that does not say this (another program, another run) is dropped
//! and waited past. Both sides then compare the worker counts (timely's threads index peers'
//! workers by their own count, and panic on another) and the agreement (a hash of the settings
//! and inputs every process reads, without which the processes would each compute another
//! map): a peer that differs stops both with [`ConnectError::Differs`], once the round of
//! connections is complete, so that every process of the cluster has compared with every
//! other and stops too.
//! Each pair also opens a second connection the same way, with `HEARTBEAT_MAGIC`: a thread on
//! each side writes a byte to it every [`BEAT`] and another reads, so that a peer that stops
//! (SIGSTOP, a hung host, a partition that closes nothing) is told from one that is merely busy
//! or has nothing to send, which timely's own connection cannot tell: it carries bytes only when
//! data or progress moves.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks, WorkerGuards};
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use crate::engine::Workers;

/// "augur-p4" in ASCII: the first word of every handshake of a data connection (4: the hello
/// carries the worker count and the eight parts of the agreement; a build of another hello is
/// told from this one).
const MAGIC: u64 = 0x6175_6775_722d_7034;

/// "augur-h4" in ASCII: the first word of the handshake of a heartbeat connection.
const HEARTBEAT_MAGIC: u64 = 0x6175_6775_722d_6834;

/// How often each process writes a byte to each peer's heartbeat connection.
pub const BEAT: Duration = Duration::from_millis(500);

/// How long one connect attempt, or a handshake, may take before it is retried or dropped.
const ATTEMPT: Duration = Duration::from_secs(2);

/// How long to wait between attempts to reach a peer that is not listening yet.
const RETRY: Duration = Duration::from_millis(100);

/// What a process says of itself when it connects: who it is, and what its peers must share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Data or heartbeat connection.
    kind: u64,
    /// The sender's process index.
    process: u64,
    /// The number of processes of its run.
    processes: u64,
    /// Worker threads in the sender's process.
    workers: u64,
    /// The sender's agreement hashes (`Workers::Cluster::agreement`).
    agreement: [u64; AGREEMENT_PARTS],
}

/// Hashes in an agreement: one per setting a user may give one process and not another, so
/// that a refusal names the one that differs.
pub const AGREEMENT_PARTS: usize = 8;

/// Four words (kind, process, processes, workers), then the agreement.
const HELLO_BYTES: usize = 8 * (4 + AGREEMENT_PARTS);

/// What the processes of a cluster must agree on to compute the same result: up to eight
/// hashes, each with what it covers in the caller's words (so that a peer that differs is
/// told what), and what they cover together (for the message). Unused parts are zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agreement {
    /// Each part's hash and what it covers.
    pub parts: [(u64, &'static str); AGREEMENT_PARTS],
    /// Everything the parts cover, as the caller's flags.
    pub shared: &'static str,
}

/// Why the workers' communication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CommunicationError {
    /// The processes could not be connected.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// timely could not build the communication over the connections (or in-process).
    #[error("{0}")]
    Timely(String),
}

/// Why the processes could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// This process could not listen on its own address.
    #[error("cannot listen on {address} (process {process}): {source}")]
    Listen {
        /// This process.
        process: usize,
        /// Its address.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// A peer did not connect, or could not be reached, before the deadline.
    #[error(
        "process {process} at {address} did not connect within {seconds} s{detail} (if it \
         was started, its own error says why)"
    )]
    Timeout {
        /// The missing peer.
        process: usize,
        /// Its address.
        address: String,
        /// The connect timeout.
        seconds: f64,
        /// The last error seen while trying, if any.
        detail: String,
    },
    /// A peer answered, but not as the expected augur process.
    #[error("{address} answered as something other than augur process {process} of {processes}")]
    Mismatch {
        /// The peer expected there.
        process: usize,
        /// Its address.
        address: String,
        /// The number of processes of this run.
        processes: usize,
    },
    /// A peer runs another number of workers, or other settings or inputs.
    #[error(
        "process {process} at {address} {what}; every process of a run needs the same {shared}"
    )]
    Differs {
        /// The peer.
        process: usize,
        /// Its address.
        address: String,
        /// What differs, in words.
        what: String,
        /// What every process must share, in the caller's words (its flags).
        shared: &'static str,
    },
}

/// Set once any connection to a peer has failed or closed in this process.
static A_PEER_WAS_LOST: AtomicBool = AtomicBool::new(false);

/// Set when this process's run fails, before its connections close: its heartbeats then end
/// with [`ENDED_FAILED`] instead of [`ENDED_WELL`].
static THIS_PROCESS_FAILED: AtomicBool = AtomicBool::new(false);

/// A heartbeat connection's last byte: the run ended well in that process.
const ENDED_WELL: u8 = 1;
/// A heartbeat connection's last byte: the run failed in that process.
const ENDED_FAILED: u8 = 2;
/// How long a process ending waits for its peers' last heartbeat bytes: peers end their
/// workers together, so this is moments unless a peer is gone (its connection then closes).
const END_WAIT: Duration = Duration::from_secs(5);

/// Marks this process's run as failed, for the peers to hear as its connections close.
pub fn note_failure() {
    THIS_PROCESS_FAILED.store(true, Ordering::SeqCst);
}

/// Whether a connection to a peer process has failed or closed. From then on timely's threads
/// panic one after the other, each a consequence of the loss rather than news: `main`'s panic
/// hook stays quiet and the run's one error names the peer.
pub fn a_peer_was_lost() -> bool {
    A_PEER_WAS_LOST.load(Ordering::SeqCst)
}

/// The first peer whose connection failed, shared by every [`PeerStream`] of a run, and the
/// heartbeat stamps of its peers.
#[derive(Clone, Debug, Default)]
pub struct LostPeer {
    lost: Arc<Mutex<Option<String>>>,
    heard: Arc<Mutex<Vec<Arc<Heard>>>>,
}

/// When a byte last came from one peer over its heartbeat connection, in milliseconds since
/// [`clock_start`], stamped by that connection's reading thread.
#[derive(Debug)]
struct Heard {
    process: usize,
    address: Arc<str>,
    at_ms: AtomicU64,
    /// The peer closed its heartbeat connection: it ended (or died, which its data connection
    /// reports), so its silence from then on says nothing.
    ended: AtomicBool,
    /// The last byte the peer sent as it ended: [`ENDED_WELL`], [`ENDED_FAILED`], or 0.
    end: std::sync::atomic::AtomicU8,
}

impl Heard {
    fn stamp(&self) {
        self.at_ms.store(clock_ms(), Ordering::Relaxed);
    }
}

/// The zero of the peers' last-heard clock.
fn clock_start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn clock_ms() -> u64 {
    u64::try_from(clock_start().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl LostPeer {
    /// Why the first lost peer was lost (`process N at ADDRESS: what happened`), if one was.
    pub fn get(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|lost| lost.clone())
    }

    fn record(&self, what: impl FnOnce() -> String) {
        A_PEER_WAS_LOST.store(true, Ordering::SeqCst);
        if let Ok(mut lost) = self.lost.lock() {
            if lost.is_none() {
                *lost = Some(what());
            }
        }
    }

    /// Records as lost, and returns, the first peer that has sent nothing for `limit`: one
    /// that is stopped, hung, or cut off without its connection closing (a process kept alive
    /// but frozen, a silent network partition), which TCP alone never reports. A healthy peer
    /// is never that quiet: its heartbeat thread writes every [`BEAT`] whatever its workers
    /// do. A peer that closed its heartbeat connection (it ended) is not counted.
    pub fn silent_for(&self, limit: Duration) -> Option<String> {
        let now = clock_ms();
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let silent = self.heard.lock().ok().and_then(|heard| {
            heard.iter().find_map(|peer| {
                if peer.ended.load(Ordering::Relaxed) {
                    return None;
                }
                let at = peer.at_ms.load(Ordering::Relaxed);
                (now.saturating_sub(at) > limit_ms).then(|| {
                    format!(
                        "process {} at {} has sent nothing for {:.0} s (stopped, hung or \
                         unreachable; see --peer-timeout)",
                        peer.process,
                        peer.address,
                        limit.as_secs_f64()
                    )
                })
            })
        })?;
        self.record(|| silent.clone());
        self.get()
    }

    /// The first peer that said it ended on an error of its own, if one did.
    pub fn failed_peer(&self) -> Option<String> {
        let heard = self.heard.lock().ok()?;
        heard
            .iter()
            .find(|peer| peer.end.load(Ordering::SeqCst) == ENDED_FAILED)
            .map(|peer| format!("process {} at {}", peer.process, peer.address))
    }

    /// Watches one peer whose heartbeats are being read.
    fn watch(&self, peer: Arc<Heard>) {
        if let Ok(mut heard) = self.heard.lock() {
            heard.push(peer);
        }
    }
}

/// A connection to one peer that records, in its run's [`LostPeer`], a read or write that
/// fails or finds the connection closed (timely's threads only panic with the OS error).
pub struct PeerStream {
    stream: TcpStream,
    process: usize,
    address: Arc<str>,
    lost: LostPeer,
}

impl PeerStream {
    fn note<T>(&self, result: io::Result<T>, closed: impl FnOnce(&T) -> bool) -> io::Result<T> {
        match &result {
            Ok(value) if closed(value) => self.lost.record(|| {
                format!(
                    "process {} at {} closed the connection",
                    self.process, self.address
                )
            }),
            Err(error) if error.kind() != io::ErrorKind::Interrupted => self
                .lost
                .record(|| format!("process {} at {}: {error}", self.process, self.address)),
            _ => {}
        }
        result
    }
}

impl Read for PeerStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let result = self.stream.read(buffer);
        // A clean end of stream is also how a killed peer looks; timely's receive loop treats
        // it as the end of the run, so it is noted but only reported if the run then fails.
        let asked = !buffer.is_empty();
        self.note(result, |&read| asked && read == 0)
    }
}

impl Write for PeerStream {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let result = self.stream.write(buffer);
        self.note(result, |_| false)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.stream.flush();
        self.note(result, |_| false)
    }
}

impl Stream for PeerStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(PeerStream {
            stream: self.stream.try_clone()?,
            process: self.process,
            address: Arc::clone(&self.address),
            lost: self.lost.clone(),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }
}

/// The workers' communication, set up and (for a cluster) connected, ready for [`execute`].
pub struct Communication {
    builders: Vec<AllocatorBuilder>,
    /// What keeps the network threads alive (joined when dropped).
    guard: Box<dyn std::any::Any + Send>,
}

/// Sets up the communication of `workers`; a cluster is connected within its connect timeout,
/// its connections recording a lost peer in `lost`.
pub fn communication(
    workers: Workers,
    lost: &LostPeer,
) -> Result<Communication, CommunicationError> {
    let (builders, guard) = match workers {
        Workers::Threads(n) if n <= 1 => CommunicationConfig::Thread
            .try_build()
            .map_err(CommunicationError::Timely)?,
        Workers::Threads(n) => CommunicationConfig::Process(n)
            .try_build()
            .map_err(CommunicationError::Timely)?,
        Workers::Cluster {
            threads,
            process,
            addresses,
            connect_timeout,
            agreement,
            ..
        } => {
            let threads = threads.max(1);
            let own = Own {
                workers: threads,
                agreement,
            };
            let (sockets, heartbeats) = connect(&addresses, process, own, connect_timeout, lost)?;
            let hooks = Hooks::default();
            let local = ProcessBuilder::new_typed_vector(
                threads,
                hooks.refill.clone(),
                hooks.spill.clone(),
            );
            let (builders, guard) =
                initialize_networking_from_sockets(local, sockets, process, threads, hooks)
                    .map_err(|error| CommunicationError::Timely(error.to_string()))?;
            let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
            // Dropped together when the workers are done: the network threads are joined,
            // then the heartbeats stop and their connections close, which tells the peers
            // that this process ended rather than stopped.
            (
                builders,
                Box::new((guard, heartbeats)) as Box<dyn std::any::Any + Send>,
            )
        }
    };
    Ok(Communication { builders, guard })
}

/// Starts the workers over `communication`, as `timely::execute` does over its own.
pub fn execute<T, F>(communication: Communication, func: F) -> Result<WorkerGuards<T>, String>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    timely::execute::execute_from(
        communication.builders,
        communication.guard,
        WorkerConfig::default(),
        func,
    )
}

/// What this process tells its peers of itself beyond its index: its worker count and its
/// agreement hash, which theirs must equal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Own {
    /// Worker threads in this process.
    pub workers: usize,
    /// See `Workers::Cluster::agreement`.
    pub agreement: Agreement,
}

impl Own {
    fn hello(self, kind: u64, me: usize, processes: usize) -> Hello {
        Hello {
            kind,
            process: me as u64,
            processes: processes as u64,
            workers: self.workers as u64,
            agreement: self.agreement.parts.map(|(hash, _)| hash),
        }
    }

    /// What differs between this process and `peer`'s hello, in words, if anything.
    fn differs_from(self, peer: &Hello) -> Option<String> {
        if peer.workers != self.workers as u64 {
            Some(format!(
                "runs {} worker{} per process where this one runs {}",
                peer.workers,
                if peer.workers == 1 { "" } else { "s" },
                self.workers
            ))
        } else {
            let differing: Vec<&str> = (self.agreement.parts.iter())
                .zip(peer.agreement)
                .filter(|((own, _), theirs)| own != theirs)
                .map(|((_, what), _)| *what)
                .collect();
            (!differing.is_empty()).then(|| {
                format!(
                    "was started with other {} than this one",
                    differing.join(" and other ")
                )
            })
        }
    }
}

/// Connects this process (`me`) to every other one of `addresses` within `timeout`: one
/// stream per peer in process order, `None` at `me`, as timely expects. A peer whose worker
/// count or agreement differs from `own` ends it with [`ConnectError::Differs`].
pub fn connect(
    addresses: &[String],
    me: usize,
    own: Own,
    timeout: Duration,
    lost: &LostPeer,
) -> Result<(Vec<Option<PeerStream>>, Heartbeats), ConnectError> {
    let deadline = Instant::now() + timeout;
    let processes = addresses.len();
    let my_address = addresses.get(me).cloned().unwrap_or_default();
    // Listen first, so that higher processes can connect while this one reaches lower ones.
    let listener =
        TcpListener::bind(my_address.as_str()).map_err(|source| ConnectError::Listen {
            process: me,
            address: my_address.clone(),
            source,
        })?;
    let mut sockets: Vec<Option<TcpStream>> = (0..processes).map(|_| None).collect();
    let mut beats: Vec<Option<TcpStream>> = (0..processes).map(|_| None).collect();
    // A peer that differs ends the run, but the round goes on (every other process dialled
    // or answered, as if none differed) so that each process compares with each and stops
    // too: in a cluster of three, the third waited out the connect timeout for a process
    // that had already left.
    let mut refused: Option<ConnectError> = None;
    for (peer, address) in addresses.iter().enumerate().take(me) {
        let mine = |kind| own.hello(kind, me, processes);
        match dial(address, peer, mine(MAGIC), own, deadline, timeout) {
            Ok(stream) => sockets[peer] = Some(stream),
            // A peer that differs gets no heartbeat connection: it waits for none.
            Err(error @ ConnectError::Differs { .. }) => {
                refused.get_or_insert(error);
                continue;
            }
            Err(error) => return Err(refused.unwrap_or(error)),
        }
        match dial(address, peer, mine(HEARTBEAT_MAGIC), own, deadline, timeout) {
            Ok(stream) => beats[peer] = Some(stream),
            Err(error) => return Err(refused.unwrap_or(error)),
        }
    }
    accept_higher(
        &listener,
        addresses,
        me,
        own,
        deadline,
        timeout,
        &mut sockets,
        &mut beats,
        &mut refused,
    )?;
    if let Some(error) = refused {
        return Err(error);
    }
    let mut heartbeats = Heartbeats::default();
    let streams = sockets
        .into_iter()
        .zip(beats)
        .enumerate()
        .map(|(process, (stream, beat))| {
            stream.map(|stream| {
                let address: Arc<str> = Arc::from(addresses[process].as_str());
                if let Some(beat) = beat {
                    heartbeats.start(beat, process, Arc::clone(&address), lost);
                }
                PeerStream {
                    stream,
                    process,
                    address,
                    lost: lost.clone(),
                }
            })
        })
        .collect();
    Ok((streams, heartbeats))
}

/// The heartbeat connections of one process: each written every [`BEAT`] by a thread, and
/// read by another that stamps when the peer was last heard, for [`LostPeer::silent_for`].
/// Dropping this stops the writers and closes the connections.
#[derive(Default)]
pub struct Heartbeats {
    stop: Arc<AtomicBool>,
    /// Writing paused (tests: a process that stops beating without closing anything).
    paused: Arc<AtomicBool>,
    streams: Vec<TcpStream>,
    /// What each peer's reading thread has heard, to wait on its last word at the end.
    heard: Vec<Arc<Heard>>,
}

impl Heartbeats {
    /// Beats to `process` on `stream` and watches its beats in `lost`. Where a thread cannot
    /// be had, the peer is not watched (its silence is not measured), rather than watched with
    /// no reader to stamp it.
    fn start(&mut self, stream: TcpStream, process: usize, address: Arc<str>, lost: &LostPeer) {
        let (Ok(mut writer), Ok(mut reader)) = (stream.try_clone(), stream.try_clone()) else {
            return;
        };
        self.streams.push(stream);
        let heard = Arc::new(Heard {
            process,
            address,
            at_ms: AtomicU64::new(clock_ms()),
            ended: AtomicBool::new(false),
            end: std::sync::atomic::AtomicU8::new(0),
        });
        let stamped = Arc::clone(&heard);
        let reading = std::thread::Builder::new()
            .name(format!("augur:beat-from-{process}"))
            .spawn(move || {
                let mut buffer = [0u8; 64];
                loop {
                    match reader.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => {
                            stamped.stamp();
                            // Beats are 0; a peer's last byte says how its run ended.
                            if let Some(&end) = buffer[..read].iter().rfind(|&&b| b != 0) {
                                stamped.end.store(end, Ordering::SeqCst);
                                break;
                            }
                        }
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                // Closed or failed: the peer ended, or died, which its data connection
                // reports. Either way its silence is no longer news.
                stamped.ended.store(true, Ordering::Relaxed);
            });
        if reading.is_ok() {
            self.heard.push(Arc::clone(&heard));
            lost.watch(heard);
        }
        let (stop, paused) = (Arc::clone(&self.stop), Arc::clone(&self.paused));
        let _ = std::thread::Builder::new()
            .name(format!("augur:beat-to-{process}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if !paused.load(Ordering::Relaxed) && writer.write_all(&[0]).is_err() {
                        break;
                    }
                    std::thread::sleep(BEAT);
                }
            });
    }

    /// Stops writing heartbeats but keeps the connections open, as a stopped process would.
    #[cfg(test)]
    fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Each peer hears how this process's run ended, then this one waits (briefly) to hear
        // theirs before closing: closing first would cut off its own reading of their word.
        let end = if THIS_PROCESS_FAILED.load(Ordering::SeqCst) {
            ENDED_FAILED
        } else {
            ENDED_WELL
        };
        for stream in &self.streams {
            let mut writer: &TcpStream = stream;
            let _ = writer.write_all(&[end]);
            let _ = stream.shutdown(Shutdown::Write);
        }
        let deadline = Instant::now() + END_WAIT;
        while Instant::now() < deadline
            && !self
                .heard
                .iter()
                // The reader marks a peer ended once it has its last byte, or its close.
                .all(|h| h.ended.load(Ordering::SeqCst))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for stream in &self.streams {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn timeout_error(
    process: usize,
    address: &str,
    timeout: Duration,
    last: Option<String>,
) -> ConnectError {
    ConnectError::Timeout {
        process,
        address: address.to_string(),
        seconds: timeout.as_secs_f64(),
        detail: last.map_or(String::new(), |error| format!(" (last error: {error})")),
    }
}

/// Connects to a lower process, retrying until the deadline, says `mine` and checks its
/// answer against it.
fn dial(
    address: &str,
    peer: usize,
    mine: Hello,
    own: Own,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout_error(peer, address, timeout, last));
        }
        // Once connected, the answer may take until the deadline: the peer answers after it
        // has reached the processes below it.
        match try_dial(address, &mine, left.min(ATTEMPT), left) {
            Ok(mut stream) => match read_hello(&mut stream) {
                Ok(hello)
                    if hello.kind == mine.kind
                        && hello.process == peer as u64
                        && hello.processes == mine.processes =>
                {
                    if let Some(what) = own.differs_from(&hello) {
                        return Err(ConnectError::Differs {
                            process: peer,
                            address: address.to_string(),
                            what,
                            shared: own.agreement.shared,
                        });
                    }
                    return set_up(stream).map_err(|error| {
                        timeout_error(peer, address, timeout, Some(error.to_string()))
                    });
                }
                Ok(_) => {
                    return Err(ConnectError::Mismatch {
                        process: peer,
                        address: address.to_string(),
                        processes: mine.processes as usize,
                    })
                }
                Err(error) => last = Some(error.to_string()),
            },
            Err(error) => last = Some(error.to_string()),
        }
        std::thread::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn try_dial(
    address: &str,
    mine: &Hello,
    limit: Duration,
    answer_within: Duration,
) -> io::Result<TcpStream> {
    let resolved: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for socket_address in resolved {
        match TcpStream::connect_timeout(&socket_address, limit) {
            Ok(mut stream) => {
                stream.set_read_timeout(Some(answer_within))?;
                stream.set_write_timeout(Some(limit))?;
                write_hello(&mut stream, mine)?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Accepts the higher processes until each has said hello on a data and a heartbeat
/// connection (one that differs from `own`, on its data connection only), or the deadline
/// passes. Every hello is answered first, so that its sender can compare too; a difference is
/// recorded in `refused` (the first), which the caller makes the outcome once the round is
/// complete.
#[allow(clippy::too_many_arguments)]
fn accept_higher(
    listener: &TcpListener,
    addresses: &[String],
    me: usize,
    own: Own,
    deadline: Instant,
    timeout: Duration,
    sockets: &mut [Option<TcpStream>],
    beats: &mut [Option<TcpStream>],
    refused: &mut Option<ConnectError>,
) -> Result<(), ConnectError> {
    let processes = addresses.len();
    let listen_error = |source| ConnectError::Listen {
        process: me,
        address: addresses[me].clone(),
        source,
    };
    listener.set_nonblocking(true).map_err(listen_error)?;
    let mut differs = vec![false; processes];
    loop {
        let missing = (me + 1..processes)
            .find(|&peer| !differs[peer] && (sockets[peer].is_none() || beats[peer].is_none()));
        let Some(missing) = missing else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(match refused.take() {
                Some(error) => error,
                None => timeout_error(missing, &addresses[missing], timeout, None),
            });
        }
        match listener.accept() {
            Ok((mut stream, _)) => {
                // A stranger's connection is dropped; it must not stop the run from starting.
                let hello = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(ATTEMPT)))
                    .and_then(|()| stream.set_write_timeout(Some(ATTEMPT)))
                    .and_then(|()| read_hello(&mut stream));
                let Ok(hello) = hello else {
                    continue;
                };
                let Ok(index) = usize::try_from(hello.process) else {
                    continue;
                };
                if hello.processes != processes as u64 || index <= me || index >= processes {
                    continue;
                }
                // A second hello from the same process replaces the first: the peer gave up on
                // that connection and dialled again.
                if write_hello(&mut stream, &own.hello(hello.kind, me, processes)).is_err() {
                    continue;
                }
                if let Some(what) = own.differs_from(&hello) {
                    differs[index] = true;
                    refused.get_or_insert(ConnectError::Differs {
                        process: index,
                        address: addresses[index].clone(),
                        what,
                        shared: own.agreement.shared,
                    });
                    continue;
                }
                if let Ok(stream) = set_up(stream) {
                    if hello.kind == HEARTBEAT_MAGIC {
                        beats[index] = Some(stream);
                    } else {
                        sockets[index] = Some(stream);
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())));
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(listen_error(source)),
        }
    }
}

/// Blocking, no timeouts and no delay, as timely's send and receive threads expect.
fn set_up(stream: TcpStream) -> io::Result<TcpStream> {
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn write_hello(stream: &mut TcpStream, hello: &Hello) -> io::Result<()> {
    let mut bytes = [0u8; HELLO_BYTES];
    let head = [hello.kind, hello.process, hello.processes, hello.workers];
    let words = head.into_iter().chain(hello.agreement);
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    stream.write_all(&bytes)
}

/// Reads a hello; anything that does not start with one of augur's magic words is refused.
fn read_hello(stream: &mut TcpStream) -> io::Result<Hello> {
    let mut bytes = [0u8; HELLO_BYTES];
    stream.read_exact(&mut bytes)?;
    let word = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(word)
    };
    if word(0) != MAGIC && word(0) != HEARTBEAT_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an augur handshake",
        ));
    }
    Ok(Hello {
        kind: word(0),
        process: word(8),
        processes: word(16),
        workers: word(24),
        agreement: std::array::from_fn(|part| word(32 + 8 * part)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(hashes: [u64; 4]) -> Agreement {
        let what = [
            "forecast settings",
            "placement settings",
            "workflow files",
            "platform file",
        ];
        Agreement {
            parts: std::array::from_fn(|k| match k {
                0..4 => (hashes[k], what[k]),
                _ => (0, ""),
            }),
            shared: "--workers and settings",
        }
    }

    fn free_address() -> String {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.to_string())
            .unwrap_or_else(|_| "127.0.0.1:0".to_string())
    }

    #[test]
    fn three_processes_connect_to_each_other() {
        let addresses: Vec<String> = (0..3).map(|_| free_address()).collect();
        let handles: Vec<_> = (0..3)
            .map(|me| {
                let addresses = addresses.clone();
                std::thread::spawn(move || {
                    connect(
                        &addresses,
                        me,
                        Own::default(),
                        Duration::from_secs(20),
                        &LostPeer::default(),
                    )
                    .map(|(sockets, _)| sockets.iter().map(Option::is_some).collect::<Vec<_>>())
                    .map_err(|error| error.to_string())
                })
            })
            .collect();
        for (me, handle) in handles.into_iter().enumerate() {
            let connected = handle.join().map_err(|_| "panicked".to_string());
            let expected: Vec<bool> = (0..3).map(|peer| peer != me).collect();
            assert_eq!(connected, Ok(Ok(expected)), "process {me}");
        }
    }

    /// Two processes that exchange no data stay heard from through their heartbeats; when one
    /// stops beating (its connections open, as a stopped process leaves them) the other finds
    /// it silent and names it; once it ends (its heartbeats closed), its silence is no news.
    type Connected = (Vec<Option<PeerStream>>, Heartbeats);

    /// Process 0 (watching in `lost`) and process 1 of a two-process cluster, connected.
    fn connected_pair(lost: &LostPeer) -> (Connected, Connected) {
        let addresses = vec![free_address(), free_address()];
        let peer_addresses = addresses.clone();
        let peer = std::thread::spawn(move || {
            connect(
                &peer_addresses,
                1,
                Own::default(),
                Duration::from_secs(20),
                &LostPeer::default(),
            )
            .map_err(|error| error.to_string())
        });
        let me = connect(&addresses, 0, Own::default(), Duration::from_secs(20), lost)
            .expect("connects");
        let peer = peer
            .join()
            .map_err(|_| "panicked".to_string())
            .and_then(|connected| connected)
            .expect("the peer connects");
        (me, peer)
    }

    #[test]
    fn heartbeats_tell_a_stopped_peer_from_an_idle_one() {
        let lost = LostPeer::default();
        let (_me, (_peer_streams, peer_beats)) = connected_pair(&lost);
        let limit = BEAT * 4;
        std::thread::sleep(limit + BEAT * 2);
        assert_eq!(lost.silent_for(limit), None, "an idle peer still beats");
        peer_beats.pause();
        std::thread::sleep(limit + BEAT * 2);
        let silent = lost.silent_for(limit).unwrap_or_default();
        assert!(
            silent.contains("process 1 at") && silent.contains("sent nothing"),
            "{silent}"
        );
        let ended = LostPeer::default();
        let (_me, peer) = connected_pair(&ended);
        drop(peer);
        std::thread::sleep(limit + BEAT * 2);
        assert_eq!(
            ended.silent_for(limit),
            None,
            "a peer that ended is not lost"
        );
    }

    #[test]
    fn a_missing_peer_times_out_naming_it() {
        let addresses = vec![free_address(), free_address()];
        let started = Instant::now();
        let error = connect(
            &addresses,
            0,
            Own::default(),
            Duration::from_millis(500),
            &LostPeer::default(),
        )
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
        assert!(error.contains("process 1 at"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let error = connect(
            &addresses,
            1,
            Own::default(),
            Duration::from_millis(500),
            &LostPeer::default(),
        )
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
        assert!(error.contains("process 0 at"), "{error}");
    }

    #[test]
    fn a_stranger_on_the_port_is_waited_past() {
        let addresses = vec![free_address(), free_address()];
        let stranger_to = addresses[0].clone();
        let peer_addresses = addresses.clone();
        let stranger = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut stream = TcpStream::connect(stranger_to.as_str())?;
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            std::thread::sleep(Duration::from_millis(300));
            // Then the real peer.
            connect(
                &peer_addresses,
                1,
                Own::default(),
                Duration::from_secs(20),
                &LostPeer::default(),
            )
            .map(|_| ())
            .map_err(|error| io::Error::other(error.to_string()))
        });
        let sockets = connect(
            &addresses,
            0,
            Own::default(),
            Duration::from_secs(20),
            &LostPeer::default(),
        );
        assert!(sockets.is_ok_and(|(sockets, _)| sockets[1].is_some()));
        assert!(stranger.join().is_ok_and(|result| result.is_ok()));
    }

    /// Process 1's connect over `addresses` (process 0 connecting in this thread with `own`),
    /// with `theirs`: both results, as text.
    fn connect_pair_with(own: Own, theirs: Own) -> (String, String) {
        let addresses = vec![free_address(), free_address()];
        let peer_addresses = addresses.clone();
        let peer = std::thread::spawn(move || {
            connect(
                &peer_addresses,
                1,
                theirs,
                Duration::from_secs(20),
                &LostPeer::default(),
            )
            .map(|_| ())
            .map_err(|error| error.to_string())
        });
        let me = connect(
            &addresses,
            0,
            own,
            Duration::from_secs(20),
            &LostPeer::default(),
        )
        .map(|_| ())
        .map_err(|error| error.to_string());
        let peer = peer.join().unwrap_or_else(|_| Err("panicked".to_string()));
        let text = |result: Result<(), String>| result.err().unwrap_or_else(|| "ok".to_string());
        (text(me), text(peer))
    }

    #[test]
    fn in_a_cluster_of_three_every_process_stops_when_one_differs() {
        // The two that agree used to reach only the odd one out between them: the other
        // waited out the connect timeout for a process that had already left.
        let own = Own {
            workers: 2,
            agreement: agreement([7, 7, 7, 7]),
        };
        for odd in 0..3 {
            let addresses: Vec<String> = (0..3).map(|_| free_address()).collect();
            let started = Instant::now();
            let handles: Vec<_> = (0..3)
                .map(|me| {
                    let addresses = addresses.clone();
                    let mine = if me == odd {
                        Own {
                            agreement: agreement([7, 8, 7, 7]),
                            ..own
                        }
                    } else {
                        own
                    };
                    std::thread::spawn(move || {
                        connect(
                            &addresses,
                            me,
                            mine,
                            Duration::from_secs(20),
                            &LostPeer::default(),
                        )
                        .map(|_| ())
                        .map_err(|error| error.to_string())
                    })
                })
                .collect();
            for (me, handle) in handles.into_iter().enumerate() {
                let outcome = handle
                    .join()
                    .unwrap_or_else(|_| Err("panicked".to_string()));
                let error = outcome.err().unwrap_or_default();
                assert!(
                    error.contains("other placement settings than this one"),
                    "odd {odd}, process {me}: {error}"
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "odd {odd}: took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn processes_with_other_workers_or_settings_refuse_each_other() {
        let own = Own {
            workers: 2,
            agreement: agreement([7, 7, 7, 7]),
        };
        assert_eq!(
            connect_pair_with(own, own),
            ("ok".to_string(), "ok".to_string())
        );
        // timely's network threads panicked on another worker count (an index out of bounds).
        let (me, peer) = connect_pair_with(own, Own { workers: 1, ..own });
        assert!(
            me.contains("process 1 at")
                && me.contains("runs 1 worker per process where this one runs 2"),
            "{me}"
        );
        assert!(
            peer.contains("process 0 at")
                && peer.contains("runs 2 workers per process where this one runs 1"),
            "{peer}"
        );
        // Other settings made another map, silently; the message says which.
        let (me, peer) = connect_pair_with(
            own,
            Own {
                agreement: agreement([8, 7, 7, 9]),
                ..own
            },
        );
        for (text, other) in [(&me, "process 1"), (&peer, "process 0")] {
            assert!(
                text.contains(other)
                    && text.contains("other forecast settings and other platform file than")
                    && text.contains("needs the same --workers and settings"),
                "{text}"
            );
        }
    }
}
