//! The request head, read by warden itself before the HTTP library sees the connection: in
//! bounded time ([`HEADER_TIMEOUT`](super::HEADER_TIMEOUT)) and size ([`MAX_HEAD`]), and
//! checked with the same parser (`httparse`) and the same rules the HTTP library applies.
//! So every malformed, oversized or late request gets a JSON error answer from warden
//! (the HTTP library's own answers to these have empty bodies), and a TCP client's token is
//! checked before the connection counts as authorized.

use hyper::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head accepted (request line and headers): 431 beyond.
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers accepted in one request, as the HTTP library's default.
const MAX_HEADERS: usize = 100;

/// A complete request head, checked.
pub(super) struct Head {
    /// Every byte read from the connection so far: the head, maybe the start of a body.
    pub(super) bytes: Vec<u8>,
    pub(super) method: Method,
    pub(super) authorization: Option<Vec<u8>>,
    /// The path of the request target, without its query (`/health` needs no token).
    pub(super) path: String,
}

/// Why no head could be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeadError {
    /// The client closed the connection (or it failed) before sending a whole head: nothing
    /// to answer.
    Gone,
    /// Larger than [`MAX_HEAD`], or too many headers: 431.
    TooLarge,
    /// Not a valid HTTP/1.x request head: 400 with this message.
    Malformed(String),
}

impl HeadError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            HeadError::Gone | HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
            HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            HeadError::Gone => "the connection ended within the request".to_owned(),
            HeadError::TooLarge => format!(
                "the request head is larger than {MAX_HEAD} bytes or has more than \
                 {MAX_HEADERS} headers"
            ),
            HeadError::Malformed(why) => format!("malformed request: {why}"),
        }
    }
}

/// Read one request head from `io`. Not bounded in time: the caller puts a deadline on it.
/// The buffer grows with what arrives, so an idle connection costs little.
pub(super) async fn read_head<I: AsyncRead + Unpin>(io: &mut I) -> Result<Head, HeadError> {
    let mut bytes: Vec<u8> = Vec::with_capacity(1024);
    // The head is parsed when its first line is complete (to refuse garbage at once) and
    // when it ends (an empty line), not after every read: a client sending a byte at a time
    // costs a scan of each byte, not of the whole head each time.
    let mut first_line_checked = false;
    loop {
        let old = bytes.len();
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity().min(MAX_HEAD + 1 - bytes.len()).max(1));
        }
        // Read at most one byte past the limit: enough to know the head is too large.
        let room = (MAX_HEAD + 1).saturating_sub(bytes.len());
        let mut limited = (&mut *io).take(room as u64);
        match limited.read_buf(&mut bytes).await {
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(_) => {}
        }
        let new = &bytes[old.saturating_sub(3)..];
        let ended = new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n");
        if ended || (!first_line_checked && bytes[old..].contains(&b'\n')) {
            first_line_checked = true;
            if let Some(head) = parse(&bytes)? {
                return Ok(Head { bytes, ..head });
            }
        }
        if bytes.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// `Ok(None)`: not complete yet. The `bytes` of the result are left empty.
fn parse(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let bad = |why: &str| HeadError::Malformed(why.to_owned());
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| bad("invalid method"))?;
    let path = req.path.ok_or_else(|| bad("no request target"))?;
    let target = hyper::Uri::try_from(path).map_err(|_| bad("invalid request target"))?;
    let http11 = req.version == Some(1);
    let mut length: Option<&[u8]> = None;
    let mut chunked: Option<bool> = None;
    let mut authorization = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = h.value.trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 19 {
                return Err(bad("invalid Content-Length"));
            }
            if length.is_some_and(|l| l != value) {
                return Err(bad("differing Content-Length headers"));
            }
            length = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("authorization") && authorization.is_none() {
            authorization = Some(h.value.to_vec());
        }
    }
    if chunked == Some(false) {
        return Err(bad("Transfer-Encoding does not end in chunked"));
    }
    Ok(Some(Head {
        bytes: Vec::new(),
        method,
        authorization,
        path: target.path().to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &[u8]) -> Result<Option<Head>, HeadError> {
        parse(raw)
    }

    #[test]
    fn a_valid_head_is_complete() {
        let head = check(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: bearer t\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.authorization.as_deref(), Some(&b"bearer t"[..]));
        assert_eq!(head.path, "/v1/status");
        let q = check(b"GET /health?x=1 HTTP/1.1\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(q.path, "/health", "without the query");
        assert!(matches!(check(b"GET /v1/status HTTP/1.1\r\nHo"), Ok(None)));
        assert!(matches!(check(b"\r\nGET / HTTP/1.0\r\n\r\n"), Ok(Some(_))));
    }

    #[test]
    fn what_the_http_library_would_refuse_is_refused_here() {
        for raw in [
            &b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"G@T / HTTP/1.1\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(
                matches!(check(raw), Err(HeadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let many = "h: v\r\n".repeat(MAX_HEADERS + 1);
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(check(raw.as_bytes()), Err(HeadError::TooLarge)));
    }

    #[tokio::test]
    async fn a_head_larger_than_the_limit_is_refused_without_reading_on() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.resize(MAX_HEAD * 4, b'a');
        let mut io = &raw[..];
        assert_eq!(read_head(&mut io).await.err(), Some(HeadError::TooLarge));
        assert!(io.len() >= MAX_HEAD * 2, "stopped reading at the limit");
        let mut closed = &b"GET / HT"[..];
        assert_eq!(read_head(&mut closed).await.err(), Some(HeadError::Gone));
    }

    /// One byte per read: the head is found at its end, and garbage at the first newline.
    #[tokio::test]
    async fn a_head_sent_a_byte_at_a_time_is_read() {
        let raw = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut io = tokio_test_reader(raw);
        let head = read_head(&mut io).await.expect("a head");
        assert_eq!(head.bytes, raw);
        let mut io = tokio_test_reader(b"\x16\x03\x01 garbage\nmore garbage never ending");
        assert!(matches!(
            read_head(&mut io).await,
            Err(HeadError::Malformed(_))
        ));
    }

    /// A reader that hands out one byte per read.
    fn tokio_test_reader(data: &[u8]) -> impl AsyncRead + Unpin {
        struct OneByte(Vec<u8>, usize);
        impl AsyncRead for OneByte {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                if self.1 < self.0.len() {
                    let b = self.0[self.1];
                    buf.put_slice(&[b]);
                    self.1 += 1;
                }
                std::task::Poll::Ready(Ok(()))
            }
        }
        OneByte(data.to_vec(), 0)
    }
}
