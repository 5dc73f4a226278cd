//! A minimal HTTP/1.1 client for the `http` probe: one request, `Connection: close`, the
//! status line read and the rest ignored. No TLS, no redirects (a 3xx passes).

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HttpProbe;

/// The most of an answer read to find its status line and headers.
const MAX_HEAD: usize = 16 << 10;

/// Send the request; `Ok` if the answer's code passes.
pub(super) async fn check(p: &HttpProbe) -> Result<(), String> {
    let host = if p.host.contains(':') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    let mut stream = TcpStream::connect((p.host.as_str(), p.port))
        .await
        .map_err(|e| format!("http {}: {e}", p.url))?;
    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: warden\r\nAccept: */*\r\nConnection: close\r\n",
        p.method, p.path, p.port
    );
    for (k, v) in &p.headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("http {}: {e}", p.url))?;
    let mut buf = Vec::with_capacity(1024);
    let code = loop {
        let mut chunk = [0u8; 2048];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("http {}: {e}", p.url))?;
        if n == 0 {
            return Err(format!(
                "http {}: the connection closed without an answer",
                p.url
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(_) if resp.code.is_some() => break resp.code.unwrap_or_default(),
            Ok(_) if buf.len() < MAX_HEAD => {}
            // The status line is all we need: a head too large for 64 headers still has it.
            Err(httparse::Error::TooManyHeaders) => {
                break resp.code.unwrap_or_default();
            }
            Ok(_) => return Err(format!("http {}: the answer's head is too long", p.url)),
            Err(e) => return Err(format!("http {}: not an HTTP answer ({e})", p.url)),
        }
    };
    let passes = if p.status.is_empty() {
        (200..400).contains(&code)
    } else {
        p.status.contains(&code)
    };
    if passes {
        Ok(())
    } else {
        Err(format!("http {}: status {code}", p.url))
    }
}
