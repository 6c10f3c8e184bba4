//! A minimal HTTP/1.1 client for plain `http://` GETs: what scraping an exporter and querying
//! Prometheus on a local network need, and no more (no TLS, no redirects, no keep-alive).
//!
//! Hand-written over `std::net` because the two callers fetch small bodies from trusted local
//! endpoints; a general client would bring a TLS stack and a dozen crates for nothing. What it
//! does do carefully: every step has a deadline, bodies are framed by `Content-Length`, chunked
//! transfer coding or the end of the connection, and a body larger than the limit is refused
//! rather than buffered.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Bodies larger than this are refused: a node_exporter page is ~100 KB, a long query_range
/// answer a few MB.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Headers larger than this are refused.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not a plain `http://host[:port][/path]` URL.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No address of the host accepted a connection.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// The last connection error.
        source: std::io::Error,
    },
    /// Reading or writing the connection failed (a timeout included).
    #[error("talking to {address}: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The whole exchange took longer than its deadline.
    #[error("{address} did not answer within {timeout:?}")]
    Timeout {
        /// `host:port`.
        address: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The answer is not well-formed HTTP/1.x.
    #[error("malformed answer from {address}: {reason}")]
    Malformed {
        /// `host:port`.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the answer from {address} is larger than {limit} bytes")]
    TooLarge {
        /// `host:port`.
        address: String,
        /// The limit.
        limit: usize,
    },
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 without its brackets).
    pub host: String,
    /// Port, 80 unless given.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query]`; `https` and user info are refused.
    pub fn parse(text: &str) -> Result<HttpUrl, HttpError> {
        let bad = |reason: &str| HttpError::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let rest = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(bad("https is not supported (plain http only)"))
            }
            Some(_) => return Err(bad("the scheme must be http")),
            None => return Err(bad("expected http://host[:port][/path]")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        // A fragment never goes to the server.
        let path = path.split('#').next().unwrap_or("");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = match after {
                "" => None,
                other => Some(
                    other
                        .strip_prefix(':')
                        .ok_or_else(|| bad("junk after the IPv6 address"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the host has blanks or control characters"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| bad("the port must be 1-65535"))?,
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "the path has blanks or control characters (percent-encode them)",
            ));
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port`, as it names the endpoint in errors and in the `Host` header.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same endpoint with another path and query (`path` starts with `/`).
    pub fn with_path(&self, path: &str) -> HttpUrl {
        HttpUrl {
            host: self.host.clone(),
            port: self.port,
            path: path.to_string(),
        }
    }

    /// The path without a trailing `/`, so that an API path can be appended to a base URL
    /// given as `http://host:9090` or `http://host:9090/prefix/`.
    pub fn base_path(&self) -> &str {
        let path = self.path.split('?').next().unwrap_or("");
        path.trim_end_matches('/')
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.address(), self.path)
    }
}

/// An answer: its status and its body, de-chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, invalid UTF-8 replaced (the callers parse text formats that say what to
    /// do with a bad line, so a stray byte must not lose the whole answer).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `key=value&...` with both sides percent-encoded (everything but RFC 3986's unreserved
/// characters).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// GETs `url`; the whole exchange (connecting included) must end within `timeout`. Any status is
/// an answer: the caller decides what a 4xx or 5xx means (Prometheus explains its errors in the
/// body).
pub fn get(url: &HttpUrl, timeout: Duration) -> Result<Response, HttpError> {
    let address = url.address();
    let deadline = Instant::now() + timeout;
    let timed_out = || HttpError::Timeout {
        address: address.clone(),
        timeout,
    };
    let io = |source: std::io::Error| HttpError::Io {
        address: address.clone(),
        source,
    };
    let mut stream = connect(url, &address, deadline).map_err(|error| match error {
        ConnectFailure::Timeout => timed_out(),
        ConnectFailure::Io(source) => HttpError::Connect {
            address: address.clone(),
            source,
        },
    })?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: augur/{}\r\nAccept: */*\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.path,
        env!("CARGO_PKG_VERSION")
    );
    set_timeouts(&stream, deadline)
        .ok_or_else(timed_out)?
        .map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    let mut head: Option<Head> = None;
    loop {
        if let Some(head) = &head {
            match head.framing.complete(&buffer[head.length..]) {
                Ok(Some(body)) => {
                    return Ok(Response {
                        status: head.status,
                        body,
                    })
                }
                Ok(None) => {}
                Err(reason) => return Err(malformed(&address, reason)),
            }
        }
        set_timeouts(&stream, deadline)
            .ok_or_else(timed_out)?
            .map_err(io)?;
        let read = match stream.read(&mut chunk) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out())
            }
            Err(error) => return Err(io(error)),
        };
        if read == 0 {
            // The server closed: the body is what came, unless its framing promised more.
            let Some(head) = &head else {
                return Err(malformed(
                    &address,
                    "the connection closed before the headers ended".to_string(),
                ));
            };
            return match head.framing.at_close(&buffer[head.length..]) {
                Ok(body) => Ok(Response {
                    status: head.status,
                    body,
                }),
                Err(reason) => Err(malformed(&address, reason)),
            };
        }
        buffer.extend_from_slice(chunk.get(..read).unwrap_or(&[]));
        match &head {
            None => {
                if let Some(parsed) = parse_head(&buffer).map_err(|r| malformed(&address, r))? {
                    head = Some(parsed);
                } else if buffer.len() > MAX_HEAD_BYTES {
                    return Err(malformed(&address, "the headers are too long".to_string()));
                }
            }
            Some(head) => {
                if buffer.len() - head.length > MAX_BODY_BYTES.saturating_mul(2) {
                    // Chunk framing at most doubles a body's size; past that it is too large
                    // whatever the framing.
                    return Err(HttpError::TooLarge {
                        address,
                        limit: MAX_BODY_BYTES,
                    });
                }
            }
        }
        if let Some(head) = &head {
            if let Framing::Length(length) = head.framing {
                if length > MAX_BODY_BYTES {
                    return Err(HttpError::TooLarge {
                        address,
                        limit: MAX_BODY_BYTES,
                    });
                }
            }
            if matches!(head.framing, Framing::Close) && buffer.len() - head.length > MAX_BODY_BYTES
            {
                return Err(HttpError::TooLarge {
                    address,
                    limit: MAX_BODY_BYTES,
                });
            }
        }
    }
}

fn malformed(address: &str, reason: String) -> HttpError {
    HttpError::Malformed {
        address: address.to_string(),
        reason,
    }
}

enum ConnectFailure {
    Timeout,
    Io(std::io::Error),
}

/// Tries each address of the host in turn, within the deadline.
fn connect(url: &HttpUrl, address: &str, deadline: Instant) -> Result<TcpStream, ConnectFailure> {
    let addresses = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(ConnectFailure::Io)?;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{address} resolves to no address"),
    );
    for socket in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectFailure::Timeout);
        }
        match TcpStream::connect_timeout(&socket, left) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(ConnectFailure::Io(last))
}

/// Bounds the next read or write by what is left of the deadline; `None` once it has passed.
fn set_timeouts(stream: &TcpStream, deadline: Instant) -> Option<std::io::Result<()>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    Some(
        stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left))),
    )
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// Neither: the body runs to the end of the connection.
    Close,
}

impl Framing {
    /// The body, once all of it is in `bytes`.
    fn complete(self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            Framing::Length(length) => Ok(bytes.get(..length).map(<[u8]>::to_vec)),
            Framing::Chunked => dechunk(bytes),
            Framing::Close => Ok(None),
        }
    }

    /// The body when the connection has closed after `bytes`.
    fn at_close(self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Framing::Close => Ok(bytes.to_vec()),
            other => other
                .complete(bytes)?
                .ok_or_else(|| "the connection closed before the body ended".to_string()),
        }
    }
}

/// The status line and headers.
#[derive(Debug)]
struct Head {
    status: u16,
    framing: Framing,
    /// Bytes up to and including the blank line.
    length: usize,
}

/// Parses the head once the blank line that ends it has arrived (`None` before).
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, String> {
    let Some((text, length)) = head_text(buffer) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(text);
    let mut lines = text.split('\n').map(|line| line.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let mut framing = Framing::Close;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            framing = Framing::Length(length);
        }
    }
    if chunked {
        // RFC 9112: chunked framing wins over any Content-Length.
        framing = Framing::Chunked;
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        status,
        framing,
        length,
    }))
}

/// The head's bytes and the length up to the end of its blank line (`\r\n\r\n`, or a bare
/// `\n\n` from a sloppy server).
fn head_text(buffer: &[u8]) -> Option<(&[u8], usize)> {
    let crlf = buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| (at, at + 4));
    let lf = buffer
        .windows(2)
        .position(|window| window == b"\n\n")
        .map(|at| (at, at + 2));
    let (end, length) = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((buffer.get(..end)?, length))
}

/// Decodes a chunked body: `Ok(None)` while incomplete.
fn dechunk(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    let mut at = 0usize;
    loop {
        let Some(line_end) = find_line_end(bytes, at) else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(bytes.get(at..line_end).unwrap_or(&[]));
        // Chunk extensions (`;name=value`) carry nothing we need.
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        at = skip_newline(bytes, line_end);
        if size == 0 {
            // Trailers follow, up to a blank line; a server that closes right after the last
            // chunk is also done.
            loop {
                let Some(end) = find_line_end(bytes, at) else {
                    return Ok(Some(body));
                };
                let blank = end == at;
                at = skip_newline(bytes, end);
                if blank {
                    return Ok(Some(body));
                }
            }
        }
        if size > MAX_BODY_BYTES || body.len() + size > MAX_BODY_BYTES {
            return Err(format!("the body is larger than {MAX_BODY_BYTES} bytes"));
        }
        let Some(data) = bytes.get(at..at.saturating_add(size)) else {
            return Ok(None);
        };
        body.extend_from_slice(data);
        at += size;
        match bytes.get(at..) {
            Some([b'\r', b'\n', ..]) => at += 2,
            Some([b'\n', ..]) => at += 1,
            Some([]) | Some([b'\r']) | None => return Ok(None),
            Some(_) => return Err("a chunk is longer than its size".to_string()),
        }
    }
}

/// Where the line starting at `from` ends (at its `\r\n` or `\n`), if it has ended.
fn find_line_end(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let newline = rest.iter().position(|byte| *byte == b'\n')?;
    let end = from + newline;
    Some(if end > from && bytes.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    })
}

fn skip_newline(bytes: &[u8], line_end: usize) -> usize {
    match bytes.get(line_end) {
        Some(b'\r') => line_end + 2,
        _ => line_end + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection with `answer` (in pieces, to exercise partial reads).
    fn serve_once(answer: Vec<u8>) -> (HttpUrl, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).expect("read request") == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            // The client may close as soon as it has what it needs (before a chunked body's
            // trailer, say): a write after that fails, which is not the test's business.
            for piece in answer.chunks(7) {
                if stream
                    .write_all(piece)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    break;
                }
            }
            String::from_utf8_lossy(&request).into_owned()
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/metrics?x=1")).expect("url");
        (url, handle)
    }

    #[test]
    fn content_length_body_and_request_line() {
        let (url, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec());
        let response = get(&url, Duration::from_secs(5)).expect("get");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        let request = server.join().expect("server");
        assert!(
            request.starts_with("GET /metrics?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Connection: close"));
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let answer =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: 1\r\n\r\n"
                .to_vec();
        let (url, server) = serve_once(answer);
        let response = get(&url, Duration::from_secs(5)).expect("get");
        assert_eq!(response.status, 404);
        assert_eq!(response.text(), "Wikipedia");
        server.join().expect("server");
    }

    #[test]
    fn body_to_end_of_connection() {
        let (url, server) = serve_once(b"HTTP/1.0 200 OK\nServer: x\n\nall of it".to_vec());
        let response = get(&url, Duration::from_secs(5)).expect("get");
        assert_eq!(response.body, b"all of it");
        server.join().expect("server");
    }

    #[test]
    fn short_body_is_malformed() {
        let (url, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort".to_vec());
        let error = get(&url, Duration::from_secs(5)).expect_err("short body");
        assert!(matches!(error, HttpError::Malformed { .. }), "{error}");
        server.join().expect("server");
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        let started = Instant::now();
        let error = get(&url, Duration::from_millis(300)).expect_err("silence");
        assert!(matches!(error, HttpError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(listener);
    }

    #[test]
    fn refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        let error = get(&url, Duration::from_secs(2)).expect_err("nobody listens");
        assert!(matches!(error, HttpError::Connect { .. }), "{error}");
    }

    #[test]
    fn url_forms() {
        let url = HttpUrl::parse("http://localhost:9100/metrics").expect("plain");
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("localhost", 9100, "/metrics")
        );
        let url = HttpUrl::parse("HTTP://example.org").expect("no path");
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = HttpUrl::parse("http://[::1]:9090/prom/").expect("ipv6");
        assert_eq!(
            (url.host.as_str(), url.address().as_str()),
            ("::1", "[::1]:9090")
        );
        assert_eq!(url.base_path(), "/prom");
        let url = HttpUrl::parse("http://h:1?q=1#frag").expect("query");
        assert_eq!(url.path, "/?q=1");
        for bad in [
            "https://h/",
            "ftp://h",
            "h:80",
            "http://",
            "http://h:0/",
            "http://h:x/",
            "http://u@h/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_string_percent_encodes() {
        assert_eq!(
            query_string(&[("query", "rate(x{a=\"b\"}[1m])"), ("step", "1.5")]),
            "query=rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29&step=1.5"
        );
    }

    #[test]
    fn dechunk_incomplete_and_bad() {
        assert_eq!(dechunk(b"5\r\nhel"), Ok(None));
        assert_eq!(dechunk(b"5\r\nhello\r\n"), Ok(None));
        assert_eq!(
            dechunk(b"5\r\nhello\r\n0\r\n\r\n"),
            Ok(Some(b"hello".to_vec()))
        );
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"2\r\nhello\r\n").is_err());
        assert!(dechunk(b"ffffffffffffffffffff\r\n").is_err());
    }
}
