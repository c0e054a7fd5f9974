//! What the API operates on. `palisade up` serves decisions from its edge's
//! own table ([`Backend`] implemented in the binary); a cluster control plane
//! serves everything from the mesh ([`MeshBackend`]).

use crate::correlate::{CorrelationConfig, Correlator, IncidentKind, Observed};
use crate::policy_check::{check_waf, WafCheck};
use crate::store::{EventFilter, EventStore};
use async_trait::async_trait;
use palisade_mesh::replica::DecisionReplica;
use palisade_mesh::{DecisionOp, Heartbeat, Mesh, MeshError, PolicyVersion};
use palisade_policy::{Decision, Policy, PolicyErrors, SecurityEvent};
use palisade_waf::confine::RuleRoots;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// An invalid policy (400), with every error.
    #[error("invalid policy")]
    InvalidPolicy(PolicyErrors),
    /// A policy whose `[waf]` section names files outside the rule
    /// directories or does not compile (422), with every error.
    #[error("invalid [waf] section")]
    InvalidWaf(Vec<String>),
    /// Unknown id or version (404).
    #[error("{0}")]
    NotFound(String),
    /// The mesh is unreachable (503).
    #[error("{0}")]
    Unavailable(String),
    /// This deployment does not offer the call (501).
    #[error("{0}")]
    NotSupported(String),
    /// The decision table is full (507).
    #[error("{0}")]
    Full(String),
}

/// Decisions of a bulk import published per mesh batch.
const IMPORT_CHUNK: usize = 65_536;

/// Active decisions a cluster holds at most by default (`--max-decisions`).
pub const MAX_DECISIONS: usize = 1_000_000;

/// Whether a decision was made by the platform itself (escalations,
/// incidents, flood mitigation) rather than by an operator: these go first
/// when the table is full.
pub fn is_automatic(d: &Decision) -> bool {
    is_automatic_origin(&d.origin)
}

/// Whether a decision from `origin` was made by the platform itself ([`is_automatic`]).
pub fn is_automatic_origin(origin: &str) -> bool {
    ["escalation:", "incident:", "flood:"]
        .iter()
        .any(|p| origin.starts_with(p))
}

impl From<MeshError> for ApiError {
    fn from(e: MeshError) -> Self {
        match e {
            MeshError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// The operations behind the API.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Adds or replaces (same scope and value) a decision; `d.id` 0 asks for a new id.
    async fn add_decision(&self, d: Decision) -> Result<Decision, ApiError>;
    /// Every active decision.
    async fn list_decisions(&self) -> Result<Vec<Decision>, ApiError>;
    /// Deletes one.
    async fn delete_decision(&self, id: u64) -> Result<Option<Decision>, ApiError>;
    /// Adds or replaces many decisions at once (a bulk import; ids 0 get new
    /// ids) and returns the decision-log sequence of the last. Refused whole
    /// (nothing written) when they would not fit under the cap.
    async fn import_decisions(&self, _ds: Vec<Decision>) -> Result<u64, ApiError> {
        Err(ApiError::NotSupported(
            "bulk import is not offered by this deployment".into(),
        ))
    }
    /// Validates and stores a new policy version.
    async fn put_policy(&self, _source: String, _author: String) -> Result<StoredPolicy, ApiError> {
        Err(not_clustered())
    }
    /// The current policy version.
    async fn current_policy(&self) -> Result<Option<PolicyVersion>, ApiError> {
        Err(not_clustered())
    }
    /// Every stored version, oldest first.
    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, ApiError> {
        Err(not_clustered())
    }
    /// The latest state of the learned statistic `name` of each node
    /// (`Mesh::stats`).
    async fn stats(&self, _name: &str) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        Err(not_clustered())
    }
    /// The `[waf.model]` settings in force: the current policy version's
    /// (None: no version, or no `[waf]` section).
    async fn model_settings(&self) -> Option<palisade_policy::learn::model::ModelSettings> {
        model_settings_of(self.current_policy().await.ok()??)
    }
    /// The nodes that sent heartbeats.
    async fn nodes(&self) -> Result<Vec<Heartbeat>, ApiError> {
        Err(not_clustered())
    }
    /// The challenge keys (ids and times, no secret).
    async fn keys(&self, _now_ms: u64) -> Result<Vec<crate::keys::KeyView>, ApiError> {
        Err(not_clustered())
    }
    /// Rotates the challenge keys now.
    async fn rotate_keys(&self, _now_ms: u64) -> Result<Vec<crate::keys::KeyView>, ApiError> {
        Err(not_clustered())
    }
    /// Incidents, newest first.
    async fn incidents(&self, _limit: u32) -> Result<Vec<serde_json::Value>, ApiError> {
        Err(ApiError::NotSupported(
            "incidents are kept by `palisade control`".into(),
        ))
    }
    /// Stored security events, newest first.
    async fn events(&self, _filter: EventFilter) -> Result<Vec<SecurityEvent>, ApiError> {
        Err(ApiError::NotSupported(
            "events are stored by `palisade control`; this node writes them to its event log"
                .into(),
        ))
    }
}

fn not_clustered() -> ApiError {
    ApiError::NotSupported(
        "this node runs a local policy file (palisade up --policy); policy versions and nodes are served by `palisade control`".into(),
    )
}

/// A policy version as stored, and what the control plane could not check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredPolicy {
    #[serde(flatten)]
    pub version: PolicyVersion,
    /// E.g. the `[waf]` rules were not compiled here (not on this machine).
    pub warnings: Vec<String>,
}

/// Validates a policy source; every error is returned.
pub fn validate_policy(source: &str) -> Result<Policy, ApiError> {
    Policy::from_toml(source, "policy").map_err(ApiError::InvalidPolicy)
}

/// The control plane over a mesh: decisions are ops in the mesh's log,
/// policy versions live in the mesh, nodes are its heartbeats. Several
/// control planes may serve side by side against the same mesh.
pub struct MeshBackend<M: Mesh> {
    mesh: Arc<M>,
    /// The control plane's own view of the decision log (caught up on read).
    replica: tokio::sync::Mutex<DecisionReplica>,
    next_id: AtomicU64,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    events: Option<Arc<EventStore>>,
    /// In `palisade up`: the decision-log position the local edge has applied.
    local_edge: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
    /// Set when policy versions are not taken (a local policy file rules).
    policy_read_only: Option<String>,
    /// Where policy versions are archived (embedded mode).
    policy_archive: Option<Arc<EventStore>>,
    /// In `palisade up` with a policy file: the `[waf.model]` settings in force.
    local_model_settings: Option<ModelSettingsFn>,
    /// Where the files a policy version's `[waf]` names must be.
    rule_roots: RuleRoots,
    /// Active decisions held at most ([`MAX_DECISIONS`]).
    max_decisions: usize,
}

/// The `[waf.model]` settings of a policy version (None: no `[waf]`, or it
/// does not parse).
fn model_settings_of(v: PolicyVersion) -> Option<palisade_policy::learn::model::ModelSettings> {
    Policy::from_toml(&v.source, "policy")
        .ok()?
        .waf
        .map(|w| w.model)
}

/// Reads the `[waf.model]` settings in force (None: no `[waf]` section).
pub type ModelSettingsFn =
    Arc<dyn Fn() -> Option<palisade_policy::learn::model::ModelSettings> + Send + Sync>;

impl<M: Mesh> MeshBackend<M> {
    /// A backend over `mesh`.
    pub fn new(mesh: Arc<M>, clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        // Ids unique across control planes: the clock in the high bits, a counter below,
        // kept under 2^53 so JSON clients read them exactly.
        let seed = (clock() & 0x1f_ffff_ffff) << 16 | u64::from(std::process::id() & 0xff) << 8;
        MeshBackend {
            mesh,
            replica: tokio::sync::Mutex::new(DecisionReplica::new()),
            next_id: AtomicU64::new(seed),
            clock,
            events: None,
            local_edge: None,
            policy_read_only: None,
            policy_archive: None,
            local_model_settings: None,
            rule_roots: RuleRoots::default(),
            max_decisions: MAX_DECISIONS,
        }
    }

    /// Holds at most `max` active decisions (at least 1): when the table is
    /// full, an operator's new decision evicts the oldest automatic one, and
    /// is refused (507) when there is none.
    pub fn with_max_decisions(mut self, max: usize) -> Self {
        self.max_decisions = max.max(1);
        self
    }

    /// Judges the positive model with the settings `settings` reads (the
    /// local edge's policy file) instead of the cluster's current version.
    pub fn with_local_model_settings(mut self, settings: ModelSettingsFn) -> Self {
        self.local_model_settings = Some(settings);
        self
    }

    /// The directories whose files a policy version's `[waf]` may name
    /// (default: [`RuleRoots::default`]); the edges should have the same.
    pub fn with_rule_roots(mut self, roots: RuleRoots) -> Self {
        self.rule_roots = roots;
        self
    }

    /// Archives every stored policy version in `store` (the in-process mesh forgets them on restart).
    pub fn with_policy_archive(mut self, store: Arc<EventStore>) -> Self {
        self.policy_archive = Some(store);
        self
    }

    /// Makes decision writes return only once the local edge applied them
    /// (`applied` reports its decision-log position), so they hold from the next request.
    pub fn with_local_edge(mut self, applied: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        self.local_edge = Some(applied);
        self
    }

    /// Refuses policy writes with `reason` (a local policy file is the source of truth).
    pub fn with_policy_read_only(mut self, reason: impl Into<String>) -> Self {
        self.policy_read_only = Some(reason.into());
        self
    }

    /// Waits (at most 2 s) until the local edge, if any, applied `seq`.
    async fn wait_local(&self, seq: u64) {
        let Some(applied) = &self.local_edge else {
            return;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while applied() < seq && tokio::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        if applied() < seq {
            tracing::warn!(seq, "the local edge has not applied the decision yet");
        }
    }

    /// Serves `GET /events` from `store`.
    pub fn with_events(mut self, store: Arc<EventStore>) -> Self {
        self.events = Some(store);
        self
    }

    /// Catches the local replica up with the head of the log (read-your-writes).
    async fn catch_up(&self) -> Result<tokio::sync::MutexGuard<'_, DecisionReplica>, ApiError> {
        let head = self.mesh.decisions_head().await?;
        let floor = self.mesh.decisions_floor().await?;
        let mut replica = self.replica.lock().await;
        if palisade_mesh::must_resync(replica.last_seq(), floor, head) {
            // The log dropped deletes this view has not seen (or restarted): rebuild it.
            tracing::info!(
                last_seq = replica.last_seq(),
                floor,
                head,
                "rebuilding the decision view from the log"
            );
            *replica = DecisionReplica::new();
        }
        if replica.last_seq() >= head {
            return Ok(replica);
        }
        let mut stream = self.mesh.decisions_since(replica.last_seq()).await?;
        while replica.last_seq() < head {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(u))) => {
                    replica.apply(u);
                }
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(None) | Err(_) => {
                    return Err(ApiError::Unavailable(
                        "the decision log did not catch up in time".into(),
                    ))
                }
            }
        }
        Ok(replica)
    }
}

#[async_trait]
impl<M: Mesh> Backend for MeshBackend<M> {
    async fn add_decision(&self, mut d: Decision) -> Result<Decision, ApiError> {
        if d.id == 0 {
            d.id = self.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << 53) - 1);
        }
        // The table's cap: a new key when full evicts the oldest automatic
        // decision, or is refused.
        let evict = {
            let now = (self.clock)();
            let replica = self.catch_up().await?;
            let set = replica.set();
            let replaces = set.get_key(d.scope, &d.value).is_some();
            // Under the cap even counting expired entries, or replacing a
            // key: nothing to count (a scan of the whole table per write
            // at blocklist scale).
            let may_be_full = !replaces && set.len() >= self.max_decisions;
            let mut count = 0usize;
            let mut oldest_auto: Option<palisade_policy::DecisionRef<'_>> = None;
            if may_be_full {
                for dd in set
                    .iter()
                    .filter(|dd| dd.expires_at.is_none_or(|e| e > now))
                {
                    count += 1;
                    if is_automatic_origin(dd.origin)
                        && oldest_auto.is_none_or(|o| dd.created_at < o.created_at)
                    {
                        oldest_auto = Some(dd);
                    }
                }
            }
            if !may_be_full || count < self.max_decisions {
                None
            } else if let Some(o) = oldest_auto.filter(|_| !is_automatic(&d)) {
                Some((o.scope, o.value()))
            } else {
                return Err(ApiError::Full(format!(
                    "the decision table is full ({count} active decisions, the most this cluster holds; --max-decisions): delete some, let automatic ones expire, or raise the cap"
                )));
            }
        };
        if let Some((scope, value)) = evict {
            self.mesh
                .publish_decision(DecisionOp::Delete {
                    scope,
                    value: value.clone(),
                })
                .await?;
            tracing::info!(%value, "decision table full: the oldest automatic decision evicted");
        }
        let seq = self
            .mesh
            .publish_decision(DecisionOp::Upsert {
                decision: d.clone(),
            })
            .await?;
        self.wait_local(seq).await;
        let mut replica = self.replica.lock().await;
        if replica.last_seq() + 1 == seq {
            // Nothing was written between what this view has seen and this
            // op (sequences are contiguous): the op is the log at `seq`.
            // Saves reading it back (in a cluster, creating a consumer).
            replica.apply(palisade_mesh::DecisionUpdate {
                seq,
                op: DecisionOp::Upsert {
                    decision: d.clone(),
                },
            });
        } else {
            drop(replica);
            replica = self.catch_up().await?;
        }
        let stored = replica
            .set()
            .get_key(d.scope, &d.value)
            .map(|x| x.to_decision());
        drop(replica);
        Ok(stored.unwrap_or_else(|| {
            tracing::debug!(seq, "decision not in the replica after catch-up");
            d
        }))
    }

    async fn list_decisions(&self) -> Result<Vec<Decision>, ApiError> {
        let now = (self.clock)();
        let replica = self.catch_up().await?;
        let mut out: Vec<Decision> = replica
            .set()
            .iter()
            .filter(|d| d.expires_at.is_none_or(|e| e > now))
            .map(|d| d.to_decision())
            .collect();
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    async fn import_decisions(&self, mut ds: Vec<Decision>) -> Result<u64, ApiError> {
        if ds.is_empty() {
            return Ok(self.mesh.decisions_head().await?);
        }
        {
            let now = (self.clock)();
            let replica = self.catch_up().await?;
            let set = replica.set();
            let active = set
                .iter()
                .filter(|d| d.expires_at.is_none_or(|e| e > now))
                .count();
            let new_keys = ds
                .iter()
                .filter(|d| set.get_key(d.scope, &d.value).is_none())
                .count();
            if active + new_keys > self.max_decisions {
                return Err(ApiError::Full(format!(
                    "the import adds {new_keys} decisions to {active} active ones, more than this cluster holds ({}; --max-decisions): nothing was imported",
                    self.max_decisions
                )));
            }
        }
        for d in &mut ds {
            if d.id == 0 {
                d.id = self.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << 53) - 1);
            }
        }
        let mut seq = 0;
        let mut ops = ds
            .into_iter()
            .map(|decision| DecisionOp::Upsert { decision });
        loop {
            let chunk: Vec<DecisionOp> = ops.by_ref().take(IMPORT_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            seq = self.mesh.publish_decisions(chunk).await?;
        }
        self.wait_local(seq).await;
        Ok(seq)
    }

    async fn delete_decision(&self, id: u64) -> Result<Option<Decision>, ApiError> {
        let found = self
            .catch_up()
            .await?
            .set()
            .get(id)
            .map(|d| d.to_decision());
        let Some(d) = found else { return Ok(None) };
        let seq = self
            .mesh
            .publish_decision(DecisionOp::Delete {
                scope: d.scope,
                value: d.value.clone(),
            })
            .await?;
        self.wait_local(seq).await;
        Ok(Some(d))
    }

    async fn put_policy(&self, source: String, author: String) -> Result<StoredPolicy, ApiError> {
        if let Some(reason) = &self.policy_read_only {
            return Err(ApiError::NotSupported(reason.clone()));
        }
        let policy = validate_policy(&source)?;
        // The [waf] section as an edge loads it (reads and compiles CRS).
        let roots = self.rule_roots.clone();
        let waf = policy.waf.clone();
        let warnings =
            match tokio::task::spawn_blocking(move || check_waf(waf.as_ref(), &roots)).await {
                Ok(WafCheck::Stored { warnings }) => warnings,
                Ok(WafCheck::Invalid(errors)) => return Err(ApiError::InvalidWaf(errors)),
                Err(e) => {
                    return Err(ApiError::Unavailable(format!(
                        "checking the [waf] section: {e}"
                    )))
                }
            };
        let v = self.mesh.put_policy(source, policy.digest, author).await?;
        if let Some(store) = &self.policy_archive {
            let (store, saved) = (store.clone(), v.clone());
            match tokio::task::spawn_blocking(move || store.save_policy_version(&saved)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "policy version not archived"),
                Err(e) => tracing::error!(error = %e, "policy archive task failed"),
            }
        }
        Ok(StoredPolicy {
            version: v,
            warnings,
        })
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, ApiError> {
        Ok(self.mesh.current_policy().await?)
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, ApiError> {
        Ok(self.mesh.policy_history().await?)
    }

    async fn nodes(&self) -> Result<Vec<Heartbeat>, ApiError> {
        Ok(self.mesh.nodes().await?)
    }

    async fn stats(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        Ok(self.mesh.stats(name).await?)
    }

    async fn keys(&self, now_ms: u64) -> Result<Vec<crate::keys::KeyView>, ApiError> {
        // Read only (a viewer may call it): the control plane makes the ring.
        Ok(crate::keys::read(&*self.mesh)
            .await?
            .map(|ring| crate::keys::view(&ring, now_ms))
            .unwrap_or_default())
    }

    async fn rotate_keys(&self, now_ms: u64) -> Result<Vec<crate::keys::KeyView>, ApiError> {
        let ring = crate::keys::rotate(&*self.mesh, now_ms, crate::keys::DEFAULT_KEEP_FOR).await?;
        Ok(crate::keys::view(&ring, now_ms))
    }

    async fn model_settings(&self) -> Option<palisade_policy::learn::model::ModelSettings> {
        if let Some(local) = &self.local_model_settings {
            return local();
        }
        model_settings_of(self.current_policy().await.ok()??)
    }

    async fn incidents(&self, limit: u32) -> Result<Vec<serde_json::Value>, ApiError> {
        let Some(store) = &self.events else {
            return Err(ApiError::NotSupported(
                "this control plane stores no incidents".into(),
            ));
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.incidents(limit))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))
    }

    async fn events(&self, filter: EventFilter) -> Result<Vec<SecurityEvent>, ApiError> {
        let Some(store) = &self.events else {
            return Err(ApiError::NotSupported(
                "this control plane stores no events".into(),
            ));
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.query(&filter))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))
    }
}

/// Stores an incident that opened or grew; a source incident can ban the source cluster-wide.
/// Prunes the store to `retention` every `every`, off the async threads,
/// logging what it deleted and any failure. Runs until the process ends.
pub async fn prune_store(
    store: Arc<EventStore>,
    retention: crate::store::Retention,
    every: Duration,
    now_ms: fn() -> u64,
) {
    loop {
        let st = store.clone();
        let r = retention.clone();
        match tokio::task::spawn_blocking(move || st.prune(now_ms(), &r)).await {
            Ok(Ok((events, incidents))) => {
                if events + incidents > 0 {
                    tracing::info!(events, incidents, "store pruned (retention)");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "store pruning failed; retrying"),
            Err(e) => tracing::warn!(error = %e, "store pruning task failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Incidents the control plane has stored, by pattern and key: (incident
/// id, last block).
type OpenIncidents = std::collections::HashMap<(IncidentKind, String), (u64, u64)>;

/// Forgets incidents quiet for a window (the correlator has closed them:
/// the next block opens a new one) once more than
/// [`crate::correlate::MAX_TRACKS`] are held: keys are client addresses.
fn prune_open(open: &mut OpenIncidents, now: u64, window_ms: u64) {
    if open.len() > crate::correlate::MAX_TRACKS {
        open.retain(|_, (_, last)| last.saturating_add(window_ms) > now);
    }
}

/// Bans issued for incidents (`palisade control --incident-ban`): how long
/// they last, and the backend that writes them, which applies the decision
/// table's cap (`--max-decisions`) as it does to any automatic decision.
#[derive(Clone)]
pub struct IncidentBans {
    /// Lifetime of each ban.
    pub duration_ms: u64,
    /// Writes them (refuses them when the table is full).
    pub backend: Arc<dyn Backend>,
}

async fn handle_incident(
    store: &Arc<EventStore>,
    open: &mut OpenIncidents,
    o: Observed,
    bans: Option<&IncidentBans>,
) {
    match o {
        Observed::Opened(inc) => {
            let id = match store.open_incident(&inc) {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(error = %e, "incident not stored");
                    return;
                }
            };
            tracing::warn!(id, kind = ?inc.kind, key = %inc.key, nodes = inc.nodes.len(), "incident opened");
            open.insert((inc.kind, inc.key.clone()), (id, inc.last_ms));
            if let (IncidentKind::SourceAcrossNodes, Some(bans)) = (inc.kind, bans) {
                let ms = bans.duration_ms;
                let d = Decision {
                    // Unique across control planes: the incident time and id.
                    id: ((inc.last_ms << 12) | (id & 0xfff)) & ((1 << 53) - 1),
                    scope: palisade_policy::Scope::Ip,
                    value: inc.key.clone(),
                    action: palisade_policy::DecisionAction::Ban,
                    reason: format!("incident {id}: blocked on {} nodes", inc.nodes.len()),
                    origin: format!("incident:{id}"),
                    simulated: false,
                    created_at: inc.last_ms,
                    expires_at: Some(inc.last_ms.saturating_add(ms)),
                };
                match bans.backend.add_decision(d).await {
                    Ok(_) => {}
                    Err(ApiError::Full(msg)) => {
                        tracing::warn!(incident = id, %msg, "decision table full: incident ban not issued")
                    }
                    Err(e) => tracing::error!(error = ?e, "incident decision not published"),
                }
            }
        }
        Observed::Updated(inc) => {
            if let Some((id, last)) = open.get_mut(&(inc.kind, inc.key.clone())) {
                *last = inc.last_ms;
                if let Err(e) = store.update_incident(*id, &inc) {
                    tracing::error!(error = %e, "incident not updated");
                }
            }
        }
    }
}

/// Events stored in one transaction at most.
const INGEST_BATCH: usize = 1024;

/// Stores, correlates and acknowledges a batch of delivered events (none is
/// acknowledged when the batch could not be stored: all are redelivered).
async fn ingest_batch(
    batch: Vec<palisade_mesh::EventDelivery>,
    store: &Arc<EventStore>,
    correlator: &mut Correlator,
    open: &mut OpenIncidents,
    incident_bans: Option<&IncidentBans>,
    window_ms: u64,
) {
    if batch.is_empty() {
        return;
    }
    // Stored and correlated bounded, whatever the bus delivered
    // (MAX_EVENT_BYTES).
    let events: Vec<SecurityEvent> = batch
        .iter()
        .map(|d| {
            let mut ev = d.event.clone();
            ev.bound();
            ev
        })
        .collect();
    let st = store.clone();
    let (events, stored) = match tokio::task::spawn_blocking(move || {
        let r = st.insert_batch(&events);
        (events, r)
    })
    .await
    {
        Ok((events, Ok(new))) => (events, new),
        Ok((_, Err(e))) => {
            tracing::error!(error = %e, events = batch.len(), "events not stored; they will be redelivered");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "event store task failed");
            return;
        }
    };
    for ((delivery, ev), new) in batch.into_iter().zip(&events).zip(stored) {
        if new {
            for o in correlator.observe(ev) {
                handle_incident(store, open, o, incident_bans).await;
            }
            prune_open(open, ev.time_ms, window_ms);
        }
        if let Err(e) = delivery.ack().await {
            tracing::debug!(error = %e, "event ack failed; it will be redelivered");
        }
    }
}

/// Consumes the mesh's security events durably (consumer `durable`) into
/// `store`, acknowledging each after it is stored
/// (what is queued is stored in batches of up to [`INGEST_BATCH`]). Runs until the process ends;
/// resubscribes with backoff when the bus goes away.
pub async fn ingest_events<M: Mesh>(
    mesh: Arc<M>,
    store: Arc<EventStore>,
    durable: String,
    correlation: CorrelationConfig,
    incident_bans: Option<IncidentBans>,
) {
    let window_ms = correlation.window_ms;
    let mut correlator = Correlator::new(correlation);
    let mut open = OpenIncidents::new();
    let mut delay = Duration::from_millis(100);
    loop {
        match mesh.consume_events(&durable).await {
            Ok(mut stream) => {
                delay = Duration::from_millis(100);
                // A subscription can stall silently across a bus restart; an idle
                // one is cheap to renew (the durable consumer keeps its position).
                while let Ok(Some(item)) =
                    tokio::time::timeout(Duration::from_secs(5), stream.next()).await
                {
                    // What is already queued is stored in the same transaction.
                    let mut batch = Vec::new();
                    let mut failed = None;
                    let mut next = Some(item);
                    while let Some(item) = next.take() {
                        match item {
                            Ok(delivery) => batch.push(delivery),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                        if batch.len() < INGEST_BATCH {
                            next = stream.try_next();
                        }
                    }
                    ingest_batch(
                        batch,
                        &store,
                        &mut correlator,
                        &mut open,
                        incident_bans.as_ref(),
                        window_ms,
                    )
                    .await;
                    if let Some(e) = failed {
                        tracing::warn!(error = %e, "event stream failed; resubscribing");
                        break;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot consume events; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog is stored in batches, every event once, each acknowledged
    /// (the in-process log empties) and correlated (an incident opens).
    #[tokio::test]
    async fn a_backlog_is_stored_in_batches_and_correlated() {
        use palisade_policy::CheckKind;
        let mesh = Arc::new(palisade_mesh::MemoryMesh::new().with_interest_retention());
        let ev = |i: u64, node: &str| SecurityEvent {
            time_ms: 1_000 + i,
            node: node.into(),
            request_id: format!("req-{i}"),
            client_ip: std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]),
            check: CheckKind::Rule,
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
        // More than a batch, queued before the consumer starts, plus a
        // redelivered one; the last three on three nodes: a rule incident.
        let n = INGEST_BATCH as u64 * 3 + 7;
        for i in 0..n {
            mesh.publish_event(&ev(i, "n1")).await.unwrap();
        }
        mesh.publish_event(&ev(0, "n1")).await.unwrap();
        mesh.publish_event(&ev(n, "n2")).await.unwrap();
        mesh.publish_event(&ev(n + 1, "n3")).await.unwrap();
        let store = Arc::new(EventStore::in_memory().unwrap());
        let task = tokio::spawn(ingest_events(
            mesh.clone(),
            store.clone(),
            "c".into(),
            CorrelationConfig::default(),
            None,
        ));
        for _ in 0..2_000 {
            if mesh.events_retained() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        assert_eq!(mesh.events_retained(), 0, "every event acknowledged");
        assert_eq!(store.count().unwrap(), n + 2, "each stored once");
        let incidents = store.incidents(10).unwrap();
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(incidents[0]["kind"], "rule_across_nodes", "{incidents:?}");
    }

    #[test]
    fn open_incidents_are_forgotten_once_quiet_past_the_cap() {
        let mut open = OpenIncidents::new();
        let cap = crate::correlate::MAX_TRACKS;
        for i in 0..=cap as u64 {
            open.insert((IncidentKind::SourceAcrossNodes, i.to_string()), (i, i));
        }
        open.insert((IncidentKind::RuleAcrossNodes, "r".into()), (0, 500_000));
        prune_open(&mut open, 500_000, 60_000);
        assert_eq!(open.len(), 1, "only the recent one stays");
        // Under the cap nothing is scanned.
        open.insert((IncidentKind::SourceAcrossNodes, "x".into()), (1, 1));
        prune_open(&mut open, 10_000_000, 60_000);
        assert_eq!(open.len(), 2);
    }

    #[tokio::test]
    async fn a_full_decision_table_evicts_automatic_decisions_then_refuses() {
        use palisade_policy::{DecisionAction, Scope};
        let mesh = Arc::new(palisade_mesh::MemoryMesh::new());
        let b = MeshBackend::new(mesh, Arc::new(|| 1_000)).with_max_decisions(3);
        let d = |value: &str, origin: &str, created_at: u64| Decision {
            id: 0,
            scope: Scope::Ip,
            value: value.into(),
            action: DecisionAction::Ban,
            reason: String::new(),
            origin: origin.into(),
            simulated: false,
            created_at,
            expires_at: Some(1_000_000),
        };
        b.add_decision(d("192.0.2.1", "api:admin", 1))
            .await
            .unwrap();
        b.add_decision(d("192.0.2.2", "escalation:x", 2))
            .await
            .unwrap();
        b.add_decision(d("192.0.2.3", "incident:9", 3))
            .await
            .unwrap();
        // Full: an automatic decision is refused, an operator's evicts the
        // oldest automatic one.
        let e = b
            .add_decision(d("192.0.2.4", "escalation:y", 4))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Full(_)), "{e}");
        b.add_decision(d("192.0.2.5", "api:operator", 5))
            .await
            .unwrap();
        let values = |l: Vec<Decision>| l.into_iter().map(|d| d.value).collect::<Vec<_>>();
        let mut now = values(b.list_decisions().await.unwrap());
        now.sort();
        assert_eq!(now, ["192.0.2.1", "192.0.2.3", "192.0.2.5"]);
        b.add_decision(d("192.0.2.6", "api:operator", 6))
            .await
            .unwrap();
        let e = b
            .add_decision(d("192.0.2.7", "api:operator", 7))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("full"), "{e}");
        // Replacing a decision (same key) is not a new entry.
        b.add_decision(d("192.0.2.1", "api:admin", 8))
            .await
            .unwrap();
        assert_eq!(b.list_decisions().await.unwrap().len(), 3);
    }
}
