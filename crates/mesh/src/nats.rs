//! [`NatsMesh`]: the mesh over NATS JetStream, a thin adapter.
//!
//! With the default prefix `palisade` it uses:
//!
//! | what       | JetStream object                | subjects / keys                              |
//! |------------|---------------------------------|----------------------------------------------|
//! | decisions  | stream `PALISADE_DECISIONS`     | `palisade.decisions.<scope>.<hex(value)>`, 1 message per subject; bulk publishes as `palisade.decisions.batch.<node>.<id>` (see `nats/decisions.rs`) |
//! | events     | stream `PALISADE_EVENTS`        | `palisade.events.<node token>`, max age / bytes |
//! | policy     | KV bucket `palisade_policy`     | `current` (JSON `PolicyVersion`), `v.<n>` per version |
//! | heartbeats | KV bucket `palisade_nodes`      | `<node token>`, entries expire after max age  |
//! | counts     | core subject (no JetStream)     | `palisade.ratelimit.counts`: global rate-limit count reports, not stored |
//! | key ring   | KV bucket `palisade_policy`     | `keyring`: the challenge's signing keys (JSON), written by the control plane |
//! | logins     | core subject (no JetStream)     | `palisade.bots.logins`: failed-login reports (keyed username hashes), not stored |
//!
//! Every object is created on first use by whichever process starts first
//! (get, else create, else get again), so control planes and edges start in
//! any order. A message that does not decode is skipped, logged and counted
//! ([`NatsMesh::decode_errors`]); it never stops a subscription.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use palisade_policy::SecurityEvent;
use tokio::sync::mpsc;

use crate::mesh::{
    check_counts_size, check_stats_size, hex, now_ms, token, Acker, CountStream, DecisionStream,
    EventDelivery, EventStream, Mesh, PolicyStream, STREAM_BUFFER,
};
use crate::types::{DecisionOp, Heartbeat, MeshError, PolicyVersion};

mod decisions;
mod objects;
pub use objects::{ObjectReplicas, ReplicaPolicy, Replication};

/// How to connect, and how to name and size the JetStream objects.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// Prefix of every subject, stream and bucket (lower-case letters, digits,
    /// `_`); clusters sharing one NATS server use different prefixes.
    pub prefix: String,
    /// This node's id: the subject token events are published under.
    pub node_id: String,
    /// A `.creds` file (JWT + nkey seed) when the server requires one.
    pub credentials_file: Option<PathBuf>,
    /// A PEM file of CA certificates to verify the server with.
    pub tls_root_ca: Option<PathBuf>,
    /// A PEM client certificate and its key, for mutual TLS.
    pub tls_client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse to talk to the server without TLS.
    pub require_tls: bool,
    /// Replicas of each stream and bucket created (1 on a single server, 3
    /// in a cluster), and what to do when the cluster cannot place them.
    pub replicas: ReplicaPolicy,
    /// Set the replica count of existing streams and buckets to `replicas`
    /// (only `num_replicas` changes, in place). Control planes do; edges,
    /// which may hold least-privilege credentials, never do.
    pub reconcile_replicas: bool,
    /// Events older than this are dropped from the event stream.
    pub events_max_age: Duration,
    /// The event stream keeps at most this many bytes (oldest dropped).
    pub events_max_bytes: i64,
    /// A node missing heartbeats this long disappears from `nodes()`.
    pub nodes_max_age: Duration,
    /// A learned-statistics state not refreshed this long disappears from `stats()`.
    pub stats_max_age: Duration,
    /// Revisions kept for the `current` policy key.
    pub policy_history: i64,
    /// How long an unacknowledged event waits before redelivery.
    pub events_ack_wait: Duration,
    /// Timeout of JetStream API requests and publish acknowledgements.
    pub request_timeout: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            prefix: "palisade".into(),
            node_id: "control".into(),
            credentials_file: None,
            tls_root_ca: None,
            tls_client_cert: None,
            require_tls: false,
            replicas: ReplicaPolicy::Exactly(1),
            reconcile_replicas: false,
            events_max_age: Duration::from_secs(7 * 24 * 3600),
            events_max_bytes: 1 << 30,
            nodes_max_age: Duration::from_secs(3600),
            stats_max_age: Duration::from_secs(3600),
            policy_history: 64,
            events_ack_wait: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The JetStream names derived from a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Decision stream name (`PALISADE_DECISIONS`).
    pub decisions_stream: String,
    /// Decision subjects start with this (`palisade.decisions`).
    pub decisions_subject: String,
    /// Event stream name (`PALISADE_EVENTS`).
    pub events_stream: String,
    /// Event subjects start with this (`palisade.events`).
    pub events_subject: String,
    /// Policy bucket (`palisade_policy`).
    pub policy_bucket: String,
    /// Heartbeat bucket (`palisade_nodes`).
    pub nodes_bucket: String,
    /// Learned-statistics bucket (`palisade_stats`).
    pub stats_bucket: String,
    /// Core subject of the global rate limits' count reports (`palisade.ratelimit.counts`).
    pub counts_subject: String,
    /// Core subject of the failed-login reports (`palisade.bots.logins`).
    pub logins_subject: String,
}

impl Names {
    /// The names for `prefix`, which must be lower-case ASCII letters, digits and `_`.
    pub fn new(prefix: &str) -> Result<Names, MeshError> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(MeshError::Invalid(format!(
                "mesh prefix `{prefix}`: use 1 to 32 lower-case letters, digits or `_`"
            )));
        }
        let up = prefix.to_ascii_uppercase();
        Ok(Names {
            decisions_stream: format!("{up}_DECISIONS"),
            decisions_subject: format!("{prefix}.decisions"),
            events_stream: format!("{up}_EVENTS"),
            events_subject: format!("{prefix}.events"),
            policy_bucket: format!("{prefix}_policy"),
            nodes_bucket: format!("{prefix}_nodes"),
            stats_bucket: format!("{prefix}_stats"),
            counts_subject: format!("{prefix}.ratelimit.counts"),
            logins_subject: format!("{prefix}.bots.logins"),
        })
    }

    /// The subject of the decision about `scope:value` (value normalized).
    pub fn decision_subject(&self, op: &DecisionOp) -> String {
        let (scope, value) = match op {
            DecisionOp::Upsert { decision } => (decision.scope, decision.value.as_str()),
            DecisionOp::Delete { scope, value } => (*scope, value.as_str()),
        };
        format!(
            "{}.{}.{}",
            self.decisions_subject,
            scope.as_str(),
            hex(value.as_bytes())
        )
    }
}

/// The mesh over NATS JetStream. Cheap to clone.
#[derive(Clone)]
pub struct NatsMesh {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Arc<Names>,
    node: Arc<str>,
    opts: Arc<NatsOptions>,
    decisions: stream::Stream,
    events: stream::Stream,
    policy: kv::Store,
    nodes: kv::Store,
    stats: kv::Store,
    decode_errors: Arc<AtomicU64>,
    /// What the objects are created as (for [`NatsMesh::reconcile_replicas`]).
    specs: Arc<Vec<objects::Spec>>,
    replication: Arc<objects::Reported>,
}

impl std::fmt::Debug for NatsMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMesh")
            .field("names", &self.names)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str) -> impl Fn(&dyn std::fmt::Display) -> MeshError + '_ {
    move |e| MeshError::Unavailable(format!("{what}: {e}"))
}

impl NatsMesh {
    /// Connects to `url` (one URL or a comma-separated list of cluster
    /// members) and creates the streams and buckets that do not exist yet.
    pub async fn connect(url: &str, opts: NatsOptions) -> Result<NatsMesh, MeshError> {
        let names = Names::new(&opts.prefix)?;
        let mut co = match &opts.credentials_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    MeshError::Invalid(format!("NATS credentials {}: {e}", path.display()))
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(ca) = &opts.tls_root_ca {
            co = co.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &opts.tls_client_cert {
            co = co.add_client_certificate(cert.clone(), key.clone());
        }
        if opts.require_tls {
            co = co.require_tls(true);
        }
        let co = co
            .name(format!("palisade-{}", opts.node_id))
            .connection_timeout(opts.request_timeout)
            .request_timeout(Some(opts.request_timeout));
        let addrs: Vec<&str> = url.split(',').map(str::trim).collect();
        let client = co
            .connect(addrs.as_slice())
            .await
            .map_err(|e| MeshError::Unavailable(format!("NATS connect {url}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(opts.request_timeout)
            .build(client.clone());

        let specs = objects::specs(&names, &opts);
        let (opened, replication) =
            objects::open_all(&js, &specs, opts.replicas, opts.reconcile_replicas).await?;
        let (decisions, events, policy, nodes, stats) = objects::unpack(opened)?;
        Ok(NatsMesh {
            client,
            js,
            names: Arc::new(names),
            node: Arc::from(token(&opts.node_id)),
            opts: Arc::new(opts),
            decisions,
            events,
            policy,
            nodes,
            stats,
            decode_errors: Arc::new(AtomicU64::new(0)),
            specs: Arc::new(specs),
            replication: Arc::new(objects::Reported::new(replication)),
        })
    }

    /// The names of the streams and buckets in use.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// What the streams and buckets are replicated as (as opened, or as last
    /// reconciled).
    pub fn replication(&self) -> Replication {
        self.replication.get()
    }

    /// Sets the replica count of every stream and bucket under the
    /// configured [`ReplicaPolicy`] (in place, nothing else changes) and
    /// returns what was reached. A control plane calls it again while the
    /// count is short: a cluster still forming, or a server down, refuses
    /// a placement that succeeds later.
    pub async fn reconcile_replicas(&self) -> Result<Replication, MeshError> {
        let r = objects::reconcile_all(&self.js, &self.specs, self.opts.replicas).await?;
        self.replication.set(r.clone());
        Ok(r)
    }

    /// Messages skipped because they did not decode.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    /// The underlying client (for its connection state and statistics).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    async fn read_version(&self, key: &str) -> Result<Option<(PolicyVersion, u64)>, MeshError> {
        let entry = self
            .policy
            .entry(key)
            .await
            .map_err(|e| unavailable("policy read")(&e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let v = serde_json::from_slice(&e.value)
                    .map_err(|err| MeshError::Codec(format!("policy `{key}`: {err}")))?;
                Ok(Some((v, e.revision)))
            }
            _ => Ok(None),
        }
    }
}

fn count_bad(counter: &AtomicU64, what: &str, subject: &str, err: &dyn std::fmt::Display) {
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(subject, error = %err, "skipping undecodable {what}");
}

impl NatsMesh {
    /// Publishes `payload` on a core subject (best effort, not stored).
    async fn publish_core(
        &self,
        subject: &str,
        payload: Vec<u8>,
        what: &'static str,
    ) -> Result<(), MeshError> {
        self.client
            .publish(subject.to_string(), Bytes::from(payload))
            .await
            .map_err(|e| unavailable(what)(&e))
    }

    /// What a core subject carries from now on, as a stream.
    async fn subscribe_core(
        &self,
        subject: &str,
        what: &'static str,
    ) -> Result<CountStream, MeshError> {
        let mut sub = self
            .client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| unavailable(what)(&e))?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if tx.send(msg.payload).await.is_err() {
                    break;
                }
            }
            let _ = sub.unsubscribe().await;
        });
        Ok(CountStream::new(rx))
    }
}

#[async_trait]
impl Mesh for NatsMesh {
    async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError> {
        self.publish_one(op).await
    }

    async fn publish_decisions(&self, ops: Vec<DecisionOp>) -> Result<u64, MeshError> {
        self.publish_many(ops).await
    }

    async fn decisions_since(&self, after_seq: u64) -> Result<DecisionStream, MeshError> {
        self.follow(after_seq).await
    }

    async fn decisions_floor(&self) -> Result<u64, MeshError> {
        self.floor().await
    }

    async fn decisions_head(&self) -> Result<u64, MeshError> {
        self.head().await
    }

    async fn put_policy(
        &self,
        source: String,
        digest: String,
        author: String,
    ) -> Result<PolicyVersion, MeshError> {
        // Claim the next free `v.<n>` (create fails when another writer took it),
        // then move `current` forward unless a newer version got there first.
        let mut n = self
            .read_version("current")
            .await?
            .map_or(0, |(v, _)| v.version)
            + 1;
        let mut attempts = 0;
        let version = loop {
            let v = PolicyVersion {
                version: n,
                source: source.clone(),
                digest: digest.clone(),
                author: author.clone(),
                created_at: now_ms(),
            };
            let json = serde_json::to_vec(&v).map_err(|e| MeshError::Codec(e.to_string()))?;
            match self
                .policy
                .create(format!("v.{n}"), Bytes::from(json))
                .await
            {
                Ok(_) => break v,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists && attempts < 1000 => {
                    attempts += 1;
                    n += 1;
                }
                Err(e) => return Err(unavailable("policy write")(&e)),
            }
        };
        let json =
            Bytes::from(serde_json::to_vec(&version).map_err(|e| MeshError::Codec(e.to_string()))?);
        for _ in 0..1000 {
            let written = match self.read_version("current").await? {
                Some((cur, _)) if cur.version >= version.version => return Ok(version),
                Some((_, revision)) => self
                    .policy
                    .update("current", json.clone(), revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => self
                    .policy
                    .create("current", json.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => return Ok(version),
                // Lost a race with another writer: read again.
                Err(e) => tracing::debug!(error = %e, "policy `current` changed meanwhile"),
            }
        }
        Err(MeshError::Unavailable(
            "policy `current`: too many concurrent writers".into(),
        ))
    }

    async fn policy_history(&self) -> Result<Vec<PolicyVersion>, MeshError> {
        let mut keys = self
            .policy
            .keys()
            .await
            .map_err(|e| unavailable("policy keys")(&e))?;
        let mut out = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| unavailable("policy keys")(&e))?;
            if !k.starts_with("v.") {
                continue;
            }
            match self.read_version(&k).await {
                Ok(Some((v, _))) => out.push(v),
                Ok(None) => {}
                Err(MeshError::Codec(e)) => count_bad(&self.decode_errors, "policy", &k, &e),
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, MeshError> {
        Ok(self.read_version("current").await?.map(|(v, _)| v))
    }

    async fn watch_policy(&self) -> Result<PolicyStream, MeshError> {
        let mut watch = self
            .policy
            .watch_with_history("current")
            .await
            .map_err(|e| unavailable("policy watch")(&e))?;
        let (tx, rx) = mpsc::channel(16);
        let bad = Arc::clone(&self.decode_errors);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    e = watch.next() => e,
                    () = tx.closed() => return,
                };
                let entry = match next {
                    None => return,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(unavailable("policy watch")(&e))).await;
                        return;
                    }
                    Some(Ok(entry)) => entry,
                };
                if entry.operation != kv::Operation::Put {
                    continue;
                }
                match serde_json::from_slice::<PolicyVersion>(&entry.value) {
                    Ok(v) => {
                        if tx.send(Ok(v)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => count_bad(&bad, "policy", &entry.key, &e),
                }
            }
        });
        Ok(PolicyStream::new(rx))
    }

    async fn publish_event(&self, ev: &SecurityEvent) -> Result<(), MeshError> {
        let subject = format!("{}.{}", self.names.events_subject, self.node);
        let payload = serde_json::to_vec(ev).map_err(|e| MeshError::Codec(e.to_string()))?;
        self.js
            .publish(subject, Bytes::from(payload))
            .await
            .map_err(|e| unavailable("event publish")(&e))?
            .await
            .map_err(|e| unavailable("event publish ack")(&e))?;
        Ok(())
    }

    async fn publish_events(&self, evs: &[SecurityEvent]) -> Result<(), MeshError> {
        // All in flight at once, then every acknowledgement awaited.
        let subject = format!("{}.{}", self.names.events_subject, self.node);
        let mut acks = Vec::with_capacity(evs.len());
        for ev in evs {
            let payload = serde_json::to_vec(ev).map_err(|e| MeshError::Codec(e.to_string()))?;
            acks.push(
                self.js
                    .publish(subject.clone(), Bytes::from(payload))
                    .await
                    .map_err(|e| unavailable("event publish")(&e))?,
            );
        }
        for ack in acks {
            ack.await
                .map_err(|e| unavailable("event publish ack")(&e))?;
        }
        Ok(())
    }

    async fn consume_events(&self, durable: &str) -> Result<EventStream, MeshError> {
        let name = token(durable);
        let consumer = self
            .events
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some("Palisade event consumer".into()),
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.opts.events_ack_wait,
                    filter_subject: format!("{}.>", self.names.events_subject),
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| unavailable("event consumer")(&e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("event consumer")(&e))?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let bad = Arc::clone(&self.decode_errors);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    () = tx.closed() => return,
                };
                let msg = match next {
                    None => return,
                    Some(Err(e)) => {
                        let _ = tx.send(Err(unavailable("event stream")(&e))).await;
                        return;
                    }
                    Some(Ok(m)) => m,
                };
                let seq = msg.info().map_or(0, |i| i.stream_sequence);
                match serde_json::from_slice::<SecurityEvent>(&msg.payload) {
                    Ok(event) => {
                        let (_, acker) = msg.split();
                        let d = EventDelivery {
                            event,
                            seq,
                            acker: Acker::Nats(Box::new(acker)),
                        };
                        if tx.send(Ok(d)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        count_bad(&bad, "event", &msg.subject, &e);
                        // Never redeliver what can never be read.
                        let _ = msg.ack_with(jetstream::AckKind::Term).await;
                    }
                }
            }
        });
        Ok(EventStream::new(rx))
    }

    async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), MeshError> {
        let payload = serde_json::to_vec(hb).map_err(|e| MeshError::Codec(e.to_string()))?;
        self.nodes
            .put(token(&hb.node_id), Bytes::from(payload))
            .await
            .map_err(|e| unavailable("heartbeat")(&e))?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<Heartbeat>, MeshError> {
        let mut keys = self
            .nodes
            .keys()
            .await
            .map_err(|e| unavailable("node keys")(&e))?;
        let mut out = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| unavailable("node keys")(&e))?;
            let Some(value) = self
                .nodes
                .get(k.as_str())
                .await
                .map_err(|e| unavailable("node read")(&e))?
            else {
                continue;
            };
            match serde_json::from_slice::<Heartbeat>(&value) {
                Ok(hb) => out.push(hb),
                Err(e) => count_bad(&self.decode_errors, "heartbeat", &k, &e),
            }
        }
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(out)
    }

    async fn publish_stats(&self, name: &str, node: &str, state: Vec<u8>) -> Result<(), MeshError> {
        check_stats_size(name, &state)?;
        self.stats
            .put(
                format!("{}.{}", token(name), token(node)),
                Bytes::from(state),
            )
            .await
            .map_err(|e| unavailable("stats publish")(&e))?;
        Ok(())
    }

    async fn stats(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, MeshError> {
        let prefix = format!("{}.", token(name));
        let mut keys = self
            .stats
            .keys()
            .await
            .map_err(|e| unavailable("stats keys")(&e))?;
        let mut wanted = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| unavailable("stats keys")(&e))?;
            if let Some(node) = k.strip_prefix(&prefix) {
                wanted.push((node.to_string(), k.clone()));
            }
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (node, key) in wanted {
            if let Some(v) = self
                .stats
                .get(key.as_str())
                .await
                .map_err(|e| unavailable("stats read")(&e))?
            {
                out.push((node, v.to_vec()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn publish_counts(&self, report: Vec<u8>) -> Result<(), MeshError> {
        check_counts_size(&report)?;
        self.publish_core(&self.names.counts_subject, report, "count report")
            .await
    }

    async fn subscribe_counts(&self) -> Result<CountStream, MeshError> {
        self.subscribe_core(&self.names.counts_subject, "count subscription")
            .await
    }

    async fn put_keyring(&self, ring: Vec<u8>) -> Result<(), MeshError> {
        check_stats_size("keyring", &ring)?;
        self.policy
            .put("keyring", Bytes::from(ring))
            .await
            .map(|_| ())
            .map_err(|e| unavailable("keyring put")(&e))
    }

    async fn keyring(&self) -> Result<Option<Vec<u8>>, MeshError> {
        self.policy
            .get("keyring")
            .await
            .map(|v| v.map(|b| b.to_vec()))
            .map_err(|e| unavailable("keyring read")(&e))
    }

    async fn publish_logins(&self, reports: Vec<u8>) -> Result<(), MeshError> {
        check_counts_size(&reports)?;
        self.publish_core(&self.names.logins_subject, reports, "login reports")
            .await
    }

    async fn subscribe_logins(&self) -> Result<CountStream, MeshError> {
        self.subscribe_core(&self.names.logins_subject, "login subscription")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::decisions::Scope;

    #[test]
    fn names_follow_the_prefix() {
        let n = Names::new("palisade").unwrap();
        assert_eq!(n.decisions_stream, "PALISADE_DECISIONS");
        assert_eq!(n.policy_bucket, "palisade_policy");
        assert_eq!(n.events_subject, "palisade.events");
        assert_eq!(n.counts_subject, "palisade.ratelimit.counts");
        assert_eq!(n.logins_subject, "palisade.bots.logins");
        let op = DecisionOp::Delete {
            scope: Scope::Cidr,
            value: "10.0.0.0/8".into(),
        };
        assert_eq!(
            n.decision_subject(&op),
            "palisade.decisions.cidr.31302e302e302e302f38"
        );
        assert!(Names::new("a.b").is_err());
        assert!(Names::new("").is_err());
        assert!(Names::new("Upper").is_err());
    }
}
