//! Connection-level defence: the limits of `[connections]` in the policy,
//! enforced on every accepted client connection, before and around HTTP.
//!
//! - At accept, before TLS ([`ConnFilter`], Pingora's `ConnectionFilter`):
//!   a socket peer with an enforced ban decision (ip or cidr) is refused, and
//!   so is one that already holds `max_per_ip` connections.
//! - Once accepted ([`ConnGuard`], a `ServerApp` in front of the proxy):
//!   the connection is counted under its address ([`registry`]), the per-IP
//!   cap is applied for good (the filter's check is only a read), and the
//!   stream is wrapped ([`stream::GuardedStream`]) to enforce the header
//!   deadline, the minimum body rate, the idle timeout and the HTTP/2 reset
//!   limit ([`h2`]). The proxy tells the wrapper where each request stands
//!   and applies `max_requests`.
//! - Connections from networks the edge did not know before
//!   (`familiar_after`, [`familiar`]) are served on the quarantine thread
//!   ([`quarantine`]), so that a flood of new sources cannot delay the
//!   clients the edge already knew.
//! - When a ban arrives (from the API, the mesh or an escalation), the
//!   open connections of the banned addresses are closed
//!   ([`Conns::ban_arrived`] wakes a sweeper thread).
//!
//! A trusted proxy (`--trusted-proxy`) is neither capped nor banned at accept:
//! the clients behind it are known only once the request is parsed, where
//! bans keep applying as before. Every refused or closed connection is counted
//! in `palisade_connections_dropped_total{reason}` and sampled into events
//! ([`metrics`]).
//!
//! What it must not do: look at requests (the pipeline does), or cost the
//! common request more than a few atomic operations.

pub mod familiar;
pub mod h2;
pub mod h2_streams;
pub mod hello;
pub mod metrics;
pub mod quarantine;
pub mod registry;
pub mod stream;

use crate::h2c::{sniff_stream, Sniffed};
use crate::state::EdgeState;
use async_trait::async_trait;
use palisade_policy::connections::ConnectionLimits;
use palisade_policy::{DecisionAction, Geo};
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use registry::Registry;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stream::GuardedStream;

/// Why a connection was refused or closed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Refused at accept: the peer has a ban decision.
    Banned = 1,
    /// Refused at accept: the peer holds `max_per_ip` connections.
    PerIpCap,
    /// Open when a ban on its address arrived.
    BanClosed,
    /// The request header took longer than `header_timeout`.
    HeaderTimeout,
    /// The request body came slower than `body_min_rate` after `body_timeout`.
    BodyRate,
    /// No request for `idle_timeout`.
    IdleTimeout,
    /// More HTTP/2 stream resets than `h2_max_resets` per window.
    H2Resets,
    /// Carried `max_requests` requests (closed after the last response).
    MaxRequests,
    /// The h2 library ended the connection (GOAWAY ENHANCE_YOUR_CALM) for a
    /// client past its limits: streams refused past `h2_max_streams` more
    /// than `h2_max_resets` times, or one of the library's own flood limits.
    H2Limits,
}

impl Reason {
    /// Every reason, in `repr` order.
    pub const ALL: [Reason; 9] = [
        Reason::Banned,
        Reason::PerIpCap,
        Reason::BanClosed,
        Reason::HeaderTimeout,
        Reason::BodyRate,
        Reason::IdleTimeout,
        Reason::H2Resets,
        Reason::MaxRequests,
        Reason::H2Limits,
    ];

    /// The metric label and event rule id.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Banned => "banned",
            Reason::PerIpCap => "per_ip_cap",
            Reason::BanClosed => "ban_closed",
            Reason::HeaderTimeout => "header_timeout",
            Reason::BodyRate => "body_rate",
            Reason::IdleTimeout => "idle_timeout",
            Reason::H2Resets => "h2_resets",
            Reason::MaxRequests => "max_requests",
            Reason::H2Limits => "h2_limits",
        }
    }

    fn from_u8(v: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }
}

/// The connection state of an edge: open connections by address, and the
/// sweeper that closes them when a ban arrives.
#[derive(Default)]
pub struct Conns {
    /// Open connections by address.
    pub registry: Registry,
    /// The client networks known for a while.
    pub familiar: familiar::Familiar,
    /// The thread serving the others.
    pub quarantine: quarantine::Quarantine,
    sweeper: OnceLock<SyncSender<()>>,
    /// The TLS and HTTP/2 fingerprints of open connections, by client
    /// address and port (read by the bot defence per request).
    pub prints: Prints,
}

/// The fingerprints of open connections (the TLS ClientHello's JA4, the
/// HTTP/2 preface's), by client address and port, at most [`Prints::CAP`]
/// in [`Prints::SHARDS`] shards.
///
/// A JA4 is recorded before the handshake, for a connection that may never
/// be served (a failed handshake, a ban, a cap): such entries stay *pending*
/// until the connection's guard opens them ([`Prints::open`]). When a shard
/// is full, pending entries older than [`Prints::PENDING_MS`] go, then all
/// pending ones; open ones go only when their connection closes. A flood of
/// ClientHellos therefore churns pending entries without pushing out the
/// fingerprints of served connections, and costs one shard's scan at most.
#[derive(Debug)]
pub struct Prints {
    shards: Vec<parking_lot::Mutex<std::collections::HashMap<std::net::SocketAddr, ConnPrints>>>,
}

impl Default for Prints {
    fn default() -> Self {
        Prints {
            shards: (0..Self::SHARDS)
                .map(|_| parking_lot::Mutex::new(std::collections::HashMap::new()))
                .collect(),
        }
    }
}

/// What one connection's first bytes said.
#[derive(Debug, Clone, Default)]
pub struct ConnPrints {
    /// The JA4 of its TLS ClientHello.
    pub ja4: Option<Arc<str>>,
    /// Its HTTP/2 fingerprint.
    pub h2: Option<Arc<str>>,
    /// When it was recorded (ms since the epoch).
    at_ms: u64,
    /// Its connection is served (registered and guarded).
    open: bool,
}

impl Prints {
    /// The most connections tracked.
    pub const CAP: usize = 65_536;
    /// Shards (one lock each).
    pub const SHARDS: usize = 64;
    /// How long a pending entry is kept for sure.
    pub const PENDING_MS: u64 = 10_000;

    fn shard(
        &self,
        peer: &std::net::SocketAddr,
    ) -> &parking_lot::Mutex<std::collections::HashMap<std::net::SocketAddr, ConnPrints>> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(peer);
        &self.shards[(h as usize) % Self::SHARDS]
    }

    fn update(
        &self,
        peer: std::net::SocketAddr,
        open: bool,
        f: impl FnOnce(&mut ConnPrints),
    ) -> bool {
        let now = crate::now_ms();
        let mut m = self.shard(&peer).lock();
        if m.len() >= Self::CAP / Self::SHARDS && !m.contains_key(&peer) {
            m.retain(|_, p| p.open || now.saturating_sub(p.at_ms) < Self::PENDING_MS);
            if m.len() >= Self::CAP / Self::SHARDS {
                m.retain(|_, p| p.open);
            }
            if m.len() >= Self::CAP / Self::SHARDS {
                return false;
            }
        }
        let e = m.entry(peer).or_default();
        e.at_ms = now;
        e.open |= open;
        f(e);
        true
    }

    /// Records the JA4 of the connection from `peer` (pending).
    pub fn set_ja4(&self, peer: std::net::SocketAddr, fp: Arc<str>) -> bool {
        self.update(peer, false, |p| p.ja4 = Some(fp))
    }

    /// Records the HTTP/2 fingerprint of the (served) connection from `peer`.
    pub fn set_h2(&self, peer: std::net::SocketAddr, fp: Arc<str>) -> bool {
        self.update(peer, true, |p| p.h2 = Some(fp))
    }

    /// The connection from `peer` is served: its entry stays until it closes.
    pub fn open(&self, peer: &std::net::SocketAddr) {
        if let Some(p) = self.shard(peer).lock().get_mut(peer) {
            p.open = true;
        }
    }

    /// The fingerprints of the connection from `peer`.
    pub fn get(&self, peer: &std::net::SocketAddr) -> Option<ConnPrints> {
        self.shard(peer).lock().get(peer).cloned()
    }

    /// The connection closed.
    pub fn remove(&self, peer: &std::net::SocketAddr) {
        self.shard(peer).lock().remove(peer);
    }

    /// Connections tracked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod prints_tests {
    use super::*;

    #[test]
    fn pending_fingerprints_never_push_out_served_ones() {
        let p = Prints::default();
        let addr = |i: u32| {
            std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 443))
        };
        // Served connections first, then a flood of handshakes that never finish.
        for i in 0..1_000 {
            assert!(p.set_ja4(addr(i), Arc::from("t13d")));
            p.open(&addr(i));
        }
        for i in 1_000..200_000 {
            p.set_ja4(addr(i), Arc::from("junk"));
        }
        assert!(p.len() <= Prints::CAP);
        for i in 0..1_000 {
            assert_eq!(p.get(&addr(i)).and_then(|c| c.ja4).as_deref(), Some("t13d"));
        }
        p.remove(&addr(0));
        assert!(p.get(&addr(0)).is_none());
    }
}

impl Conns {
    /// A ban may have arrived: closes the open connections it covers (soon,
    /// on the sweeper thread; bursts of bans make one sweep).
    pub fn ban_arrived(&self) {
        if let Some(tx) = self.sweeper.get() {
            let _ = tx.try_send(());
        }
    }
}

/// Whether a decision can close open connections: an enforced ban on an ip or a cidr.
pub fn closes(d: &palisade_policy::Decision) -> bool {
    d.action == DecisionAction::Ban
        && !d.simulated
        && matches!(
            d.scope,
            palisade_policy::Scope::Ip | palisade_policy::Scope::Cidr
        )
}

/// Starts the thread that closes the connections of banned addresses.
pub fn spawn_sweeper(state: &Arc<EdgeState>) -> std::io::Result<()> {
    let (tx, rx) = sync_channel::<()>(1);
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("palisade-conn-sweeper".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let Some(state) = weak.upgrade() else { return };
                let limits = state.policy().connections;
                if !limits.ban_at_accept {
                    continue;
                }
                let now = crate::now_ms();
                let mut closed = Vec::new();
                state.conns.registry.close_where(Reason::BanClosed, |ip| {
                    let doomed = refused_for_ban(&state, ip, now);
                    if doomed {
                        closed.push(ip);
                    }
                    doomed
                });
                for ip in closed {
                    state.conn_dropped(Reason::BanClosed, ip);
                }
            }
        })?;
    let _ = state.conns.sweeper.set(tx);
    Ok(())
}

/// Whether `ip` (a socket peer) has an enforced ip or cidr ban that its
/// connection must not outlive: not a trusted proxy, not spared by the
/// policy's allowlist (evaluated on the address alone).
pub fn refused_for_ban(state: &EdgeState, ip: IpAddr, now_ms: u64) -> bool {
    if state.trusted.trusts(ip) {
        return false;
    }
    let banned = state.with_decisions(|d| {
        !d.is_empty()
            && d.lookup_hit(ip, Geo::default(), now_ms)
                .is_some_and(|d| d.action == DecisionAction::Ban && !d.simulated)
    });
    if !banned {
        return false;
    }
    let policy = state.policy();
    match &policy.allowlist {
        None => true,
        Some(allow) => {
            let headers = http::HeaderMap::new();
            let req = palisade_policy::Request {
                client_ip: ip,
                host: "",
                method: "",
                uri: "",
                raw_uri: "",
                headers: &headers,
                geo: Geo::default(),
                client: palisade_policy::Client::UNKNOWN,
            };
            !allow.eval(&req)
        }
    }
}

/// Pingora's accept-time filter: runs on the listener before TLS.
pub struct ConnFilter {
    state: Arc<EdgeState>,
}

impl ConnFilter {
    /// The filter of an edge.
    pub fn new(state: Arc<EdgeState>) -> Self {
        ConnFilter { state }
    }

    /// Why a connection from `ip` is refused at accept, if it is.
    pub fn refuse(&self, ip: IpAddr) -> Option<Reason> {
        let st = &self.state;
        let limits = st.policy().connections;
        if st.trusted.trusts(ip) {
            return None;
        }
        if limits.ban_at_accept && refused_for_ban(st, ip, crate::now_ms()) {
            return Some(Reason::Banned);
        }
        if limits.max_per_ip > 0 && st.conns.registry.count(ip) >= limits.max_per_ip as usize {
            return Some(Reason::PerIpCap);
        }
        None
    }
}

#[async_trait]
impl pingora_core::listeners::ConnectionFilter for ConnFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        let Some(addr) = addr else { return true };
        match self.refuse(addr.ip()) {
            None => true,
            Some(reason) => {
                self.state.conn_dropped(reason, addr.ip());
                false
            }
        }
    }
}

impl std::fmt::Debug for ConnFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnFilter")
    }
}

impl EdgeState {
    /// Counts a refused or closed connection, and emits its event when sampled.
    pub fn conn_dropped(&self, reason: Reason, ip: IpAddr) {
        if let Some(ev) = self.metrics.conn.count(reason, ip, &self.node_id) {
            if !self.events.emit(ev) {
                self.metrics.events_dropped.inc();
            }
        }
    }
}

/// The settings the proxy apps are built with; apps are rebuilt for new
/// connections when the policy changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppKey {
    /// `h2_max_streams`.
    pub h2_max_streams: u32,
    /// `h2_max_resets`.
    pub h2_max_resets: u32,
    /// `idle_timeout` (HTTP/2 idle timeout).
    pub idle_timeout_ms: u64,
}

impl AppKey {
    /// The key of a policy's limits.
    pub fn of(l: &ConnectionLimits) -> Self {
        AppKey {
            h2_max_streams: l.h2_max_streams,
            h2_max_resets: l.h2_max_resets,
            idle_timeout_ms: l.idle_timeout_ms,
        }
    }

    /// Pingora's HTTP/2 options for these limits: the concurrent streams
    /// advertised, and the h2 library's own reset budgets set to the
    /// policy's, so that the policy's count ([`h2::H2Watch`]) decides.
    pub fn h2_options(&self) -> pingora_core::protocols::http::v2::server::H2Options {
        let mut o = pingora_core::protocols::http::v2::server::default_h2_options();
        o.max_concurrent_streams(self.h2_max_streams);
        let resets = self.h2_max_resets.max(1) as usize;
        o.max_pending_accept_reset_streams(resets.saturating_add(1));
        o.max_local_error_reset_streams(Some(resets));
        o
    }
}

struct Apps<A> {
    key: AppKey,
    http1: Arc<A>,
    h2c: Arc<A>,
    /// The apps of the quarantine thread (their own upstream pools).
    q_http1: Arc<A>,
    q_h2c: Arc<A>,
}

impl<A> Apps<A> {
    fn new(key: AppKey, make: &MakeApp<A>) -> Self {
        Apps {
            key,
            http1: Arc::new(make(&key, false)),
            h2c: Arc::new(make(&key, true)),
            q_http1: Arc::new(make(&key, false)),
            q_h2c: Arc::new(make(&key, true)),
        }
    }
}

/// Builds the proxy app for a key: `h2c` true for the prior-knowledge one.
pub type MakeApp<A> = Box<dyn Fn(&AppKey, bool) -> A + Send + Sync>;

/// The `ServerApp` in front of the proxy: registers, caps and wraps each
/// accepted connection, then hands it to the HTTP/1 or h2c app (see
/// [`crate::h2c`]).
pub struct ConnGuard<A> {
    state: Arc<EdgeState>,
    make: MakeApp<A>,
    apps: arc_swap::ArcSwap<Apps<A>>,
}

impl<A: ServerApp + Send + Sync + 'static> ConnGuard<A> {
    /// A guard whose apps `make` builds.
    pub fn new(state: Arc<EdgeState>, make: MakeApp<A>) -> Self {
        let key = AppKey::of(&state.policy().connections);
        let apps = Apps::new(key, &make);
        ConnGuard {
            state,
            make,
            apps: arc_swap::ArcSwap::from_pointee(apps),
        }
    }

    fn apps(&self, limits: &ConnectionLimits) -> Arc<Apps<A>> {
        let apps = self.apps.load_full();
        let key = AppKey::of(limits);
        if apps.key == key {
            return apps;
        }
        let fresh = Arc::new(Apps::new(key, &self.make));
        self.apps.store(fresh.clone());
        fresh
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let born = tokio::time::Instant::now();
        let st = &self.state;
        let limits = st.policy().connections;
        let apps = self.apps(&limits);
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let Some(ip) = peer else {
            // Not an inet socket (no peer address): nothing to count by.
            let (stream, kind) = sniff_stream(stream, None).await?;
            return match kind {
                Sniffed::H2c => apps.h2c.process_new(stream, shutdown).await,
                _ => apps.http1.process_new(stream, shutdown).await,
            };
        };
        let trusted = st.trusted.trusts(ip);
        // Again after TLS: a ban may have arrived during the handshake (the
        // connection was open when it did).
        if !trusted && limits.ban_at_accept && refused_for_ban(st, ip, crate::now_ms()) {
            st.conn_dropped(Reason::BanClosed, ip);
            return None;
        }
        let cap = if trusted { 0 } else { limits.max_per_ip };
        let conn = match st.conns.registry.register(ip, cap) {
            Ok(c) => c,
            Err(registry::OverCap) => {
                st.conn_dropped(Reason::PerIpCap, ip);
                return None;
            }
        };
        // Classified at once: a quarantined connection does everything
        // else (the sniffing of its first bytes included) on the quarantine
        // thread, so that thousands of new connections at once, slowloris
        // ones too, cost the edge's threads only their accept.
        let quarantine = limits.quarantine
            && !trusted
            && !st
                .conns
                .familiar
                .visit(ip, crate::now_ms(), limits.familiar_after_ms);
        let serve = Served {
            state: st.clone(),
            apps,
            conn: Some(conn),
            limits,
            born,
            ip,
            shutdown: shutdown.clone(),
        };
        match quarantine.then(|| st.conns.quarantine.handle()).flatten() {
            Some(q) => {
                st.metrics.conn.quarantined.inc();
                q.spawn(serve.run(stream, true)).await.unwrap_or(None)
            }
            None => serve.run(stream, false).await,
        }
    }

    async fn cleanup(&self) {
        let apps = self.apps.load_full();
        apps.http1.cleanup().await;
        apps.h2c.cleanup().await;
        apps.q_http1.cleanup().await;
        apps.q_h2c.cleanup().await;
    }
}

/// A registered connection on its way to HTTP: sniffed, wrapped, served
/// by the app of its kind (on the thread the caller runs it on). Until the
/// wrapper owns the registration, dropping this (a failed sniff, a task
/// cancelled or panicking on the quarantine thread) unregisters it.
struct Served<A> {
    state: Arc<EdgeState>,
    apps: Arc<Apps<A>>,
    conn: Option<Arc<registry::ConnShared>>,
    limits: ConnectionLimits,
    born: tokio::time::Instant,
    ip: IpAddr,
    shutdown: ShutdownWatch,
}

impl<A: ServerApp + Send + Sync + 'static> Served<A> {
    async fn run(mut self, stream: Stream, quarantined: bool) -> Option<Stream> {
        let (st, limits, born, ip) = (self.state.clone(), self.limits, self.born, self.ip);
        let header = Duration::from_millis(limits.header_timeout_ms);
        let sniffed = tokio::time::timeout(header, sniff_stream(stream, Some(header))).await;
        let (stream, kind) = match sniffed {
            Ok(Some(s)) => s,
            Ok(None) | Err(_) => {
                if born.elapsed() >= header {
                    st.conn_dropped(Reason::HeaderTimeout, ip);
                }
                return None; // unregistered by the drop
            }
        };
        let conn = self.conn.take()?;
        let h2 = kind == Sniffed::H2c || matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let guarded: Stream = Box::new(
            GuardedStream::new(stream, born, conn, st.clone(), limits, h2).quarantined(quarantined),
        );
        let apps = self.apps.clone();
        let app = match (kind, quarantined) {
            (Sniffed::H2c, false) => &apps.h2c,
            (Sniffed::H2c, true) => &apps.q_h2c,
            (_, false) => &apps.http1,
            (_, true) => &apps.q_http1,
        };
        app.process_new(guarded, &self.shutdown).await
    }
}

impl<A> Drop for Served<A> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.state.conns.registry.unregister(&conn);
        }
    }
}

#[cfg(test)]
mod tests;
