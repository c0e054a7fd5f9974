//! The decision log on JetStream: positions, batches and compaction.
//!
//! Two kinds of message live in the decision stream:
//!
//! - **one op per key**, on `<decisions>.<scope>.<hex(value)>`: JetStream
//!   keeps only the newest message of each subject, so a key written one op
//!   at a time is compacted by the server itself;
//! - **batches**, on `<decisions>.batch.<node>.<id>`: a bulk publish of at
//!   least [`BATCH_MIN`] ops is sent as JSON arrays of up to [`BATCH_OPS`]
//!   ops (and [`BATCH_BYTES`]), one message each. A million decisions are
//!   then about 250 messages instead of a million, for the server and for
//!   every follower (what made a million-decision import take 33–42 s with
//!   five edges on two cores: each message costs the server and each edge
//!   some µs whatever its size).
//!
//! **Positions.** A follower needs a position per op, not per message, so
//! the sequences the mesh hands out ([`DecisionUpdate::seq`], `head`,
//! `floor`) are *positions*: `stream_sequence << 16 | index`, where the last
//! op of a message has index [`LAST`] (a single op is its message's last).
//! Positions grow with the log like sequences did, a message's last op
//! carries the highest position of the message, and a follower at any
//! position resumes exactly after it ([`resume`]). Positions are what edges
//! persist and report in heartbeats.
//!
//! **Compaction** ([`NatsMesh::compact_decisions`], run by the control
//! plane) keeps what JetStream cannot: a batch holds many keys, so the
//! server never drops it. The compactor reads the log once to learn the
//! newest position of every key, then a second time to drop what is dead:
//! ops superseded by a newer op of their key, decisions expired for longer
//! than the retention, and deletes older than it. A batch whose ops are all
//! dead is purged; a batch with some dead ops is rewritten (its live ops
//! published again as a new batch, guarded by the stream's expected last
//! sequence so that no write can slip in between the read and the rewrite,
//! then the old one purged). After a compaction no retained batch holds an
//! op older than a retained delete of the same key, so dropping an old
//! delete never resurrects a decision on a follower that replays the log.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{consumer, context::PublishErrorKind, kv, message::PublishMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{count_bad, unavailable, NatsMesh};
use crate::mesh::{normalize_op, DecisionStream, STREAM_BUFFER};
use crate::types::{DecisionOp, DecisionUpdate, MeshError};

/// The index of a message's last op in a position (see the module doc).
pub(crate) const LAST: u64 = 0xFFFF;
/// Bits of a position below the stream sequence.
const INDEX_BITS: u32 = 16;
/// A bulk publish of fewer ops is sent one op per message.
pub(crate) const BATCH_MIN: usize = 16;
/// Ops in one batch message at most (below [`LAST`]).
pub(crate) const BATCH_OPS: usize = 4096;
/// Bytes of one batch message at most (NATS' default maximum payload is 1 MiB).
pub(crate) const BATCH_BYTES: usize = 768 * 1024;
/// Batch publishes awaiting their acknowledgement at most.
const BATCH_WINDOW: usize = 64;
/// Single-op publishes of a bulk import awaiting their acknowledgement at most.
const PUBLISH_WINDOW: usize = 1024;

/// The header of a rewritten batch: when its ops were first published (ms).
const PUBLISHED_HEADER: &str = "Palisade-Published";

/// Key of the policy bucket holding the decision log's floor
/// ([`crate::Mesh::decisions_floor`]; not a policy version: no `v.` prefix).
const FLOOR_KEY: &str = "decisions-floor";

/// The position of op `index` of the `count` ops in message `stream_seq`.
pub(crate) fn position(stream_seq: u64, index: usize, count: usize) -> u64 {
    let index = if index + 1 >= count {
        LAST
    } else {
        index as u64
    };
    stream_seq << INDEX_BITS | index
}

/// The position of the last op of message `stream_seq` (0 for an empty log).
pub(crate) fn last_position(stream_seq: u64) -> u64 {
    if stream_seq == 0 {
        0
    } else {
        stream_seq << INDEX_BITS | LAST
    }
}

/// Where a follower at position `after` resumes: the first stream sequence to
/// read (0: from the start), and the ops of that message to skip (indexes up
/// to and including the second value; `None`: none).
pub(crate) fn resume(after: u64) -> (u64, Option<u64>) {
    let (seq, index) = (after >> INDEX_BITS, after & LAST);
    if after == 0 {
        (0, None)
    } else if index == LAST {
        (seq + 1, None)
    } else {
        (seq, Some(index))
    }
}

/// Splits normalized ops into batch payloads (JSON arrays) of at most
/// [`BATCH_OPS`] ops and [`BATCH_BYTES`] bytes (a single op larger than that
/// gets a batch of its own, which the server may refuse).
pub(crate) fn encode_batches(ops: &[DecisionOp]) -> Result<Vec<Bytes>, MeshError> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES);
    let mut n = 0;
    for op in ops {
        let one = serde_json::to_vec(op).map_err(|e| MeshError::Codec(e.to_string()))?;
        if n > 0 && (n >= BATCH_OPS || buf.len() + one.len() + 2 > BATCH_BYTES) {
            buf.push(b']');
            out.push(Bytes::from(std::mem::take(&mut buf)));
            n = 0;
        }
        buf.push(if n == 0 { b'[' } else { b',' });
        buf.extend_from_slice(&one);
        n += 1;
    }
    if n > 0 {
        buf.push(b']');
        out.push(Bytes::from(buf));
    }
    Ok(out)
}

/// The ops of one message of the decision stream: a batch (an array) or one
/// op. A batch of no op, or of more ops than positions tell apart, is refused.
pub(crate) fn decode(
    subject: &str,
    batch_prefix: &str,
    payload: &[u8],
) -> Result<Vec<DecisionOp>, serde_json::Error> {
    use serde::de::Error;
    if subject.starts_with(batch_prefix) {
        let ops: Vec<DecisionOp> = serde_json::from_slice(payload)?;
        if ops.is_empty() || ops.len() as u64 >= LAST {
            return Err(serde_json::Error::custom(format!(
                "a batch of {} ops (1 to {} allowed)",
                ops.len(),
                LAST - 1
            )));
        }
        Ok(ops)
    } else {
        serde_json::from_slice(payload).map(|op| vec![op])
    }
}

/// A 128-bit digest of a decision key (the compactor's map holds a million
/// of them; a collision among 2^20 keys has odds of about 2^-88).
fn key_digest(op: &DecisionOp) -> u128 {
    let (scope, value) = match op {
        DecisionOp::Upsert { decision } => (decision.scope, decision.value.as_str()),
        DecisionOp::Delete { scope, value } => (*scope, value.as_str()),
    };
    let half = |salt: u8| {
        // SipHash with fixed keys, salted: two independent 64-bit halves.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        scope.as_str().hash(&mut h);
        value.hash(&mut h);
        h.finish()
    };
    u128::from(half(1)) << 64 | u128::from(half(2))
}

/// What compaction does to one message of the log: purge it, after
/// appending its `live` ops again when there are some.
struct Compaction {
    seq: u64,
    subject: String,
    live: Vec<DecisionOp>,
    /// Ops dropped.
    dead: usize,
    /// The position of the newest delete dropped for its age (0: none).
    floor: u64,
    /// When the message's ops were first published (kept across rewrites).
    published: u64,
}

/// Unique batch subject suffixes within a process.
static BATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl NatsMesh {
    /// `<decisions>.batch.` : the subjects of batch messages start with it.
    fn batch_prefix(&self) -> String {
        format!("{}.batch.", self.names.decisions_subject)
    }

    /// A subject no other batch uses (node, time, counter).
    fn batch_subject(&self) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "{}{}.{nanos:x}{:x}",
            self.batch_prefix(),
            self.node,
            BATCH_COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// [`crate::Mesh::publish_decision`].
    pub(super) async fn publish_one(&self, op: DecisionOp) -> Result<u64, MeshError> {
        let op = normalize_op(op)?;
        let subject = self.names.decision_subject(&op);
        let payload = serde_json::to_vec(&op).map_err(|e| MeshError::Codec(e.to_string()))?;
        let ack = self
            .js
            .publish(subject, Bytes::from(payload))
            .await
            .map_err(|e| unavailable("decision publish")(&e))?
            .await
            .map_err(|e| unavailable("decision publish ack")(&e))?;
        Ok(last_position(ack.sequence))
    }

    /// [`crate::Mesh::publish_decisions`]: batches from [`BATCH_MIN`] ops on.
    pub(super) async fn publish_many(&self, ops: Vec<DecisionOp>) -> Result<u64, MeshError> {
        let ops = ops
            .into_iter()
            .map(normalize_op)
            .collect::<Result<Vec<_>, _>>()?;
        if ops.is_empty() {
            return self.head().await;
        }
        let batched = ops.len() >= BATCH_MIN;
        let mut messages: Vec<(String, Bytes)> = Vec::new();
        if batched {
            for payload in encode_batches(&ops)? {
                messages.push((self.batch_subject(), payload));
            }
        } else {
            for op in &ops {
                let payload =
                    serde_json::to_vec(op).map_err(|e| MeshError::Codec(e.to_string()))?;
                messages.push((self.names.decision_subject(op), Bytes::from(payload)));
            }
        }
        let window = if batched {
            BATCH_WINDOW
        } else {
            PUBLISH_WINDOW
        };
        // Many publishes in flight, acknowledged in order: JetStream orders
        // the messages of one connection as they were sent.
        let mut in_flight = std::collections::VecDeque::with_capacity(window);
        let mut last = 0;
        for (subject, payload) in messages {
            let ack = self
                .js
                .publish(subject, payload)
                .await
                .map_err(|e| unavailable("decision publish")(&e))?;
            in_flight.push_back(ack);
            if in_flight.len() >= window {
                if let Some(ack) = in_flight.pop_front() {
                    let a = ack
                        .await
                        .map_err(|e| unavailable("decision publish ack")(&e))?;
                    last = last.max(a.sequence);
                }
            }
        }
        while let Some(ack) = in_flight.pop_front() {
            let a = ack
                .await
                .map_err(|e| unavailable("decision publish ack")(&e))?;
            last = last.max(a.sequence);
        }
        Ok(last_position(last))
    }

    /// [`crate::Mesh::decisions_head`].
    pub(super) async fn head(&self) -> Result<u64, MeshError> {
        Ok(last_position(self.last_sequence().await?))
    }

    /// The stream sequence of the newest message (0 when empty).
    async fn last_sequence(&self) -> Result<u64, MeshError> {
        let info = self
            .decisions
            .get_info()
            .await
            .map_err(|e| unavailable("decision stream info")(&e))?;
        Ok(info.state.last_sequence)
    }

    /// Every message from stream sequence `from` (0: all), as an ordered consumer.
    async fn read_from(
        &self,
        from: u64,
    ) -> Result<
        impl futures_util::Stream<
                Item = Result<async_nats::jetstream::Message, consumer::pull::OrderedError>,
            > + Send
            + 'static,
        MeshError,
    > {
        let deliver_policy = if from <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            }
        };
        self.decisions
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{}.>", self.names.decisions_subject),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("decision consumer")(&e))?
            .messages()
            .await
            .map_err(|e| unavailable("decision consumer")(&e))
    }

    /// [`crate::Mesh::decisions_since`].
    pub(super) async fn follow(&self, after: u64) -> Result<DecisionStream, MeshError> {
        let (from, mut skip) = resume(after);
        let mut messages = self.read_from(from).await?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let bad = Arc::clone(&self.decode_errors);
        let batch_prefix = self.batch_prefix();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    () = tx.closed() => return,
                };
                let msg = match next {
                    None => return,
                    Some(Err(e)) => {
                        // The subscription ends; the caller resubscribes from its last_seq.
                        let _ = tx.send(Err(unavailable("decision stream")(&e))).await;
                        return;
                    }
                    Some(Ok(m)) => m,
                };
                let seq = match msg.info() {
                    Ok(info) => info.stream_sequence,
                    Err(e) => {
                        count_bad(&bad, "decision metadata", &msg.subject, &e);
                        continue;
                    }
                };
                // Only the message the follower stopped in has ops to skip.
                let skip_through = skip.take().filter(|_| seq == from);
                let ops = match decode(&msg.subject, &batch_prefix, &msg.payload) {
                    Ok(ops) => ops,
                    Err(e) => {
                        count_bad(&bad, "decision", &msg.subject, &e);
                        continue;
                    }
                };
                let count = ops.len();
                for (i, op) in ops.into_iter().enumerate() {
                    if skip_through.is_some_and(|s| i as u64 <= s) {
                        continue;
                    }
                    let update = DecisionUpdate {
                        seq: position(seq, i, count),
                        op,
                    };
                    if tx.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(DecisionStream::new(rx))
    }

    /// [`crate::Mesh::decisions_floor`].
    pub(super) async fn floor(&self) -> Result<u64, MeshError> {
        let entry = self
            .policy
            .entry(FLOOR_KEY)
            .await
            .map_err(|e| unavailable("decision floor")(&e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Drops from the decision log what no follower needs (see the module
    /// doc): ops superseded by a newer op of their key, decisions expired
    /// for longer than `retention_ms` before `now_ms`, and deletes appended
    /// longer ago than that (the newest message excepted); rewrites the
    /// batches that hold some of those; raises the floor past the deletes
    /// dropped, so that followers further behind resync. Safe with several
    /// control planes and with writers at work: a purge removes only
    /// messages read, a rewrite is refused by the server when anything was
    /// appended since the log was read (the rest waits for the next run),
    /// and the floor only rises. Returns how many ops were dropped.
    pub async fn compact_decisions(
        &self,
        now_ms: u64,
        retention_ms: u64,
    ) -> Result<usize, MeshError> {
        let head = self.last_sequence().await?;
        if head == 0 {
            return Ok(0);
        }
        let cutoff = now_ms.saturating_sub(retention_ms);
        let batch_prefix = self.batch_prefix();

        // Pass 1: the newest position of every key.
        let mut newest: HashMap<u128, u64> = HashMap::new();
        let mut batches = 0usize;
        let reached = self
            .scan(head, &batch_prefix, |seq, subject, _, ops| {
                batches += usize::from(subject.starts_with(&batch_prefix));
                let count = ops.len();
                for (i, op) in ops.iter().enumerate() {
                    newest.insert(key_digest(op), position(seq, i, count));
                }
                Ok(())
            })
            .await?;

        // Pass 2: what to purge or rewrite, in log order. Dropping the newest
        // op of a key (an old delete, an expired decision) is safe only once
        // the older ops of that key are gone; they sit in earlier messages,
        // so the actions run in log order and stop at the first refused one.
        // Only what pass 1 read: the newest positions of later keys are unknown.
        let mut actions: Vec<Compaction> = Vec::new();
        self.scan(reached, &batch_prefix, |seq, subject, published, ops| {
            let count = ops.len();
            let mut live = Vec::new();
            let mut floor = 0;
            for (i, op) in ops.iter().enumerate() {
                let pos = position(seq, i, count);
                let superseded = newest.get(&key_digest(op)).is_some_and(|&p| p > pos);
                // Never the newest op: the head position stays where it is.
                let expired = pos < last_position(head)
                    && match op {
                        DecisionOp::Delete { .. } => published <= cutoff,
                        DecisionOp::Upsert { decision } => {
                            decision.expires_at.is_some_and(|e| e <= cutoff)
                        }
                    };
                if superseded || expired {
                    // A delete dropped for its age (not superseded): followers
                    // behind it may not have applied it.
                    if expired && !superseded && matches!(op, DecisionOp::Delete { .. }) {
                        floor = pos;
                    }
                } else {
                    live.push(op.clone());
                }
            }
            if live.len() < count {
                actions.push(Compaction {
                    seq,
                    subject: subject.to_string(),
                    dead: count - live.len(),
                    live,
                    floor,
                    published,
                });
            }
            Ok(())
        })
        .await?;
        drop(newest);
        // The floor first, past every delete this run may drop: should a
        // purge fail midway, the deletes already gone are behind it. (A
        // floor raised for deletes left in the log only costs followers
        // below it a full resync.)
        let floor = actions.iter().map(|a| a.floor).max().unwrap_or(0);
        if floor > 0 {
            self.raise_floor(floor).await?;
        }
        let (mut dropped, mut expected) = (0usize, head);
        for a in actions {
            if !a.live.is_empty() {
                match self.republish(&a.live, expected, a.published).await? {
                    Some(last) => expected = last,
                    None => {
                        tracing::info!(
                            "decision log written to during compaction; the rest waits for the next run"
                        );
                        break;
                    }
                }
            }
            self.purge_message(&a.subject, a.seq).await?;
            dropped += a.dead;
        }
        tracing::debug!(batches, dropped, "decision log compacted");
        Ok(dropped)
    }

    /// Reads every message up to stream sequence `limit`, decoded, with its
    /// publication time (ms; for a rewritten batch, that of the batch it
    /// was rewritten from, [`PUBLISHED_HEADER`]). Undecodable messages are
    /// skipped (counted). Returns the last sequence read: the log's end
    /// when nothing is pending, an error when the read stalls first (a
    /// pass that stopped early must not pass for a whole one).
    async fn scan(
        &self,
        limit: u64,
        batch_prefix: &str,
        mut each: impl FnMut(u64, &str, u64, &[DecisionOp]) -> Result<(), MeshError>,
    ) -> Result<u64, MeshError> {
        let mut messages = self.read_from(0).await?;
        let mut reached = 0;
        loop {
            let msg = match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(unavailable("decision stream")(&e)),
                // The consumer ended: as far as it went.
                Ok(None) => return Ok(reached),
                Err(_) => {
                    return Err(MeshError::Unavailable(format!(
                    "the decision log stalled after sequence {reached} of {limit} while compacting"
                )))
                }
            };
            let Ok(info) = msg.info() else { continue };
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq > limit {
                return Ok(reached);
            }
            reached = seq;
            let mut published =
                u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            if let Some(first) = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(PUBLISHED_HEADER))
                .and_then(|v| v.as_str().parse::<u64>().ok())
            {
                published = published.min(first);
            }
            match decode(&msg.subject, batch_prefix, &msg.payload) {
                Ok(ops) => each(seq, &msg.subject, published, &ops)?,
                Err(e) => count_bad(&self.decode_errors, "decision", &msg.subject, &e),
            }
            if seq >= limit || pending == 0 {
                return Ok(reached);
            }
        }
    }

    /// Removes message `seq` of `subject` (and nothing newer).
    async fn purge_message(&self, subject: &str, seq: u64) -> Result<(), MeshError> {
        self.decisions
            .purge()
            .filter(subject.to_string())
            .sequence(seq + 1)
            .await
            .map_err(|e| unavailable("decision purge")(&e))?;
        Ok(())
    }

    /// Appends `ops` as new batches, each only if the stream's last sequence
    /// is still the one expected, carrying `published` (when the ops were
    /// first published: a rewrite must not make an old delete young again).
    /// Returns the new last sequence, or `None` when something else was
    /// appended meanwhile.
    async fn republish(
        &self,
        ops: &[DecisionOp],
        mut expected: u64,
        published: u64,
    ) -> Result<Option<u64>, MeshError> {
        for payload in encode_batches(ops)? {
            let publish = PublishMessage::build()
                .payload(payload)
                .header(PUBLISHED_HEADER, published.to_string().as_str())
                .expected_last_sequence(expected);
            let ack = self
                .js
                .send_publish(self.batch_subject(), publish)
                .await
                .map_err(|e| unavailable("decision rewrite")(&e))?
                .await;
            match ack {
                Ok(a) => expected = a.sequence,
                Err(e) if matches!(e.kind(), PublishErrorKind::WrongLastSequence) => {
                    return Ok(None)
                }
                Err(e) => return Err(unavailable("decision rewrite ack")(&e)),
            }
        }
        Ok(Some(expected))
    }

    /// Sets the floor to `floor` unless it is already higher (compare and set).
    async fn raise_floor(&self, floor: u64) -> Result<(), MeshError> {
        for _ in 0..100 {
            let entry = self
                .policy
                .entry(FLOOR_KEY)
                .await
                .map_err(|e| unavailable("decision floor")(&e))?;
            let value = Bytes::from(floor.to_string());
            let done = match entry.filter(|e| e.operation == kv::Operation::Put) {
                Some(e) => {
                    let current: u64 = std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if current >= floor {
                        return Ok(());
                    }
                    self.policy
                        .update(FLOOR_KEY, value, e.revision)
                        .await
                        .is_ok()
                }
                None => self.policy.create(FLOOR_KEY, value).await.is_ok(),
            };
            if done {
                return Ok(());
            }
        }
        Err(MeshError::Unavailable(
            "decision floor: too many concurrent writers".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::decisions::Scope;

    #[test]
    fn positions_order_ops_and_resume_after_any_of_them() {
        // Message 7 holds 3 ops, message 8 one.
        let p: Vec<u64> = (0..3).map(|i| position(7, i, 3)).collect();
        assert!(p[0] < p[1] && p[1] < p[2] && p[2] < position(8, 0, 1));
        assert_eq!(p[2], last_position(7));
        assert_eq!(position(8, 0, 1), last_position(8));
        assert_eq!(resume(0), (0, None));
        assert_eq!(resume(p[0]), (7, Some(0)));
        assert_eq!(resume(p[1]), (7, Some(1)));
        assert_eq!(resume(p[2]), (8, None));
        assert_eq!(last_position(0), 0);
    }

    fn ban(i: u32) -> DecisionOp {
        DecisionOp::Upsert {
            decision: palisade_policy::Decision {
                id: u64::from(i) + 1,
                scope: Scope::Ip,
                value: format!("10.0.{}.{}", i >> 8, i & 255),
                action: palisade_policy::decisions::DecisionAction::Ban,
                reason: "r".into(),
                origin: "o".into(),
                simulated: false,
                created_at: 1,
                expires_at: None,
            },
        }
    }

    #[test]
    fn batches_respect_both_limits_and_decode_back() {
        let ops: Vec<DecisionOp> = (0..10_000).map(ban).collect();
        let batches = encode_batches(&ops).unwrap();
        assert_eq!(batches.len(), 3, "4096 + 4096 + 1808");
        let mut back = Vec::new();
        for b in &batches {
            assert!(b.len() <= BATCH_BYTES);
            back.extend(decode("p.decisions.batch.n.1", "p.decisions.batch.", b).unwrap());
        }
        assert_eq!(back, ops);
        // Large ops: the byte limit cuts first.
        let mut big = ban(1);
        if let DecisionOp::Upsert { decision } = &mut big {
            decision.reason = "x".repeat(100_000);
        }
        let batches = encode_batches(&vec![big; 20]).unwrap();
        assert_eq!(batches.len(), 3, "7 + 7 + 6 ops of about 100 KB");
        assert!(batches.iter().all(|b| b.len() <= BATCH_BYTES));
        // An empty batch, or one with more ops than positions tell apart, is refused.
        assert!(decode("p.decisions.batch.n.1", "p.decisions.batch.", b"[]").is_err());
        let huge: Vec<DecisionOp> = (0..LAST as u32).map(ban).collect();
        let huge = serde_json::to_vec(&huge).unwrap();
        assert!(decode("p.decisions.batch.n.1", "p.decisions.batch.", &huge).is_err());
        // A single op is not an array.
        let one = serde_json::to_vec(&ban(2)).unwrap();
        assert_eq!(
            decode("p.decisions.ip.31", "p.decisions.batch.", &one).unwrap(),
            vec![ban(2)]
        );
    }

    #[test]
    fn key_digests_tell_keys_apart_and_ignore_the_rest() {
        let a = ban(1);
        let mut a2 = ban(1);
        if let DecisionOp::Upsert { decision } = &mut a2 {
            decision.reason = "other".into();
        }
        let del = DecisionOp::Delete {
            scope: Scope::Ip,
            value: "10.0.0.1".into(),
        };
        assert_eq!(key_digest(&a), key_digest(&a2));
        assert_eq!(key_digest(&a), key_digest(&del));
        assert_ne!(key_digest(&a), key_digest(&ban(2)));
        let cidr = DecisionOp::Delete {
            scope: Scope::Cidr,
            value: "10.0.0.1".into(),
        };
        assert_ne!(key_digest(&a), key_digest(&cidr));
    }
}
