//! [`Patient`]: a [`Mesh`] that rides out a short unavailability of the bus
//! — a JetStream leader election after a server is lost, a client
//! reconnecting to another server — by retrying with backoff for a bounded
//! time instead of failing at once.
//!
//! What it owns: the retry of [`MeshError::Unavailable`] failures, in one
//! place, for a caller that answers people (the control plane's API). A call
//! returns `Ok` only when the wrapped mesh did, so a write it reports as done
//! was acknowledged by the bus; after the budget it returns the last error.
//! Retried writes are safe because decision ops are idempotent (latest op per
//! key); a policy write retried after a lost acknowledgement may leave one
//! extra stored version that never became current.
//!
//! What it must not do: retry invalid input ([`MeshError::Invalid`], codec
//! errors), or best-effort broadcasts (count reports: a late one is worthless).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use palisade_policy::SecurityEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::mesh::{CountStream, DecisionStream, EventStream, Mesh, PolicyStream, STREAM_BUFFER};
use crate::types::{DecisionOp, DecisionUpdate, Heartbeat, MeshError, PolicyVersion};

/// The first pause between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A decision stream idle this long checks the log's head, and resubscribes
/// when something newer was not delivered (a stalled consumer).
const STALL_CHECK: Duration = Duration::from_secs(1);

tokio::task_local! {
    /// The deadline of the request being served, set by [`within`].
    static DEADLINE: Instant;
}

/// Runs `f` so that the mesh calls it makes through a [`Patient`] give up
/// by `budget` from now, all of them together (one API request makes
/// several calls, one after the other: without it each waits its own
/// budget). Calls made from tasks `f` spawns keep their own budgets.
pub async fn within<F: Future>(budget: Duration, f: F) -> F::Output {
    DEADLINE.scope(Instant::now() + budget, f).await
}

/// A mesh whose calls retry [`MeshError::Unavailable`] for up to `budget`,
/// counted from the first failure of the current outage (the first failure
/// since any call last succeeded): an API call made of several mesh calls
/// waits at most `budget` in all, and a call made during an outage already
/// older than `budget` fails after its first attempt. Cheap to clone.
pub struct Patient<M: Mesh> {
    inner: Arc<M>,
    budget: Duration,
    stats: Arc<PatientStats>,
    /// When the current outage began (None: the last call succeeded), and
    /// whether a call already gave up in it.
    outage: Arc<std::sync::Mutex<Option<(Instant, bool)>>>,
}

impl<M: Mesh> Clone for Patient<M> {
    fn clone(&self) -> Self {
        Patient {
            inner: self.inner.clone(),
            budget: self.budget,
            stats: self.stats.clone(),
            outage: self.outage.clone(),
        }
    }
}

/// What the retries did, for metrics.
#[derive(Debug, Default)]
pub struct PatientStats {
    /// Attempts that failed with `Unavailable` and were tried again.
    pub retries: std::sync::atomic::AtomicU64,
    /// Calls that failed after retrying for the whole budget.
    pub gave_up: std::sync::atomic::AtomicU64,
    /// Calls that succeeded after at least one retry.
    pub recovered: std::sync::atomic::AtomicU64,
}

impl PatientStats {
    /// Prometheus text of the counters.
    pub fn render_metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "# HELP palisade_mesh_retries_total Mesh calls retried because the bus was unavailable (e.g. a JetStream leader election).\n\
             # TYPE palisade_mesh_retries_total counter\n\
             palisade_mesh_retries_total {}\n\
             # HELP palisade_mesh_recovered_total Mesh calls that succeeded after retrying.\n\
             # TYPE palisade_mesh_recovered_total counter\n\
             palisade_mesh_recovered_total {}\n\
             # HELP palisade_mesh_gave_up_total Mesh calls that failed after retrying for the whole budget.\n\
             # TYPE palisade_mesh_gave_up_total counter\n\
             palisade_mesh_gave_up_total {}\n",
            self.retries.load(Relaxed),
            self.recovered.load(Relaxed),
            self.gave_up.load(Relaxed),
        )
    }
}

impl<M: Mesh> Patient<M> {
    /// Wraps `inner`; each call retries for up to `budget`.
    pub fn new(inner: Arc<M>, budget: Duration) -> Self {
        Patient {
            inner,
            budget,
            stats: Arc::new(PatientStats::default()),
            outage: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The wrapped mesh.
    pub fn inner(&self) -> &Arc<M> {
        &self.inner
    }

    /// The retry counters.
    pub fn stats(&self) -> Arc<PatientStats> {
        self.stats.clone()
    }

    async fn retry<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T, MeshError>
    where
        F: FnMut(Arc<M>) -> Fut,
        Fut: Future<Output = Result<T, MeshError>>,
    {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.stats;
        let budget = self.budget;
        let mut failed = false;
        let mut pause = FIRST_BACKOFF;
        // The budget also bounds each call: other calls that succeed now and
        // then (reads a server that is still up can answer) restart the
        // outage, and a write must not wait past its budget for that.
        let started = Instant::now();
        let deadline = DEADLINE.try_with(|d| *d).ok();
        loop {
            match call(self.inner.clone()).await {
                Ok(v) => {
                    self.set_outage(None);
                    if failed {
                        stats.recovered.fetch_add(1, Relaxed);
                        tracing::info!(what, "mesh call succeeded after retrying");
                    }
                    return Ok(v);
                }
                Err(MeshError::Unavailable(why)) => {
                    failed = true;
                    let since = self.set_outage(Some(Instant::now()));
                    let waited = since.elapsed().max(started.elapsed());
                    let past_deadline = deadline.is_some_and(|d| Instant::now() + pause > d);
                    if waited + pause > budget || past_deadline {
                        stats.gave_up.fetch_add(1, Relaxed);
                        if self.first_give_up() {
                            tracing::warn!(what, error = %why, budget = ?budget, "mesh unavailable; giving up (once per outage)");
                        } else {
                            tracing::debug!(what, error = %why, "mesh unavailable; giving up");
                        }
                        return Err(MeshError::Unavailable(why));
                    }
                    stats.retries.fetch_add(1, Relaxed);
                    tracing::debug!(what, error = %why, "mesh unavailable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Ends the outage (None), or notes a failure at `now` (Some); returns
    /// when the current outage began.
    fn set_outage(&self, failure: Option<Instant>) -> Instant {
        let mut g = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            None => {
                *g = None;
                Instant::now()
            }
            Some(now) => g.get_or_insert((now, false)).0,
        }
    }

    /// Whether this is the first call to give up in the current outage.
    fn first_give_up(&self) -> bool {
        let mut g = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some((_, gave_up)) if !*gave_up => {
                *gave_up = true;
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl<M: Mesh> Mesh for Patient<M> {
    async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError> {
        self.retry("decision publish", |m| {
            let op = op.clone();
            async move { m.publish_decision(op).await }
        })
        .await
    }

    async fn publish_decisions(&self, ops: Vec<DecisionOp>) -> Result<u64, MeshError> {
        // A failure midway leaves a prefix appended; ops are idempotent, so
        // the whole batch is sent again.
        self.retry("decision batch publish", |m| {
            let ops = ops.clone();
            async move { m.publish_decisions(ops).await }
        })
        .await
    }

    /// The stream resubscribes from the last update it delivered when the
    /// subscription fails, within the budget (counted from the failure).
    async fn decisions_since(&self, after_seq: u64) -> Result<DecisionStream, MeshError> {
        let first = self
            .retry("decision subscription", |m| async move {
                m.decisions_since(after_seq).await
            })
            .await?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let this = self.clone();
        tokio::spawn(async move { this.follow(first, after_seq, tx).await });
        Ok(DecisionStream::new(rx))
    }

    async fn decisions_head(&self) -> Result<u64, MeshError> {
        self.retry("decision head", |m| async move { m.decisions_head().await })
            .await
    }

    async fn decisions_floor(&self) -> Result<u64, MeshError> {
        self.retry(
            "decision floor",
            |m| async move { m.decisions_floor().await },
        )
        .await
    }

    async fn put_policy(
        &self,
        source: String,
        digest: String,
        author: String,
    ) -> Result<PolicyVersion, MeshError> {
        self.retry("policy write", |m| {
            let (s, d, a) = (source.clone(), digest.clone(), author.clone());
            async move { m.put_policy(s, d, a).await }
        })
        .await
    }

    async fn policy_history(&self) -> Result<Vec<PolicyVersion>, MeshError> {
        self.retry(
            "policy history",
            |m| async move { m.policy_history().await },
        )
        .await
    }

    async fn current_policy(&self) -> Result<Option<PolicyVersion>, MeshError> {
        self.retry(
            "current policy",
            |m| async move { m.current_policy().await },
        )
        .await
    }

    async fn watch_policy(&self) -> Result<PolicyStream, MeshError> {
        self.retry("policy watch", |m| async move { m.watch_policy().await })
            .await
    }

    async fn publish_event(&self, ev: &SecurityEvent) -> Result<(), MeshError> {
        self.retry("event publish", |m| {
            let ev = ev.clone();
            async move { m.publish_event(&ev).await }
        })
        .await
    }

    async fn publish_events(&self, evs: &[SecurityEvent]) -> Result<(), MeshError> {
        // A failure midway leaves a prefix stored; consumers store each
        // event once, so the whole group is sent again.
        self.retry("event group publish", |m| {
            let evs = evs.to_vec();
            async move { m.publish_events(&evs).await }
        })
        .await
    }

    async fn consume_events(&self, durable: &str) -> Result<EventStream, MeshError> {
        self.retry("event consumer", |m| {
            let durable = durable.to_string();
            async move { m.consume_events(&durable).await }
        })
        .await
    }

    async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), MeshError> {
        self.retry("heartbeat", |m| {
            let hb = hb.clone();
            async move { m.heartbeat(&hb).await }
        })
        .await
    }

    async fn nodes(&self) -> Result<Vec<Heartbeat>, MeshError> {
        self.retry("nodes", |m| async move { m.nodes().await })
            .await
    }

    async fn publish_stats(&self, name: &str, node: &str, state: Vec<u8>) -> Result<(), MeshError> {
        self.retry("stats publish", |m| {
            let (name, node, state) = (name.to_string(), node.to_string(), state.clone());
            async move { m.publish_stats(&name, &node, state).await }
        })
        .await
    }

    async fn stats(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, MeshError> {
        self.retry("stats", |m| {
            let name = name.to_string();
            async move { m.stats(&name).await }
        })
        .await
    }

    /// Not retried: a late count report is worthless.
    async fn publish_counts(&self, report: Vec<u8>) -> Result<(), MeshError> {
        self.inner.publish_counts(report).await
    }

    async fn subscribe_counts(&self) -> Result<CountStream, MeshError> {
        self.retry("count subscription", |m| async move {
            m.subscribe_counts().await
        })
        .await
    }

    async fn put_keyring(&self, ring: Vec<u8>) -> Result<(), MeshError> {
        self.retry("keyring put", |m| {
            let ring = ring.clone();
            async move { m.put_keyring(ring).await }
        })
        .await
    }

    async fn keyring(&self) -> Result<Option<Vec<u8>>, MeshError> {
        self.retry("keyring", |m| async move { m.keyring().await })
            .await
    }

    /// Not retried: a late report is counted late anyway; the next batch goes.
    async fn publish_logins(&self, reports: Vec<u8>) -> Result<(), MeshError> {
        self.inner.publish_logins(reports).await
    }

    async fn subscribe_logins(&self) -> Result<CountStream, MeshError> {
        self.retry("login subscription", |m| async move {
            m.subscribe_logins().await
        })
        .await
    }
}

impl<M: Mesh> Patient<M> {
    /// Forwards `stream` to `tx`; when it fails or ends, resubscribes after
    /// the last delivered sequence, retrying for up to the budget.
    async fn follow(
        &self,
        mut stream: DecisionStream,
        after_seq: u64,
        tx: mpsc::Sender<Result<DecisionUpdate, MeshError>>,
    ) {
        let mut last = after_seq;
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                () = tx.closed() => return,
                () = tokio::time::sleep(STALL_CHECK) => {
                    // Idle: a consumer whose server was lost may stall
                    // without an error. Is anything newer in the log?
                    match self.inner.decisions_head().await {
                        Ok(head) if head > last => {}
                        _ => continue,
                    }
                    Some(Err(MeshError::Unavailable(format!(
                        "the decision subscription stalled at {last}"
                    ))))
                }
            };
            let why = match next {
                Some(Ok(u)) => {
                    last = last.max(u.seq);
                    if tx.send(Ok(u)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Some(Err(MeshError::Unavailable(why))) => why,
                Some(Err(other)) => {
                    let _ = tx.send(Err(other)).await;
                    return;
                }
                None => "the decision subscription ended".to_string(),
            };
            tracing::debug!(error = %why, last, "decision subscription failed; resubscribing");
            self.stats
                .retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let resubscribed = self
                .retry("decision subscription", |m| async move {
                    m.decisions_since(last).await
                })
                .await;
            match resubscribed {
                Ok(s) => stream = s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryMesh;
    use palisade_policy::decisions::{Decision, DecisionAction, Scope};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A real in-memory mesh whose next `failures` publishes fail as if
    /// the bus were electing a leader (or refuse as invalid, when `invalid`).
    struct Flaky {
        mesh: MemoryMesh,
        failures: AtomicUsize,
        calls: AtomicUsize,
        invalid: bool,
    }

    impl Flaky {
        fn new(failures: usize) -> Flaky {
            Flaky {
                mesh: MemoryMesh::new(),
                failures: AtomicUsize::new(failures),
                calls: AtomicUsize::new(0),
                invalid: false,
            }
        }

        fn fail(&self) -> Result<(), MeshError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let left = self.failures.load(Ordering::Relaxed);
            if left == 0 {
                return Ok(());
            }
            self.failures.store(left - 1, Ordering::Relaxed);
            Err(if self.invalid {
                MeshError::Invalid("bad".into())
            } else {
                MeshError::Unavailable("no leader".into())
            })
        }
    }

    #[async_trait]
    impl Mesh for Flaky {
        async fn publish_decision(&self, op: DecisionOp) -> Result<u64, MeshError> {
            self.fail()?;
            self.mesh.publish_decision(op).await
        }
        async fn decisions_since(&self, after: u64) -> Result<DecisionStream, MeshError> {
            self.mesh.decisions_since(after).await
        }
        async fn decisions_head(&self) -> Result<u64, MeshError> {
            self.mesh.decisions_head().await
        }
        async fn put_policy(
            &self,
            s: String,
            d: String,
            a: String,
        ) -> Result<PolicyVersion, MeshError> {
            self.mesh.put_policy(s, d, a).await
        }
        async fn policy_history(&self) -> Result<Vec<PolicyVersion>, MeshError> {
            self.mesh.policy_history().await
        }
        async fn current_policy(&self) -> Result<Option<PolicyVersion>, MeshError> {
            self.mesh.current_policy().await
        }
        async fn watch_policy(&self) -> Result<PolicyStream, MeshError> {
            self.mesh.watch_policy().await
        }
        async fn publish_event(&self, ev: &SecurityEvent) -> Result<(), MeshError> {
            self.mesh.publish_event(ev).await
        }
        async fn consume_events(&self, d: &str) -> Result<EventStream, MeshError> {
            self.mesh.consume_events(d).await
        }
        async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), MeshError> {
            self.mesh.heartbeat(hb).await
        }
        async fn nodes(&self) -> Result<Vec<Heartbeat>, MeshError> {
            self.mesh.nodes().await
        }
        async fn publish_stats(&self, n: &str, node: &str, s: Vec<u8>) -> Result<(), MeshError> {
            self.mesh.publish_stats(n, node, s).await
        }
        async fn stats(&self, n: &str) -> Result<Vec<(String, Vec<u8>)>, MeshError> {
            self.mesh.stats(n).await
        }
        async fn publish_counts(&self, r: Vec<u8>) -> Result<(), MeshError> {
            self.mesh.publish_counts(r).await
        }
        async fn subscribe_counts(&self) -> Result<CountStream, MeshError> {
            self.mesh.subscribe_counts().await
        }

        async fn put_keyring(&self, ring: Vec<u8>) -> Result<(), MeshError> {
            self.mesh.put_keyring(ring).await
        }

        async fn keyring(&self) -> Result<Option<Vec<u8>>, MeshError> {
            self.mesh.keyring().await
        }

        async fn publish_logins(&self, reports: Vec<u8>) -> Result<(), MeshError> {
            self.mesh.publish_logins(reports).await
        }

        async fn subscribe_logins(&self) -> Result<CountStream, MeshError> {
            self.mesh.subscribe_logins().await
        }
    }

    fn ban(ip: &str) -> DecisionOp {
        DecisionOp::Upsert {
            decision: Decision {
                id: 1,
                scope: Scope::Ip,
                value: ip.into(),
                action: DecisionAction::Ban,
                reason: "test".into(),
                origin: "test".into(),
                simulated: false,
                created_at: 0,
                expires_at: None,
            },
        }
    }

    #[tokio::test]
    async fn an_unavailable_write_is_retried_until_it_is_acknowledged() {
        let flaky = Arc::new(Flaky::new(3));
        let m = Patient::new(flaky.clone(), Duration::from_secs(30));
        let seq = m.publish_decision(ban("192.0.2.1")).await.unwrap();
        assert_eq!(seq, 1, "one op in the log, written once");
        assert_eq!(flaky.mesh.decisions_head().await.unwrap(), 1);
        assert_eq!(flaky.calls.load(Ordering::Relaxed), 4);
        assert_eq!(m.stats().retries.load(Ordering::Relaxed), 3);
        assert_eq!(m.stats().recovered.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn after_the_budget_the_error_is_returned_and_nothing_was_written() {
        let flaky = Arc::new(Flaky::new(usize::MAX));
        let m = Patient::new(flaky.clone(), Duration::from_millis(200));
        let err = m.publish_decision(ban("192.0.2.1")).await.unwrap_err();
        assert!(matches!(err, MeshError::Unavailable(_)), "{err}");
        assert_eq!(flaky.mesh.decisions_head().await.unwrap(), 0);
        assert!(flaky.calls.load(Ordering::Relaxed) >= 2, "retried");
        assert_eq!(m.stats().gave_up.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_budget_covers_the_whole_outage_not_each_call() {
        let flaky = Arc::new(Flaky::new(usize::MAX));
        let m = Patient::new(flaky.clone(), Duration::from_millis(200));
        assert!(m.publish_decision(ban("192.0.2.1")).await.is_err());
        let before = flaky.calls.load(Ordering::Relaxed);
        // Same outage: one attempt, then the error.
        assert!(m.publish_decision(ban("192.0.2.2")).await.is_err());
        assert_eq!(flaky.calls.load(Ordering::Relaxed), before + 1);
        // The bus is back: a success ends the outage, the next one gets the whole budget.
        flaky.failures.store(0, Ordering::Relaxed);
        m.publish_decision(ban("192.0.2.3")).await.unwrap();
        flaky.failures.store(2, Ordering::Relaxed);
        m.publish_decision(ban("192.0.2.4")).await.unwrap();
        assert_eq!(flaky.mesh.decisions_head().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_call_gives_up_after_its_budget_although_other_calls_succeed() {
        let flaky = Arc::new(Flaky::new(usize::MAX));
        // A budget above the longest pause (MAX_BACKOFF), so that only the
        // time waited can end the retries.
        let m = Arc::new(Patient::new(
            flaky.clone(),
            MAX_BACKOFF + Duration::from_millis(500),
        ));
        // Reads keep succeeding (they restart the outage) while every write fails.
        let reader = {
            let m = m.clone();
            tokio::spawn(async move {
                loop {
                    let _ = m.decisions_head().await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let write = tokio::time::timeout(
            Duration::from_secs(20),
            m.publish_decision(ban("192.0.2.9")),
        )
        .await;
        reader.abort();
        let result = write.expect("the write retried past its budget");
        assert!(
            matches!(result, Err(MeshError::Unavailable(_))),
            "{result:?}"
        );
        assert_eq!(m.stats().gave_up.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn calls_within_a_request_share_its_deadline() {
        let flaky = Arc::new(Flaky::new(usize::MAX));
        // Each call alone would retry for 30 s.
        let m = Patient::new(flaky.clone(), Duration::from_secs(30));
        let request = async {
            let a = m.publish_decision(ban("192.0.2.10")).await;
            let b = m.publish_decision(ban("192.0.2.11")).await;
            (a, b)
        };
        let (a, b) = tokio::time::timeout(
            Duration::from_secs(10),
            within(Duration::from_millis(700), request),
        )
        .await
        .expect("the calls retried past the request's deadline");
        assert!(matches!(a, Err(MeshError::Unavailable(_))), "{a:?}");
        assert!(matches!(b, Err(MeshError::Unavailable(_))), "{b:?}");
    }

    #[tokio::test]
    async fn invalid_input_is_not_retried() {
        let mut f = Flaky::new(1);
        f.invalid = true;
        let flaky = Arc::new(f);
        let m = Patient::new(flaky.clone(), Duration::from_secs(30));
        let err = m.publish_decision(ban("192.0.2.1")).await.unwrap_err();
        assert!(matches!(err, MeshError::Invalid(_)), "{err}");
        assert_eq!(flaky.calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_decision_stream_replays_then_follows() {
        let flaky = Arc::new(Flaky::new(0));
        let m = Patient::new(flaky.clone(), Duration::from_secs(30));
        m.publish_decision(ban("192.0.2.1")).await.unwrap();
        let mut s = m.decisions_since(0).await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().seq, 1);
        m.publish_decision(ban("192.0.2.2")).await.unwrap();
        assert_eq!(s.next().await.unwrap().unwrap().seq, 2);
    }
}
