//! What a handler answers: a status, headers and a body, or a stream (Server-Sent Events).

use std::io::Write;

/// A body written after the head by a long-lived writer (an event stream); it returns when the
/// client goes away or the stream ends.
pub type StreamBody = Box<dyn FnOnce(&mut dyn Write) + Send>;

/// A response's body.
pub enum Body {
    /// Bytes, sent with a Content-Length.
    Bytes(Vec<u8>),
    /// A stream, sent until it ends; the connection closes after it.
    Stream(StreamBody),
    /// The answer to a HEAD request: the head of a body of this many bytes (none for a
    /// stream), without the body.
    HeadOnly(Option<usize>),
}

/// One response.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers beyond Content-Type, Content-Length and Connection.
    pub headers: Vec<(String, String)>,
    /// The Content-Type.
    pub content_type: String,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                Response::bytes(status, "application/json", bytes)
            }
            Err(error) => Response::error(500, &format!("cannot encode the answer: {error}")),
        }
    }

    /// `{"error": message}` with that status.
    pub fn error(status: u16, message: &str) -> Response {
        let mut bytes = serde_json::json!({ "error": message })
            .to_string()
            .into_bytes();
        bytes.push(b'\n');
        Response::bytes(status, "application/json", bytes)
    }

    /// Any bytes.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: content_type.to_string(),
            body: Body::Bytes(body),
        }
    }

    /// A Server-Sent Events stream.
    pub fn event_stream(body: StreamBody) -> Response {
        Response {
            status: 200,
            headers: vec![("Cache-Control".into(), "no-cache".into())],
            content_type: "text/event-stream".into(),
            body: Body::Stream(body),
        }
    }

    /// The same answer without its body, for a HEAD request (RFC 9110, 9.3.2): the head says
    /// what a GET's body would be.
    pub fn without_body(mut self) -> Response {
        self.body = Body::HeadOnly(match &self.body {
            Body::Bytes(bytes) => Some(bytes.len()),
            Body::Stream(_) | Body::HeadOnly(None) => None,
            Body::HeadOnly(Some(length)) => Some(*length),
        });
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Writes the response; every connection closes after one response.
    pub fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match self.body {
            Body::Bytes(bytes) => {
                head.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
                out.write_all(head.as_bytes())?;
                out.write_all(&bytes)?;
                out.flush()
            }
            Body::HeadOnly(length) => {
                if let Some(length) = length {
                    head.push_str(&format!("Content-Length: {length}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.flush()
            }
            Body::Stream(stream) => {
                head.push_str("\r\n");
                out.write_all(head.as_bytes())?;
                out.flush()?;
                stream(out);
                Ok(())
            }
        }
    }
}

/// The reason phrase of the statuses augur uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
