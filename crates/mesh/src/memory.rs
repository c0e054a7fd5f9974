//! [`MemoryMesh`]: the in-process backend (the embedded mode of `palisade up`).
//!
//! It keeps the semantics of the NATS backend so that code written against
//! one behaves the same against the other: the decision log retains only the
//! latest op per key (sequences skip where ops were superseded; deletes and
//! expired decisions are dropped after a retention, raising the floor of
//! `Mesh::decisions_floor`), policy
//! versions are numbered 1, 2, 3…, events are delivered at least once per
//! durable consumer name, heartbeats keep the latest per node.
//!
//! Live delivery: each subscription is a task that reads the log from its
//! cursor and then waits on a `watch` channel carrying the head sequence.
//! A slow subscriber therefore never loses updates (unlike a broadcast
//! channel, which drops on lag): it just reads them from the log later.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use palisade_policy::SecurityEvent;
use tokio::sync::{mpsc, watch};

use crate::mesh::{
    check_counts_size, check_stats_size, normalize_op, now_ms, token, Acker, CountStream,
    DecisionStream, EventDelivery, EventStream, Mesh, PolicyStream, STREAM_BUFFER,
};
use crate::types::{DecisionOp, DecisionUpdate, Heartbeat, MeshError, PolicyVersion};

/// Events retained by default; the oldest are dropped past it.
pub const DEFAULT_EVENT_CAPACITY: usize = 100_000;

/// Bytes of events (`SecurityEvent::approx_bytes`) an in-process event log
/// retains at most, whatever their count: 32 MiB.
pub const DEFAULT_EVENT_BYTES: usize = 32 << 20;

/// How many updates a subscription task copies out of the log per lock.
const BATCH: usize = 256;

/// How many ops of a bulk publish are appended per lock.
const IMPORT_CHUNK: usize = 4096;

/// The in-process mesh. Cloning it is cheap and every clone shares the state.
#[derive(Clone)]
pub struct MemoryMesh {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMesh")
            .field("decisions_head", &*self.inner.decisions_head.borrow())
            .finish_non_exhaustive()
    }
}

struct Inner {
    decisions: Mutex<DecisionLog>,
    decisions_head: watch::Sender<u64>,
    policies: Mutex<Vec<PolicyVersion>>,
    policy_current: watch::Sender<Option<PolicyVersion>>,
    events: Mutex<EventLog>,
    events_head: watch::Sender<u64>,
    nodes: Mutex<BTreeMap<String, Heartbeat>>,
    /// Learned statistics by (name, node token).
    stats: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    /// Count reports of the global rate limits, to every subscriber.
    counts: tokio::sync::broadcast::Sender<bytes::Bytes>,
    logins: tokio::sync::broadcast::Sender<bytes::Bytes>,
    keyring: Mutex<Option<Vec<u8>>>,
}

/// How long a delete is kept in the decision log by default (then dropped,
/// raising the floor: followers further behind resync fully): 24 hours.
pub const DEFAULT_TOMBSTONE_RETENTION_MS: u64 = 24 * 3_600_000;

/// The compacted decision log: latest op per key, by sequence.
#[derive(Default)]
struct DecisionLog {
    last_seq: u64,
    by_seq: BTreeMap<u64, DecisionOp>,
    by_key: HashMap<String, u64>,
    /// Deletes by sequence, with when they were appended (oldest first;
    /// superseded ones are skipped when met).
    tombstones: VecDeque<(u64, u64)>,
    /// See [`Mesh::decisions_floor`].
    floor: u64,
    /// Tombstones older than this are dropped, and decisions expired this long.
    retention_ms: u64,
    /// When the log was last compacted.
    compacted_at: u64,
}

impl DecisionLog {
    fn append(&mut self, op: DecisionOp, now: u64) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        if matches!(op, DecisionOp::Delete { .. }) {
            self.tombstones.push_back((seq, now));
        }
        if let Some(old) = self.by_key.insert(op.key(), seq) {
            self.by_seq.remove(&old);
        }
        self.by_seq.insert(seq, op);
        seq
    }

    /// Drops the tombstones older than the retention (raising the floor) and
    /// the decisions expired for as long (no floor: a follower that still
    /// holds one purges it on its own clock). Returns how many ops were dropped.
    fn compact(&mut self, now: u64) -> usize {
        self.compacted_at = now;
        let cutoff = now.saturating_sub(self.retention_ms);
        let mut dropped = 0;
        // The newest op is kept whatever its age: followers catch up to the head.
        while let Some(&(seq, at)) = self.tombstones.front() {
            if at > cutoff || seq == self.last_seq {
                break;
            }
            self.tombstones.pop_front();
            if let Some(op) = self.by_seq.get(&seq) {
                if matches!(op, DecisionOp::Delete { .. }) {
                    let key = op.key();
                    self.by_seq.remove(&seq);
                    self.by_key.remove(&key);
                    dropped += 1;
                }
            }
            self.floor = self.floor.max(seq);
        }
        let expired: Vec<(u64, String)> = self
            .by_seq
            .iter()
            .filter_map(|(&seq, op)| match op {
                DecisionOp::Upsert { decision }
                    if seq != self.last_seq && decision.expires_at.is_some_and(|e| e <= cutoff) =>
                {
                    Some((seq, op.key()))
                }
                _ => None,
            })
            .collect();
        for (seq, key) in expired {
            self.by_seq.remove(&seq);
            self.by_key.remove(&key);
            dropped += 1;
        }
        dropped
    }

    /// Compacts when a quarter of the retention passed since the last time.
    fn maybe_compact(&mut self, now: u64) {
        if now.saturating_sub(self.compacted_at) >= (self.retention_ms / 4).max(1) {
            self.compact(now);
        }
    }
}

struct EventLog {
    last_seq: u64,
    capacity: usize,
    /// Bytes retained at most, and retained now.
    max_bytes: usize,
    bytes: usize,
    /// Events dropped because the log was full.
    dropped: u64,
    /// Boxed: the queue's spare slots (up to as many as the events held)
    /// cost 16 bytes each, not the size of an event.
    events: VecDeque<(u64, Box<SecurityEvent>)>,
    durables: HashMap<String, Durable>,
    /// Drop events as soon as every durable consumer acknowledged them.
    interest: bool,
}

/// Slots an event log keeps however empty it is.
const MIN_EVENT_SLOTS: usize = 1024;

impl EventLog {
    /// Gives memory back after a burst: a queue down to a quarter of its
    /// slots releases half of them (`VecDeque` never shrinks by itself; its
    /// slots for 100,000 events are 2 MiB).
    fn shrink(&mut self) {
        let slots = self.events.capacity();
        if slots > MIN_EVENT_SLOTS && self.events.len() < slots / 4 {
            self.events.shrink_to((slots / 2).max(MIN_EVENT_SLOTS));
        }
    }
}

/// Acknowledgement state of one durable consumer.
#[derive(Default)]
struct Durable {
    /// Every sequence `<= floor` is acknowledged.
    floor: u64,
    /// Acknowledged sequences above the floor.
    acked: BTreeSet<u64>,
}

impl Durable {
    fn ack(&mut self, seq: u64, oldest_retained: u64) {
        if seq > self.floor {
            self.acked.insert(seq);
        }
        // Events dropped from the log can no longer be delivered.
        if oldest_retained > self.floor + 1 {
            self.floor = oldest_retained - 1;
        }
        while self.acked.remove(&(self.floor + 1)) {
            self.floor += 1;
        }
        let floor = self.floor;
        self.acked.retain(|&s| s > floor);
    }

    fn is_acked(&self, seq: u64) -> bool {
        seq <= self.floor || self.acked.contains(&seq)
    }
}

/// Acknowledges events of one durable consumer of a [`MemoryMesh`].
#[derive(Clone)]
pub(crate) struct EventAck {
    inner: Arc<Inner>,
    durable: Arc<str>,
}

impl EventAck {
    pub(crate) fn ack(&self, seq: u64) {
        let mut log = lock(&self.inner.events);
        let oldest = log.events.front().map_or(log.last_seq + 1, |(s, _)| *s);
        log.durables
            .entry(self.durable.to_string())
            .or_default()
            .ack(seq, oldest);
        // With interest retention, events every durable consumer acknowledged
        // are not needed any more: the log holds what is in flight.
        if !log.interest {
            return;
        }
        let floor = log.durables.values().map(|d| d.floor).min().unwrap_or(0);
        while log.events.front().is_some_and(|(s, _)| *s <= floor) {
            if let Some((_, old)) = log.events.pop_front() {
                log.bytes = log.bytes.saturating_sub(old.approx_bytes());
            }
        }
        log.shrink();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for MemoryMesh {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMesh {
    /// An empty mesh retaining [`DEFAULT_EVENT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_event_capacity(DEFAULT_EVENT_CAPACITY)
    }

    /// An empty mesh retaining at most `capacity` events (at least 1) and
    /// [`DEFAULT_EVENT_BYTES`].
    pub fn with_event_capacity(capacity: usize) -> Self {
        Self::with_event_limits(capacity, DEFAULT_EVENT_BYTES)
    }

    /// An empty mesh retaining at most `capacity` events (at least 1) and
    /// `max_bytes` of them (`SecurityEvent::approx_bytes`; the newest event
    /// is always kept), the oldest dropped first.
    pub fn with_event_limits(capacity: usize, max_bytes: usize) -> Self {
        MemoryMesh {
            inner: Arc::new(Inner {
                decisions: Mutex::new(DecisionLog {
                    retention_ms: DEFAULT_TOMBSTONE_RETENTION_MS,
                    compacted_at: now_ms(),
                    ..DecisionLog::default()
                }),
                decisions_head: watch::Sender::new(0),
                policies: Mutex::new(Vec::new()),
                policy_current: watch::Sender::new(None),
                events: Mutex::new(EventLog {
                    last_seq: 0,
                    capacity: capacity.max(1),
                    max_bytes,
                    bytes: 0,
                    dropped: 0,
                    events: VecDeque::new(),
                    durables: HashMap::new(),
                    interest: false,
                }),
                events_head: watch::Sender::new(0),
                nodes: Mutex::new(BTreeMap::new()),
                stats: Mutex::new(BTreeMap::new()),
                counts: tokio::sync::broadcast::Sender::new(STREAM_BUFFER),
                logins: tokio::sync::broadcast::Sender::new(STREAM_BUFFER),
                keyring: Mutex::new(None),
            }),
        }
    }

    /// Interest retention (like JetStream's): an event is dropped once every
    /// durable consumer known at that time acknowledged it, so the log holds
    /// only what is in flight. A durable consumer created later sees only
    /// what is still retained. `palisade up`, whose only consumer is its
    /// control plane, uses it.
    pub fn with_interest_retention(self) -> Self {
        lock(&self.inner.events).interest = true;
        self
    }

    /// Events retained now.
    pub fn events_retained(&self) -> usize {
        lock(&self.inner.events).events.len()
    }

    /// How many events were dropped because the event log was full.
    pub fn events_dropped(&self) -> u64 {
        lock(&self.inner.events).dropped
    }

    /// How many decision ops the log retains (the latest per key, until a
    /// delete or an expiry is older than the retention).
    pub fn decisions_retained(&self) -> usize {
        lock(&self.inner.decisions).by_seq.len()
    }

    /// Keeps deletes (and expired decisions) `retention_ms` in the decision
    /// log (default [`DEFAULT_TOMBSTONE_RETENTION_MS`]), then drops them.
    pub fn with_tombstone_retention(self, retention_ms: u64) -> Self {
        lock(&self.inner.decisions).retention_ms = retention_ms;
        self
    }

    /// Compacts the decision log now (it also compacts itself as ops are
    /// published); returns how many ops were dropped.
    pub fn compact_decisions(&self, now_ms: u64) -> usize {
        lock(&self.inner.decisions).compact(now_ms)
    }
}

#[async_trait]
impl Mesh for MemoryMesh {
    async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError> {
        let op = normalize_op(op)?;
        let seq = {
            let mut log = lock(&self.inner.decisions);
            let now = now_ms();
            log.maybe_compact(now);
            log.append(op, now)
        };
        self.inner.decisions_head.send_replace(seq);
        Ok(seq)
    }

    async fn publish_decisions(&self, ops: Vec<DecisionOp>) -> Result<u64, MeshError> {
        let ops = ops
            .into_iter()
            .map(normalize_op)
            .collect::<Result<Vec<_>, _>>()?;
        // One lock per chunk, so that subscribers read between chunks.
        let mut seq = lock(&self.inner.decisions).last_seq;
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            {
                let mut log = lock(&self.inner.decisions);
                let now = now_ms();
                log.maybe_compact(now);
                for op in ops.by_ref().take(IMPORT_CHUNK) {
                    seq = log.append(op, now);
                }
            }
            self.inner.decisions_head.send_replace(seq);
            tokio::task::yield_now().await;
        }
        Ok(seq)
    }

    async fn decisions_since(&self, after_seq: u64) -> Result<DecisionStream, MeshError> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let inner = Arc::clone(&self.inner);
        let mut head = inner.decisions_head.subscribe();
        tokio::spawn(async move {
            let mut last = after_seq;
            loop {
                head.borrow_and_update();
                let batch: Vec<DecisionUpdate> = {
                    let log = lock(&inner.decisions);
                    log.by_seq
                        .range(last.saturating_add(1)..)
                        .take(BATCH)
                        .map(|(&seq, op)| DecisionUpdate {
                            seq,
                            op: op.clone(),
                        })
                        .collect()
                };
                if batch.is_empty() {
                    tokio::select! {
                        r = head.changed() => if r.is_err() { return },
                        () = tx.closed() => return,
                    }
                    continue;
                }
                for u in batch {
                    last = u.seq;
                    if tx.send(Ok(u)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(DecisionStream::new(rx))
    }

    async fn decisions_head(&self) -> Result<u64, MeshError> {
        Ok(lock(&self.inner.decisions).last_seq)
    }

    async fn decisions_floor(&self) -> Result<u64, MeshError> {
        Ok(lock(&self.inner.decisions).floor)
    }

    async fn put_policy(
        &self,
        source: String,
        digest: String,
        author: String,
    ) -> Result<PolicyVersion, MeshError> {
        let v = {
            let mut all = lock(&self.inner.policies);
            let v = PolicyVersion {
                version: all.last().map_or(1, |p| p.version + 1),
                source,
                digest,
                author,
                created_at: now_ms(),
            };
            all.push(v.clone());
            // Sent under the lock so that watchers see versions in order.
            self.inner.policy_current.send_replace(Some(v.clone()));
            v
        };
        Ok(v)
    }

    async fn policy_history(&self) -> Result<Vec<PolicyVersion>, MeshError> {
        Ok(lock(&self.inner.policies).clone())
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, MeshError> {
        Ok(self.inner.policy_current.borrow().clone())
    }

    async fn watch_policy(&self) -> Result<PolicyStream, MeshError> {
        let (tx, rx) = mpsc::channel(16);
        let mut cur = self.inner.policy_current.subscribe();
        tokio::spawn(async move {
            loop {
                let v = cur.borrow_and_update().clone();
                if let Some(v) = v {
                    if tx.send(Ok(v)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    r = cur.changed() => if r.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(PolicyStream::new(rx))
    }

    async fn publish_event(&self, ev: &SecurityEvent) -> Result<(), MeshError> {
        let seq = {
            let mut log = lock(&self.inner.events);
            log.last_seq += 1;
            let seq = log.last_seq;
            // Bounded whatever the publisher did (edges bound theirs).
            let mut ev = ev.clone();
            ev.bound();
            log.bytes += ev.approx_bytes();
            log.events.push_back((seq, Box::new(ev)));
            while log.events.len() > log.capacity
                || (log.bytes > log.max_bytes && log.events.len() > 1)
            {
                if let Some((_, old)) = log.events.pop_front() {
                    log.bytes = log.bytes.saturating_sub(old.approx_bytes());
                }
                log.dropped += 1;
            }
            seq
        };
        self.inner.events_head.send_replace(seq);
        Ok(())
    }

    async fn consume_events(&self, durable: &str) -> Result<EventStream, MeshError> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let inner = Arc::clone(&self.inner);
        let ack = EventAck {
            inner: Arc::clone(&self.inner),
            durable: Arc::from(durable),
        };
        let name = durable.to_owned();
        let mut head = inner.events_head.subscribe();
        tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                head.borrow_and_update();
                let batch: Vec<(u64, SecurityEvent)> = {
                    let mut log = lock(&inner.events);
                    let log = &mut *log;
                    let d = log.durables.entry(name.clone()).or_default();
                    last = last.max(d.floor);
                    // Sequences are consecutive: start at `last + 1` directly.
                    let front = log.events.front().map_or(0, |(s, _)| *s);
                    let start =
                        usize::try_from((last + 1).saturating_sub(front)).unwrap_or(usize::MAX);
                    log.events
                        .range(start.min(log.events.len())..)
                        .filter(|(s, _)| *s > last && !d.is_acked(*s))
                        .take(BATCH)
                        .map(|(s, ev)| (*s, SecurityEvent::clone(ev)))
                        .collect()
                };
                if batch.is_empty() {
                    tokio::select! {
                        r = head.changed() => if r.is_err() { return },
                        () = tx.closed() => return,
                    }
                    continue;
                }
                for (seq, event) in batch {
                    last = seq;
                    let d = EventDelivery {
                        event,
                        seq,
                        acker: Acker::Memory(ack.clone()),
                    };
                    if tx.send(Ok(d)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(EventStream::new(rx))
    }

    async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), MeshError> {
        lock(&self.inner.nodes).insert(hb.node_id.clone(), hb.clone());
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<Heartbeat>, MeshError> {
        Ok(lock(&self.inner.nodes).values().cloned().collect())
    }

    async fn publish_stats(&self, name: &str, node: &str, state: Vec<u8>) -> Result<(), MeshError> {
        check_stats_size(name, &state)?;
        lock(&self.inner.stats).insert((name.to_string(), token(node)), state);
        Ok(())
    }

    async fn stats(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, MeshError> {
        Ok(lock(&self.inner.stats)
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, node), v)| (node.clone(), v.clone()))
            .collect())
    }

    async fn publish_counts(&self, report: Vec<u8>) -> Result<(), MeshError> {
        check_counts_size(&report)?;
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.inner.counts.send(bytes::Bytes::from(report));
        Ok(())
    }

    async fn subscribe_counts(&self) -> Result<CountStream, MeshError> {
        Ok(follow(self.inner.counts.subscribe()))
    }

    async fn put_keyring(&self, ring: Vec<u8>) -> Result<(), MeshError> {
        check_stats_size("keyring", &ring)?;
        *lock(&self.inner.keyring) = Some(ring);
        Ok(())
    }

    async fn keyring(&self) -> Result<Option<Vec<u8>>, MeshError> {
        Ok(lock(&self.inner.keyring).clone())
    }

    async fn publish_logins(&self, reports: Vec<u8>) -> Result<(), MeshError> {
        check_counts_size(&reports)?;
        let _ = self.inner.logins.send(bytes::Bytes::from(reports));
        Ok(())
    }

    async fn subscribe_logins(&self) -> Result<CountStream, MeshError> {
        Ok(follow(self.inner.logins.subscribe()))
    }
}

/// A stream of what a broadcast channel carries from now on.
fn follow(mut sub: tokio::sync::broadcast::Receiver<bytes::Bytes>) -> CountStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        loop {
            match sub.recv().await {
                Ok(report) => {
                    if tx.send(report).await.is_err() {
                        return;
                    }
                }
                // A slow subscriber misses reports, as over NATS core.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    CountStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_floor_advances_over_contiguous_acks() {
        let mut d = Durable::default();
        d.ack(2, 1);
        assert_eq!(d.floor, 0);
        assert!(d.is_acked(2) && !d.is_acked(1));
        d.ack(1, 1);
        assert_eq!(d.floor, 2);
        assert!(d.acked.is_empty());
        // Events 3..=9 were dropped from the log: the floor jumps.
        d.ack(11, 10);
        assert_eq!(d.floor, 9);
        assert!(d.is_acked(11) && !d.is_acked(10));
    }

    /// With interest retention, a drained log gives back the queue a burst
    /// grew (20,000 slots: about 6 MiB).
    #[tokio::test]
    async fn a_drained_log_gives_its_memory_back() {
        let m = MemoryMesh::new().with_interest_retention();
        let ev = |i: u64| SecurityEvent {
            time_ms: i,
            node: "n".into(),
            request_id: format!("req-{i}"),
            client_ip: std::net::IpAddr::from([192, 0, 2, 1]),
            check: palisade_policy::CheckKind::Rule,
            rule_id: "r".into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            status: Some(403),
            waf: None,
            bot: None,
        };
        for i in 0..20_000 {
            m.publish_event(&ev(i)).await.unwrap();
        }
        let slots = || lock(&m.inner.events).events.capacity();
        assert!(slots() >= 20_000);
        let mut s = m.consume_events("c").await.unwrap();
        for _ in 0..20_000 {
            s.next().await.unwrap().unwrap().ack().await.unwrap();
        }
        assert_eq!(m.events_retained(), 0);
        assert!(slots() < 2 * MIN_EVENT_SLOTS, "{} slots kept", slots());
    }
}

#[cfg(test)]
mod compaction_tests {
    use super::*;
    use palisade_policy::decisions::Scope;
    use palisade_policy::{Decision, DecisionAction};

    fn ban(value: &str, expires_at: Option<u64>) -> DecisionOp {
        DecisionOp::Upsert {
            decision: Decision {
                id: 1,
                scope: Scope::Ip,
                value: value.into(),
                action: DecisionAction::Ban,
                reason: String::new(),
                origin: String::new(),
                simulated: false,
                created_at: 0,
                expires_at,
            },
        }
    }

    fn delete(value: &str) -> DecisionOp {
        DecisionOp::Delete {
            scope: Scope::Ip,
            value: value.into(),
        }
    }

    #[test]
    fn tombstones_and_expired_decisions_go_after_the_retention() {
        let mut log = DecisionLog {
            retention_ms: 1_000,
            ..DecisionLog::default()
        };
        log.append(ban("192.0.2.1", None), 0); // 1
        log.append(ban("192.0.2.2", Some(500)), 0); // 2, expires at 500
        log.append(delete("192.0.2.1"), 100); // 3, supersedes 1
        log.append(delete("192.0.2.3"), 2_000); // 4
        log.append(ban("192.0.2.4", None), 2_000); // 5
        assert_eq!(log.by_seq.len(), 4);
        // Nothing is old enough yet.
        assert_eq!(log.compact(1_000), 0);
        assert_eq!(log.floor, 0);
        // At 1,600: the delete of 100 and the decision expired at 500 go; the floor rises to 3.
        assert_eq!(log.compact(1_600), 2);
        assert_eq!(log.floor, 3);
        assert_eq!(log.by_seq.keys().copied().collect::<Vec<_>>(), [4, 5]);
        assert_eq!(log.by_key.len(), 2);
        // Much later: the delete of 2,000 goes too; the newest op stays whatever its age.
        log.append(delete("192.0.2.4"), 2_000); // 6
        assert_eq!(log.compact(10_000), 1);
        assert_eq!(log.floor, 4);
        assert_eq!(log.by_seq.keys().copied().collect::<Vec<_>>(), [6]);
        assert_eq!(log.tombstones.len(), 1);
    }
}
