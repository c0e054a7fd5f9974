//! The [`Mesh`] trait and the streams its subscriptions return.
//!
//! Every stream is a bounded channel fed by a task the backend spawns; the
//! task stops when the stream is dropped. A stream that ends (`None`) or
//! yields an error means the subscription is over: the caller resubscribes
//! (for decisions: `decisions_since(replica.last_seq())`) after a backoff.

use async_trait::async_trait;
use palisade_policy::{DecisionSet, SecurityEvent};
use tokio::sync::mpsc;

use crate::types::{DecisionOp, DecisionUpdate, Heartbeat, MeshError, PolicyVersion};

/// How many items a subscription buffers before its feeding task waits.
pub(crate) const STREAM_BUFFER: usize = 1024;

/// Everything that crosses node boundaries. See the crate documentation.
#[async_trait]
pub trait Mesh: Send + Sync + 'static {
    /// Appends `op` to the decision log and returns the sequence it was given.
    ///
    /// The value is normalized first (`DecisionSet::normalize`), so that
    /// `::ffff:1.2.3.4` and `1.2.3.4` are the same key; an invalid value is
    /// refused with [`MeshError::Invalid`]. Only the latest op per key is
    /// retained (a `Delete` is kept as a tombstone).
    async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError>;

    /// Appends `ops` in order (a bulk import) and returns the sequence of the
    /// last one (the head before the call when `ops` is empty). Every op is
    /// normalized first and the whole batch is refused, nothing appended,
    /// when one is invalid. A transport failure midway leaves a prefix of the
    /// batch appended: the caller retries the batch (ops are idempotent).
    /// The default publishes one op at a time; backends override it.
    async fn publish_decisions(&self, ops: Vec<DecisionOp>) -> Result<u64, MeshError> {
        let ops = ops
            .into_iter()
            .map(normalize_op)
            .collect::<Result<Vec<_>, _>>()?;
        let mut last = self.decisions_head().await?;
        for op in ops {
            last = self.publish_decision(op).await?;
        }
        Ok(last)
    }

    /// Every retained update with `seq > after_seq`, in order, then live
    /// updates as they are published.
    async fn decisions_since(&self, after_seq: u64) -> Result<DecisionStream, MeshError>;

    /// The sequence of the newest op in the log (0 when empty). A follower whose
    /// `last_seq` is lower has not seen everything yet.
    async fn decisions_head(&self) -> Result<u64, MeshError>;

    /// The highest sequence whose op may have been dropped from the log (a
    /// tombstone past its retention; 0 when nothing was). A follower whose
    /// `last_seq` is lower (and not 0) may have missed a delete: it must
    /// resync fully (a fresh table from `decisions_since(0)`), not replay.
    async fn decisions_floor(&self) -> Result<u64, MeshError> {
        Ok(0)
    }

    /// Stores a new policy version (previous version + 1) and makes it current.
    async fn put_policy(
        &self,
        source: String,
        digest: String,
        author: String,
    ) -> Result<PolicyVersion, MeshError>;

    /// Every stored policy version, oldest first.
    async fn policy_history(&self) -> Result<Vec<PolicyVersion>, MeshError>;

    /// The current policy version, if one was ever written.
    async fn current_policy(&self) -> Result<Option<PolicyVersion>, MeshError>;

    /// The current version first (when there is one), then each new current
    /// version. Intermediate versions may be skipped when several are written
    /// quickly; the newest one is always delivered.
    async fn watch_policy(&self) -> Result<PolicyStream, MeshError>;

    /// Publishes a security event for the control plane.
    async fn publish_event(&self, ev: &SecurityEvent) -> Result<(), MeshError>;

    /// Publishes `evs` in order and returns once every one is acknowledged.
    /// On an error, a prefix may have been stored: the caller sends the
    /// group again (consumers store each event once). The default publishes
    /// one at a time; backends override it.
    async fn publish_events(&self, evs: &[SecurityEvent]) -> Result<(), MeshError> {
        for ev in evs {
            self.publish_event(ev).await?;
        }
        Ok(())
    }

    /// Events for the durable consumer `durable`, starting with the oldest
    /// one it has not acknowledged. Delivery is at least once: an event that
    /// is not acknowledged is delivered again (to the next `consume_events`
    /// with the same name, or after the ack wait in NATS).
    async fn consume_events(&self, durable: &str) -> Result<EventStream, MeshError>;

    /// Records the latest heartbeat of `hb.node_id`.
    async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), MeshError>;

    /// The latest heartbeat of each node still known (NATS forgets a node
    /// after the heartbeat bucket's max age), ordered by node id.
    async fn nodes(&self) -> Result<Vec<Heartbeat>, MeshError>;

    /// Shares `node`'s whole current state of the learned statistic `name`
    /// (`palisade_policy::learn`), replacing the state it shared before. At
    /// most [`MAX_STATS_BYTES`]; larger states are refused with
    /// [`MeshError::Invalid`] (the caller shrinks them).
    async fn publish_stats(&self, name: &str, node: &str, state: Vec<u8>) -> Result<(), MeshError>;

    /// The latest state of `name` of every node that shared one recently
    /// (NATS forgets a state after the stats bucket's max age), as
    /// `(node token, state)` ordered by node (see [`token`]).
    async fn stats(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, MeshError>;

    /// Broadcasts a count report of the global rate limits
    /// (`palisade_policy::ratelimit::global::encode`) to every current
    /// [`Mesh::subscribe_counts`] stream, the sender's own included. Best
    /// effort and not stored: counts are ephemeral, a lost report only delays
    /// what the others know. At most [`MAX_COUNTS_BYTES`].
    async fn publish_counts(&self, report: Vec<u8>) -> Result<(), MeshError>;

    /// The count reports published from now on, by every node.
    async fn subscribe_counts(&self) -> Result<CountStream, MeshError>;

    /// Stores the fleet's key ring (`palisade_bots::clearance::KeyRing`,
    /// JSON): the keys that sign challenges and clearances. Written by the
    /// control plane only; kept until replaced. At most [`MAX_STATS_BYTES`].
    async fn put_keyring(&self, ring: Vec<u8>) -> Result<(), MeshError>;

    /// The key ring, if the control plane stored one.
    async fn keyring(&self) -> Result<Option<Vec<u8>>, MeshError>;

    /// Broadcasts a batch of failed-login reports
    /// (`palisade_bots::logins::encode`) to every current
    /// [`Mesh::subscribe_logins`] stream, the sender's own included. Best
    /// effort and not stored, as count reports. At most [`MAX_COUNTS_BYTES`].
    async fn publish_logins(&self, reports: Vec<u8>) -> Result<(), MeshError>;

    /// The failed-login reports published from now on, by every node.
    async fn subscribe_logins(&self) -> Result<CountStream, MeshError>;
}

/// The largest count report [`Mesh::publish_counts`] carries.
pub const MAX_COUNTS_BYTES: usize = 768 * 1024;

/// Refuses a count report over [`MAX_COUNTS_BYTES`].
pub(crate) fn check_counts_size(report: &[u8]) -> Result<(), MeshError> {
    if report.len() > MAX_COUNTS_BYTES {
        return Err(MeshError::Invalid(format!(
            "count report of {} bytes is over the {MAX_COUNTS_BYTES}-byte limit",
            report.len()
        )));
    }
    Ok(())
}

/// Count reports from [`Mesh::subscribe_counts`].
#[derive(Debug)]
pub struct CountStream {
    rx: mpsc::Receiver<bytes::Bytes>,
}

impl CountStream {
    pub(crate) fn new(rx: mpsc::Receiver<bytes::Bytes>) -> Self {
        CountStream { rx }
    }

    /// The next report; `None` when the subscription ended (subscribe again).
    pub async fn next(&mut self) -> Option<bytes::Bytes> {
        self.rx.recv().await
    }
}

/// The largest state [`Mesh::publish_stats`] carries (NATS' default maximum
/// payload is 1 MiB).
pub const MAX_STATS_BYTES: usize = 512 * 1024;

/// Refuses a state over [`MAX_STATS_BYTES`].
pub(crate) fn check_stats_size(name: &str, state: &[u8]) -> Result<(), MeshError> {
    if state.len() > MAX_STATS_BYTES {
        return Err(MeshError::Invalid(format!(
            "stats `{name}`: {} bytes is over the {MAX_STATS_BYTES}-byte limit",
            state.len()
        )));
    }
    Ok(())
}

/// Decision updates from [`Mesh::decisions_since`]: replay, then follow.
#[derive(Debug)]
pub struct DecisionStream {
    rx: mpsc::Receiver<Result<DecisionUpdate, MeshError>>,
}

impl DecisionStream {
    pub(crate) fn new(rx: mpsc::Receiver<Result<DecisionUpdate, MeshError>>) -> Self {
        DecisionStream { rx }
    }

    /// The next update; `None` when the subscription ended (resubscribe).
    pub async fn next(&mut self) -> Option<Result<DecisionUpdate, MeshError>> {
        self.rx.recv().await
    }
}

/// Policy versions from [`Mesh::watch_policy`].
#[derive(Debug)]
pub struct PolicyStream {
    rx: mpsc::Receiver<Result<PolicyVersion, MeshError>>,
}

impl PolicyStream {
    pub(crate) fn new(rx: mpsc::Receiver<Result<PolicyVersion, MeshError>>) -> Self {
        PolicyStream { rx }
    }

    /// The next current version; `None` when the watch ended (watch again).
    pub async fn next(&mut self) -> Option<Result<PolicyVersion, MeshError>> {
        self.rx.recv().await
    }
}

/// Events from [`Mesh::consume_events`], each to acknowledge once handled.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Result<EventDelivery, MeshError>>,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::Receiver<Result<EventDelivery, MeshError>>) -> Self {
        EventStream { rx }
    }

    /// The next event; `None` when the consumer ended (consume again).
    pub async fn next(&mut self) -> Option<Result<EventDelivery, MeshError>> {
        self.rx.recv().await
    }

    /// The next event if one is already waiting (to handle what is queued
    /// in one batch); `None` when none is.
    pub fn try_next(&mut self) -> Option<Result<EventDelivery, MeshError>> {
        self.rx.try_recv().ok()
    }
}

/// One delivered event. Call [`EventDelivery::ack`] once it is stored;
/// dropping it without acknowledging leads to a redelivery.
#[derive(Debug)]
pub struct EventDelivery {
    /// The event.
    pub event: SecurityEvent,
    /// Position of the event in the event stream.
    pub seq: u64,
    pub(crate) acker: Acker,
}

impl EventDelivery {
    /// Acknowledges the event: it is not delivered to this durable consumer again.
    pub async fn ack(self) -> Result<(), MeshError> {
        match self.acker {
            Acker::Memory(ack) => {
                ack.ack(self.seq);
                Ok(())
            }
            #[cfg(feature = "nats")]
            Acker::Nats(acker) => acker
                .ack()
                .await
                .map_err(|e| MeshError::Unavailable(format!("event ack: {e}"))),
        }
    }
}

/// How a delivery is acknowledged, per backend.
pub(crate) enum Acker {
    Memory(crate::memory::EventAck),
    #[cfg(feature = "nats")]
    Nats(Box<async_nats::jetstream::message::Acker>),
}

impl std::fmt::Debug for Acker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Acker::Memory(_) => f.write_str("Acker::Memory"),
            #[cfg(feature = "nats")]
            Acker::Nats(_) => f.write_str("Acker::Nats"),
        }
    }
}

/// Normalizes the value of `op` so that equal keys are spelled the same.
pub(crate) fn normalize_op(op: DecisionOp) -> Result<DecisionOp, MeshError> {
    let bad = |e: palisade_policy::decisions::DecisionError| MeshError::Invalid(e.to_string());
    Ok(match op {
        DecisionOp::Upsert { mut decision } => {
            decision.value =
                DecisionSet::normalize(decision.scope, &decision.value).map_err(bad)?;
            DecisionOp::Upsert { decision }
        }
        DecisionOp::Delete { scope, value } => DecisionOp::Delete {
            scope,
            value: DecisionSet::normalize(scope, &value).map_err(bad)?,
        },
    })
}

/// A name that is safe as one NATS subject token and as a KV key: kept as is
/// when it is made of ASCII letters, digits, `_` and `-` (at most 64), else
/// `=` followed by the hex of its bytes (`=` never appears in a kept name).
pub fn token(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        name.to_owned()
    } else {
        let mut s = String::with_capacity(1 + 2 * name.len());
        s.push('=');
        s.push_str(&hex(name.as_bytes()));
        s
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Milliseconds since the Unix epoch (backends stamp policy versions with it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::decisions::Scope;

    #[test]
    fn tokens_are_safe_and_distinct() {
        assert_eq!(token("edge-1_a"), "edge-1_a");
        assert_eq!(token("a.b"), "=612e62");
        assert_eq!(token(""), "=");
        assert_ne!(token("=61"), token("a"));
        assert!(token("x y>*")
            .bytes()
            .all(|b| b == b'=' || b.is_ascii_hexdigit()));
    }

    #[test]
    fn ops_are_normalized() {
        let op = DecisionOp::Delete {
            scope: Scope::Ip,
            value: "::ffff:1.2.3.4".into(),
        };
        assert_eq!(normalize_op(op).unwrap().key(), "ip:1.2.3.4");
        let bad = DecisionOp::Delete {
            scope: Scope::Country,
            value: "France".into(),
        };
        assert!(matches!(normalize_op(bad), Err(MeshError::Invalid(_))));
    }
}
