//! The live state of an edge that the request path reads: the policy snapshot
//! and the WAF built from it (swapped on reload; a policy whose WAF does not
//! build is refused as a whole), the decision table, the rate-limit counters,
//! and the shared services (GeoIP, metrics, events).

use crate::budget::Budget;
use crate::client_ip::TrustedProxies;
use crate::config::Limits;
use crate::events::EventSink;
use crate::geoip::GeoIp;
use crate::metrics::Metrics;
use crate::request_id::RequestIds;
use crate::waf::ActiveWaf;
use arc_swap::{ArcSwap, ArcSwapOption};
use palisade_mesh::replica::{Applied, DecisionReplica, ReplicaSnapshot};
use palisade_mesh::{DecisionUpdate, PolicyRefusal};
use palisade_policy::decisions::{DecisionAction, DecisionError};
use palisade_policy::ratelimit::global::GlobalLimiter;
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::{Decision, DecisionSet, Policy};
use palisade_waf::confine::RuleRoots;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a policy was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The policy's `[waf]` section names rule files that do not load.
    #[error("[waf]: {0}")]
    Waf(#[from] palisade_waf::WafError),
    /// The policy's `[bots]` section names range files that do not load.
    #[error(transparent)]
    Bots(#[from] crate::bots::BotsApplyError),
    /// A pushed policy names files outside the rule directories.
    #[error("{}", .0.join("\n"))]
    Confined(Vec<String>),
}

/// Shared by every worker thread of one edge.
pub struct EdgeState {
    /// This node's id.
    pub node_id: String,
    policy: ArcSwap<Policy>,
    /// The WAF built from `policy.waf` (None: no `[waf]` section).
    waf: ArcSwapOption<ActiveWaf>,
    /// Serializes policy changes (a WAF build takes a while).
    apply_lock: parking_lot::Mutex<()>,
    decisions: RwLock<DecisionReplica>,
    /// Version of the cluster policy in force (0: none from the mesh).
    policy_version: AtomicU64,
    next_decision_id: AtomicU64,
    /// Rate-limit counters.
    pub limiter: RateLimiter,
    /// Counters of `scope = "global"` limits, shared with the mesh by
    /// `crate::globalrate` (as many keys as `limiter`).
    pub global_limiter: GlobalLimiter,
    /// GeoIP databases, when configured.
    pub geo: Option<GeoIp>,
    /// Metrics.
    pub metrics: Metrics,
    /// Security event output.
    pub events: EventSink,
    /// Who may set the client address through `X-Forwarded-For`.
    pub trusted: TrustedProxies,
    /// Input limits.
    pub limits: Limits,
    /// The cap on request body bytes held back for inspection.
    pub request_budget: Budget,
    /// The cap on response body bytes held back for inspection.
    pub response_budget: Budget,
    /// Request id generator.
    pub ids: RequestIds,
    /// Block counters of the policy's escalations.
    pub escalations: palisade_policy::escalation::EscalationTracker,
    /// Counters and baselines of the policy's floods.
    pub floods: palisade_policy::flood::FloodDetector,
    /// Where decisions issued by escalations go besides this node's table (the mesh).
    pub escalation_tx: std::sync::OnceLock<tokio::sync::mpsc::Sender<Decision>>,
    /// The WAF's positive model: this node's and the fleet's.
    pub model: crate::model::ModelState,
    /// Where the files a cluster policy version names must be.
    rule_roots: RuleRoots,
    /// The newest cluster policy version this node refused, and why.
    refused: parking_lot::Mutex<Option<PolicyRefusal>>,
    /// Woken when the policy in force or the refusal changes (the
    /// heartbeat then goes out at once).
    pub policy_changed: tokio::sync::Notify,
    /// Open client connections, by address (`crate::conn`).
    pub conns: crate::conn::Conns,
    /// The bot defence (`crate::bots`).
    pub bots: crate::bots::BotState,
}

impl EdgeState {
    /// New state with an initial policy. Fails when its WAF does not build.
    pub fn new(
        node_id: String,
        policy: Policy,
        limiter: RateLimiter,
        geo: Option<GeoIp>,
        events: EventSink,
        trusted: TrustedProxies,
        limits: Limits,
    ) -> Result<EdgeState, ApplyError> {
        let state = EdgeState {
            node_id,
            policy: ArcSwap::from_pointee(Policy::empty()),
            waf: ArcSwapOption::empty(),
            apply_lock: parking_lot::Mutex::new(()),
            decisions: RwLock::new(DecisionReplica::new()),
            policy_version: AtomicU64::new(0),
            next_decision_id: AtomicU64::new(1),
            global_limiter: GlobalLimiter::new(limiter.capacity()),
            limiter,
            geo,
            metrics: Metrics::new(),
            events,
            trusted,
            request_budget: Budget::new(limits.body_buffer_bytes, limits.body_buffer_wait),
            // Responses never wait: without room they pass uninspected.
            response_budget: Budget::new(limits.response_buffer_bytes, std::time::Duration::ZERO),
            limits,
            ids: RequestIds::default(),
            escalations: Default::default(),
            floods: Default::default(),
            escalation_tx: std::sync::OnceLock::new(),
            model: Default::default(),
            rule_roots: RuleRoots::default(),
            refused: parking_lot::Mutex::new(None),
            policy_changed: tokio::sync::Notify::new(),
            conns: Default::default(),
            bots: Default::default(),
        };
        state.set_policy(policy)?;
        Ok(state)
    }

    /// The active policy snapshot.
    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// The active policy, to keep across awaits.
    pub fn policy_full(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The WAF of the active policy, if it has a `[waf]` section.
    pub fn waf(&self) -> Option<Arc<ActiveWaf>> {
        self.waf.load_full()
    }

    /// Replaces the active policy. When its `[waf]` settings differ from the
    /// running ones, the WAF is built first (reading CRS from disk, off the
    /// request path); if that fails, the running policy and WAF stay and the
    /// error is returned. Unchanged settings keep the running WAF. Requests in
    /// flight finish with what they started with.
    pub fn set_policy(&self, policy: Policy) -> Result<(), ApplyError> {
        let _one_at_a_time = self.apply_lock.lock();
        let running = self.waf.load_full();
        let waf = match (&policy.waf, running) {
            (None, _) => None,
            (Some(s), Some(w)) if w.settings == *s => Some(w),
            (Some(s), _) => {
                let t = std::time::Instant::now();
                let built = ActiveWaf::build(s)?;
                tracing::info!(
                    rules = built.waf.rules().len(),
                    mode = s.mode.as_str(),
                    crs_dir = %built.waf.crs().rules_dir,
                    crs_version = built.waf.crs().version.as_deref().unwrap_or("unknown"),
                    crs_digest = %built.waf.crs().digest,
                    backtracking_rules = built.waf.rule_stats().backtracking.len(),
                    seconds = t.elapsed().as_secs_f64(),
                    "WAF built"
                );
                Some(Arc::new(built))
            }
        };
        self.metrics
            .waf_rules
            .set(waf.as_ref().map_or(0, |w| w.waf.rules().len() as i64));
        self.metrics.policy_rules.set(policy.rules.len() as i64);
        let crawlers = self.bots.prepare(policy.bots.as_ref())?;
        self.floods.sync(&policy.floods);
        self.bots.install(crawlers);
        // The WAF first: a request that sees the new policy sees its WAF.
        self.waf.store(waf);
        self.policy.store(Arc::new(policy));
        Ok(())
    }

    /// Runs `f` with the decision table (read lock).
    pub fn with_decisions<R>(&self, f: impl FnOnce(&DecisionSet) -> R) -> R {
        f(self.decisions.read().set())
    }

    /// The directories whose files cluster policy versions may name
    /// (default: [`RuleRoots::default`]).
    pub fn with_rule_roots(mut self, roots: RuleRoots) -> Self {
        self.rule_roots = roots;
        self
    }

    /// The directories whose files cluster policy versions may name.
    pub fn rule_roots(&self) -> &RuleRoots {
        &self.rule_roots
    }

    /// Replaces the policy with a cluster policy version (see
    /// [`EdgeState::set_policy`]). Pushed by whoever may write policy
    /// versions, its `[waf]` paths must lie inside the rule directories
    /// (`palisade_waf::confine`); the engine then opens the canonical paths
    /// that were checked.
    pub fn set_cluster_policy(&self, mut policy: Policy, version: u64) -> Result<(), ApplyError> {
        if let Some(waf) = &policy.waf {
            let confined = palisade_waf::confine::confine_for_load(waf, &self.rule_roots)
                .map_err(ApplyError::Confined)?;
            policy.waf = Some(confined);
        }
        self.set_policy(policy)?;
        self.policy_version.store(version, Ordering::Relaxed);
        {
            let mut refused = self.refused.lock();
            if refused.as_ref().is_some_and(|r| r.version <= version) {
                *refused = None;
            }
        }
        self.policy_changed.notify_one();
        Ok(())
    }

    /// Records that cluster policy `version` was refused, and why (the
    /// reason is cut to [`PolicyRefusal::MAX_REASON_BYTES`]).
    pub fn refuse_policy(&self, version: u64, reason: &str) {
        *self.refused.lock() = Some(PolicyRefusal::new(version, reason));
        self.policy_changed.notify_one();
    }

    /// The newest cluster policy version refused since the one in force.
    pub fn policy_refused(&self) -> Option<PolicyRefusal> {
        self.refused.lock().clone()
    }

    /// Version of the cluster policy in force (None: none received).
    pub fn policy_version(&self) -> Option<u64> {
        match self.policy_version.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    /// Applies one update of the cluster decision log (at most once, in order).
    pub fn apply_update(&self, update: DecisionUpdate) -> Applied {
        let ban = matches!(&update.op, palisade_mesh::DecisionOp::Upsert { decision } if crate::conn::closes(decision));
        let mut table = self.decisions.write();
        let applied = table.apply(update);
        self.metrics.decisions_active.set(table.set().len() as i64);
        drop(table);
        if ban {
            self.conns.ban_arrived();
        }
        applied
    }

    /// Last decision-log sequence applied.
    pub fn decisions_seq(&self) -> u64 {
        self.decisions.read().last_seq()
    }

    /// The decision table and its log position, for persistence.
    pub fn decisions_snapshot(&self) -> ReplicaSnapshot {
        self.decisions.read().snapshot()
    }

    /// A copy of the decision table and its log position (compact: about 80
    /// bytes a decision), for writing a snapshot without holding the lock.
    pub fn decisions_replica(&self) -> DecisionReplica {
        self.decisions.read().clone()
    }

    /// Replaces the decision table (loaded from disk, or a full resync).
    pub fn replace_decisions(&self, replica: DecisionReplica) -> usize {
        let n = replica.set().len();
        *self.decisions.write() = replica;
        self.metrics.decisions_active.set(n as i64);
        n
    }

    /// Replaces the decision table with a persisted one.
    pub fn restore_decisions(
        &self,
        snapshot: ReplicaSnapshot,
    ) -> Result<usize, palisade_mesh::MeshError> {
        let replica = DecisionReplica::restore(snapshot)?;
        let n = replica.set().len();
        *self.decisions.write() = replica;
        self.metrics.decisions_active.set(n as i64);
        // A whole table may carry bans on open connections.
        self.conns.ban_arrived();
        Ok(n)
    }

    /// Adds (or replaces, same scope and value) a decision. `d.id` of 0 gets a fresh id.
    pub fn add_decision(&self, mut d: Decision) -> Result<Decision, DecisionError> {
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        if d.id == 0 {
            // Fresh id, skipping ids that decisions from elsewhere (the mesh) already use.
            loop {
                d.id = self.next_decision_id.fetch_add(1, Ordering::Relaxed);
                if table.get(d.id).is_none() {
                    break;
                }
            }
        } else {
            self.next_decision_id.fetch_max(d.id + 1, Ordering::Relaxed);
        }
        table.insert(d.clone())?;
        let stored = table.get(d.id).map_or(d, |s| s.to_decision());
        self.metrics.decisions_active.set(table.len() as i64);
        drop(replica);
        if crate::conn::closes(&stored) {
            self.conns.ban_arrived();
        }
        Ok(stored)
    }

    /// Every active decision (expired ones are left out).
    pub fn list_decisions(&self, now_ms: u64) -> Vec<Decision> {
        let replica = self.decisions.read();
        let mut out: Vec<Decision> = replica
            .set()
            .iter()
            .filter(|d| d.expires_at.is_none_or(|e| e > now_ms))
            .map(|d| d.to_decision())
            .collect();
        out.sort_by_key(|d| d.id);
        out
    }

    /// Deletes a decision by id.
    pub fn delete_decision(&self, id: u64) -> Option<Decision> {
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        let d = table.remove(id);
        self.metrics.decisions_active.set(table.len() as i64);
        d
    }

    /// Drops expired decisions. Looks under the read lock first, so the write
    /// lock is only taken when there is something to remove.
    pub fn purge_expired(&self, now_ms: u64) -> usize {
        let any = self.decisions.read().set().any_expired(now_ms);
        if !any {
            return 0;
        }
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        let n = table.purge_expired(now_ms).len();
        self.metrics.decisions_active.set(table.len() as i64);
        n
    }

    /// Counts a block for the policy's escalations and issues the decisions
    /// that reach their threshold: enforced here at once, and sent to the mesh.
    pub fn escalate(
        &self,
        policy: &Policy,
        kind: palisade_policy::CheckKind,
        ip: std::net::IpAddr,
        geo: palisade_policy::Geo,
        now_ms: u64,
    ) {
        for d in self
            .escalations
            .observe(&policy.escalations, kind, ip, geo, &self.node_id, now_ms)
        {
            self.issue_decision(d, "escalation");
        }
    }

    /// Enforces a decision this node issued (an escalation's or a flood's,
    /// `what`) at once, and sends it to the mesh for every other node.
    pub fn issue_decision(&self, d: Decision, what: &'static str) {
        // A challenge never replaces an enforced ban of the same source
        // (a banned client that keeps sending may trip a challenging flood).
        if d.action == DecisionAction::Challenge {
            let now = crate::now_ms();
            let stronger = self.with_decisions(|set| {
                set.get_key(d.scope, &d.value).is_some_and(|e| {
                    e.action == DecisionAction::Ban && !e.simulated && !e.is_expired(now)
                })
            });
            if stronger {
                return;
            }
        }
        if self.decisions_full_for(&d) {
            self.metrics.escalations_dropped.inc();
            tracing::warn!(value = %d.value, what, "decision table full: decision not issued");
            return;
        }
        tracing::warn!(scope = d.scope.as_str(), value = %d.value, reason = %d.reason, simulated = d.simulated, what, "issued a decision");
        match self.add_decision(d) {
            Ok(d) => {
                if let Some(tx) = self.escalation_tx.get() {
                    if tx.try_send(d).is_err() {
                        tracing::error!(what, "decision not sent to the mesh: queue full");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, what, "decision rejected"),
        }
    }

    /// Enforces a decision on this node only, not sent to the mesh (the
    /// same decision, issued by another node, is on its way there). Never
    /// replaces an enforced ban by a challenge.
    pub fn enforce_locally(&self, d: Decision) {
        if self.decisions_full_for(&d) {
            self.metrics.escalations_dropped.inc();
            return;
        }
        let now = crate::now_ms();
        let weaker = self.with_decisions(|set| {
            set.get_key(d.scope, &d.value).is_some_and(|e| {
                !e.is_expired(now)
                    && !e.simulated
                    && (e.action == DecisionAction::Ban || d.action == DecisionAction::Challenge)
            })
        });
        if weaker {
            return;
        }
        if let Err(e) = self.add_decision(d) {
            tracing::debug!(error = %e, "local decision rejected");
        }
    }

    /// Whether `d` would be a new entry in a table already holding
    /// `limits.max_decisions` decisions.
    fn decisions_full_for(&self, d: &Decision) -> bool {
        let replica = self.decisions.read();
        let table = replica.set();
        table.len() >= self.limits.max_decisions && table.get_key(d.scope, &d.value).is_none()
    }

    /// Refreshes gauges that are read from state rather than counted.
    pub fn refresh_gauges(&self) {
        self.metrics
            .conn
            .addresses
            .set(self.conns.registry.addresses() as i64);
        self.metrics
            .conn
            .familiar_networks
            .set(self.conns.familiar.len() as i64);
        self.metrics
            .conn
            .familiar_untracked
            .set(self.conns.familiar.untracked() as i64);
        self.metrics.ratelimit_keys.set(self.limiter.len() as i64);
        self.metrics
            .ratelimit_evictions
            .set(self.limiter.evictions() as i64);
        self.metrics
            .waf_dfa_giveups
            .set(palisade_waf::lazydfa::giveups() as i64);
        self.metrics
            .waf_backtrack_limit_hits
            .set(palisade_waf::backtrack::limit_hits() as i64);
        for c in palisade_waf::detect::stats::snapshot() {
            let d = c.detector.as_str();
            self.metrics
                .waf_detector_calls
                .with_label_values(&[d])
                .set(c.calls as i64);
            self.metrics
                .waf_detector_findings
                .with_label_values(&[d])
                .set(c.findings as i64);
        }
        let memo = palisade_waf::memo::stats();
        self.metrics.waf_memo_hits.set(memo.hits as i64);
        self.metrics.waf_memo_misses.set(memo.misses as i64);
        self.metrics.waf_memo_evictions.set(memo.evictions as i64);
        for (kind, budget) in [
            ("request", &self.request_budget),
            ("response", &self.response_budget),
        ] {
            self.metrics
                .body_buffer_bytes
                .with_label_values(&[kind])
                .set(budget.in_use() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(policy: Policy) -> Result<EdgeState, ApplyError> {
        EdgeState::new(
            "test".into(),
            policy,
            RateLimiter::new(1000),
            None,
            EventSink::new(None).unwrap(),
            TrustedProxies::new(Vec::new()),
            Limits::default(),
        )
    }

    fn policy(src: &str) -> Policy {
        Policy::from_toml(src, "p.toml").unwrap()
    }

    /// A small rule set of the test's own, laid out like CRS.
    fn rules_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("palisade-state-rules-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("REQUEST-901-TEST.conf"),
            "SecRule ARGS \"@contains attack\" \"id:1001,phase:2,deny,status:403,msg:'attack'\"\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn a_waf_that_does_not_build_keeps_the_running_policy() {
        let bad = policy("[waf]\ncrs_dir = \"/nonexistent/crs\"\n");
        let e = state(bad.clone()).err().expect("start refused");
        assert!(e.to_string().contains("/nonexistent/crs"), "{e}");

        let st = state(policy(
            "[[rules]]\nid = \"a\"\nexpression = 'http.host eq \"x\"'\naction = \"block\"\n",
        ))
        .unwrap();
        let before = st.policy().digest.clone();
        assert!(matches!(
            st.set_policy(bad.clone()),
            Err(ApplyError::Waf(_))
        ));
        assert_eq!(st.policy().digest, before);
        assert_eq!(st.policy().rules.len(), 1);
        assert!(st.waf().is_none());
        assert!(st.set_cluster_policy(bad, 7).is_err());
        assert_eq!(st.policy_version(), None);
    }

    #[test]
    fn unchanged_waf_settings_keep_the_running_waf() {
        let crs = rules_dir().display().to_string();
        let waf = format!("[waf]\ncrs_dir = {crs:?}\n");
        let st = state(policy(&waf)).unwrap();
        let first = st.waf().expect("a WAF");
        assert_eq!(st.metrics.waf_rules.get(), first.waf.rules().len() as i64);

        // Same [waf], other rules: the running WAF stays.
        let more = format!(
            "{waf}\n[[rules]]\nid = \"a\"\nexpression = 'http.host eq \"x\"'\naction = \"block\"\n"
        );
        st.set_policy(policy(&more)).unwrap();
        assert!(Arc::ptr_eq(&first, &st.waf().unwrap()));
        assert_eq!(st.policy().rules.len(), 1);

        // A failed build keeps both the policy and the WAF.
        let broken = format!("{waf}extra_rules = [\"/nonexistent/rules.conf\"]\n");
        assert!(st.set_policy(policy(&broken)).is_err());
        assert!(Arc::ptr_eq(&first, &st.waf().unwrap()));
        assert_eq!(st.policy().rules.len(), 1);

        // Changed settings build a new one; no [waf] removes it.
        st.set_policy(policy(&format!("{waf}mode = \"detect\"\n")))
            .unwrap();
        let detect = st.waf().unwrap();
        assert!(!Arc::ptr_eq(&first, &detect));
        assert!(detect.detect_only());
        st.set_policy(Policy::empty()).unwrap();
        assert!(st.waf().is_none());
        assert_eq!(st.metrics.waf_rules.get(), 0);
    }

    #[test]
    fn cluster_versions_name_rule_files_only_inside_the_rule_directories() {
        let crs = rules_dir();
        let root = crs.canonicalize().unwrap();
        let st = state(Policy::empty())
            .unwrap()
            .with_rule_roots(RuleRoots::new(vec![root.clone()]).unwrap());
        let passwd = format!(
            "[waf]\ncrs_dir = {:?}\nextra_rules = [\"/etc/passwd\"]\n",
            root.display().to_string()
        );
        match st.set_cluster_policy(policy(&passwd), 3) {
            Err(ApplyError::Confined(e)) => {
                assert_eq!(e.len(), 1, "{e:?}");
                assert!(
                    e[0].contains("[waf] extra_rules \"/etc/passwd\": outside"),
                    "{e:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st.policy_version(), None);
        assert!(st.waf().is_none());
        // The same file in a local policy is read, but its lines are not shown.
        let e = st.set_policy(policy(&passwd)).unwrap_err().to_string();
        assert!(e.contains("/etc/passwd:"), "{e}");
        assert!(!e.contains("root:"), "{e}");

        // A refusal is kept (bounded) until a version at least as new applies.
        st.refuse_policy(3, &"x".repeat(5000));
        let r = st.policy_refused().unwrap();
        assert_eq!(r.version, 3);
        assert!(r.reason.len() <= PolicyRefusal::MAX_REASON_BYTES);
        let inside = format!("[waf]\ncrs_dir = {:?}\n", crs.display().to_string());
        st.set_cluster_policy(policy(&inside), 4).unwrap();
        assert_eq!(st.policy_version(), Some(4));
        assert!(st.policy_refused().is_none());
        // The engine was given the canonical path that was checked.
        assert_eq!(
            st.waf().unwrap().settings.crs_dir.as_deref(),
            Some(root.to_str().unwrap())
        );
    }
}
