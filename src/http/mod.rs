//! A small HTTP/1.1 server on `std::net` and threads: one request per connection, bounded
//! heads and bodies, read and write timeouts, a cap on concurrent connections, and a stop flag
//! polled by the accept loop so the owner can shut it down cleanly.
//!
//! It knows nothing of augur: a handler turns a [`Request`] into a [`Response`].

mod request;
mod response;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use request::{
    body_length, parse_head, read_request, read_request_admitted, Head, Limits, Request,
    RequestError,
};
pub use response::{reason, Body, Response, StreamBody};

/// Turns a request into a response (called on the connection's thread).
pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// Looks at a request's head before the request takes a slot or its body is read, and may
/// answer it there (a request without the token a server asks for: stalled uploads of clients
/// without it held every upload slot, and the clients with it were turned away).
pub type Screen = Arc<dyn Fn(&Head) -> Option<Response> + Send + Sync>;

/// Told the status of each answer the server gives without calling the handler (a malformed,
/// oversized or slow request; a connection over the limit), so that they are counted too.
pub type Refused = Arc<dyn Fn(u16) + Send + Sync>;

/// How the server treats connections.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    /// Size limits of a request.
    pub limits: Limits,
    /// How long a read or a write may stall before the connection is dropped.
    pub io_timeout: Duration,
    /// Requests served at once (read whole, being answered); more are answered 503 at once.
    /// Those with a body and those without count apart, each up to this: bodiless requests
    /// (a liveness probe, a status read) are not turned away while as many uploads stall, and
    /// slow uploads, whose bodies are held in memory, stay bounded by it.
    pub max_connections: usize,
    /// Connections whose request has not yet arrived whole; more are answered 503 at once.
    /// Apart from `max_connections`: clients that connect and send nothing (for up to the
    /// head's deadline) filled the request slots, and every real request was refused.
    pub max_waiting: usize,
    /// A path whose bodiless requests take no request slot: a liveness probe, answered however
    /// many clients hold the slots (70 clients that never read a 4 MB answer held every
    /// bodiless slot, and the probe was answered 503 for two minutes).
    pub probe_path: Option<&'static str>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            limits: Limits::default(),
            io_timeout: Duration::from_secs(30),
            max_connections: 64,
            max_waiting: 1024,
            probe_path: None,
        }
    }
}

/// Accepts connections on `listener` until `stop` is set, serving each on its own thread.
/// Returns once the accept loop has stopped; connections still being served finish on their
/// own threads (streams end when their source closes).
pub fn serve(
    listener: TcpListener,
    options: ServerOptions,
    screen: Screen,
    handler: Handler,
    refused: Refused,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    // Non-blocking accept, polled: the loop sees `stop` within one poll interval without
    // needing a wake-up connection (which a non-loopback bind may not accept from itself).
    listener.set_nonblocking(true)?;
    let active = Arc::new(Active::default());
    let waiting = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let _ = stream.set_nonblocking(false);
                // A client that sends nothing is let go when its head would be late anyway.
                let read_timeout = options.io_timeout.min(options.limits.head_timeout);
                let _ = stream.set_read_timeout(Some(read_timeout.max(Duration::from_millis(1))));
                let _ = stream.set_write_timeout(Some(options.io_timeout));
                let _ = stream.set_nodelay(true);
                let Some(slot) = Slot::take(&waiting, options.max_waiting) else {
                    let mut stream = stream;
                    let _ = Response::error(503, "too many connections; retry shortly")
                        .with_header("Retry-After", "1")
                        .write_to(&mut stream);
                    refused(503);
                    continue;
                };
                let served = Served {
                    options,
                    screen: Arc::clone(&screen),
                    handler: Arc::clone(&handler),
                    refused: Arc::clone(&refused),
                };
                let active = Arc::clone(&active);
                // Dropped with the closure, run or not: the slot is given back either way.
                let _ = std::thread::Builder::new()
                    .name("augur-http".into())
                    .spawn(move || connection(stream, &served, slot, &active));
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            // A connection that died between the kernel's accept and ours, or a transient
            // shortage of descriptors: keep serving the others.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Ok(())
}

/// Requests being served: with a body, and without.
#[derive(Default)]
struct Active {
    with_body: Arc<AtomicUsize>,
    bodiless: Arc<AtomicUsize>,
}

/// A connection's place among those counted by a limit, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place under `limit`, if one is free.
    fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Slot> {
        if count.fetch_add(1, Ordering::SeqCst) >= limit {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(count)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection's thread serves with.
struct Served {
    options: ServerOptions,
    screen: Screen,
    handler: Handler,
    refused: Refused,
}

fn connection(mut stream: TcpStream, served: &Served, waiting: Slot, active: &Active) {
    let Served {
        options,
        screen,
        handler,
        refused,
    } = served;
    // The request's place is taken once its head is in, before its body is read (bodies are
    // held in memory: only `max_connections` of them at once), and the waiting one given back.
    let mut waiting = Some(waiting);
    let mut serving = None;
    let mut screened = None;
    let read = read_request_admitted(&mut stream, &options.limits, |head| {
        waiting = None;
        if let Some(response) = screen(head) {
            let status = response.status;
            screened = Some(response);
            return Err(RequestError::Screened(status));
        }
        // A head whose Content-Length the reader will refuse counts with the bodies.
        let bodiless = request::body_length(head, &options.limits) == Ok(0);
        if bodiless && options.probe_path == Some(head.path.as_str()) {
            return Ok(());
        }
        let pool = match bodiless {
            true => &active.bodiless,
            false => &active.with_body,
        };
        serving = Some(Slot::take(pool, options.max_connections).ok_or(RequestError::Busy)?);
        Ok(())
    });
    drop(waiting);
    match read {
        Ok(request) => {
            let slot = serving;
            let response = handler(request);
            if matches!(response.body, Body::Stream(_)) {
                // A stream lasts as long as its client listens: it gives its slot back, so
                // that dashboards do not lock producers out (the handler bounds streams).
                drop(slot);
                let _ = response.write_to(&mut stream);
            } else {
                // A whole answer gets `io_timeout` in all: a client reading a few bytes at a
                // time would otherwise hold its slot as long as it liked.
                let mut out = Deadline {
                    stream: &stream,
                    until: std::time::Instant::now() + options.io_timeout,
                };
                let _ = response.write_to(&mut out);
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Err(RequestError::Incomplete) => {}
        Err(error) => {
            let response = screened.unwrap_or_else(|| {
                let response = Response::error(error.status(), &error.to_string());
                // A client told the server is busy is told when to come back (RFC 9110, 10.2.3).
                match error {
                    RequestError::Busy => response.with_header("Retry-After", "1"),
                    _ => response,
                }
            });
            let _ = response.write_to(&mut stream);
            refused(error.status());
            drain(stream);
        }
    }
}

/// Writes to a connection until a deadline, then fails with `TimedOut`.
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: std::time::Instant,
}

impl std::io::Write for Deadline<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_write_timeout(Some(left))?;
        // At most 64 KiB a call, so the deadline is looked at while a large body goes out.
        let mut stream = self.stream;
        stream.write(&bytes[..bytes.len().min(64 * 1024)])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut stream = self.stream;
        stream.flush()
    }
}

/// After refusing a request whose body was not read: closing a socket with unread input makes
/// the kernel reset the connection, and the client may lose the answer before reading it. So
/// stop writing, then read and drop what the client is still sending, for a short while.
fn drain(mut stream: TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 16 * 1024];
    while std::time::Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A GET of `path` on a connection of its own, and the whole answer.
    fn get(address: impl std::net::ToSocketAddrs, path: &str) -> String {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .expect("send");
        answer(&mut stream)
    }

    fn answer(stream: &mut TcpStream) -> String {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }

    /// Uploads that stall mid-body hold every slot for requests with a body; a bodiless one
    /// (a liveness probe) is still answered, and one more upload is refused.
    #[test]
    fn stalled_uploads_do_not_turn_a_probe_away() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let options = ServerOptions {
            max_connections: 2,
            ..ServerOptions::default()
        };
        let handler: Handler = Arc::new(|_| Response::json(200, &serde_json::json!({"ok": true})));
        let refused: Refused = Arc::new(|_| {});
        let server = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                serve(
                    listener,
                    options,
                    Arc::new(|_| None),
                    handler,
                    refused,
                    stop,
                )
            })
        };
        // Uploads that stall mid-body, all held open, until one is refused: by then every
        // slot for bodies is taken.
        let upload = "POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\nab";
        let mut stalled: Vec<TcpStream> = Vec::new();
        loop {
            assert!(stalled.len() < 64, "no upload was refused");
            let mut stream = TcpStream::connect(address).expect("connect");
            stream.write_all(upload.as_bytes()).expect("send");
            let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
            let mut first = [0u8; 12];
            if stream.read_exact(&mut first).is_ok() {
                assert_eq!(&first, b"HTTP/1.1 503");
                let rest = answer(&mut stream);
                assert!(rest.contains("Retry-After: 1\r\n"), "{rest}");
                break;
            }
            stalled.push(stream);
        }
        let text = get(address, "/healthz");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        stop.store(true, Ordering::SeqCst);
        stalled.clear();
        server.join().expect("the server thread").expect("served");
    }

    fn start(
        options: ServerOptions,
        screen: Screen,
        handler: Handler,
    ) -> (
        std::net::SocketAddr,
        Arc<AtomicBool>,
        std::thread::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let refused: Refused = Arc::new(|_| {});
        let server = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(listener, options, screen, handler, refused, stop))
        };
        (address, stop, server)
    }

    /// A client the screen refuses is answered on its head, at once, though its body stalls.
    #[test]
    fn a_screened_request_is_answered_before_its_body_is_read() {
        let screen: Screen = Arc::new(|head: &Head| {
            head.header("x-ok")
                .is_none()
                .then(|| Response::error(401, "no"))
        });
        let handler: Handler = Arc::new(|_| Response::json(200, &serde_json::json!({})));
        let (address, stop, server) = start(ServerOptions::default(), screen, handler);
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .write_all(b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\nab")
            .expect("send");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut first = [0u8; 12];
        stream
            .read_exact(&mut first)
            .expect("an answer before the body");
        assert_eq!(&first, b"HTTP/1.1 401");
        // Refused before its size too.
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .write_all(b"POST /up HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n")
            .expect("send");
        assert!(answer(&mut stream).starts_with("HTTP/1.1 401"));
        stop.store(true, Ordering::SeqCst);
        server.join().expect("the server thread").expect("served");
    }

    /// With every bodiless slot held, the probe path is still answered; another path is not.
    #[test]
    fn the_probe_is_answered_while_every_slot_is_held() {
        let (hold, release) = std::sync::mpsc::channel::<()>();
        let (entered, slow_in) = std::sync::mpsc::channel::<()>();
        let release = std::sync::Mutex::new((release, entered));
        let handler: Handler = Arc::new(move |request: Request| {
            if request.head.path == "/slow" {
                // Holds the one slot until the test lets it go.
                let _ = release.lock().map(|channels| {
                    let _ = channels.1.send(());
                    channels.0.recv_timeout(Duration::from_secs(60))
                });
            }
            Response::json(200, &serde_json::json!({}))
        });
        let options = ServerOptions {
            max_connections: 1,
            probe_path: Some("/healthz"),
            ..ServerOptions::default()
        };
        let (address, stop, server) = start(options, Arc::new(|_| None), handler);
        let mut slow = TcpStream::connect(address).expect("connect");
        slow.write_all(b"GET /slow HTTP/1.1\r\n\r\n").expect("send");
        slow_in
            .recv_timeout(Duration::from_secs(60))
            .expect("the slow request holds the slot");
        let text = get(address, "/status");
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        let text = get(address, "/healthz");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let _ = hold.send(());
        assert!(answer(&mut slow).starts_with("HTTP/1.1 200"));
        stop.store(true, Ordering::SeqCst);
        server.join().expect("the server thread").expect("served");
    }
}
