//! The accepted stream, wrapped: it enforces the deadlines of
//! `[connections]` on the bytes as they arrive, counts a client's HTTP/2
//! stream resets, and fails once the connection is closed from outside
//! (a ban on its address).
//!
//! An HTTP/1 connection goes through phases. `Header` (from accept, or from
//! the first byte after `Idle`) ends when the proxy has the whole header
//! ([`GuardedStream::request_started`]); `Body` lasts while a request body
//! is read; `Busy` while the request is proxied; `Idle` from the end of a
//! request ([`GuardedStream::request_done`]) to the next byte. A read that
//! has to wait, in a phase with a deadline, waits at most until the
//! deadline: `header_timeout` after the header's start, `idle_timeout`
//! after the connection went idle, and `body_timeout` plus one second per
//! `body_min_rate` bytes received after the body's first wait. Past it, the
//! read fails and Pingora closes the connection.
//!
//! Cost on the common request: a few relaxed atomic stores from the proxy,
//! one clock read when the connection waits for its next request, and one
//! poll of a timer that is re-armed only when a deadline comes *earlier*
//! than the armed one (a later deadline is found when the timer fires).
//! HTTP/2 connections keep the header deadline until the connection
//! preface is in; then each stream's header and body deadlines
//! ([`super::h2_streams`], the same `[connections]` values, the body clock
//! stopped while flow control lets the client send nothing) decide, and a
//! stream past its deadline closes the connection. They also count the
//! client's resets and look at the frames the server sends (a GOAWAY
//! ENHANCE_YOUR_CALM is counted); their idle timeout is Pingora's.

use super::h2::H2Watch;
use super::registry::ConnShared;
use super::Reason;
use crate::state::EdgeState;
use async_trait::async_trait;
use palisade_policy::connections::ConnectionLimits;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::Stream;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
// tokio's clock (the same as std's outside tests, where it can be paused).
use tokio::time::{Instant, Sleep};

const IDLE: u8 = 0;
const HEADER: u8 = 1;
const BODY: u8 = 2;
const BUSY: u8 = 3;
/// `since_ms` not taken yet: the first wait of the phase takes it.
const UNKNOWN: u64 = u64::MAX;
/// The farthest deadline, in ms since the connection's start.
const MAX_WAIT_MS: u64 = 365 * 86_400_000;

/// An accepted client connection under the guard.
pub struct GuardedStream {
    inner: Stream,
    conn: Arc<ConnShared>,
    state: Arc<EdgeState>,
    limits: ConnectionLimits,
    born: Instant,
    phase: AtomicU8,
    /// Start of the phase, in ms since `born`.
    since_ms: AtomicU64,
    body_bytes: AtomicU64,
    requests: AtomicU32,
    timer: Option<Pin<Box<Sleep>>>,
    armed: Option<Instant>,
    h2: Option<H2Watch>,
    failed: Option<Reason>,
    /// Served on the quarantine thread: closed after a response once its
    /// network became familiar, so that the client reconnects onto the
    /// edge's threads.
    quarantined: bool,
    /// HTTP/2: reads the preface until its fingerprint is known.
    preface: Option<Box<palisade_bots::fingerprint::H2PrefaceCollector>>,
    /// The client's address, when the fingerprint was recorded under it.
    printed: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("ip", &self.conn.ip)
            .field("phase", &self.phase.load(Relaxed))
            .finish()
    }
}

impl GuardedStream {
    /// Wraps a stream accepted at `born` and registered as `conn`; `h2`
    /// when it speaks HTTP/2.
    pub fn new(
        inner: Stream,
        born: Instant,
        conn: Arc<ConnShared>,
        state: Arc<EdgeState>,
        limits: ConnectionLimits,
        h2: bool,
    ) -> Self {
        state.metrics.conn.open.inc();
        let tls_peer = inner
            .get_ssl_digest()
            .and_then(|_| inner.get_socket_digest())
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        if let Some(peer) = &tls_peer {
            state.conns.prints.open(peer);
        }
        GuardedStream {
            inner,
            conn,
            state,
            born,
            phase: AtomicU8::new(HEADER),
            since_ms: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            timer: None,
            armed: None,
            h2: h2.then(|| {
                H2Watch::new(
                    limits.h2_max_resets,
                    Duration::from_millis(limits.h2_reset_window_ms),
                    super::h2_streams::StreamClocks::new(
                        limits.header_timeout_ms,
                        limits.body_timeout_ms,
                        limits.body_min_rate,
                        limits.h2_max_streams,
                    ),
                )
            }),
            limits,
            failed: None,
            quarantined: false,
            preface: h2.then(|| Box::new(palisade_bots::fingerprint::H2PrefaceCollector::new())),
            // A TLS connection may have its ClientHello's fingerprint
            // recorded (`super::hello`): forgotten when it closes.
            printed: tls_peer,
        }
    }

    /// Marks the connection as served on the quarantine thread.
    pub fn quarantined(mut self, quarantined: bool) -> Self {
        self.quarantined = quarantined;
        self
    }

    /// The guard of a downstream HTTP/1 session's connection, if it has one.
    pub fn of(session: &pingora_core::protocols::http::ServerSession) -> Option<&GuardedStream> {
        session.stream()?.as_any().downcast_ref()
    }

    /// The proxy has a request header: the body phase starts when the
    /// request has a body. Returns false when this request is the
    /// connection's last: it has carried `max_requests` requests, or it is
    /// quarantined and its network is familiar now (the client reconnects,
    /// and its new connection is served on the edge's threads).
    pub fn request_started(&self, has_body: bool) -> bool {
        self.body_bytes.store(0, Relaxed);
        self.since_ms.store(UNKNOWN, Relaxed);
        self.phase
            .store(if has_body { BODY } else { BUSY }, Relaxed);
        let n = self.requests.load(Relaxed).saturating_add(1);
        self.requests.store(n, Relaxed);
        let max = self.limits.max_requests;
        if max > 0 && n >= max {
            self.state.conn_dropped(Reason::MaxRequests, self.conn.ip);
            return false;
        }
        if self.quarantined
            && self.state.conns.familiar.knows(
                self.conn.ip,
                crate::now_ms(),
                self.limits.familiar_after_ms,
            )
        {
            self.state.metrics.conn.promoted.inc();
            return false;
        }
        true
    }

    /// Pingora's own keep-alive timeout (per read, 60 s unless set) for
    /// this connection: a second past `idle_timeout`, so that the guard's
    /// deadline decides (and counts).
    pub fn keepalive_secs(&self) -> u64 {
        self.limits.idle_timeout_ms.div_ceil(1000) + 1
    }

    /// The request body has been read.
    pub fn body_done(&self) {
        self.phase.store(BUSY, Relaxed);
    }

    /// The request is over: the connection waits for the next one.
    pub fn request_done(&self) {
        self.since_ms.store(UNKNOWN, Relaxed);
        self.phase.store(IDLE, Relaxed);
    }

    fn fail(&mut self, reason: Reason, count: bool) -> io::Error {
        if self.failed.is_none() && count {
            self.state.conn_dropped(reason, self.conn.ip);
        }
        self.failed = Some(reason);
        closed(reason)
    }

    fn on_bytes(&mut self, n: usize, got: &[u8]) -> Result<(), Reason> {
        if let Some(p) = &mut self.preface {
            use palisade_bots::fingerprint::H2Collect;
            match p.push(got) {
                H2Collect::NeedMore => {}
                H2Collect::NotH2 => self.preface = None,
                H2Collect::Done(fp) => {
                    self.preface = None;
                    let peer = self
                        .inner
                        .get_socket_digest()
                        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
                    if let Some(peer) = peer {
                        if self.state.conns.prints.set_h2(peer, Arc::from(fp.as_str())) {
                            self.printed = Some(peer);
                        }
                    }
                }
            }
        }
        if let Some(h2) = &mut self.h2 {
            let now_ms = self.born.elapsed().as_millis() as u64;
            if !h2.feed(got, now_ms) {
                return Err(Reason::H2Resets);
            }
            if self.phase.load(Relaxed) == HEADER && h2.past_preface() {
                self.phase.store(BUSY, Relaxed);
            }
            return Ok(());
        }
        match self.phase.load(Relaxed) {
            IDLE => {
                self.since_ms.store(UNKNOWN, Relaxed);
                self.phase.store(HEADER, Relaxed);
            }
            BODY => {
                let b = self.body_bytes.load(Relaxed);
                self.body_bytes.store(b.saturating_add(n as u64), Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    /// A read must wait: it waits at most until the phase's deadline (on
    /// HTTP/2, past the preface: the earliest deadline of its streams).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let (Some(h2), BUSY) = (&self.h2, self.phase.load(Relaxed)) {
            return match h2.next_deadline() {
                Some((at_ms, reason)) => self.wait_until(cx, at_ms.min(MAX_WAIT_MS), reason),
                None => Poll::Pending,
            };
        }
        let l = &self.limits;
        let (ms, reason) = match self.phase.load(Relaxed) {
            IDLE => (l.idle_timeout_ms, Reason::IdleTimeout),
            HEADER => (l.header_timeout_ms, Reason::HeaderTimeout),
            BODY => {
                let extra = match l.body_min_rate {
                    0 => 0,
                    rate => self.body_bytes.load(Relaxed).saturating_mul(1000) / u64::from(rate),
                };
                (l.body_timeout_ms.saturating_add(extra), Reason::BodyRate)
            }
            _ => return Poll::Pending,
        };
        let mut since = self.since_ms.load(Relaxed);
        if since == UNKNOWN {
            since = self.born.elapsed().as_millis() as u64;
            self.since_ms.store(since, Relaxed);
        }
        // At most a year away (a huge body at a low rate cannot overflow the clock).
        let wait = since.saturating_add(ms).min(MAX_WAIT_MS);
        self.wait_until(cx, wait, reason)
    }

    /// What the server sent may have started a stream's clock (a
    /// WINDOW_UPDATE that lets a blocked body go on): the HTTP/2 library
    /// writes after its read returned pending, so the read is woken to arm
    /// the timer for a deadline sooner than the one armed, if any.
    fn rearm_if_sooner(&self) {
        let Some((ms, _)) = self.h2.as_ref().and_then(|h| h.next_deadline()) else {
            return;
        };
        let due = self.born + Duration::from_millis(ms.min(MAX_WAIT_MS));
        if self.armed.is_none_or(|a| a > due) {
            self.conn.waker.wake();
        }
    }

    /// Waits until `wait` ms after the connection's start, then fails the
    /// connection for `reason`. Re-arms the timer only for an earlier time.
    fn wait_until(
        &mut self,
        cx: &mut Context<'_>,
        wait: u64,
        reason: Reason,
    ) -> Poll<io::Result<()>> {
        let due = self.born + Duration::from_millis(wait);
        loop {
            if self.armed.is_none_or(|a| a > due) {
                self.armed = Some(due);
                match &mut self.timer {
                    Some(t) => t.as_mut().reset(due),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(due))),
                }
            }
            let Some(timer) = self.timer.as_mut() else {
                return Poll::Pending;
            };
            match timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    if self.armed.is_some_and(|a| a >= due) {
                        return Poll::Ready(Err(self.fail(reason, true)));
                    }
                    // Fired for an earlier deadline that has since moved: re-arm.
                    self.armed = None;
                }
            }
        }
    }
}

use std::future::Future;

fn closed(reason: Reason) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, reason.as_str())
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        if let Some(peer) = &self.printed {
            self.state.conns.prints.remove(peer);
        }
        self.state.conns.registry.unregister(&self.conn);
        self.state.metrics.conn.open.dec();
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(r) = this.failed {
            return Poll::Ready(Err(closed(r)));
        }
        if let Some(r) = this.conn.closed() {
            return Poll::Ready(Err(this.fail(r, false)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    if let Err(r) = this.on_bytes(n, &buf.filled()[before..]) {
                        return Poll::Ready(Err(this.fail(r, true)));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.conn.waker.register(cx.waker());
                if let Some(r) = this.conn.closed() {
                    return Poll::Ready(Err(this.fail(r, false)));
                }
                this.poll_deadline(cx)
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(r) = this.failed.or_else(|| this.conn.closed()) {
            return Poll::Ready(Err(closed(r)));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Some(h2), Poll::Ready(Ok(n))) = (&mut this.h2, &r) {
            if h2.sent(&buf[..*n], this.born.elapsed().as_millis() as u64) {
                this.state.conn_dropped(Reason::H2Limits, this.conn.ip);
            }
            this.rearm_if_sooner();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(r) = this.failed.or_else(|| this.conn.closed()) {
            return Poll::Ready(Err(closed(r)));
        }
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let (Some(h2), Poll::Ready(Ok(n))) = (&mut this.h2, &r) {
            let now_ms = this.born.elapsed().as_millis() as u64;
            let mut left = *n;
            let mut calm = false;
            for b in bufs {
                if left == 0 {
                    break;
                }
                let k = left.min(b.len());
                calm |= h2.sent(&b[..k], now_ms);
                left -= k;
            }
            if calm {
                this.state.conn_dropped(Reason::H2Limits, this.conn.ip);
            }
            this.rearm_if_sooner();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests;
