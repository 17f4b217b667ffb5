//! HTTP/1.1 on one TCP connection, as wrk does it: the request serialised once per endpoint and
//! written as one buffer; the response's head parsed in place with `httparse`; its body framed
//! (Content-Length, chunked, or to the close) and skipped in the read buffer, never copied.
//! Hand-written because hyper's client builds a request and a response header map and goes
//! through its dispatcher for every request: most of what separated us from wrk per CPU-second.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::ErrorKind as Kind;

/// The longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;

/// The request bytes of a `GET` of `path` on `authority`.
pub(super) fn get(path: &str, authority: &str, user_agent: &str, keep_alive: bool) -> Bytes {
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let s = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\n{close}\r\n"
    );
    Bytes::from(s)
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// At the end of the connection (no length, not chunked).
    Close,
}

/// A connection and what was read from it beyond the last response.
pub(super) struct H1 {
    tcp: TcpStream,
    buf: BytesMut,
    closed: bool,
}

fn io_kind(e: std::io::Error) -> Kind {
    use std::io::ErrorKind as E;
    match e.kind() {
        E::ConnectionReset | E::ConnectionAborted | E::BrokenPipe | E::UnexpectedEof => Kind::Reset,
        _ => Kind::Other,
    }
}

/// The framing of a response and whether the connection ends after it (RFC 9112 §6.3).
fn framing(
    status: u16,
    version: u8,
    headers: &[httparse::Header],
) -> Result<(Framing, bool), Kind> {
    let has = |name: &str, token: &str| {
        headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && String::from_utf8_lossy(h.value)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    let close = if version == 0 {
        !has("connection", "keep-alive")
    } else {
        has("connection", "close")
    };
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok((Framing::Length(0), close));
    }
    if has("transfer-encoding", "chunked") {
        return Ok((Framing::Chunked, close));
    }
    let length = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"));
    match length {
        Some(h) => std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(|n| (Framing::Length(n), close))
            .ok_or(Kind::Other),
        None => Ok((Framing::Close, true)),
    }
}

impl H1 {
    pub(super) fn new(tcp: TcpStream) -> H1 {
        H1 {
            tcp,
            buf: BytesMut::with_capacity(16 * 1024),
            closed: false,
        }
    }

    /// The server ended the connection, or said it would.
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Send `request` and read the whole response: its status (interim 1xx skipped).
    pub(super) async fn request(&mut self, request: &[u8]) -> Result<u16, Kind> {
        let r = self.exchange(request).await;
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<u16, Kind> {
        if !self.buf.is_empty() {
            // Bytes nobody asked for: the stream is out of step.
            return Err(Kind::Other);
        }
        self.tcp.write_all(request).await.map_err(io_kind)?;
        loop {
            let (status, framing, close) = self.head().await?;
            self.body(framing).await?;
            self.closed |= close;
            if !(100..200).contains(&status) || status == 101 {
                return Ok(status);
            }
        }
    }

    /// More bytes into the buffer; the end of the stream is a reset (a response is pending).
    async fn fill(&mut self) -> Result<(), Kind> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        match self.tcp.read_buf(&mut self.buf).await.map_err(io_kind)? {
            0 => {
                self.closed = true;
                Err(Kind::Reset)
            }
            _ => Ok(()),
        }
    }

    /// The status line and headers, consumed from the buffer.
    async fn head(&mut self) -> Result<(u16, Framing, bool), Kind> {
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut r = httparse::Response::new(&mut headers);
                match r.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = r.code.unwrap_or(0);
                        let (f, close) = framing(status, r.version.unwrap_or(1), r.headers)?;
                        Some((n, status, f, close))
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => None,
                    _ => return Err(Kind::Other),
                }
            };
            match parsed {
                Some((n, status, f, close)) => {
                    self.buf.advance(n);
                    return Ok((status, f, close));
                }
                None => self.fill().await?,
            }
        }
    }

    async fn body(&mut self, framing: Framing) -> Result<(), Kind> {
        match framing {
            Framing::Length(n) => self.skip(n).await,
            Framing::Chunked => self.chunks().await,
            Framing::Close => loop {
                self.buf.clear();
                if self.fill().await.is_err() {
                    // The end of the stream is the end of this body.
                    return Ok(());
                }
            },
        }
    }

    /// Drop `n` bytes of body, reading as needed.
    async fn skip(&mut self, mut n: u64) -> Result<(), Kind> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill().await?;
            }
            let take = n.min(self.buf.len() as u64);
            self.buf.advance(take as usize);
            n -= take;
        }
        Ok(())
    }

    /// A chunked body: sizes, data, and the trailers up to the empty line.
    async fn chunks(&mut self) -> Result<(), Kind> {
        loop {
            match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    self.buf.advance(used);
                    return self.trailers().await;
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    self.buf.advance(used);
                    self.skip(size).await?;
                    self.crlf().await?;
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_LINE => self.fill().await?,
                _ => return Err(Kind::Other),
            }
        }
    }

    async fn crlf(&mut self) -> Result<(), Kind> {
        while self.buf.len() < 2 {
            self.fill().await?;
        }
        if &self.buf[..2] != b"\r\n" {
            return Err(Kind::Other);
        }
        self.buf.advance(2);
        Ok(())
    }

    /// Trailer lines, each dropped, up to and with the empty line.
    async fn trailers(&mut self) -> Result<(), Kind> {
        loop {
            match self.buf.windows(2).position(|w| w == b"\r\n") {
                Some(at) => {
                    self.buf.advance(at + 2);
                    if at == 0 {
                        return Ok(());
                    }
                }
                None if self.buf.len() < MAX_LINE => self.fill().await?,
                None => return Err(Kind::Other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &'static str, value: &'static str) -> httparse::Header<'static> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cl = [h("Content-Length", " 12 ")];
        assert_eq!(framing(200, 1, &cl), Ok((Framing::Length(12), false)));
        let te = [
            h("transfer-encoding", "gzip, chunked"),
            h("Connection", "close"),
        ];
        assert_eq!(framing(200, 1, &te), Ok((Framing::Chunked, true)));
        assert_eq!(framing(200, 1, &[]), Ok((Framing::Close, true)));
        assert_eq!(framing(204, 1, &[]), Ok((Framing::Length(0), false)));
        assert_eq!(framing(200, 0, &cl), Ok((Framing::Length(12), true)));
        let ka = [h("Content-Length", "0"), h("connection", "Keep-Alive")];
        assert_eq!(framing(200, 0, &ka), Ok((Framing::Length(0), false)));
        assert_eq!(
            framing(200, 1, &[h("Content-Length", "x")]),
            Err(Kind::Other)
        );
    }

    #[test]
    fn the_request_is_one_buffer() {
        let r = get("/a?b=1", "web:8080", "t/1", false);
        assert_eq!(
            &r[..],
            b"GET /a?b=1 HTTP/1.1\r\nHost: web:8080\r\nUser-Agent: t/1\r\nConnection: close\r\n\r\n"
        );
    }

    async fn served(bytes: &'static [u8], requests: usize) -> Vec<Result<u16, Kind>> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
            // Split in odd places: every state of the parser waits for more.
            for part in bytes.chunks(3) {
                let _ = s.write_all(part).await;
                let _ = s.flush().await;
                tokio::task::yield_now().await;
            }
        });
        let mut c = H1::new(TcpStream::connect(addr).await.unwrap());
        let req = get("/", "x", "t", true);
        let mut out = Vec::new();
        for _ in 0..requests {
            out.push(c.request(&req).await);
        }
        out
    }

    #[tokio::test]
    async fn bodies_by_length_chunks_and_close_and_interim_responses() {
        let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n";
        assert_eq!(served(chunked, 1).await, [Ok(200)]);
        let close = b"HTTP/1.0 503 No\r\n\r\nthe rest of the stream";
        assert_eq!(served(close, 1).await, [Ok(503)]);
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(served(cut, 1).await, [Err(Kind::Reset)]);
        let garbage = b"SSH-2.0-OpenSSH_9.2\r\n\r\n";
        assert_eq!(served(garbage, 1).await, [Err(Kind::Other)]);
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX";
        assert_eq!(served(bad_chunk, 1).await, [Err(Kind::Other)]);
    }
}
