//! A fault proxy in front of one dependency (toxiproxy's model, in-process): clients connect to
//! its address, every connection is relayed to the upstream, and while a fault is set the data
//! coming back (downstream) is delayed (each chunk by the latency from when it arrived, so
//! delays do not add up), throttled, held (a dependency that stopped answering) or every
//! connection is reset. Clearing the fault makes it pass traffic untouched again at once.
//! Written on tokio rather than taken from a crate: what is needed is ~200 lines, and the
//! toxiproxy ports carry an HTTP API and a server we do not want in the runner.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, ErrorKind, Result};

/// What the proxy does to the traffic now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toxics {
    /// Added to each downstream chunk.
    pub latency: Duration,
    /// Up to this much more, at random, per chunk.
    pub jitter: Duration,
    /// Downstream bytes per second (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// Reset every connection, open and new.
    pub reset: bool,
    /// Pass no data (connections are held open).
    pub timeout: bool,
}

impl Toxics {
    /// No fault: traffic untouched.
    pub fn none() -> Toxics {
        Toxics::default()
    }
}

/// A running proxy; dropped or [`FaultProxy::stop`]ped, it stops listening and closes its
/// connections.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: String,
    toxics: watch::Sender<Toxics>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on `listen` (`127.0.0.1:0` for any port) and relay to `upstream`.
    pub async fn start(listen: &str, upstream: &str) -> Result<FaultProxy> {
        let l = TcpListener::bind(listen).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("proxy: listen {listen}: {e}"),
            )
        })?;
        let addr = l
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("proxy: {e}")))?;
        let (tx, rx) = watch::channel(Toxics::none());
        let up = upstream.to_string();
        let task = tokio::spawn(accept_loop(l, up, rx));
        Ok(FaultProxy {
            addr,
            upstream: upstream.to_string(),
            toxics: tx,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The dependency behind it.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Set the fault (replaces the current one).
    pub fn set(&self, t: Toxics) {
        self.toxics.send_replace(t);
    }

    /// Remove the fault.
    pub fn clear(&self) {
        self.set(Toxics::none());
    }

    /// The fault now.
    pub fn toxics(&self) -> Toxics {
        self.toxics.borrow().clone()
    }

    /// Stop listening and close every connection.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(l: TcpListener, upstream: String, toxics: watch::Receiver<Toxics>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((client, _)) = l.accept().await else {
            continue;
        };
        let (up, t) = (upstream.clone(), toxics.clone());
        conns.spawn(async move {
            if let Err(e) = relay(client, &up, t).await {
                tracing::debug!("proxy connection to {up}: {e}");
            }
        });
        // Finished connections are reaped as new ones come (the set stays bounded).
        while conns.try_join_next().is_some() {}
    }
}

/// Close with a TCP reset (SO_LINGER 0), as a dependency that crashed would.
fn reset(s: &OwnedReadHalf) {
    let _ = socket2::SockRef::from(s.as_ref()).set_linger(Some(Duration::ZERO));
}

async fn wait_reset(mut t: watch::Receiver<Toxics>) {
    let _ = t.wait_for(|t| t.reset).await;
}

async fn relay(
    client: TcpStream,
    upstream: &str,
    toxics: watch::Receiver<Toxics>,
) -> std::io::Result<()> {
    if toxics.borrow().reset {
        let (r, _w) = client.into_split();
        reset(&r);
        return Ok(());
    }
    let server = TcpStream::connect(upstream).await?;
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = server.into_split();
    let both = async {
        let up = plain(&mut cr, &mut uw, toxics.clone());
        let down = downstream(&mut ur, &mut cw, toxics.clone());
        let _ = tokio::join!(up, down);
    };
    tokio::select! {
        _ = both => {}
        _ = wait_reset(toxics.clone()) => {
            reset(&cr);
            reset(&ur);
        }
    }
    Ok(())
}

/// Client to upstream: untouched, but held while `timeout` is on.
async fn plain(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    mut toxics: watch::Receiver<Toxics>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        let _ = toxics.wait_for(|t| !t.timeout).await;
        w.write_all(&buf[..n]).await?;
    }
}

/// Upstream to client: each chunk stamped when it arrived, written once its delay has passed
/// from then (a reader and a writer, so a slow chunk does not delay the reading of the next).
async fn downstream(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    toxics: watch::Receiver<Toxics>,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(64);
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0
                || tx
                    .send((Instant::now(), Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
            {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    let write = async move {
        let mut toxics = toxics;
        while let Some((at, chunk)) = rx.recv().await {
            let t = toxics
                .wait_for(|t| !t.timeout)
                .await
                .map(|t| t.clone())
                .unwrap_or_default();
            let jitter = if t.jitter.is_zero() {
                Duration::ZERO
            } else {
                t.jitter.mul_f64(fastrand::f64())
            };
            tokio::time::sleep_until((at + t.latency + jitter).into()).await;
            w.write_all(&chunk).await?;
            if let Some(bps) = t.bandwidth.filter(|b| *b > 0) {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bps as f64)).await;
            }
        }
        w.shutdown().await
    };
    let (a, b) = tokio::join!(read, write);
    a.and(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        a
    }

    async fn round_trip(s: &mut TcpStream) -> std::io::Result<Duration> {
        let t = Instant::now();
        s.write_all(b"ping").await?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await?;
        assert_eq!(&b, b"ping");
        Ok(t.elapsed())
    }

    #[tokio::test]
    async fn latency_then_untouched_then_reset() {
        let p = FaultProxy::start("127.0.0.1:0", &echo().await.to_string())
            .await
            .unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        assert!(round_trip(&mut c).await.unwrap() < Duration::from_millis(50));
        p.set(Toxics {
            latency: Duration::from_millis(200),
            ..Toxics::none()
        });
        let d = round_trip(&mut c).await.unwrap();
        assert!(
            d >= Duration::from_millis(200) && d < Duration::from_millis(400),
            "{d:?}"
        );
        p.clear();
        assert!(round_trip(&mut c).await.unwrap() < Duration::from_millis(50));
        p.set(Toxics {
            reset: true,
            ..Toxics::none()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let e = round_trip(&mut c).await.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            ),
            "{e:?}"
        );
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        assert!(
            round_trip(&mut c).await.is_err(),
            "a new connection is reset too"
        );
    }

    #[tokio::test]
    async fn a_timeout_holds_the_data_until_it_is_cleared() {
        let p = FaultProxy::start("127.0.0.1:0", &echo().await.to_string())
            .await
            .unwrap();
        p.set(Toxics {
            timeout: true,
            ..Toxics::none()
        });
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        let held = tokio::time::timeout(Duration::from_millis(300), round_trip(&mut c)).await;
        assert!(held.is_err(), "no data while the timeout is on");
        p.clear();
        let mut b = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut b))
            .await
            .expect("the held request is answered once cleared")
            .unwrap();
        assert_eq!(&b, b"ping");
    }
}
