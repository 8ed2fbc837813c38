//! Link faults the test controls, for delivery tests.
//!
//! [`ChaosProxy`] is a TCP proxy of the test's own on 127.0.0.1 that sits
//! between an agent and a collector and, on command:
//! * **cuts** every open connection now ([`ChaosProxy::cut_all`]) or once
//!   a given number of further agent→collector bytes has passed
//!   ([`ChaosProxy::cut_after_bytes`] — lands in the middle of a batch),
//!   or collector→agent bytes ([`ChaosProxy::cut_after_bytes_down`] — in
//!   the middle of an acknowledgement);
//! * **stalls** ([`Mode::Stall`]): stops forwarding but keeps the bytes,
//!   and resumes where it stopped;
//! * **throttles** ([`Mode::Throttle`]) to a byte rate per direction;
//! * **black-holes** ([`Mode::BlackHole`]): the realistic "remote site
//!   offline" — new connections are accepted and never answered, open ones
//!   silently swallow everything from then on (no FIN, no RST);
//! * **refuses** ([`Mode::Refuse`]): new connections are closed at once.
//!
//! [`netns`] adds the kernel-level variant (root only): the agent in a
//! network namespace of the test's own, nftables drop/reject rules on its
//! traffic.
//!
//! Bounded: every connection task ends when the proxy is dropped; buffers
//! are 64 KiB per direction.

pub mod netns;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept new connections and close them at once; open ones go on.
    Refuse,
    /// Accept new connections and never answer; open connections swallow
    /// everything from now on, for good.
    BlackHole,
    /// Stop forwarding (bytes are kept) until the mode changes.
    Stall,
    /// Forward at most this many bytes per second per direction.
    Throttle { bytes_per_sec: u64 },
}

/// Counters of what the proxy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub accepted: u64,
    pub cuts: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

struct Control {
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Tokens of the open connections; cancelling one cuts it.
    conns: Mutex<Vec<CancellationToken>>,
    /// Cut everything when `bytes_up` / `bytes_down` reaches this (0:
    /// disarmed).
    cut_at_up: AtomicU64,
    cut_at_down: AtomicU64,
    accepted: AtomicU64,
    cuts: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Control {
    fn cut_all(&self) -> usize {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in &conns {
            c.cancel();
        }
        self.cuts.fetch_add(1, Ordering::SeqCst);
        conns.len()
    }
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct ChaosProxy {
    addr: SocketAddr,
    ctl: Arc<Control>,
    shutdown: CancellationToken,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

const CHUNK: usize = 64 * 1024;

impl ChaosProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<ChaosProxy> {
        Self::start_on("127.0.0.1:0".parse()?, upstream).await
    }

    /// Listens on `listen` and forwards to `upstream`.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> Result<ChaosProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Pass);
        let ctl = Arc::new(Control {
            upstream,
            mode,
            conns: Mutex::new(Vec::new()),
            cut_at_up: AtomicU64::new(0),
            cut_at_down: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(listener, ctl.clone(), shutdown.clone()));
        Ok(ChaosProxy {
            addr,
            ctl,
            shutdown,
        })
    }

    /// Where agents should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for an agent's endpoint list.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.ctl.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.ctl.mode.borrow()
    }

    /// Closes every open connection now; returns how many there were.
    pub fn cut_all(&self) -> usize {
        self.ctl.cut_all()
    }

    /// Cuts every connection once `n` more bytes went agent→collector
    /// (the cut lands inside whatever message is passing).
    pub fn cut_after_bytes(&self, n: u64) {
        let at = self.ctl.bytes_up.load(Ordering::SeqCst) + n.max(1);
        self.ctl.cut_at_up.store(at, Ordering::SeqCst);
    }

    /// Cuts every connection once `n` more bytes went collector→agent
    /// (the cut lands inside an acknowledgement or a keepalive answer).
    pub fn cut_after_bytes_down(&self, n: u64) {
        let at = self.ctl.bytes_down.load(Ordering::SeqCst) + n.max(1);
        self.ctl.cut_at_down.store(at, Ordering::SeqCst);
    }

    /// Open connections.
    pub fn open_connections(&self) -> usize {
        let mut conns = self.ctl.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| !c.is_cancelled());
        conns.len()
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.ctl.accepted.load(Ordering::SeqCst),
            cuts: self.ctl.cuts.load(Ordering::SeqCst),
            bytes_up: self.ctl.bytes_up.load(Ordering::SeqCst),
            bytes_down: self.ctl.bytes_down.load(Ordering::SeqCst),
        }
    }
}

async fn accept_loop(listener: TcpListener, ctl: Arc<Control>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((down, _)) = accepted else {
            continue;
        };
        ctl.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = down.set_nodelay(true);
        let token = shutdown.child_token();
        ctl.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.clone());
        tokio::spawn(connection(down, ctl.clone(), token));
    }
}

/// Reads and discards until EOF or the token: a black hole.
async fn swallow(mut s: impl tokio::io::AsyncRead + Unpin, token: &CancellationToken) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            r = s.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { return },
        }
    }
}

async fn connection(down: TcpStream, ctl: Arc<Control>, token: CancellationToken) {
    let mode = *ctl.mode.borrow();
    match mode {
        Mode::Refuse => {
            token.cancel();
            return;
        }
        Mode::BlackHole => {
            swallow(down, &token).await;
            token.cancel();
            return;
        }
        _ => {}
    }
    let up = tokio::select! {
        _ = token.cancelled() => return,
        r = TcpStream::connect(ctl.upstream) => r,
    };
    let Ok(up) = up else {
        token.cancel();
        return;
    };
    let _ = up.set_nodelay(true);
    let dead = Arc::new(AtomicBool::new(false));
    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    let a = tokio::spawn(pump(dr, uw, ctl.clone(), token.clone(), dead.clone(), true));
    let b = tokio::spawn(pump(ur, dw, ctl, token.clone(), dead, false));
    let _ = a.await;
    let _ = b.await;
    token.cancel();
}

/// Forwards one direction under the current mode until EOF or a cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    ctl: Arc<Control>,
    token: CancellationToken,
    dead: Arc<AtomicBool>,
    upward: bool,
) {
    let mut mode_rx = ctl.mode.subscribe();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            _ = token.cancelled() => return,
            r = from.read(&mut buf) => match r {
                Ok(n) if n > 0 => n,
                // EOF or error: end this direction, and the connection.
                _ => { token.cancel(); return; }
            },
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if dead.load(Ordering::SeqCst) {
                break;
            }
            let mode = *mode_rx.borrow_and_update();
            let step = match mode {
                Mode::BlackHole => {
                    dead.store(true, Ordering::SeqCst);
                    break;
                }
                Mode::Stall => {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        r = mode_rx.changed() => if r.is_err() { return },
                    }
                    continue;
                }
                Mode::Throttle { bytes_per_sec } => {
                    let bps = bytes_per_sec.max(1);
                    // About 20 slices a second.
                    (bps / 20).max(1).min(chunk.len() as u64) as usize
                }
                Mode::Pass | Mode::Refuse => chunk.len(),
            };
            let mut step = step;
            let mut cut_now = false;
            let (cut_at, counter) = if upward {
                (&ctl.cut_at_up, &ctl.bytes_up)
            } else {
                (&ctl.cut_at_down, &ctl.bytes_down)
            };
            let at = cut_at.load(Ordering::SeqCst);
            let sent = counter.load(Ordering::SeqCst);
            if at > 0 && sent + step as u64 >= at {
                step = at.saturating_sub(sent).min(step as u64) as usize;
                cut_now = true;
            }
            let wrote = tokio::select! {
                _ = token.cancelled() => return,
                r = to.write_all(&chunk[..step]) => r.is_ok(),
            };
            if !wrote {
                token.cancel();
                return;
            }
            counter.fetch_add(step as u64, Ordering::SeqCst);
            chunk = &chunk[step..];
            if cut_now {
                cut_at.store(0, Ordering::SeqCst);
                ctl.cut_all();
                return;
            }
            if let Mode::Throttle { bytes_per_sec } = mode {
                let pause = Duration::from_secs_f64(step as f64 / bytes_per_sec.max(1) as f64);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        if dead.load(Ordering::SeqCst) {
            // Swallow the rest of this direction silently; the other
            // direction sees `dead` on its next chunk.
            swallow(from, &token).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: returns what it reads.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(within, s.read_exact(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got)
    }

    #[tokio::test]
    async fn passes_stalls_cuts_and_black_holes() {
        let proxy = ChaosProxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            roundtrip(&mut s, b"hello", ms(2000)).await.unwrap(),
            b"hello"
        );

        // Stall keeps the bytes and delivers them after.
        proxy.set_mode(Mode::Stall);
        assert!(roundtrip(&mut s, b"held", ms(300)).await.is_none());
        proxy.set_mode(Mode::Pass);
        let mut got = vec![0u8; 4];
        tokio::time::timeout(ms(2000), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"held");

        // A cut mid-message: the peer sees the connection end.
        proxy.cut_after_bytes(3);
        let _ = s.write_all(b"abcdefgh").await;
        let mut rest = Vec::new();
        let r = tokio::time::timeout(ms(2000), s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "the cut closes the connection");
        assert!(
            rest.len() <= 3,
            "at most the bytes before the cut: {rest:?}"
        );
        assert!(proxy.stats().cuts >= 1);

        // A cut in the other direction: the answer is cut short.
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s, b"warm", ms(2000)).await.unwrap(), b"warm");
        proxy.cut_after_bytes_down(3);
        let _ = s.write_all(b"abcdefgh").await;
        let mut rest = Vec::new();
        let r = tokio::time::timeout(ms(2000), s.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "the cut closes the connection");
        assert_eq!(rest, b"abc", "exactly the bytes before the cut");

        // Black hole: connects, never answers, never closes.
        proxy.set_mode(Mode::BlackHole);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"anyone?", ms(300)).await.is_none());
        proxy.set_mode(Mode::Pass);
        assert!(
            roundtrip(&mut s, b"still?", ms(300)).await.is_none(),
            "a black-holed connection never comes back"
        );
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut fresh, b"new", ms(2000)).await.unwrap(),
            b"new"
        );

        // Throttle: 2 KiB at 4 KiB/s takes about half a second.
        proxy.set_mode(Mode::Throttle {
            bytes_per_sec: 4096,
        });
        let t = tokio::time::Instant::now();
        let big = vec![7u8; 2048];
        assert_eq!(roundtrip(&mut fresh, &big, ms(5000)).await.unwrap(), big);
        assert!(t.elapsed() >= ms(300), "throttled: {:?}", t.elapsed());

        // Refuse: new connections close at once.
        proxy.set_mode(Mode::Refuse);
        let mut r = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(ms(2000), r.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)));
    }
}
