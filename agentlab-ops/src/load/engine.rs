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
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::stats::{ErrorKind as Kind, Stats};
use super::{LoadPlan, Mode};

/// A request target, resolved once.
#[derive(Debug, Clone)]
struct Target {
    addr: String,
    authority: String,
    path: String,
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
        authority,
        path,
    }
}

async fn connect(t: &Target, timeout: Duration) -> Result<SendRequest<Empty<Bytes>>, Kind> {
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&t.addr))
        .await
        .map_err(|_| Kind::Timeout)?
        .map_err(|_| Kind::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| Kind::Connect)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// One request on `send`: its status, or why there is none. The body is read to the end.
async fn request(
    send: &mut SendRequest<Empty<Bytes>>,
    t: &Target,
    keep_alive: bool,
    timeout: Duration,
) -> Result<u16, Kind> {
    let mut b = hyper::Request::get(t.path.as_str())
        .header("host", t.authority.as_str())
        .header(
            "user-agent",
            concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")),
        );
    if !keep_alive {
        b = b.header("connection", "close");
    }
    let req = b.body(Empty::new()).map_err(|_| Kind::Other)?;
    let fut = async {
        send.ready().await.map_err(|_| Kind::Reset)?;
        let resp = send.send_request(req).await.map_err(|e| {
            if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
                Kind::Reset
            } else {
                Kind::Other
            }
        })?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.map_err(|_| Kind::Reset)?;
        Ok(status)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Kind::Timeout)?
}

/// What one connection does until the plan is done or `cancel` fires.
struct Worker {
    plan: Arc<LoadPlan>,
    target: Target,
    next: Arc<AtomicU64>,
    start: Instant,
    cancel: CancellationToken,
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
        let intended = match self.plan.mode {
            Mode::Closed { .. } => Instant::now(),
            Mode::Open { rate, .. } => {
                self.start + Duration::from_secs_f64(i as f64 / rate.max(f64::MIN_POSITIVE))
            }
        };
        if intended.duration_since(self.start) >= self.plan.duration {
            return None;
        }
        Some((i, intended))
    }

    async fn run(self, mut stats: Stats) -> Stats {
        let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
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
            let result = match conn.as_mut() {
                Some(c) if p.keep_alive && !c.is_closed() => {
                    request(c, &self.target, p.keep_alive, p.timeout).await
                }
                _ => match connect(&self.target, p.timeout).await {
                    Ok(c) => {
                        let c = conn.insert(c);
                        request(c, &self.target, p.keep_alive, p.timeout).await
                    }
                    Err(k) => Err(k),
                },
            };
            let done = Instant::now();
            if result.is_err() || !p.keep_alive {
                conn = None;
            }
            let second = done.duration_since(self.start).as_secs();
            stats.record(second, result, done - intended, done - sent);
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
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|_| {
            let w = Worker {
                plan: plan.clone(),
                target: t.clone(),
                next: next.clone(),
                start,
                cancel: stop.clone(),
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
