//! The JetStream objects of a [`super::NatsMesh`] and their replication:
//! opening them (get, else create, else get again), and reconciling their
//! replica count.
//!
//! What it owns: which replica count an object is created with, when a
//! cluster that cannot place it falls back to one replica, and the in-place
//! change of `num_replicas` of an existing object (nothing else of its
//! configuration is ever changed). A KV bucket is the stream `KV_<bucket>`.
//!
//! What it must not do: reconfigure objects when asked not to (edges, which
//! may hold least-privilege credentials, only get or create).

use std::error::Error as StdError;
use std::sync::Mutex;

use async_nats::jetstream::{self, context, kv, stream, ErrorCode};

use super::{Names, NatsOptions};
use crate::mesh::MAX_STATS_BYTES;
use crate::types::MeshError;

/// How many replicas to ask for, and what to do when the cluster cannot
/// place them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaPolicy {
    /// Exactly this many: creating an object the cluster cannot place fails,
    /// and a reconciling process sets existing objects to it (up or down).
    Exactly(usize),
    /// This many where the cluster can place them, else one (a single
    /// server, a cluster with fewer servers): the mesh then runs without
    /// redundancy, which [`Replication`] reports. A reconciling process
    /// only raises existing objects, never lowers them.
    Prefer(usize),
}

impl ReplicaPolicy {
    /// The replica count asked for.
    pub fn wanted(self) -> usize {
        match self {
            ReplicaPolicy::Exactly(n) | ReplicaPolicy::Prefer(n) => n.max(1),
        }
    }
}

/// The replica count of one stream or bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReplicas {
    /// The JetStream stream name (`KV_<bucket>` for a bucket).
    pub stream: String,
    /// Its `num_replicas` as last read or set.
    pub replicas: usize,
}

/// What the mesh's objects are replicated as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replication {
    /// The replica count asked for.
    pub wanted: usize,
    /// Every object, in a fixed order.
    pub objects: Vec<ObjectReplicas>,
    /// Why the wanted count could not be placed (the last refusal), if so.
    pub shortfall: Option<String>,
}

impl Replication {
    /// Whether every object has more than one replica: the loss of one
    /// server loses nothing.
    pub fn redundant(&self) -> bool {
        !self.objects.is_empty() && self.objects.iter().all(|o| o.replicas > 1)
    }

    /// Whether every object has at least the wanted count.
    pub fn at_target(&self) -> bool {
        self.objects.iter().all(|o| o.replicas >= self.wanted)
    }

    /// Prometheus text: `palisade_mesh_replicas{stream}`,
    /// `palisade_mesh_replicas_wanted` and `palisade_mesh_redundant` (0 or 1).
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP palisade_mesh_replicas Replicas of each JetStream stream and bucket of the mesh.\n\
             # TYPE palisade_mesh_replicas gauge\n",
        );
        for o in &self.objects {
            out.push_str(&format!(
                "palisade_mesh_replicas{{stream=\"{}\"}} {}\n",
                o.stream, o.replicas
            ));
        }
        out.push_str(&format!(
            "# HELP palisade_mesh_replicas_wanted Replicas asked for (--nats-replicas).\n\
             # TYPE palisade_mesh_replicas_wanted gauge\n\
             palisade_mesh_replicas_wanted {}\n\
             # HELP palisade_mesh_redundant 1 when every object has more than one replica (the loss of one NATS server loses nothing), else 0.\n\
             # TYPE palisade_mesh_redundant gauge\n\
             palisade_mesh_redundant {}\n",
            self.wanted,
            u8::from(self.redundant())
        ));
        out
    }
}

/// One object to open: a stream, or a KV bucket.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // five of them, built once
pub(super) enum Spec {
    Stream(stream::Config),
    Bucket(kv::Config),
}

impl Spec {
    fn stream_name(&self) -> String {
        match self {
            Spec::Stream(c) => c.name.clone(),
            Spec::Bucket(c) => format!("KV_{}", c.bucket),
        }
    }
}

/// The mesh's objects, in the order [`unpack`] takes them: the decision
/// stream, the event stream, the policy, node and statistics buckets.
pub(super) fn specs(names: &Names, opts: &NatsOptions) -> Vec<Spec> {
    vec![
        Spec::Stream(stream::Config {
            name: names.decisions_stream.clone(),
            description: Some("Palisade decision log: latest op per key".into()),
            subjects: vec![format!("{}.>", names.decisions_subject)],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            allow_direct: true,
            ..Default::default()
        }),
        Spec::Stream(stream::Config {
            name: names.events_stream.clone(),
            description: Some("Palisade security events from every node".into()),
            subjects: vec![format!("{}.>", names.events_subject)],
            max_age: opts.events_max_age,
            max_bytes: opts.events_max_bytes,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            ..Default::default()
        }),
        Spec::Bucket(kv::Config {
            bucket: names.policy_bucket.clone(),
            description: "Palisade policy versions".into(),
            history: opts.policy_history.clamp(1, 64),
            storage: stream::StorageType::File,
            ..Default::default()
        }),
        Spec::Bucket(kv::Config {
            bucket: names.nodes_bucket.clone(),
            description: "Palisade node heartbeats".into(),
            history: 1,
            max_age: opts.nodes_max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        }),
        Spec::Bucket(kv::Config {
            bucket: names.stats_bucket.clone(),
            description: "Palisade learned statistics, latest state per node".into(),
            history: 1,
            max_age: opts.stats_max_age,
            max_value_size: (MAX_STATS_BYTES + 1024) as i32,
            storage: stream::StorageType::File,
            ..Default::default()
        }),
    ]
}

/// The opened objects of [`specs`], by role.
pub(super) fn unpack(
    opened: Vec<Opened>,
) -> Result<
    (
        stream::Stream,
        stream::Stream,
        kv::Store,
        kv::Store,
        kv::Store,
    ),
    MeshError,
> {
    let mut it = opened.into_iter();
    let wrong = || MeshError::Invalid("the mesh's objects opened out of order".into());
    let stream = |it: &mut std::vec::IntoIter<Opened>| match it.next() {
        Some(Opened::Stream(s)) => Ok(s),
        _ => Err(wrong()),
    };
    let decisions = stream(&mut it)?;
    let events = stream(&mut it)?;
    let bucket = |it: &mut std::vec::IntoIter<Opened>| match it.next() {
        Some(Opened::Bucket(b)) => Ok(b),
        _ => Err(wrong()),
    };
    Ok((
        decisions,
        events,
        bucket(&mut it)?,
        bucket(&mut it)?,
        bucket(&mut it)?,
    ))
}

/// An opened object.
pub(super) enum Opened {
    Stream(stream::Stream),
    Bucket(kv::Store),
}

/// Why an object could not be opened or changed.
enum Refusal {
    /// The cluster cannot place the replicas asked for.
    Placement(String),
    /// Anything else (unreachable, timed out, denied).
    Other(MeshError),
}

/// The server error codes that mean "cannot place that many replicas".
fn is_placement(code: ErrorCode) -> bool {
    [
        ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
        ErrorCode::CLUSTER_NO_PEERS,
        ErrorCode::INSUFFICIENT_RESOURCES,
    ]
    .contains(&code)
}

/// The JetStream error code somewhere in `e`'s source chain.
fn jetstream_code(e: &(dyn StdError + 'static)) -> Option<ErrorCode> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(c) = err.downcast_ref::<context::CreateStreamError>() {
            if let context::CreateStreamErrorKind::JetStream(js) = c.kind() {
                return Some(js.error_code());
            }
        }
        if let Some(g) = err.downcast_ref::<context::GetStreamError>() {
            if let context::GetStreamErrorKind::JetStream(js) = g.kind() {
                return Some(js.error_code());
            }
        }
        cur = err.source();
    }
    None
}

fn refusal(what: &str, e: &(dyn StdError + 'static)) -> Refusal {
    match jetstream_code(e) {
        Some(code) if is_placement(code) => Refusal::Placement(format!("{what}: {e}")),
        _ => Refusal::Other(MeshError::Unavailable(format!("{what}: {e}"))),
    }
}

/// Opens the objects, creating the missing ones with the policy's count
/// (falling back to one replica under [`ReplicaPolicy::Prefer`]), and, when
/// `reconcile`, sets the replica count of existing ones. Returns them in the
/// order of `specs`, with the replication reached.
pub(super) async fn open_all(
    js: &jetstream::Context,
    specs: &[Spec],
    policy: ReplicaPolicy,
    reconcile: bool,
) -> Result<(Vec<Opened>, Replication), MeshError> {
    let mut plan = Plan::new(policy);
    let mut opened = Vec::with_capacity(specs.len());
    let mut objects = Vec::with_capacity(specs.len());
    for spec in specs {
        let (o, replicas) = plan.open(js, spec, reconcile).await?;
        opened.push(o);
        objects.push(ObjectReplicas {
            stream: spec.stream_name(),
            replicas,
        });
    }
    let replication = Replication {
        wanted: policy.wanted(),
        objects,
        shortfall: plan.shortfall,
    };
    Ok((opened, replication))
}

/// Sets every existing object's replica count under `policy` (the objects
/// must exist); objects the cluster cannot change keep their count, and the
/// refusal is reported in [`Replication::shortfall`].
pub(super) async fn reconcile_all(
    js: &jetstream::Context,
    specs: &[Spec],
    policy: ReplicaPolicy,
) -> Result<Replication, MeshError> {
    let (_, replication) = open_all(js, specs, policy, true).await?;
    Ok(replication)
}

/// The replica count in force while objects are opened one by one: after a
/// placement refusal under `Prefer`, the rest are created with one replica.
struct Plan {
    policy: ReplicaPolicy,
    create_with: usize,
    shortfall: Option<String>,
}

impl Plan {
    fn new(policy: ReplicaPolicy) -> Plan {
        Plan {
            policy,
            create_with: policy.wanted(),
            shortfall: None,
        }
    }

    async fn open(
        &mut self,
        js: &jetstream::Context,
        spec: &Spec,
        reconcile: bool,
    ) -> Result<(Opened, usize), MeshError> {
        let name = spec.stream_name();
        let existing = match js.get_stream(&name).await {
            Ok(s) => Some(s),
            Err(e) if jetstream_code(&e) == Some(ErrorCode::STREAM_NOT_FOUND) => None,
            Err(e) => {
                return Err(MeshError::Unavailable(format!("stream {name}: {e}")));
            }
        };
        let have = match existing {
            Some(s) => s.cached_info().config.num_replicas.max(1),
            None => return self.create(js, spec).await,
        };
        let target = match self.policy {
            ReplicaPolicy::Exactly(n) => n.max(1),
            // Never lower an object under `Prefer`.
            ReplicaPolicy::Prefer(n) => n.max(have),
        };
        let replicas = if reconcile && have != target {
            self.set_replicas(js, &name, have, target).await?
        } else {
            have
        };
        Ok((get(js, spec).await?, replicas))
    }

    /// Creates the object (another process may have created it meanwhile:
    /// then gets it).
    async fn create(
        &mut self,
        js: &jetstream::Context,
        spec: &Spec,
    ) -> Result<(Opened, usize), MeshError> {
        loop {
            let n = self.create_with;
            let created = match spec {
                Spec::Stream(c) => js
                    .create_stream(stream::Config {
                        num_replicas: n,
                        ..c.clone()
                    })
                    .await
                    .map(Opened::Stream)
                    .map_err(|e| refusal(&format!("stream {}", c.name), &e)),
                Spec::Bucket(c) => js
                    .create_key_value(kv::Config {
                        num_replicas: n,
                        ..c.clone()
                    })
                    .await
                    .map(Opened::Bucket)
                    .map_err(|e| refusal(&format!("KV bucket {}", c.bucket), &e)),
            };
            match created {
                Ok(o) => {
                    tracing::info!(stream = %spec.stream_name(), replicas = n, "created");
                    return Ok((o, n));
                }
                Err(Refusal::Placement(why)) => {
                    if let ReplicaPolicy::Prefer(_) = self.policy {
                        if n > 1 {
                            tracing::debug!(
                                wanted = n,
                                reason = %why,
                                "the NATS cluster cannot place the replicas asked for: creating with 1"
                            );
                            self.shortfall = Some(why);
                            self.create_with = 1;
                            continue;
                        }
                    }
                    return Err(MeshError::Invalid(format!(
                        "{why} (the NATS cluster cannot place {n} replicas: lower --nats-replicas or add servers)"
                    )));
                }
                Err(Refusal::Other(e)) => {
                    // Another process created it meanwhile: take theirs.
                    return match get(js, spec).await {
                        Ok(o) => {
                            let have = stream_replicas(&o);
                            Ok((o, have))
                        }
                        Err(_) => Err(e),
                    };
                }
            }
        }
    }

    /// Changes `num_replicas` of the existing stream `name` in place,
    /// nothing else; returns the count in force afterwards.
    async fn set_replicas(
        &mut self,
        js: &jetstream::Context,
        name: &str,
        have: usize,
        target: usize,
    ) -> Result<usize, MeshError> {
        // Re-read: the update carries the whole configuration back.
        let mut config = js
            .get_stream(name)
            .await
            .map_err(|e| MeshError::Unavailable(format!("stream {name}: {e}")))?
            .cached_info()
            .config
            .clone();
        config.num_replicas = target;
        match js.update_stream(&config).await {
            Ok(info) => {
                tracing::info!(stream = %name, from = have, to = target, "replicas changed");
                Ok(info.config.num_replicas.max(1))
            }
            Err(e) => match refusal(&format!("stream {name}"), &e) {
                Refusal::Placement(why) => {
                    tracing::debug!(
                        stream = %name,
                        replicas = have,
                        wanted = target,
                        reason = %why,
                        "the NATS cluster cannot place the replicas asked for; the stream keeps its count"
                    );
                    self.shortfall = Some(why);
                    Ok(have)
                }
                Refusal::Other(e) => Err(e),
            },
        }
    }
}

async fn get(js: &jetstream::Context, spec: &Spec) -> Result<Opened, MeshError> {
    match spec {
        Spec::Stream(c) => js
            .get_stream(&c.name)
            .await
            .map(Opened::Stream)
            .map_err(|e| MeshError::Unavailable(format!("stream {}: {e}", c.name))),
        Spec::Bucket(c) => js
            .get_key_value(c.bucket.clone())
            .await
            .map(Opened::Bucket)
            .map_err(|e| MeshError::Unavailable(format!("KV bucket {}: {e}", c.bucket))),
    }
}

fn stream_replicas(o: &Opened) -> usize {
    match o {
        Opened::Stream(s) => s.cached_info().config.num_replicas.max(1),
        Opened::Bucket(b) => b.stream.cached_info().config.num_replicas.max(1),
    }
}

/// The replication last reported, shared by the clones of a mesh.
#[derive(Debug, Default)]
pub(super) struct Reported(Mutex<Replication>);

impl Reported {
    pub(super) fn new(r: Replication) -> Reported {
        Reported(Mutex::new(r))
    }

    pub(super) fn get(&self) -> Replication {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub(super) fn set(&self, r: Replication) {
        if let Ok(mut g) = self.0.lock() {
            *g = r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(wanted: usize, counts: &[usize]) -> Replication {
        Replication {
            wanted,
            objects: counts
                .iter()
                .enumerate()
                .map(|(i, &replicas)| ObjectReplicas {
                    stream: format!("S{i}"),
                    replicas,
                })
                .collect(),
            shortfall: None,
        }
    }

    #[test]
    fn redundancy_needs_every_object_replicated() {
        assert!(rep(3, &[3, 3]).redundant());
        assert!(rep(3, &[3, 3]).at_target());
        assert!(!rep(3, &[3, 1]).redundant());
        assert!(!rep(3, &[3, 1]).at_target());
        assert!(!rep(3, &[]).redundant());
        let m = rep(3, &[3, 1]).render_metrics();
        assert!(
            m.contains("palisade_mesh_replicas{stream=\"S1\"} 1\n"),
            "{m}"
        );
        assert!(m.contains("palisade_mesh_redundant 0\n"), "{m}");
        assert!(m.contains("palisade_mesh_replicas_wanted 3\n"), "{m}");
    }

    #[test]
    fn the_wanted_count_is_at_least_one() {
        assert_eq!(ReplicaPolicy::Exactly(0).wanted(), 1);
        assert_eq!(ReplicaPolicy::Prefer(3).wanted(), 3);
    }
}
