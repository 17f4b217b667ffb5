//! The load engine: a fixed set of HTTP/1.1 connections on hyper's client connections (no pool
//! on the hot path), closed loop (each connection sends its next request when the last one
//! answered, like `ab -c`) or open loop at a rate, where every request has an intended start
//! time and its latency is measured from that (wrk2's coordinated-omission correction):
//! queueing behind a slow server counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

use super::stats::{ErrorKind as Kind, Stats};
use super::{LoadPlan, Mode};

/// A request target, resolved once.
#[derive(Debug, Clone)]
struct Target {
    addr: String,
    authority: String,
    path: String,
    /// The absolute URI (HTTP/2 takes the authority from it).
    uri: String,
}

fn target(url: &reqwest::Url) -> Target {
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    // The Host header: host and an explicit port, never the URL's user info.
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Target {
        addr: format!("{host}:{port}"),
        uri: format!("http://{authority}{path}"),
        authority,
        path,
    }
}

/// A connection: HTTP/1.1 (one request at a time, its own worker's) or HTTP/2 (streams of
/// many workers multiplexed on it).
enum Conn {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Conn {
    fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::H2(c) => c.is_closed(),
        }
    }
    async fn send(&mut self, req: hyper::Request<Empty<Bytes>>) -> Result<Response, Kind> {
        let kind = |e: hyper::Error| {
            if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
                Kind::Reset
            } else {
                Kind::Other
            }
        };
        match self {
            Conn::H1(c) => {
                c.ready().await.map_err(|_| Kind::Reset)?;
                c.send_request(req).await.map_err(kind)
            }
            Conn::H2(c) => {
                c.ready().await.map_err(|_| Kind::Reset)?;
                c.send_request(req).await.map_err(kind)
            }
        }
    }
}

type Response = hyper::Response<hyper::body::Incoming>;

async fn connect(t: &Target, timeout: Duration, h2: bool) -> Result<Conn, Kind> {
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&t.addr))
        .await
        .map_err(|_| Kind::Timeout)?
        .map_err(|_| Kind::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io = TokioIo::new(tcp);
    let hand = async {
        if h2 {
            // Prior knowledge (h2c): the target speaks HTTP/2 on plain TCP.
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Ok::<_, hyper::Error>(Conn::H2(send))
        } else {
            let (send, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Ok(Conn::H1(send))
        }
    };
    tokio::time::timeout(timeout, hand)
        .await
        .map_err(|_| Kind::Timeout)?
        .map_err(|_| Kind::Connect)
}

/// One request on `conn`: its status, or why there is none. The body is read to the end.
async fn request(
    conn: &mut Conn,
    t: &Target,
    keep_alive: bool,
    timeout: Duration,
) -> Result<u16, Kind> {
    let h2 = matches!(conn, Conn::H2(_));
    let mut b = hyper::Request::get(if h2 { t.uri.as_str() } else { t.path.as_str() }).header(
        "user-agent",
        concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")),
    );
    if !h2 {
        b = b.header("host", t.authority.as_str());
        if !keep_alive {
            b = b.header("connection", "close");
        }
    }
    let req = b.body(Empty::new()).map_err(|_| Kind::Other)?;
    let fut = async {
        let resp = conn.send(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.map_err(|_| Kind::Reset)?;
        Ok(status)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Kind::Timeout)?
}

/// HTTP/2 connections the workers share: worker `w` uses slot `w % len`, reconnected by
/// whichever worker finds it closed.
type Shared = Arc<Vec<tokio::sync::Mutex<Option<http2::SendRequest<Empty<Bytes>>>>>>;

/// What one worker does until the plan is done or `cancel` fires.
struct Worker {
    index: usize,
    plan: Arc<LoadPlan>,
    target: Target,
    next: Arc<AtomicU64>,
    start: Instant,
    cancel: CancellationToken,
    shared: Option<Shared>,
}

impl Worker {
    /// The index of this worker's next request and its intended start, or `None` when the
    /// plan has no more.
    fn claim(&self) -> Option<(u64, Instant)> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let limit = self.plan.max_requests();
        if i >= limit {
            return None;
        }
        let intended = match &self.plan.mode {
            Mode::Closed { .. } => Instant::now(),
            Mode::Open(s) => self.start + s.offset(i)?,
        };
        if intended.duration_since(self.start) >= self.plan.duration {
            return None;
        }
        Some((i, intended))
    }

    /// A usable connection in `conn`: the one kept alive, the shared HTTP/2 one, or a new one.
    async fn ensure(&self, conn: &mut Option<Conn>) -> Result<(), Kind> {
        let p = &self.plan;
        if conn
            .as_ref()
            .is_some_and(|c| p.keep_alive && !c.is_closed())
        {
            return Ok(());
        }
        *conn = None;
        let Some(slots) = &self.shared else {
            *conn = Some(connect(&self.target, p.timeout, false).await?);
            return Ok(());
        };
        let mut slot = slots[self.index % slots.len()].lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            *conn = Some(Conn::H2(c.clone()));
            return Ok(());
        }
        let c = connect(&self.target, p.timeout, true).await?;
        if let Conn::H2(s) = &c {
            *slot = Some(s.clone());
        }
        *conn = Some(c);
        Ok(())
    }

    async fn run(self, mut stats: Stats) -> Stats {
        let mut conn: Option<Conn> = None;
        let p = self.plan.clone();
        while let Some((_, intended)) = self.claim() {
            if self.cancel.is_cancelled() {
                break;
            }
            let now = Instant::now();
            if intended > now {
                tokio::select! {
                    _ = tokio::time::sleep_until(intended.into()) => {}
                    _ = self.cancel.cancelled() => break,
                }
            } else if now.duration_since(intended) > p.late_after {
                stats.late += 1;
            }
            let sent = Instant::now();
            let result = match self.ensure(&mut conn).await {
                Ok(()) => match conn.as_mut() {
                    Some(c) => request(c, &self.target, p.keep_alive, p.timeout).await,
                    None => Err(Kind::Other),
                },
                Err(k) => Err(k),
            };
            let done = Instant::now();
            if result.is_err() || !p.keep_alive {
                conn = None;
            }
            let second = done.duration_since(self.start).as_secs();
            stats.record(second, result, done - intended, done - sent);
            if let Some(d) = &p.progress {
                d.fetch_add(1, Ordering::Relaxed);
            }
        }
        stats
    }
}

/// Run `plan` to its end (or `cancel`): every worker's statistics merged.
pub(super) async fn run(plan: LoadPlan, url: &reqwest::Url, cancel: CancellationToken) -> Stats {
    let plan = Arc::new(plan);
    let t = target(url);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // The deadline: the plan's duration plus one timeout for the requests in flight.
    let stop = cancel.child_token();
    // Dropped (the runbook stopped by a signal or its deadline): the workers stop too.
    let _guard = stop.clone().drop_guard();
    let (s2, d) = (stop.clone(), plan.duration + plan.timeout);
    let deadline = tokio::spawn(async move {
        tokio::time::sleep(d).await;
        s2.cancel();
    });
    let shared: Option<Shared> = plan.http2.then(|| {
        let n = plan.connections.clamp(1, plan.concurrency.max(1));
        Arc::new((0..n).map(|_| tokio::sync::Mutex::new(None)).collect())
    });
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|index| {
            let w = Worker {
                index,
                plan: plan.clone(),
                target: t.clone(),
                next: next.clone(),
                start,
                cancel: stop.clone(),
                shared: shared.clone(),
            };
            tokio::spawn(w.run(Stats::new(plan.seconds())))
        })
        .collect();
    let mut total = Stats::new(plan.seconds());
    for w in workers {
        if let Ok(s) = w.await {
            total.merge(&s);
        }
    }
    deadline.abort();
    total.elapsed = start.elapsed();
    total.cancelled = cancel.is_cancelled();
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_header_never_carries_the_user_info() {
        let u = reqwest::Url::parse("http://ops:hunter22@web-1:8081/api?x=1").unwrap();
        let t = super::target(&u);
        assert_eq!(
            (t.addr.as_str(), t.authority.as_str(), t.path.as_str()),
            ("web-1:8081", "web-1:8081", "/api?x=1")
        );
        let t = super::target(&reqwest::Url::parse("http://web-1/").unwrap());
        assert_eq!(
            (t.addr.as_str(), t.authority.as_str()),
            ("web-1:80", "web-1")
        );
    }
}
