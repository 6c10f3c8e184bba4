//! Reading one HTTP/1.1 request off a connection, within limits.
//!
//! The head is parsed by [`parse_head`], a pure function over bytes (fuzzed with arbitrary
//! input); the body is read only after the head said how long it is and that length is within
//! the limit, so a client can neither make the server buffer without bound nor hold a thread
//! forever (the socket's read timeout ends a stalled request).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// How much a request may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The request line and headers together, bytes.
    pub max_head_bytes: usize,
    /// The body, bytes.
    pub max_body_bytes: usize,
    /// How long the whole head may take to arrive, and the body's allowance beyond its rate.
    /// Without it, a client sending a header line every few seconds (each read well within
    /// the socket's timeout) held its connection, and 64 such clients every one the server
    /// would take, for as long as they liked.
    pub head_timeout: Duration,
    /// The slowest average a body may arrive at, bytes per second, after `head_timeout`.
    pub min_body_rate: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            head_timeout: Duration::from_secs(20),
            min_body_rate: 16 * 1024,
        }
    }
}

impl Limits {
    /// Whether `received` of a body of `length` bytes is behind, `elapsed` after its head: past
    /// the allowance of `head_timeout`, the body must keep an average of `min_body_rate`. A
    /// deadline for the whole body alone (the allowance plus `length` at that rate) let a
    /// client declare 64 MiB and send a byte every few seconds for over an hour, and 64 such
    /// clients held every serving slot.
    fn body_behind(&self, elapsed: Duration, received: usize, length: usize) -> bool {
        let rate = self.min_body_rate.max(1) as f64;
        let owed = elapsed.saturating_sub(self.head_timeout).as_secs_f64() * rate;
        received < length && (received as f64) < owed.min(length as f64)
    }
}

/// A request's line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `POST`, ... as sent (methods are case-sensitive).
    pub method: String,
    /// The path as sent (percent-encoding checked, not decoded), without the query: what
    /// messages quote, so that /v1/map/w/a%2Fb/c is not shown as /v1/map/w/a/b/c. Routing reads
    /// [`Head::segments`].
    pub path: String,
    /// The path's non-empty segments, split before they are percent-decoded, so that a name
    /// holding a `/` (sent as `%2F`) stays one segment.
    pub segments: Vec<String>,
    /// The query's `key=value` pairs, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-cased names, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first query value of that name.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A whole request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its line and headers.
    pub head: Head,
    /// Its body (empty when none was sent).
    pub body: Vec<u8>,
}

/// Why a request could not be read; each maps to the status the client gets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// Not HTTP/1.x as the parser understands it.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request line and headers exceed the limit.
    #[error("request head exceeds {0} bytes")]
    HeadTooLarge(usize),
    /// The declared body exceeds the limit.
    #[error("request body of {declared} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// What Content-Length said.
        declared: u64,
        /// The limit.
        limit: usize,
    },
    /// A body without a Content-Length, or one sent with a Transfer-Encoding (chunked or any
    /// other: none is decoded).
    #[error(
        "a request body needs a Content-Length header (no Transfer-Encoding is accepted, \
         chunked or any other)"
    )]
    LengthRequired,
    /// The connection closed or stalled before the request was whole.
    #[error("connection closed or timed out mid-request")]
    Incomplete,
    /// The request came too slowly (see [`Limits::head_timeout`]).
    #[error("{0}")]
    TooSlow(String),
    /// The server is serving as many requests as it takes.
    #[error("too many requests at once; retry shortly")]
    Busy,
    /// The server's screen answered the head itself (see `http::Screen`).
    #[error("refused on its head")]
    Screened(u16),
}

impl RequestError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) | RequestError::Incomplete => 400,
            RequestError::HeadTooLarge(_) => 431,
            RequestError::BodyTooLarge { .. } => 413,
            RequestError::LengthRequired => 411,
            RequestError::TooSlow(_) => 408,
            RequestError::Busy => 503,
            RequestError::Screened(status) => *status,
        }
    }
}

/// Parses a request head (everything before the blank line, without it). Pure and total: any
/// bytes give a head or an error, never a panic.
pub fn parse_head(bytes: &[u8]) -> Result<Head, RequestError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RequestError::Malformed("the head is not UTF-8".into()))?;
    // Lines end in CRLF; a bare LF is taken too (RFC 9112, 2.2), as a hand-typed request or a
    // minimal client sends them.
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed(format!(
            "request line '{}' is not 'METHOD TARGET HTTP/1.x'",
            truncate(line)
        )));
    };
    // HTTP/1.x: a higher minor version than 1.1 is taken as 1.1 (RFC 9110, 2.5).
    let minor = version.strip_prefix("HTTP/1.").unwrap_or_default();
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::Malformed(format!(
            "unsupported version '{}'",
            truncate(version)
        )));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RequestError::Malformed(format!(
            "bad method '{}'",
            truncate(method)
        )));
    }
    // The absolute form (`http://host/path`), which a server must take (RFC 9112, 3.2.2): its
    // path is the target; the host is this server, whatever it is called.
    let target = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = target
                .get(..scheme.len())?
                .eq_ignore_ascii_case(scheme)
                .then(|| &target[scheme.len()..])?;
            Some(rest.find(['/', '?']).map_or("/", |at| &rest[at..]))
        })
        .map_or(target, |path| path);
    let owned_target;
    let target = if target.starts_with('?') {
        owned_target = format!("/{target}");
        owned_target.as_str()
    } else {
        target
    };
    if !target.starts_with('/') {
        return Err(RequestError::Malformed(
            "the target must be an absolute path".into(),
        ));
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let bad_path = || RequestError::Malformed("bad percent-encoding in the path".into());
    let segments = raw_path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode(segment).ok_or_else(bad_path))
        .collect::<Result<Vec<_>, _>>()?;
    let path = raw_path.to_owned();
    let mut query = Vec::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(&s.replace('+', " "))
                .ok_or_else(|| RequestError::Malformed("bad percent-encoding in the query".into()))
        };
        query.push((decode(key)?, decode(value)?));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(RequestError::Malformed(format!(
                "header line '{}' has no ':'",
                truncate(line)
            )));
        };
        // RFC 9110 field names are tokens: a NUL, a comma or a non-ASCII letter in one is a
        // malformed request, not a header to pass along (found by the http_bodies fuzzer).
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(RequestError::Malformed(format!(
                "bad header name '{}'",
                truncate(name)
            )));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        path,
        segments,
        query,
        headers,
    })
}

/// `tchar` of RFC 9110: the bytes a header field name may hold.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The body length a head announces: `Ok(0)` when it announces none.
pub fn body_length(head: &Head, limits: &Limits) -> Result<usize, RequestError> {
    if head.header("transfer-encoding").is_some() {
        return Err(RequestError::LengthRequired);
    }
    let lengths: Vec<&str> = head
        .headers
        .iter()
        .filter(|(key, _)| key == "content-length")
        .map(|(_, value)| value.as_str())
        .collect();
    let Some(first) = lengths.first() else {
        return Ok(0);
    };
    if lengths.iter().any(|other| other != first) {
        return Err(RequestError::Malformed(
            "conflicting Content-Length headers".into(),
        ));
    }
    // Digits only (RFC 9110, 8.6): `parse` would also take a sign.
    let declared: u64 = Some(first)
        .filter(|value| !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| {
            RequestError::Malformed(format!("bad Content-Length '{}'", truncate(first)))
        })?;
    if declared > limits.max_body_bytes as u64 {
        return Err(RequestError::BodyTooLarge {
            declared,
            limit: limits.max_body_bytes,
        });
    }
    Ok(declared as usize)
}

/// Reads one request. A client that sent `Expect: 100-continue` is told to go on only once the
/// declared length is known to be acceptable.
pub fn read_request<S: Read + Write>(
    stream: &mut S,
    limits: &Limits,
) -> Result<Request, RequestError> {
    read_request_admitted(stream, limits, |_| Ok(()))
}

/// [`read_request`], asking `admit` once the head is read and before the body is: a server
/// that holds bodies in memory takes a place among the requests it serves there, so that a
/// crowd of clients still sending their heads cannot make it hold a crowd of bodies.
pub fn read_request_admitted<S: Read + Write>(
    stream: &mut S,
    limits: &Limits,
    admit: impl FnOnce(&Head) -> Result<(), RequestError>,
) -> Result<Request, RequestError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    let head_deadline = started + limits.head_timeout;
    let (head_end, body_start) = loop {
        // Empty lines before the request line are passed over (RFC 9112, 2.2: a client may
        // end its previous body with an extra CRLF).
        let blank = buffer
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buffer.len());
        let blank = buffer[..blank]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        buffer.drain(..blank);
        if let Some(found) = find_blank_line(&buffer) {
            break found;
        }
        if buffer.len() > limits.max_head_bytes {
            return Err(RequestError::HeadTooLarge(limits.max_head_bytes));
        }
        // A client silent from the start is only let go; one that stalls mid-head is told.
        let read = stream.read(&mut chunk).map_err(|error| {
            if buffer.is_empty() {
                RequestError::Incomplete
            } else {
                stalled(&error, "the request head")
            }
        })?;
        if read == 0 {
            // A client that closed its side mid-head may still read an answer.
            return Err(match buffer.is_empty() {
                true => RequestError::Incomplete,
                false => RequestError::Malformed("the request ended within its head".into()),
            });
        }
        buffer.extend_from_slice(&chunk[..read]);
        if Instant::now() > head_deadline && find_blank_line(&buffer).is_none() {
            return Err(RequestError::TooSlow(format!(
                "the request head did not arrive within {} s",
                limits.head_timeout.as_secs_f64()
            )));
        }
    };
    if head_end > limits.max_head_bytes {
        return Err(RequestError::HeadTooLarge(limits.max_head_bytes));
    }
    let head = parse_head(&buffer[..head_end])?;
    // Admitted before its length is judged: a client without the token is told so, not that
    // its body is too large.
    let length = body_length(&head, limits);
    admit(&head)?;
    let length = length?;
    let mut body: Vec<u8> = buffer[body_start..].to_vec();
    if body.len() > length {
        // Pipelined requests are not supported: one request per connection.
        body.truncate(length);
    }
    if body.len() < length
        && head
            .header("expect")
            .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| RequestError::Incomplete)?;
    }
    // Grow with what arrives rather than trusting the declared length up front: a client that
    // declares the limit and sends nothing must not make every connection hold the limit.
    body.reserve((length - body.len()).min(1 << 20));
    let body_started = Instant::now();
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let read = stream
            .read(&mut chunk[..want])
            .map_err(|error| stalled(&error, "the request body"))?;
        if read == 0 {
            // The client closed its side short of its Content-Length: told, not dropped (it
            // may still read an answer).
            return Err(RequestError::Malformed(format!(
                "the request body ended after {} of its {length} bytes",
                body.len()
            )));
        }
        body.extend_from_slice(&chunk[..read]);
        if limits.body_behind(body_started.elapsed(), body.len(), length) {
            return Err(RequestError::TooSlow(format!(
                "the request body of {length} bytes arrived slower than {} bytes/s",
                limits.min_body_rate
            )));
        }
    }
    Ok(Request { head, body })
}

/// A read that failed mid-request: a stall (the socket's read timeout) is answered 408, as a
/// body shorter than its Content-Length that never comes; anything else ends the connection.
fn stalled(error: &std::io::Error, what: &str) -> RequestError {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            RequestError::TooSlow(format!("{what} stalled: nothing more arrived in time"))
        }
        _ => RequestError::Incomplete,
    }
}

/// Where the head ends and the body starts: at the first empty line, its line ends CRLF or bare
/// LF (a request that mixes them, `\r\n\n`, too).
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    let newline = bytes.iter().enumerate().filter(|&(_, &b)| b == b'\n');
    for (index, _) in newline {
        let rest = &bytes[index + 1..];
        if rest.starts_with(b"\n") {
            return Some((index, index + 2));
        }
        if rest.starts_with(b"\r\n") {
            return Some((index, index + 3));
        }
    }
    None
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            // Two hex digits: `from_str_radix` alone also takes a sign (`%+5` read as 5).
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// At most 80 characters of client text, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_line_query_and_headers() {
        let head = parse_head(
            b"POST /v1/workflows?name=a%20b&arrival=12 HTTP/1.1\r\nHost: x\r\nContent-Length: 3",
        )
        .expect("valid head");
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/v1/workflows");
        assert_eq!(head.segments, ["v1", "workflows"]);
        assert_eq!(head.query_value("name"), Some("a b"));
        let slashed = parse_head(b"GET //v1/map/w/a%2Fb/ HTTP/1.1").expect("valid head");
        assert_eq!(slashed.path, "//v1/map/w/a%2Fb/", "quoted as sent");
        assert_eq!(slashed.segments, ["v1", "map", "w", "a/b"]);
        // An escape is two hex digits, without a sign.
        for bad in ["GET /v1/map/%+5 HTTP/1.1", "GET /v1/map?x=%-1 HTTP/1.1"] {
            let error = parse_head(bad.as_bytes()).expect_err(bad);
            assert!(
                error.to_string().contains("percent-encoding"),
                "{bad}: {error}"
            );
        }
        assert_eq!(head.query_value("arrival"), Some("12"));
        assert_eq!(head.header("content-length"), Some("3"));
        assert_eq!(body_length(&head, &Limits::default()), Ok(3));
    }

    #[test]
    fn header_names_must_be_tokens() {
        for bad in [
            &b"GET / HTTP/1.1\r\nCont\x00ent: 1"[..],
            b"GET / HTTP/1.1\r\nA,B: 1",
            "GET / HTTP/1.1\r\nÉtat: 1".as_bytes(),
            b"GET / HTTP/1.1\r\n(x): 1",
        ] {
            assert!(
                matches!(parse_head(bad), Err(RequestError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let head = parse_head(b"GET / HTTP/1.1\r\nX-Aug_ur.1~!: v").expect("token name");
        assert_eq!(head.header("x-aug_ur.1~!"), Some("v"));
    }

    #[test]
    fn refuses_bad_heads() {
        for bad in [
            &b""[..],
            b"GET",
            b"GET / HTTP/2",
            b"get / HTTP/1.1",
            b"GET nopath HTTP/1.1",
            b"GET /%zz HTTP/1.1",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET / HTTP/1.1\r\n\xff: x",
            b"GET / HTTP/1.",
            b"GET / HTTP/1.x",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
        // A later minor version is read as 1.1 (RFC 9110, 2.5).
        assert!(parse_head(b"GET / HTTP/1.9").is_ok());
    }

    /// Empty lines before the request line are passed over (RFC 9112, 2.2), in CRLF or LF.
    #[test]
    fn empty_lines_before_the_request_line_are_passed_over() {
        for leading in [&b"\r\n"[..], b"\n", b"\r\n\r\n\n"] {
            let mut bytes = leading.to_vec();
            bytes.extend_from_slice(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut connection = std::io::Cursor::new(bytes);
            let request = read_request(&mut connection, &Limits::default()).expect("read");
            assert_eq!(request.head.path, "/v1/status", "{leading:?}");
        }
    }

    #[test]
    fn body_limits_and_chunked() {
        let limits = Limits {
            max_head_bytes: 100,
            max_body_bytes: 10,
            ..Limits::default()
        };
        let head = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 11").expect("valid");
        assert_eq!(
            body_length(&head, &limits),
            Err(RequestError::BodyTooLarge {
                declared: 11,
                limit: 10
            })
        );
        let head = parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").expect("valid");
        assert_eq!(
            body_length(&head, &limits),
            Err(RequestError::LengthRequired)
        );
    }

    /// A connection whose client sent `input`.
    struct Connection {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Connection {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buffer)
        }
    }

    impl Write for Connection {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.output.write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn heads_end_at_the_first_empty_line_crlf_or_bare_lf() {
        for sent in [
            &b"POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"POST /v1/x HTTP/1.1\nContent-Length: 5\n\nhello",
            b"POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\n\nhello",
            b"POST /v1/x HTTP/1.1\nContent-Length: 5\n\r\nhello",
        ] {
            let mut connection = Connection {
                input: std::io::Cursor::new(sent.to_vec()),
                output: Vec::new(),
            };
            let request = read_request(&mut connection, &Limits::default()).expect("a request");
            assert_eq!(request.head.path, "/v1/x");
            assert_eq!(request.head.header("content-length"), Some("5"));
            assert_eq!(
                request.body,
                b"hello",
                "{:?}",
                String::from_utf8_lossy(sent)
            );
        }
        // A body may hold empty lines of its own.
        let sent = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\n\n\r\n".to_vec();
        let mut connection = Connection {
            input: std::io::Cursor::new(sent),
            output: Vec::new(),
        };
        let request = read_request(&mut connection, &Limits::default()).expect("a request");
        assert_eq!(request.body, b"\n\n\r\n");
    }

    /// Hands over its first `head_left` bytes at once, then at most `chunk` bytes a read with
    /// a pause before each: a client that trickles its request in.
    struct Paced {
        input: std::io::Cursor<Vec<u8>>,
        pause: Duration,
        chunk: usize,
        head_left: usize,
    }

    impl Read for Paced {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.head_left > 0 {
                let take = self.head_left.min(buffer.len());
                self.head_left -= take;
                return self.input.read(&mut buffer[..take]);
            }
            std::thread::sleep(self.pause);
            let take = buffer.len().min(self.chunk);
            self.input.read(&mut buffer[..take])
        }
    }

    impl Write for Paced {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_head_or_a_body_that_trickles_in_is_cut_off_with_408() {
        // Each read comes well within any socket timeout, but the whole is too slow: a
        // client holding its connection so (and 64 of them every connection) is let go.
        let limits = Limits {
            head_timeout: Duration::from_millis(40),
            min_body_rate: 1_000,
            ..Limits::default()
        };
        let trickle = |text: &[u8]| Paced {
            input: std::io::Cursor::new(text.to_vec()),
            pause: Duration::from_millis(5),
            chunk: 4,
            head_left: 0,
        };
        let slow_head = b"GET /v1/status HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let error = read_request(&mut trickle(slow_head), &limits).expect_err("too slow");
        assert_eq!(error.status(), 408, "{error}");
        // A 200-byte body at 1,000 bytes/s has 40 ms + 200 ms; 4 bytes every 5 ms is 800/s.
        let mut slow_body = b"POST /v1/x HTTP/1.1\r\nContent-Length: 200\r\n\r\n".to_vec();
        slow_body.extend_from_slice(&[b'x'; 200]);
        let quick = Limits {
            head_timeout: Duration::from_secs(5),
            ..limits
        };
        let mut connection = trickle(&slow_body);
        connection.pause = Duration::from_millis(1);
        let request = read_request(&mut connection, &quick).expect("fast enough");
        assert_eq!(request.body.len(), 200);
        let tight = Limits {
            head_timeout: Duration::from_millis(150),
            ..limits
        };
        let mut connection = trickle(&slow_body);
        connection.pause = Duration::from_millis(8);
        let error = read_request(&mut connection, &tight).expect_err("too slow");
        assert!(error.to_string().contains("body"), "{error}");
        assert_eq!(error.status(), 408);
    }

    /// A body that falls behind the least rate is let go as soon as it does, not when the
    /// whole declared length at that rate would have been due (for 64 MiB, over an hour).
    #[test]
    fn a_body_that_falls_behind_its_rate_is_cut_off_then_not_at_its_end() {
        let limits = Limits {
            head_timeout: Duration::from_millis(40),
            min_body_rate: 1_000,
            ..Limits::default()
        };
        // 100,000 bytes declared: at 1,000 bytes/s the whole was due after 100 s; a byte every
        // 5 ms is behind from about 50 ms on.
        let mut slow = b"POST /v1/x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
        slow.extend_from_slice(&[b'x'; 100_000]);
        let mut connection = Paced {
            input: std::io::Cursor::new(slow),
            pause: Duration::from_millis(5),
            chunk: 1,
            head_left: 47,
        };
        let started = Instant::now();
        let error = read_request(&mut connection, &limits).expect_err("too slow");
        assert_eq!(error.status(), 408, "{error}");
        assert!(started.elapsed() < Duration::from_secs(50));
        // Behind is measured on the average: on time before the allowance ends, whatever came.
        assert!(!limits.body_behind(Duration::from_millis(30), 0, 100));
        assert!(limits.body_behind(Duration::from_millis(140), 50, 100_000));
        assert!(!limits.body_behind(Duration::from_millis(140), 100, 100_000));
        assert!(!limits.body_behind(Duration::from_secs(1_000), 100, 100));
    }

    #[test]
    fn an_absolute_form_target_is_its_path() {
        for (line, path, query) in [
            ("GET http://augur:8080/v1/status HTTP/1.1", "/v1/status", 0),
            ("GET HTTP://augur/v1/map?x=1 HTTP/1.1", "/v1/map", 1),
            ("GET http://augur HTTP/1.1", "/", 0),
            ("GET http://augur?x=1 HTTP/1.1", "/", 1),
        ] {
            let head = parse_head(line.as_bytes()).expect(line);
            assert_eq!(
                (head.path.as_str(), head.query.len()),
                (path, query),
                "{line}"
            );
        }
        assert!(parse_head(b"GET ftp://augur/x HTTP/1.1").is_err());
    }

    /// Hands over its input, then stalls as a socket past its read timeout does.
    struct Stalls(std::io::Cursor<Vec<u8>>);

    impl Read for Stalls {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buffer)? {
                0 => Err(std::io::ErrorKind::WouldBlock.into()),
                read => Ok(read),
            }
        }
    }

    impl Write for Stalls {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_request_that_stalls_midway_is_answered_408_and_a_silent_one_is_let_go() {
        let stalls = |text: &[u8]| Stalls(std::io::Cursor::new(text.to_vec()));
        let short_body = b"POST /v1/x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let error = read_request(&mut stalls(short_body), &Limits::default()).expect_err("short");
        assert_eq!(error.status(), 408, "{error}");
        let half_head = b"GET /v1/status HTTP/1.1\r\nHost: x";
        let error = read_request(&mut stalls(half_head), &Limits::default()).expect_err("half");
        assert_eq!(error.status(), 408, "{error}");
        let silent = read_request(&mut stalls(b""), &Limits::default()).expect_err("silent");
        assert_eq!(silent, RequestError::Incomplete);
    }

    /// A client that closes its side mid-request is answered 400 (it may still read), not
    /// dropped without a word; one that closes having sent nothing is let go.
    #[test]
    fn a_request_cut_short_by_its_client_is_answered_400() {
        let ended = |text: &[u8]| Connection {
            input: std::io::Cursor::new(text.to_vec()),
            output: Vec::new(),
        };
        let short_body = b"POST /v1/x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let error = read_request(&mut ended(short_body), &Limits::default()).expect_err("short");
        assert_eq!(error.status(), 400, "{error}");
        assert!(
            error.to_string().contains("after 3 of its 10 bytes"),
            "{error}"
        );
        let half_head = b"GET /v1/status HTTP/1.1\r\nHost: x";
        let error = read_request(&mut ended(half_head), &Limits::default()).expect_err("half");
        assert_eq!(error.status(), 400, "{error}");
        let silent = read_request(&mut ended(b""), &Limits::default()).expect_err("silent");
        assert_eq!(silent, RequestError::Incomplete);
    }

    #[test]
    fn a_request_is_admitted_once_its_head_is_in_and_before_its_body_is_read() {
        // Bodies are held in memory: a server takes a request's place among those it serves
        // before reading one, so a crowd still sending heads cannot make it hold a crowd of
        // bodies.
        let sent = b"POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        let mut connection = Connection {
            input: std::io::Cursor::new(sent.clone()),
            output: Vec::new(),
        };
        let mut seen = None;
        let request = read_request_admitted(&mut connection, &Limits::default(), |head| {
            seen = Some(head.path.clone());
            Ok(())
        })
        .expect("admitted");
        assert_eq!(
            (seen.as_deref(), request.body.as_slice()),
            (Some("/v1/x"), &b"hello"[..])
        );
        let mut connection = Connection {
            input: std::io::Cursor::new(sent),
            output: Vec::new(),
        };
        let refused = read_request_admitted(&mut connection, &Limits::default(), |_| {
            Err(RequestError::Busy)
        });
        assert_eq!(refused.map(|r| r.body), Err(RequestError::Busy));
    }

    #[test]
    fn a_content_length_is_digits_only() {
        for bad in ["+5", "-0", " 5x", ""] {
            let head = parse_head(format!("POST / HTTP/1.1\r\nContent-Length: {bad}").as_bytes())
                .expect("a head");
            assert!(body_length(&head, &Limits::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_head_survives_arbitrary_bytes() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5000 {
            let mut bytes = b"POST /v1/x?a=%41&b HTTP/1.1\r\nA: b\r\nContent-Length: 5".to_vec();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            if let Ok(head) = parse_head(&bytes) {
                let _ = body_length(&head, &Limits::default());
            }
        }
    }
}
