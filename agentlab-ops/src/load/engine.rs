//! The load engine: a fixed set of HTTP/1.1 connections (our own, [`super::h1`]: one write and
//! parsing in place per request) or HTTP/2 streams on hyper's client connections, closed loop (each connection sends its next request when the last one
//! answered, like `ab -c`) or open loop at a rate, where every request has an intended start
//! time and its latency is measured from that (wrk2's coordinated-omission correction):
//! queueing behind a slow server counts.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper::header::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

use super::stats::{ErrorKind as Kind, Stats};
use super::{LoadPlan, Mode};

/// The endpoints of a run (one origin), resolved once.
#[derive(Debug, Clone)]
struct Target {
    addr: String,
    /// Request `i` goes to `paths[i % len]`.
    paths: Arc<[Path]>,
}

/// One endpoint: its HTTP/1.1 request, serialised once, and its URI for HTTP/2, parsed once,
/// cloned per request (a reference count, no parsing on the hot path).
#[derive(Debug)]
struct Path {
    h1: Bytes,
    /// The absolute URI (HTTP/2 takes the authority from it).
    h2: hyper::Uri,
}

const UA: HeaderValue =
    HeaderValue::from_static(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")));

/// The target of `urls` (one origin: the caller checked).
fn target(urls: &[reqwest::Url], keep_alive: bool) -> Target {
    let url = &urls[0];
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    // The Host header: host and an explicit port, never the URL's user info.
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let paths = urls
        .iter()
        .map(|u| {
            let mut path = u.path().to_string();
            if let Some(q) = u.query() {
                path.push('?');
                path.push_str(q);
            }
            Path {
                h2: format!("http://{authority}{path}")
                    .parse()
                    .unwrap_or_default(),
                h1: super::h1::get(&path, &authority, UA.to_str().unwrap_or(""), keep_alive),
            }
        })
        .collect();
    Target {
        addr: format!("{host}:{port}"),
        paths,
    }
}

/// A connection: HTTP/1.1 (one request at a time, its own worker's, read and written by the
/// worker's task — no task of its own, no cross-task wake-ups per request) or HTTP/2 (streams
/// of many workers multiplexed on it, driven by a task).
enum Conn {
    H1(super::h1::H1),
    H2(http2::SendRequest<Empty<Bytes>>),
}

fn kind(e: hyper::Error) -> Kind {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        Kind::Reset
    } else {
        Kind::Other
    }
}

impl Conn {
    fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::H2(c) => c.is_closed(),
        }
    }
}

/// The status of a response, its body drained frame by frame.
async fn drain(resp: Response) -> Result<u16, Kind> {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|_| Kind::Reset)?;
    }
    Ok(status)
}

type Response = hyper::Response<hyper::body::Incoming>;

/// A new connection (bounded by the request's timeout around it).
async fn connect(t: &Target, h2: bool) -> Result<Conn, Kind> {
    let tcp = tokio::net::TcpStream::connect(&t.addr)
        .await
        .map_err(|_| Kind::Connect)?;
    let _ = tcp.set_nodelay(true);
    if !h2 {
        return Ok(Conn::H1(super::h1::H1::new(tcp)));
    }
    // Prior knowledge (h2c): the target speaks HTTP/2 on plain TCP.
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .map_err(|_| Kind::Connect)?;
    tokio::spawn(conn);
    Ok(Conn::H2(send))
}

/// One request to `path` on `conn`: its status, or why there is none. The body is read to
/// the end and dropped.
async fn request(conn: &mut Conn, path: &Path) -> Result<u16, Kind> {
    match conn {
        Conn::H1(c) => c.request(&path.h1).await,
        Conn::H2(send) => {
            let mut req = hyper::Request::new(Empty::new());
            *req.uri_mut() = path.h2.clone();
            req.headers_mut().insert(hyper::header::USER_AGENT, UA);
            send.ready().await.map_err(|_| Kind::Reset)?;
            drain(send.send_request(req).await.map_err(kind)?).await
        }
    }
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
            *conn = Some(connect(&self.target, false).await?);
            return Ok(());
        };
        let mut slot = slots[self.index % slots.len()].lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            *conn = Some(Conn::H2(c.clone()));
            return Ok(());
        }
        let c = connect(&self.target, true).await?;
        if let Conn::H2(s) = &c {
            *slot = Some(s.clone());
        }
        *conn = Some(c);
        Ok(())
    }

    /// One request within `deadline`. The timer is left armed at an earlier deadline (the
    /// previous request's) and only moved when it fires early: no timer-wheel operation per
    /// request, one per timeout period.
    async fn attempt(
        &self,
        conn: &mut Option<Conn>,
        mut timer: Pin<&mut tokio::time::Sleep>,
        path: &Path,
        deadline: Instant,
    ) -> Result<u16, Kind> {
        if timer.is_elapsed() {
            timer.as_mut().reset(deadline.into());
        }
        let attempt = async {
            self.ensure(conn).await?;
            match conn.as_mut() {
                Some(c) => request(c, path).await,
                None => Err(Kind::Other),
            }
        };
        let mut attempt = std::pin::pin!(attempt);
        loop {
            tokio::select! {
                biased;
                r = &mut attempt => return r,
                _ = &mut timer => {
                    if Instant::now() >= deadline {
                        return Err(Kind::Timeout);
                    }
                    timer.as_mut().reset(deadline.into());
                }
            }
        }
    }

    /// Requests until the plan or the deadline ends, recorded into its thread's `stats`
    /// (borrowed only between awaits).
    async fn run(self, stats: Rc<RefCell<Stats>>) {
        let mut conn: Option<Conn> = None;
        let p = self.plan.clone();
        // One timer per worker, re-armed lazily (see `attempt`).
        let timer = tokio::time::sleep(p.timeout);
        tokio::pin!(timer);
        let mut unreported = 0u64;
        let paths = self.target.paths.clone();
        while let Some((i, intended)) = self.claim() {
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
                stats.borrow_mut().late += 1;
            }
            let endpoint = (i % paths.len() as u64) as usize;
            let sent = Instant::now();
            let path = &paths[endpoint];
            let result = self
                .attempt(&mut conn, timer.as_mut(), path, sent + p.timeout)
                .await;
            let done = Instant::now();
            if result.is_err() || !p.keep_alive {
                conn = None;
            }
            let second = done.duration_since(self.start).as_secs();
            let (corrected, raw) = (done - intended, done - sent);
            stats
                .borrow_mut()
                .record(second, endpoint, result, corrected, raw);
            unreported += 1;
            if let Some(d) = p.progress.as_ref().filter(|_| unreported == 64) {
                d.fetch_add(std::mem::take(&mut unreported), Ordering::Relaxed);
            }
        }
        if let Some(d) = &p.progress {
            d.fetch_add(unreported, Ordering::Relaxed);
        }
    }
}

/// Run `workers` on a thread of their own with a single-threaded runtime (wrk's model: no
/// work stealing, no cross-thread wake-ups on the hot path), recording into the thread's one
/// `Stats` (bounded memory per thread, not per connection); it arrives on the channel
/// (closed without a value if the thread could not start).
fn on_thread(
    th: usize,
    workers: Vec<Worker>,
    empty: Stats,
) -> tokio::sync::oneshot::Receiver<Stats> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("agentlab-load-{th}"))
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                tracing::warn!("load thread {th}: no runtime");
                return;
            };
            let stats = Rc::new(RefCell::new(empty));
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let handles: Vec<_> = workers
                    .into_iter()
                    .map(|w| tokio::task::spawn_local(w.run(stats.clone())))
                    .collect();
                for h in handles {
                    let _ = h.await;
                }
            });
            drop(local);
            let _ = tx.send(stats.replace(Stats::new(0)));
        });
    if let Err(e) = spawned {
        tracing::warn!("load thread {th} not started: {e}");
    }
    rx
}

/// Run `plan` to its end (or `cancel`): every worker's statistics merged.
pub(super) async fn run(plan: LoadPlan, urls: &[reqwest::Url], cancel: CancellationToken) -> Stats {
    let plan = Arc::new(plan);
    let t = target(urls, plan.keep_alive);
    let empty = || Stats::with_endpoints(plan.seconds(), urls.len());
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
    let n = plan.concurrency.max(1);
    let threads = plan.threads.clamp(1, n);
    let mut results = Vec::with_capacity(threads);
    for th in 0..threads {
        let workers: Vec<Worker> = (th..n)
            .step_by(threads)
            .map(|index| Worker {
                index,
                plan: plan.clone(),
                target: t.clone(),
                next: next.clone(),
                start,
                cancel: stop.clone(),
                shared: shared.clone(),
            })
            .collect();
        results.push(on_thread(th, workers, empty()));
    }
    let mut total = empty();
    for r in results {
        if let Ok(s) = r.await {
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
        let v = reqwest::Url::parse("http://web-1:8081/health").unwrap();
        let t = super::target(&[u, v], true);
        let head = |b: &bytes::Bytes| {
            String::from_utf8_lossy(b)
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join("|")
        };
        assert_eq!(t.addr, "web-1:8081");
        assert_eq!(
            head(&t.paths[0].h1),
            "GET /api?x=1 HTTP/1.1|Host: web-1:8081"
        );
        assert!(!String::from_utf8_lossy(&t.paths[0].h1).contains("hunter22"));
        assert_eq!(t.paths[0].h2.to_string(), "http://web-1:8081/api?x=1");
        assert_eq!(
            head(&t.paths[1].h1),
            "GET /health HTTP/1.1|Host: web-1:8081"
        );
        let t = super::target(&[reqwest::Url::parse("http://web-1/").unwrap()], false);
        assert_eq!(t.addr, "web-1:80");
        assert_eq!(head(&t.paths[0].h1), "GET / HTTP/1.1|Host: web-1");
        assert!(String::from_utf8_lossy(&t.paths[0].h1).contains("Connection: close\r\n"));
    }
}
