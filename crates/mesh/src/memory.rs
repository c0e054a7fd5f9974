//! [`MemoryMesh`]: the in-process backend (the embedded mode of `palisade up`).
//!
//! It keeps the semantics of the NATS backend so that code written against
//! one behaves the same against the other: the decision log retains only the
//! latest op per key (sequences skip where ops were superseded), policy
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
}

/// The compacted decision log: latest op per key, by sequence.
#[derive(Default)]
struct DecisionLog {
    last_seq: u64,
    by_seq: BTreeMap<u64, DecisionOp>,
    by_key: HashMap<String, u64>,
}

struct EventLog {
    last_seq: u64,
    capacity: usize,
    /// Bytes retained at most, and retained now.
    max_bytes: usize,
    bytes: usize,
    /// Events dropped because the log was full.
    dropped: u64,
    events: VecDeque<(u64, SecurityEvent)>,
    durables: HashMap<String, Durable>,
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
                decisions: Mutex::new(DecisionLog::default()),
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
                }),
                events_head: watch::Sender::new(0),
                nodes: Mutex::new(BTreeMap::new()),
                stats: Mutex::new(BTreeMap::new()),
                counts: tokio::sync::broadcast::Sender::new(STREAM_BUFFER),
            }),
        }
    }

    /// How many events were dropped because the event log was full.
    pub fn events_dropped(&self) -> u64 {
        lock(&self.inner.events).dropped
    }

    /// How many decision ops the log retains (one per key ever written).
    pub fn decisions_retained(&self) -> usize {
        lock(&self.inner.decisions).by_seq.len()
    }
}

#[async_trait]
impl Mesh for MemoryMesh {
    async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError> {
        let op = normalize_op(op)?;
        let seq = {
            let mut log = lock(&self.inner.decisions);
            log.last_seq += 1;
            let seq = log.last_seq;
            if let Some(old) = log.by_key.insert(op.key(), seq) {
                log.by_seq.remove(&old);
            }
            log.by_seq.insert(seq, op);
            seq
        };
        self.inner.decisions_head.send_replace(seq);
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
            log.events.push_back((seq, ev));
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
                    log.events
                        .iter()
                        .filter(|(s, _)| *s > last && !d.is_acked(*s))
                        .take(BATCH)
                        .cloned()
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
        let mut sub = self.inner.counts.subscribe();
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
        Ok(CountStream::new(rx))
    }
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
}
