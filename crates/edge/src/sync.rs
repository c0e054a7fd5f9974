//! Keeps an edge in step with the cluster through a [`Mesh`], and keeps it
//! protecting when the mesh is gone (fail-static).
//!
//! - **Decisions**: follows the decision log from the last sequence applied;
//!   each update is applied at most once, in order (`DecisionReplica`). When a
//!   subscription ends (bus down, error), it resubscribes from the last applied
//!   sequence, with backoff: snapshot + missed deltas, nothing lost, nothing twice.
//! - **Policy**: watches the cluster policy and swaps in each new version that
//!   compiles; an invalid version is logged and counted, the running one stays.
//! - **Persistence**: the policy in force is written to
//!   `DATA_DIR/edge-state.json` after every change; the decision table (with
//!   its log position) is kept as a snapshot plus an append-only log of the
//!   updates applied since (`crate::decision_files`), appended every 200 ms
//!   and compacted when the log outgrows the snapshot. Both are loaded at
//!   start, so an edge restarted while the bus is down enforces what it
//!   enforced before. (An `edge-state.json` that still holds the decisions,
//!   as older versions wrote it, is read once and rewritten.)
//! - **Heartbeats** every `heartbeat_interval`.
//! - **Learned statistics**: the WAF's positive model is shared and the
//!   fleet's merged, every `[waf.model] share_every` (`crate::model`).
//! - **Global rate limits**: count reports exchanged every 50 ms
//!   (`crate::globalrate`).
//! - **Events**: security events are written to the spool `DATA_DIR/spool`
//!   in groups (at most every 100 ms), then published to the mesh and
//!   released from the spool once acknowledged (`crate::spool`): a crash
//!   loses at most the last group; while the mesh is unreachable they wait
//!   on disk (bounded; oldest dropped only past the bound, counted in
//!   `palisade_events_dropped_total`) and are delivered in order when it
//!   returns, also after a restart.

use crate::decision_files::{self, DecisionFiles};
use crate::now_ms;
use crate::spool::Spool;
use crate::state::EdgeState;
use palisade_mesh::replica::{Applied, ReplicaSnapshot};
use palisade_mesh::{DecisionUpdate, Heartbeat, Mesh, MeshError, PolicyVersion};
use palisade_policy::{Policy, SecurityEvent};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An event publish slower than this counts as failed (sent again later).
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// How often the follow loops check that their subscription is still alive.
const WATCHDOG: Duration = Duration::from_secs(1);

/// How an edge joins the mesh.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Node id reported in heartbeats.
    pub node_id: String,
    /// Address the edge serves traffic on (reported in heartbeats).
    pub address: String,
    /// Where the fail-static state is kept.
    pub data_dir: PathBuf,
    /// Interval between heartbeats.
    pub heartbeat_interval: Duration,
    /// Bound of the on-disk event spool (`DATA_DIR/spool`), in bytes.
    pub spool_max_bytes: u64,
}

/// What an edge persists to survive restarts without the mesh.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Persisted {
    /// The cluster policy in force.
    pub policy: Option<PolicyVersion>,
    /// The decision table and its log position (read from the decision
    /// files; in `edge-state.json` only as older versions wrote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<ReplicaSnapshot>,
}

/// What [`read_persisted`] found in a data directory.
#[derive(Debug, Default)]
pub struct Restored {
    /// The cluster policy in force.
    pub policy: Option<PolicyVersion>,
    /// The decision table and its log position.
    pub decisions: Option<palisade_mesh::DecisionReplica>,
}

/// Updates applied but not yet appended to the decision log on disk.
#[derive(Default)]
struct Pending {
    updates: Vec<DecisionUpdate>,
    /// The table changed in a way the log cannot say (too many pending
    /// updates, a failed append, a full resync): write a snapshot.
    snapshot: bool,
}

/// Pending updates kept at most before a snapshot is asked for instead.
const MAX_PENDING: usize = 200_000;

fn state_file(data_dir: &Path) -> PathBuf {
    data_dir.join("edge-state.json")
}

/// The edge's security events as an async stream, for [`run`].
pub fn event_feed(
    state: &EdgeState,
) -> std::io::Result<tokio::sync::mpsc::Receiver<SecurityEvent>> {
    // As many events wait as before through the two queues and the thread
    // that bridged them; slots are allocated as events arrive (crate::events).
    let (tx, rx) = tokio::sync::mpsc::channel(8192);
    state.events.subscribe(tx);
    Ok(rx)
}

/// Reads the persisted state without applying it (`palisade up` replays it into its in-process mesh).
pub fn read_persisted(data_dir: &Path) -> Option<Restored> {
    let p: Persisted = match std::fs::read_to_string(state_file(data_dir)) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "persisted edge state unreadable, ignored");
                Persisted::default()
            }
        },
        Err(_) => Persisted::default(),
    };
    let mut decisions = None;
    if DecisionFiles::exist(data_dir) {
        match decision_files::load(data_dir) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                }
                decisions = loaded.replica;
            }
            Err(e) => tracing::error!("persisted decisions unreadable, ignored: {e}"),
        }
    } else if let Some(snap) = p.decisions {
        match palisade_mesh::DecisionReplica::restore(snap) {
            Ok(r) => decisions = Some(r),
            Err(e) => tracing::error!("persisted decisions unreadable, ignored: {e}"),
        }
    }
    let r = Restored {
        policy: p.policy,
        decisions,
    };
    (r.policy.is_some() || r.decisions.is_some()).then_some(r)
}

/// Loads the persisted state into `state`. Returns what was restored; a
/// missing file is not an error, a corrupt one is reported and ignored.
pub fn restore(state: &EdgeState, data_dir: &Path) -> Result<(Option<u64>, usize), String> {
    let path = state_file(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}".to_string(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let p: Persisted =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut version = None;
    if let Some(pv) = p.policy {
        match Policy::from_toml(&pv.source, &format!("policy v{}", pv.version)) {
            Ok(policy) => match state.set_cluster_policy(policy, pv.version) {
                Ok(()) => version = Some(pv.version),
                Err(e) => {
                    tracing::error!(
                        "persisted policy v{} cannot be applied, ignored: {e}",
                        pv.version
                    );
                    state.refuse_policy(pv.version, &e.to_string());
                }
            },
            Err(e) => tracing::error!(
                "persisted policy v{} does not compile, ignored:\n{e}",
                pv.version
            ),
        }
    }
    let mut n = 0;
    if DecisionFiles::exist(data_dir) {
        let loaded = decision_files::load(data_dir)?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        if let Some(replica) = loaded.replica {
            n = state.replace_decisions(replica);
        }
    } else if let Some(snap) = p.decisions {
        n = state
            .restore_decisions(snap)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok((version, n))
}

/// Writes the policy in force atomically (temporary file, then rename).
fn persist_policy(policy: &Option<PolicyVersion>, data_dir: &Path) -> std::io::Result<()> {
    let p = Persisted {
        policy: policy.clone(),
        decisions: None,
    };
    let path = state_file(data_dir);
    let tmp = data_dir.join(".edge-state.json.tmp");
    let bytes = serde_json::to_vec(&p).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

/// Exponential backoff from 100 ms to 2 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
}

/// Connects with `connect` (retrying with backoff) and then runs the sync
/// tasks forever. `events` receives the edge's security events.
pub async fn run<M, F, Fut>(
    state: Arc<EdgeState>,
    cfg: SyncConfig,
    connect: F,
    events: tokio::sync::mpsc::Receiver<SecurityEvent>,
) where
    M: Mesh,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<M, MeshError>>,
{
    let spool = match Spool::open(&cfg.data_dir.join("spool"), cfg.spool_max_bytes) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot open the event spool; events cannot be kept while the mesh is down");
            return;
        }
    };
    let spooled = Arc::new(tokio::sync::Notify::new());
    // Events go to the disk first, whether the mesh is up or not, written
    // by a thread of their own: on a busy runtime (`palisade up` runs the
    // control plane on the same one) the writer fell behind a burst and the
    // hand-off queue overflowed.
    {
        let (state, spool, spooled) = (state.clone(), spool.clone(), spooled.clone());
        let started = std::thread::Builder::new()
            .name("palisade-spool".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(spool_events(state, spool, events, spooled)),
                    Err(e) => tracing::error!(error = %e, "cannot start the event spool writer"),
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the event spool writer; events are not kept");
        }
    }
    let mut backoff = Backoff::new();
    let mesh = loop {
        match connect().await {
            Ok(m) => break Arc::new(m),
            Err(e) => {
                tracing::warn!(error = %e, "mesh unreachable; enforcing the persisted policy and decisions, retrying");
                backoff.wait().await;
            }
        }
    };
    tracing::info!(node = %cfg.node_id, "joined the mesh");
    let dirty = Arc::new(AtomicBool::new(false));
    let current_policy: Arc<parking_lot::Mutex<Option<PolicyVersion>>> =
        Arc::new(parking_lot::Mutex::new(
            std::fs::read_to_string(state_file(&cfg.data_dir))
                .ok()
                .and_then(|t| serde_json::from_str::<Persisted>(&t).ok())
                .and_then(|p| p.policy),
        ));

    let pending = Arc::new(parking_lot::Mutex::new(Pending {
        updates: Vec::new(),
        // follow_decisions asks for a snapshot once caught up with the log.
        snapshot: false,
    }));
    let decisions = tokio::spawn(follow_decisions(
        state.clone(),
        mesh.clone(),
        pending.clone(),
    ));
    let policy = tokio::spawn(follow_policy(
        state.clone(),
        mesh.clone(),
        dirty.clone(),
        current_policy.clone(),
    ));
    let heartbeat = tokio::spawn(heartbeats(state.clone(), mesh.clone(), cfg.clone()));
    let events = tokio::spawn(send_spooled(state.clone(), mesh.clone(), spool, spooled));
    let (esc_tx, esc_rx) = tokio::sync::mpsc::channel(1024);
    if state.escalation_tx.set(esc_tx).is_err() {
        tracing::debug!("escalation channel already set");
    }
    let escalations = tokio::spawn(publish_escalations(mesh.clone(), esc_rx));
    let model = tokio::spawn(crate::model::share(
        state.clone(),
        mesh.clone(),
        cfg.data_dir.clone(),
    ));
    let global_rate = tokio::spawn(crate::globalrate::exchange(
        state.clone(),
        mesh.clone(),
        crate::globalrate::ROUND,
    ));
    let floods = tokio::spawn(crate::flood::share(state.clone(), mesh.clone()));
    let bots = tokio::spawn(crate::bots::share::run(state.clone(), mesh.clone()));
    let persister = tokio::spawn(persist_loop(
        state.clone(),
        cfg.data_dir.clone(),
        dirty,
        current_policy,
        pending,
    ));
    let _ = tokio::join!(
        decisions,
        policy,
        heartbeat,
        events,
        escalations,
        model,
        floods,
        global_rate,
        bots,
        persister
    );
}

/// Reads `stream` (from sequence 0) into a fresh table until it reaches `head`.
async fn rebuild(
    stream: &mut palisade_mesh::DecisionStream,
    head: u64,
) -> Result<palisade_mesh::DecisionReplica, MeshError> {
    let mut fresh = palisade_mesh::DecisionReplica::new();
    while fresh.last_seq() < head {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(u))) => {
                fresh.apply(u);
            }
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => return Err(MeshError::Unavailable("decision stream ended".into())),
            Err(_) => {
                return Err(MeshError::Unavailable(
                    "the decision log stalled during a resync".into(),
                ))
            }
        }
    }
    Ok(fresh)
}

/// Every 200 ms: writes the policy when it changed, appends the applied
/// decision updates to the log, and compacts the log into a snapshot when due
/// (off the async threads: a snapshot of a large table takes a while).
async fn persist_loop(
    state: Arc<EdgeState>,
    dir: PathBuf,
    dirty: Arc<AtomicBool>,
    current_policy: Arc<parking_lot::Mutex<Option<PolicyVersion>>>,
    pending: Arc<parking_lot::Mutex<Pending>>,
) {
    let files = Arc::new(parking_lot::Mutex::new(DecisionFiles::open(&dir)));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let policy_dirty = dirty.swap(false, Ordering::AcqRel);
        let (updates, snapshot) = {
            let mut p = pending.lock();
            (
                std::mem::take(&mut p.updates),
                std::mem::take(&mut p.snapshot),
            )
        };
        if !policy_dirty && updates.is_empty() && !snapshot {
            continue;
        }
        let policy = current_policy.lock().clone();
        let (st, d, f) = (state.clone(), dir.clone(), files.clone());
        let done = tokio::task::spawn_blocking(move || {
            let mut files = f.lock();
            let policy_ok = !policy_dirty || persist_policy(&policy, &d).is_ok();
            let appended = files.append(&updates);
            let mut snapshot_ok = true;
            if snapshot || appended.is_err() || files.compaction_due() {
                let started = std::time::Instant::now();
                let copy = st.decisions_replica();
                match files.compact(&copy) {
                    Ok(()) => tracing::debug!(
                        decisions = copy.set().len(),
                        ms = started.elapsed().as_millis() as u64,
                        "decision snapshot written"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, dir = %d.display(), "could not write the decision snapshot");
                        snapshot_ok = false;
                    }
                }
            } else if let Err(e) = &appended {
                tracing::error!(error = %e, "could not append to the decision log");
            }
            (policy_ok, snapshot_ok)
        })
        .await;
        match done {
            Ok((policy_ok, snapshot_ok)) => {
                if !policy_ok {
                    tracing::error!(dir = %dir.display(), "could not persist the policy in force");
                    dirty.store(true, Ordering::Release);
                }
                if !snapshot_ok {
                    pending.lock().snapshot = true;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "persistence task failed");
                dirty.store(true, Ordering::Release);
                pending.lock().snapshot = true;
            }
        }
    }
}

async fn follow_decisions<M: Mesh>(
    state: Arc<EdgeState>,
    mesh: Arc<M>,
    pending: Arc<parking_lot::Mutex<Pending>>,
) {
    let mut backoff = Backoff::new();
    // A snapshot once caught up with the log for the first time: the log's
    // sequences may have restarted (`palisade up` replays its table into a
    // fresh in-process mesh), and a table resynced or migrated must be
    // written whole. Until then the old files stay, and updates are appended.
    let mut snapshot_at: Option<u64> = None;
    let mut snapshotted = false;
    loop {
        let mut from = state.decisions_seq();
        let bounds = async {
            Ok::<_, MeshError>((mesh.decisions_floor().await?, mesh.decisions_head().await?))
        };
        let bounds = bounds.await;
        if let Ok((_, head)) = &bounds {
            if !snapshotted {
                if from >= *head && *head > 0 {
                    // Nothing to catch up with (and nothing may arrive).
                    snapshotted = true;
                    pending.lock().snapshot = true;
                } else {
                    // An empty log (`palisade up` before its replay): after the first update.
                    snapshot_at.get_or_insert((*head).max(1));
                }
            }
        }
        let resync = match bounds {
            Ok((floor, head)) if palisade_mesh::must_resync(from, floor, head) => {
                tracing::warn!(last_seq = from, floor, head, "the decision log no longer holds what this edge missed; rebuilding the table from the whole log");
                from = 0;
                Some(head)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the decision log's bounds; retrying");
                backoff.wait().await;
                continue;
            }
        };
        match mesh.decisions_since(from).await {
            Ok(mut stream) => {
                if let Some(head) = resync {
                    // The old table keeps enforcing until the new one is complete.
                    match rebuild(&mut stream, head).await {
                        Ok(fresh) => {
                            let n = state.replace_decisions(fresh);
                            state.metrics.decision_resyncs.inc();
                            let mut p = pending.lock();
                            p.updates.clear();
                            p.snapshot = true;
                            tracing::info!(decisions = n, "decision table rebuilt from the log");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "decision resync failed; retrying");
                            backoff.wait().await;
                            continue;
                        }
                    }
                }
                backoff.reset();
                // Watchdog: a subscription can stall silently (e.g. its consumer
                // vanished with a server restart). If the log's head is ahead of us
                // and nothing arrived since the last check, resubscribe.
                let mut check = tokio::time::interval(WATCHDOG);
                check.tick().await;
                let mut seen_at_check = state.decisions_seq();
                loop {
                    tokio::select! {
                        item = stream.next() => match item {
                            Some(Ok(update)) => {
                                let seq = update.seq;
                                let logged = update.clone();
                                match state.apply_update(update) {
                                    Applied::Rejected(why) => tracing::warn!(seq, why, "decision update rejected"),
                                    Applied::Duplicate => {}
                                    _ => {
                                        let mut p = pending.lock();
                                        if p.updates.len() < MAX_PENDING && !p.snapshot {
                                            p.updates.push(logged);
                                        } else {
                                            p.updates.clear();
                                            p.snapshot = true;
                                        }
                                    }
                                }
                                if !snapshotted && snapshot_at.is_some_and(|h| seq >= h) {
                                    snapshotted = true;
                                    pending.lock().snapshot = true;
                                }
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "decision stream failed; resubscribing");
                                break;
                            }
                            None => break,
                        },
                        _ = check.tick() => {
                            let seq = state.decisions_seq();
                            if let Ok(head) = mesh.decisions_head().await {
                                if head > seq && seq == seen_at_check {
                                    tracing::warn!(head, seq, "decision stream stalled; resubscribing");
                                    break;
                                }
                            }
                            seen_at_check = seq;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, from, "cannot follow decisions; retrying"),
        }
        backoff.wait().await;
    }
}

async fn follow_policy<M: Mesh>(
    state: Arc<EdgeState>,
    mesh: Arc<M>,
    dirty: Arc<AtomicBool>,
    current: Arc<parking_lot::Mutex<Option<PolicyVersion>>>,
) {
    let mut backoff = Backoff::new();
    // The newest version that failed to compile (the watchdog must not rewatch for it forever).
    let failed: parking_lot::Mutex<Option<u64>> = parking_lot::Mutex::new(None);
    loop {
        match mesh.watch_policy().await {
            Ok(mut stream) => {
                backoff.reset();
                let mut check = tokio::time::interval(WATCHDOG);
                check.tick().await;
                loop {
                    let item = tokio::select! {
                        item = stream.next() => match item {
                            Some(item) => item,
                            None => break,
                        },
                        _ = check.tick() => {
                            // Watchdog: a newer version than ours means the watch stalled.
                            match mesh.current_policy().await {
                                Ok(Some(pv)) if Some(pv.version) > state.policy_version() && Some(pv.version) > *failed.lock() => {
                                    tracing::warn!(version = pv.version, "policy watch stalled; rewatching");
                                    break;
                                }
                                _ => continue,
                            }
                        }
                    };
                    match item {
                        Ok(pv) => {
                            if state.policy_version() >= Some(pv.version)
                                && state.policy().digest == pv.digest
                            {
                                continue;
                            }
                            let compiled =
                                Policy::from_toml(&pv.source, &format!("policy v{}", pv.version))
                                    .map_err(|e| e.to_string());
                            // Building a WAF reads and compiles CRS: off the async threads.
                            let applied = match compiled {
                                Ok(p) => {
                                    let rules = p.rules.len();
                                    let (st, version) = (state.clone(), pv.version);
                                    match tokio::task::spawn_blocking(move || {
                                        st.set_cluster_policy(p, version)
                                    })
                                    .await
                                    {
                                        Ok(Ok(())) => Ok(rules),
                                        Ok(Err(e)) => Err(e.to_string()),
                                        Err(e) => Err(format!("applying the policy: {e}")),
                                    }
                                }
                                Err(e) => Err(e),
                            };
                            match applied {
                                Ok(rules) => {
                                    state
                                        .metrics
                                        .policy_reloads
                                        .with_label_values(&["ok"])
                                        .inc();
                                    tracing::info!(version = pv.version, rules, author = %pv.author, "policy applied");
                                    *current.lock() = Some(pv);
                                    dirty.store(true, Ordering::Release);
                                }
                                Err(e) => {
                                    *failed.lock() = Some(pv.version);
                                    state.refuse_policy(pv.version, &e);
                                    state
                                        .metrics
                                        .policy_reloads
                                        .with_label_values(&["invalid"])
                                        .inc();
                                    tracing::error!(
                                        version = pv.version,
                                        "invalid policy version, keeping the running one:\n{e}"
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "policy watch failed; rewatching");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the policy; retrying"),
        }
        backoff.wait().await;
    }
}

/// Escalation and flood decisions published in one batch at most.
const ESCALATION_BATCH: usize = 256;

/// Publishes the decisions this node's escalations and floods issued,
/// retrying while the bus is down. Whatever queued up meanwhile goes in one
/// batch (publishes pipelined, not one acknowledgement at a time): a flood
/// from a hundred networks reaches the other nodes in one round trip.
async fn publish_escalations<M: Mesh>(
    mesh: Arc<M>,
    mut rx: tokio::sync::mpsc::Receiver<palisade_policy::Decision>,
) {
    let mut batch = Vec::with_capacity(ESCALATION_BATCH);
    while rx.recv_many(&mut batch, ESCALATION_BATCH).await > 0 {
        let mut ops: Vec<_> = batch
            .drain(..)
            .map(|decision| palisade_mesh::DecisionOp::Upsert { decision })
            .collect();
        let mut backoff = Backoff::new();
        loop {
            match mesh.publish_decisions(ops.clone()).await {
                Ok(seq) => {
                    tracing::info!(seq, n = ops.len(), "escalation decisions published");
                    break;
                }
                // One invalid op refuses the batch: publish the others alone.
                Err(MeshError::Invalid(e)) if ops.len() > 1 => {
                    tracing::warn!(error = %e, "an escalation decision is invalid; publishing one by one");
                    let mut failed = Vec::new();
                    for op in ops {
                        match mesh.publish_decisions(vec![op.clone()]).await {
                            Ok(_) => {}
                            Err(MeshError::Invalid(e)) => {
                                tracing::error!(error = %e, "escalation decision dropped: invalid");
                            }
                            Err(_) => failed.push(op),
                        }
                    }
                    // Those the bus did not take are retried.
                    ops = failed;
                    if ops.is_empty() {
                        break;
                    }
                    backoff.wait().await;
                }
                Err(MeshError::Invalid(e)) => {
                    tracing::error!(error = %e, "escalation decision dropped: invalid");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "escalation decisions not published; retrying");
                    backoff.wait().await;
                }
            }
        }
    }
}

async fn heartbeats<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>, cfg: SyncConfig) {
    let mut tick = tokio::time::interval(cfg.heartbeat_interval);
    loop {
        // Every interval, and at once when a policy version was applied or
        // refused (so `palisade policy apply` learns it quickly).
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.policy_changed.notified() => {}
        }
        let crs = state.waf().map(|w| w.waf.crs().clone());
        let hb = Heartbeat {
            policy_refused: state.policy_refused(),
            crs_version: crs.as_ref().and_then(|c| c.version.clone()),
            crs_digest: crs.map(|c| c.digest),
            node_id: cfg.node_id.clone(),
            address: cfg.address.clone(),
            policy_version: state.policy_version(),
            decisions: state.with_decisions(|d| d.len() as u64),
            decisions_seq: state.decisions_seq(),
            time_ms: now_ms(),
        };
        if let Err(e) = mesh.heartbeat(&hb).await {
            tracing::debug!(error = %e, "heartbeat not sent");
        }
    }
}

/// Events sent to the mesh in one group at most.
const SEND_BATCH: usize = 512;

/// Writes the edge's events to the spool in groups: everything that arrived
/// within [`spool::GROUP_WINDOW`] of a group's first event goes in one
/// write (off the request path), and `spooled` wakes the sender.
async fn spool_events(
    state: Arc<EdgeState>,
    spool: Arc<Spool>,
    mut rx: tokio::sync::mpsc::Receiver<SecurityEvent>,
    spooled: Arc<tokio::sync::Notify>,
) {
    let mut group = Vec::new();
    loop {
        let Some(first) = rx.recv().await else { break };
        group.push(first);
        let deadline = tokio::time::Instant::now() + crate::spool::GROUP_WINDOW;
        // Up to the window, or until the channel is quiet: a lone event is
        // written at once, a burst in groups.
        loop {
            while let Ok(ev) = rx.try_recv() {
                group.push(ev);
            }
            if group.len() >= SEND_BATCH {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => group.push(ev),
                Ok(None) | Err(_) => break,
            }
        }
        write_group(&state, &spool, &mut group);
        spooled.notify_one();
    }
    // The channel closed (shutdown): what is left is written and flushed.
    write_group(&state, &spool, &mut group);
    if let Err(e) = spool.sync() {
        tracing::error!(error = %e, "event spool could not be flushed");
    }
}

fn write_group(state: &EdgeState, spool: &Spool, group: &mut Vec<SecurityEvent>) {
    if group.is_empty() {
        return;
    }
    match spool.append(group) {
        Ok(dropped) => {
            if dropped > 0 {
                state.metrics.events_dropped.inc_by(dropped);
                tracing::warn!(dropped, "event spool full: oldest events dropped");
            }
        }
        Err(e) => {
            state.metrics.events_dropped.inc_by(group.len() as u64);
            tracing::error!(error = %e, events = group.len(), "events could not be spooled");
        }
    }
    group.clear();
    state
        .metrics
        .events_spooled_bytes
        .set(spool.backlog() as i64);
}

/// Sends the spooled events to the mesh in order, and moves the spool's
/// cursor past them once the mesh acknowledged them; retries with backoff
/// while the mesh is down.
async fn send_spooled<M: Mesh>(
    state: Arc<EdgeState>,
    mesh: Arc<M>,
    spool: Arc<Spool>,
    spooled: Arc<tokio::sync::Notify>,
) {
    let mut backoff = Backoff::new();
    let mut down = false;
    // Halved after a failure, doubled after a success: a group too large to
    // be acknowledged within the timeout (a slow bus) is never retried whole
    // forever.
    let mut batch = SEND_BATCH;
    loop {
        let (group, pos) = match spool.pending(batch) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "event spool unreadable; retrying");
                backoff.wait().await;
                continue;
            }
        };
        if group.is_empty() {
            // Skipped undecodable lines still move the cursor.
            if let Err(e) = spool.ack(pos) {
                tracing::error!(error = %e, "event spool cursor not saved");
            }
            state
                .metrics
                .events_spooled_bytes
                .set(spool.backlog() as i64);
            // Woken by the writer; the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(1), spooled.notified()).await;
            continue;
        }
        let timeout = PUBLISH_TIMEOUT * (1 + group.len() as u32 / 64);
        match tokio::time::timeout(timeout, mesh.publish_events(&group)).await {
            Ok(Ok(())) => {
                batch = (batch * 2).min(SEND_BATCH);
                if let Err(e) = spool.ack(pos) {
                    tracing::error!(error = %e, "event spool cursor not saved");
                }
                if down {
                    tracing::info!("mesh reachable again; spooled events delivered");
                    down = false;
                }
                backoff.reset();
            }
            failed => {
                batch = (batch / 2).max(1);
                if !down {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "publish timed out".into(),
                    };
                    tracing::warn!(%error, "mesh unreachable; events stay spooled on disk");
                    down = true;
                }
                backoff.wait().await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
