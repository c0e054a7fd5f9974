//! `palisade control`: the control plane of a cluster, over NATS JetStream
//! (cargo feature `nats`; without it the command says how to build a binary
//! with it).

#[cfg(feature = "nats")]
use anyhow::Context;
use clap::Args;
#[cfg(feature = "nats")]
use palisade_control::{ApiConfig, EventStore, MeshBackend};
#[cfg(feature = "nats")]
use palisade_edge::now_ms;
#[cfg(feature = "nats")]
use palisade_mesh::nats::{NatsMesh, NatsOptions};
#[cfg(feature = "nats")]
use palisade_mesh::Patient;
use std::path::PathBuf;
#[cfg(feature = "nats")]
use std::sync::Arc;

#[derive(Args)]
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub struct ControlArgs {
    /// Address of the management API.
    #[arg(long, default_value = "127.0.0.1:9090")]
    api: String,
    /// Directory for state (the generated admin token).
    #[arg(long, default_value = "palisade-control-data")]
    data_dir: PathBuf,
    /// NATS server URL (several: comma-separated).
    #[arg(long, env = "PALISADE_NATS")]
    nats: String,
    /// NATS credentials file (.creds), when the server requires one.
    #[arg(long)]
    nats_creds: Option<PathBuf>,
    /// CA certificates (PEM) to verify the NATS server's TLS certificate.
    #[arg(long)]
    nats_tls_ca: Option<PathBuf>,
    /// Prefix of the cluster's subjects, streams and buckets.
    #[arg(long, default_value = "palisade")]
    nats_prefix: String,
    #[command(flatten)]
    replicas: crate::replicas::ReplicaArgs,
    /// How long API calls wait for the bus when it is unavailable (a
    /// JetStream leader election after a server is lost takes 4 to 9 s),
    /// retrying with backoff, before answering 503; counted from the first
    /// failure since a mesh call last succeeded.
    #[arg(long, default_value = "15s", env = "PALISADE_NATS_RETRY_FOR")]
    nats_retry_for: String,
    /// Bearer token of the API (default: DATA_DIR/admin.token, generated on first start).
    #[arg(long, env = "PALISADE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Token of the `operator` role: reads, and adds or deletes decisions.
    #[arg(long, env = "PALISADE_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// Token of the `viewer` role: reads only.
    #[arg(long, env = "PALISADE_VIEWER_TOKEN", hide_env_values = true)]
    viewer_token: Option<String>,
    /// Window of cross-node correlation.
    #[arg(long, default_value = "1m")]
    correlation_window: String,
    /// Distinct nodes blocking one source that open an incident.
    #[arg(long, default_value_t = 2)]
    incident_source_nodes: usize,
    /// Distinct nodes on which one rule blocks that open an incident.
    #[arg(long, default_value_t = 3)]
    incident_rule_nodes: usize,
    /// Ban the source of a cross-node incident on every node for this long (e.g. 1h).
    #[arg(long)]
    incident_ban: Option<String>,
    /// This control plane's id (events it publishes, logs).
    #[arg(long, default_value = "control-1")]
    node_id: String,
    #[command(flatten)]
    retention: crate::retention::RetentionArgs,
    /// Active decisions the cluster holds at most: when full, an operator's
    /// new decision evicts the oldest automatic one (escalation, incident),
    /// and the API answers 507 when there is none.
    #[arg(long, default_value_t = palisade_control::backend::MAX_DECISIONS, env = "PALISADE_MAX_DECISIONS")]
    max_decisions: usize,
    /// Rule directories: a policy version's [waf] paths must lie inside them
    /// (give the edges the same).
    #[command(flatten)]
    rules_dir: crate::rules_dir::RulesDirArgs,
    /// Deletes (and decisions expired for as long) older than this are
    /// dropped from the decision stream, checked every quarter of it; an
    /// edge away for longer rebuilds its table from the stream when it returns.
    #[arg(long, default_value = "24h")]
    tombstone_retention: String,
    /// How often the challenge keys rotate (a new key signs; the previous
    /// ones keep verifying for 7 days, so nobody is logged out).
    #[arg(long, default_value = "24h")]
    key_rotation: String,
}

/// Timeout of one JetStream request or publish acknowledgement.
#[cfg(feature = "nats")]
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(not(feature = "nats"))]
pub fn run(_args: ControlArgs) -> anyhow::Result<i32> {
    Err(crate::features::without_nats("palisade control"))
}

#[cfg(feature = "nats")]
pub fn run(args: ControlArgs) -> anyhow::Result<i32> {
    let roots = args.rules_dir.roots()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let (token, generated) = crate::up::admin_token(args.admin_token.clone(), &args.data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let opts = NatsOptions {
            prefix: args.nats_prefix.clone(),
            node_id: args.node_id.clone(),
            credentials_file: args.nats_creds.clone(),
            tls_root_ca: args.nats_tls_ca.clone(),
            replicas: args.replicas.policy(),
            reconcile_replicas: true,
            // A request lost with a server fails fast, so that the retries
            // (--nats-retry-for) reach the newly elected leader soon after
            // the election instead of waiting out a long timeout.
            request_timeout: REQUEST_TIMEOUT,
            ..NatsOptions::default()
        };
        let retry_for = palisade_policy::duration::parse_duration_ms(&args.nats_retry_for)
            .map_err(|e| anyhow::anyhow!("--nats-retry-for: {e}"))?;
        // Wait for the bus: a control plane without it has nothing to serve.
        let nats = loop {
            match NatsMesh::connect(&args.nats, opts.clone()).await {
                Ok(m) => break Arc::new(m),
                Err(e) => {
                    tracing::warn!(error = %e, nats = %args.nats, "cannot open the mesh; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        };
        crate::replicas::report(&nats.replication());
        tokio::spawn(crate::replicas::keep_reconciling(nats.clone()));
        // API calls ride out a leader election instead of failing at once.
        let mesh = Arc::new(Patient::new(
            nats.clone(),
            std::time::Duration::from_millis(retry_for),
        ));
        let retries = mesh.stats();
        // Every control plane keeps all events: one durable consumer each.
        let retention = args.retention.retention()?;
        let store = Arc::new(EventStore::open(&args.data_dir).map_err(|e| anyhow::anyhow!("{e}"))?);
        tokio::spawn(palisade_control::backend::prune_store(
            store.clone(),
            retention,
            std::time::Duration::from_secs(60),
            now_ms,
        ));
        let durable: String = format!("control-{}", args.node_id)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let correlation = palisade_control::correlate::CorrelationConfig {
            window_ms: palisade_policy::duration::parse_duration_ms(&args.correlation_window)
                .map_err(|e| anyhow::anyhow!("--correlation-window: {e}"))?,
            min_nodes_per_source: args.incident_source_nodes,
            min_nodes_per_rule: args.incident_rule_nodes,
        };
        let incident_ban = args
            .incident_ban
            .as_deref()
            .map(palisade_policy::duration::parse_duration_ms)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--incident-ban: {e}"))?;
        let backend: Arc<MeshBackend<_>> = Arc::new(
            MeshBackend::new(mesh.clone(), Arc::new(now_ms))
                .with_max_decisions(args.max_decisions)
                .with_events(store.clone())
                .with_rule_roots(roots),
        );
        tokio::spawn(palisade_control::backend::ingest_events(
            mesh.clone(),
            store.clone(),
            durable,
            correlation,
            incident_ban.map(|duration_ms| palisade_control::backend::IncidentBans {
                duration_ms,
                backend: backend.clone(),
            }),
        ));
        let rotate_every = palisade_policy::duration::parse_duration_ms(&args.key_rotation)
            .map_err(|e| anyhow::anyhow!("--key-rotation: {e}"))?
            .max(60_000);
        tokio::spawn(palisade_control::keys::keep_keys(
            mesh.clone(),
            std::time::Duration::from_millis(rotate_every),
            palisade_control::keys::DEFAULT_KEEP_FOR,
            now_ms,
        ));
        let retention_ms = palisade_policy::duration::parse_duration_ms(&args.tombstone_retention)
            .map_err(|e| anyhow::anyhow!("--tombstone-retention: {e}"))?
            .max(1_000);
        tokio::spawn({
            let mesh = nats.clone();
            async move {
                let mut tick =
                    tokio::time::interval(std::time::Duration::from_millis(retention_ms / 4));
                loop {
                    tick.tick().await;
                    match mesh.compact_decisions(now_ms(), retention_ms).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(dropped = n, "decision stream compacted"),
                        Err(e) => tracing::warn!(error = %e, "decision stream compaction failed"),
                    }
                }
            }
        });
        let cfg = ApiConfig {
            backend,
            tokens: Arc::new(palisade_control::Tokens::with_roles(
                token.clone(),
                args.operator_token.clone(),
                args.viewer_token.clone(),
            )),
            metrics: Arc::new(move || {
                format!(
                    "{}{}",
                    nats.replication().render_metrics(),
                    retries.render_metrics()
                )
            }),
            clock: Arc::new(now_ms),
        };
        let listener = tokio::net::TcpListener::from_std(crate::listen::bind("--api", &args.api)?)
            .with_context(|| format!("the API listener on {}", args.api))?;
        tracing::info!(api = %args.api, nats = %args.nats, "palisade control");
        if generated {
            // The secret itself is never printed: standard error ends up in logs.
            let path = args.data_dir.join("admin.token");
            eprintln!(
                "palisade: generated an admin token in {} (export PALISADE_TOKEN=$(cat {}))",
                path.display(),
                path.display()
            );
        }
        // One deadline per API request: the mesh calls a request makes one
        // after the other share `--nats-retry-for`.
        let budget = std::time::Duration::from_millis(retry_for);
        let app = palisade_control::router(cfg).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                palisade_mesh::patient::within(budget, next.run(req)).await
            },
        ));
        axum::serve(listener, app).await?;
        Ok(0)
    })
}
