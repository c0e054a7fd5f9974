//! `palisade up`: one edge and the management API in one process, no external service.

use anyhow::{bail, Context};
use clap::Args;
use palisade_control::{ApiConfig, EventStore, MeshBackend};
use palisade_edge::sync::{self, SyncConfig};
use palisade_edge::{now_ms, EdgeConfig, EdgeServer, Limits, TlsConfig, UpstreamSpec};
use palisade_mesh::memory::MemoryMesh;
use palisade_mesh::{DecisionOp, Mesh};
use palisade_policy::Decision;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Flags of the data plane, shared by `palisade up` and `palisade edge`.
#[derive(Args)]
pub struct EdgeArgs {
    /// Address of the HTTP listener (HTTP/1.1 and h2c).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Upstream URL, http://HOST[:PORT] or https://HOST[:PORT] (repeatable;
    /// `palisade up` without one starts a built-in demo origin).
    #[arg(long = "upstream")]
    pub upstreams: Vec<String>,
    /// Proxy worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Node id used in events, metrics and heartbeats.
    #[arg(long, default_value = "edge-1")]
    pub node_id: String,
    /// Network of a proxy allowed to set the client address with X-Forwarded-For (repeatable).
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// MaxMind country database (.mmdb).
    #[arg(long)]
    pub geoip_country: Option<PathBuf>,
    /// MaxMind ASN database (.mmdb).
    #[arg(long)]
    pub geoip_asn: Option<PathBuf>,
    /// Address of a TLS listener (needs --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Write security events (JSON lines) to this file instead of standard output.
    #[arg(long)]
    pub events: Option<PathBuf>,
    #[command(flatten)]
    pub rules_dir: crate::rules_dir::RulesDirArgs,
    /// Maximum request headers.
    #[arg(long, default_value_t = Limits::default().max_headers)]
    pub max_headers: usize,
    /// Maximum total header bytes.
    #[arg(long, default_value_t = Limits::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// Maximum request-target length.
    #[arg(long, default_value_t = Limits::default().max_uri_bytes)]
    pub max_uri_bytes: usize,
    /// Maximum request body bytes (0: no limit).
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: u64,
    /// Cap on request body bytes held back for WAF inspection, all requests together.
    #[arg(long, default_value_t = Limits::default().body_buffer_bytes)]
    pub body_buffer_bytes: usize,
    /// How long a request body waits for room under --body-buffer-bytes before 503, in milliseconds.
    #[arg(long, default_value_t = Limits::default().body_buffer_wait.as_millis() as u64)]
    pub body_buffer_wait_ms: u64,
    /// Cap on response body bytes held back for inspection (past it responses pass uninspected).
    #[arg(long, default_value_t = Limits::default().response_buffer_bytes)]
    pub response_buffer_bytes: usize,
    /// Active decisions held at most: past it no escalation decision is
    /// issued, and (in `palisade up`, whose API writes decisions) an
    /// operator's new decision evicts the oldest automatic one, or gets 507.
    #[arg(long, default_value_t = Limits::default().max_decisions, env = "PALISADE_MAX_DECISIONS")]
    pub max_decisions: usize,
    /// Active health check interval, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub health_interval_ms: u64,
}

impl EdgeArgs {
    /// The edge configuration for these flags.
    pub fn config(
        &self,
        upstreams: Vec<UpstreamSpec>,
        policy_path: Option<PathBuf>,
    ) -> anyhow::Result<EdgeConfig> {
        let tls = match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (Some(listen), Some(cert), Some(key)) => Some(TlsConfig {
                listen: listen.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            _ => bail!("--tls-listen, --tls-cert and --tls-key go together"),
        };
        let defaults = EdgeConfig::default();
        Ok(EdgeConfig {
            node_id: self.node_id.clone(),
            listen: vec![self.listen.clone()],
            tls,
            upstreams,
            trusted_proxies: self.trusted_proxies.clone(),
            policy_path,
            geoip_country: self.geoip_country.clone(),
            geoip_asn: self.geoip_asn.clone(),
            threads: self.threads.unwrap_or(defaults.threads),
            limits: Limits {
                max_headers: self.max_headers,
                max_header_bytes: self.max_header_bytes,
                max_uri_bytes: self.max_uri_bytes,
                max_body_bytes: self.max_body_bytes,
                body_buffer_bytes: self.body_buffer_bytes,
                body_buffer_wait: Duration::from_millis(self.body_buffer_wait_ms),
                response_buffer_bytes: self.response_buffer_bytes,
                max_decisions: self.max_decisions.max(1),
            },
            health_check_interval: Duration::from_millis(self.health_interval_ms.max(50)),
            events_path: self.events.clone(),
            rule_roots: self.rules_dir.roots()?,
            ..defaults
        })
    }

    /// The upstreams given with --upstream.
    pub fn upstream_specs(&self) -> anyhow::Result<Vec<UpstreamSpec>> {
        self.upstreams
            .iter()
            .map(|u| UpstreamSpec::parse(u).map_err(anyhow::Error::msg))
            .collect()
    }
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    edge: EdgeArgs,
    #[command(flatten)]
    retention: crate::retention::RetentionArgs,
    /// Address of the management API (and /metrics).
    #[arg(long, default_value = "127.0.0.1:9090")]
    api: String,
    /// Policy file (TOML; a `[waf]` section turns on the OWASP CRS WAF),
    /// hot-reloaded on change and on SIGHUP.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Directory for state (the generated admin token).
    #[arg(long, default_value = "palisade-data")]
    data_dir: PathBuf,
    /// Bearer token of the API (default: DATA_DIR/admin.token, generated on first start).
    #[arg(long, env = "PALISADE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Token of the `operator` role: reads, and adds or deletes decisions.
    #[arg(long, env = "PALISADE_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// Token of the `viewer` role: reads only.
    #[arg(long, env = "PALISADE_VIEWER_TOKEN", hide_env_values = true)]
    viewer_token: Option<String>,
    /// Decisions to load at start: a JSON array or JSON lines of objects shaped
    /// like the body of `POST /api/v1/decisions`.
    #[arg(long)]
    decisions: Option<PathBuf>,
}

/// Loads decisions from a JSON array or JSON-lines file. Every bad entry is reported with its line.
fn load_decisions(path: &Path) -> anyhow::Result<Vec<Decision>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let now = now_ms();
    let mut errors = Vec::new();
    let mut ds = Vec::new();
    let mut push = |line: usize, nd: Result<palisade_control::NewDecision, String>| match nd
        .and_then(|nd| nd.into_decision(now, "file"))
    {
        Ok(d) => ds.push(d),
        Err(e) => errors.push(format!("{}:{line}: {e}", path.display())),
    };
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<serde_json::Value>>(&text) {
            Ok(items) => {
                for (i, v) in items.into_iter().enumerate() {
                    push(i + 1, serde_json::from_value(v).map_err(|e| e.to_string()));
                }
            }
            Err(e) => errors.push(format!(
                "{}:{}:{}: {e}",
                path.display(),
                e.line(),
                e.column()
            )),
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            push(i + 1, serde_json::from_str(line).map_err(|e| e.to_string()));
        }
    }
    if !errors.is_empty() {
        bail!("invalid decisions file:\n{}", errors.join("\n"));
    }
    Ok(ds)
}

/// Reads, or creates, the admin token.
pub(crate) fn admin_token(
    given: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(String, bool)> {
    if let Some(t) = given.filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_string(), false));
    }
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok((t.trim().to_string(), false));
        }
    }
    let mut bytes = [0u8; 24];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(f, "{token}")?;
    }
    Ok((token, true))
}

/// Bytes of events `palisade up`'s in-process log holds while its control
/// plane stores them (`SecurityEvent::approx_bytes`: about 400 bytes for a
/// small event, so about 40,000 of them). The log only holds what is in
/// flight; this bounds it when a flood outpaces the store: past it the
/// oldest are dropped and never stored (the `--events` file still has them).
const UP_EVENT_LOG_BYTES: usize = 16 << 20;

/// The in-process mesh of `palisade up`: an event log bounded by
/// [`UP_EVENT_LOG_BYTES`], holding what its control plane has not stored yet.
fn in_process_mesh() -> MemoryMesh {
    MemoryMesh::with_event_limits(
        palisade_mesh::memory::DEFAULT_EVENT_CAPACITY,
        UP_EVENT_LOG_BYTES,
    )
    .with_interest_retention()
}

pub fn run(args: UpArgs) -> anyhow::Result<i32> {
    // Everything given on the command line is checked before anything starts:
    // upstream URLs, the listeners' addresses, the policy file and its WAF.
    if let Some(p) = &args.policy {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the policy file {} (--policy)", p.display()))?;
    }
    let mut upstreams = args.edge.upstream_specs()?;
    let api_listener = crate::listen::bind("--api", &args.api)?;
    crate::listen::check("--listen", &args.edge.listen)?;
    if let Some(tls) = &args.edge.tls_listen {
        crate::listen::check("--tls-listen", tls)?;
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let (token, generated) = admin_token(args.admin_token.clone(), &args.data_dir)?;

    // Upstreams: given, or a demo origin we start ourselves (once the edge is built).
    let demo_origin = if upstreams.is_empty() {
        let std_listener = crate::listen::bind("the demo origin", "127.0.0.1:0")?;
        let addr = std_listener.local_addr()?;
        upstreams.push(UpstreamSpec::parse(&format!("http://{addr}")).map_err(anyhow::Error::msg)?);
        Some(std_listener)
    } else {
        None
    };

    let cfg = args.edge.config(upstreams.clone(), args.policy.clone())?;
    let edge = EdgeServer::build(cfg)?;
    if let Some(std_listener) = demo_origin {
        let addr = std_listener.local_addr()?;
        crate::runtime::spawn_runtime_thread(
            "palisade-demo-origin",
            Some(1),
            move || async move {
                match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => {
                        if let Err(e) = crate::origin::serve(l).await {
                            tracing::error!(error = %e, "demo origin stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "demo origin listener"),
                }
            },
        )?;
        tracing::info!(%addr, "started the built-in demo origin");
    }
    let state = edge.state.clone();

    // Control plane and edge in one process, over the in-process mesh.
    // Events leave the in-process log once the control plane stored them.
    let mesh = in_process_mesh();
    // Read before the edge's sync loop starts writing to the same files.
    let persisted = sync::read_persisted(&args.data_dir);
    let events = sync::event_feed(&state)?;
    let retention = args.retention.retention()?;
    let store = Arc::new(EventStore::open(&args.data_dir).map_err(|e| anyhow::anyhow!("{e}"))?);
    let mut backend = MeshBackend::new(Arc::new(mesh.clone()), Arc::new(now_ms))
        .with_max_decisions(args.edge.max_decisions)
        .with_events(store.clone())
        .with_policy_archive(store.clone())
        .with_rule_roots(args.edge.rules_dir.roots()?)
        .with_local_edge({
            let st = state.clone();
            Arc::new(move || st.decisions_seq())
        });
    if args.policy.is_some() {
        let st = state.clone();
        backend = backend.with_local_model_settings(Arc::new(move || {
            st.policy().waf.as_ref().map(|w| w.model.clone())
        }));
        backend = backend.with_policy_read_only(
            "palisade up runs the policy file given with --policy: edit that file (it is reloaded on change and on SIGHUP), or start without --policy to manage policy versions through the API",
        );
    }
    let sync_cfg = SyncConfig {
        node_id: args.edge.node_id.clone(),
        address: args.edge.listen.clone(),
        data_dir: args.data_dir.clone(),
        heartbeat_interval: Duration::from_secs(2),
        spool_max_bytes: 64 * 1024 * 1024,
    };

    // What this node enforced before a restart is in force from the first request;
    // the in-process mesh gets it in the background (crate::up_restore).
    let policy_file = args.policy.is_some();
    let restore = match persisted {
        Some(p) => crate::up_restore::install(&state, p, policy_file, now_ms()),
        None => crate::up_restore::Pending::default(),
    };
    let (replayed_tx, replayed_rx) = std::sync::mpsc::channel::<()>();

    // The management API, the edge's sync loop and event ingestion on one small runtime.
    let api_cfg = ApiConfig {
        backend: Arc::new(backend),
        tokens: Arc::new(palisade_control::Tokens::with_roles(
            token.clone(),
            args.operator_token.clone(),
            args.viewer_token.clone(),
        )),
        metrics: {
            let state = state.clone();
            Arc::new(move || state.metrics.render())
        },
        clock: Arc::new(now_ms),
    };
    {
        let mesh = mesh.clone();
        let state = state.clone();
        let store = store.clone();
        let archive = store.clone();
        crate::runtime::spawn_runtime_thread("palisade-api", None, move || async move {
            // The persisted table and policy into the fresh mesh, before anything
            // else writes to it or reads it (crate::up_restore).
            let archived = if policy_file {
                Vec::new()
            } else {
                archive.policy_versions().unwrap_or_default()
            };
            match crate::up_restore::replay(&mesh, restore, archived).await {
                Ok(Some(v)) => {
                    let _ = archive.save_policy_version(&v);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "could not replay the persisted state into the mesh")
                }
            }
            let _ = replayed_tx.send(());
            let m = mesh.clone();
            tokio::spawn(sync::run(
                state,
                sync_cfg,
                move || {
                    let m = m.clone();
                    async move { Ok::<_, palisade_mesh::MeshError>(m) }
                },
                events,
            ));
            tokio::spawn(palisade_control::keys::keep_keys(
                Arc::new(mesh.clone()),
                palisade_control::keys::DEFAULT_ROTATE_EVERY,
                palisade_control::keys::DEFAULT_KEEP_FOR,
                now_ms,
            ));
            tokio::spawn(palisade_control::backend::prune_store(
                store.clone(),
                retention,
                std::time::Duration::from_secs(60),
                now_ms,
            ));
            tokio::spawn(palisade_control::backend::ingest_events(
                Arc::new(mesh),
                store,
                "control-up".into(),
                palisade_control::correlate::CorrelationConfig::default(),
                None,
            ));
            match tokio::net::TcpListener::from_std(api_listener) {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, palisade_control::router(api_cfg)).await {
                        tracing::error!(error = %e, "API stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "API listener"),
            }
        })?;
    }

    // Decisions from a file: into the decision log, in force before traffic is served.
    if let Some(path) = &args.decisions {
        let ds = load_decisions(path)?;
        // After the persisted table's replay (its numbering must not shift).
        replayed_rx
            .recv_timeout(Duration::from_secs(120))
            .context("the persisted state was not replayed in time")?;
        let n = ds.len();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let last = rt.block_on(async {
            mesh.publish_decisions(
                ds.into_iter()
                    .map(|decision| DecisionOp::Upsert { decision })
                    .collect(),
            )
            .await
        })?;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while state.decisions_seq() < last {
            if std::time::Instant::now() > deadline {
                bail!(
                    "the edge did not apply the {n} decisions of {} in time",
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::info!(decisions = n, file = %path.display(), "decisions loaded");
    }

    let ups: Vec<&str> = upstreams.iter().map(|u| u.url.as_str()).collect();
    tracing::info!(listen = %args.edge.listen, api = %args.api, upstreams = ?ups, policy = ?args.policy, "palisade up");
    if generated {
        // The secret itself is never printed: standard error ends up in logs.
        eprintln!(
            "palisade: generated an admin token in {} (export PALISADE_TOKEN=$(cat {}))",
            args.data_dir.join("admin.token").display(),
            args.data_dir.join("admin.token").display()
        );
    }
    edge.run_forever()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::{CheckKind, SecurityEvent};

    /// While the control plane lags, the in-process log holds at most
    /// UP_EVENT_LOG_BYTES of events (far fewer than its 100,000 events).
    #[tokio::test]
    async fn the_in_process_event_log_holds_at_most_its_bytes() {
        let mesh = in_process_mesh();
        let ev = |i: u64| SecurityEvent {
            time_ms: i,
            node: "edge-1".into(),
            request_id: format!("req-{i}"),
            client_ip: std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]),
            check: CheckKind::Rule,
            rule_id: "no-admin".into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "shop.example".into(),
            path: "/admin/x".into(),
            status: Some(403),
            waf: None,
            bot: None,
        };
        let size = ev(99_999).approx_bytes();
        for i in 0..90_000 {
            mesh.publish_event(&ev(i)).await.unwrap();
        }
        let held = mesh.events_retained();
        assert!(
            held * size <= UP_EVENT_LOG_BYTES,
            "{held} events of {size} B"
        );
        assert!(
            held * size > UP_EVENT_LOG_BYTES - 2 * size,
            "{held} events of {size} B"
        );
        assert_eq!(mesh.events_dropped(), 90_000 - held as u64);
    }
}
