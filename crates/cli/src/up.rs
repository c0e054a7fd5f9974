//! `palisade up`: one edge and the management API in one process, no external service.

use anyhow::{bail, Context};
use clap::Args;
use palisade_control::{ApiConfig, ApiError, Backend};
use palisade_edge::{now_ms, EdgeConfig, EdgeServer, EdgeState, Limits, TlsConfig, UpstreamSpec};
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
    /// Upstream URL (repeatable).
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
            },
            health_check_interval: Duration::from_millis(self.health_interval_ms.max(50)),
            events_path: self.events.clone(),
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
    /// Address of the management API (and /metrics).
    #[arg(long, default_value = "127.0.0.1:9090")]
    api: String,
    /// Policy file (TOML), hot-reloaded on change and on SIGHUP.
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

/// Decisions written through the API go straight into the edge's table.
struct LocalDecisions(Arc<EdgeState>);

#[async_trait::async_trait]
impl Backend for LocalDecisions {
    async fn add_decision(&self, d: Decision) -> Result<Decision, ApiError> {
        self.0
            .add_decision(d)
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }
    async fn list_decisions(&self) -> Result<Vec<Decision>, ApiError> {
        Ok(self.0.list_decisions(now_ms()))
    }
    async fn delete_decision(&self, id: u64) -> Result<Option<Decision>, ApiError> {
        Ok(self.0.delete_decision(id))
    }
}

/// Loads decisions from a JSON array or JSON-lines file. Every bad entry is reported with its line.
fn load_decisions(state: &EdgeState, path: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let now = now_ms();
    let mut errors = Vec::new();
    let mut ds = Vec::new();
    let mut push = |line: usize, nd: Result<palisade_control::NewDecision, String>| match nd
        .and_then(|nd| nd.into_decision(now))
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
    Ok(state.add_decisions(ds)?)
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

pub fn run(args: UpArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let (token, generated) = admin_token(args.admin_token.clone(), &args.data_dir)?;

    // Upstreams: given, or a demo origin we start ourselves.
    let mut upstreams = args.edge.upstream_specs()?;
    if upstreams.is_empty() {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the demo origin")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        std::thread::Builder::new()
            .name("palisade-demo-origin".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "demo origin runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => {
                            if let Err(e) = crate::origin::serve(l).await {
                                tracing::error!(error = %e, "demo origin stopped");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "demo origin listener"),
                    }
                });
            })?;
        upstreams.push(UpstreamSpec::parse(&format!("http://{addr}")).map_err(anyhow::Error::msg)?);
        tracing::info!(%addr, "started the built-in demo origin");
    }

    let cfg = args.edge.config(upstreams.clone(), args.policy.clone())?;
    let edge = EdgeServer::build(cfg)?;
    if let Some(path) = &args.decisions {
        let n = load_decisions(&edge.state, path)?;
        tracing::info!(decisions = n, file = %path.display(), "decisions loaded");
    }

    // The management API on its own small runtime.
    let api_listener = std::net::TcpListener::bind(&args.api)
        .with_context(|| format!("binding the API on {}", args.api))?;
    api_listener.set_nonblocking(true)?;
    let api_cfg = ApiConfig {
        backend: Arc::new(LocalDecisions(edge.state.clone())),
        tokens: Arc::new(
            palisade_control::Tokens::admin(token.clone())
                .with(
                    args.operator_token.clone().unwrap_or_default(),
                    palisade_control::Role::Operator,
                )
                .with(
                    args.viewer_token.clone().unwrap_or_default(),
                    palisade_control::Role::Viewer,
                ),
        ),
        metrics: {
            let state = edge.state.clone();
            Arc::new(move || state.metrics.render())
        },
        clock: Arc::new(now_ms),
    };
    std::thread::Builder::new()
        .name("palisade-api".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "API runtime");
                    return;
                }
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(api_listener) {
                    Ok(l) => {
                        if let Err(e) = axum::serve(l, palisade_control::router(api_cfg)).await {
                            tracing::error!(error = %e, "API stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "API listener"),
                }
            });
        })?;

    let ups: Vec<&str> = upstreams.iter().map(|u| u.url.as_str()).collect();
    tracing::info!(listen = %args.edge.listen, api = %args.api, upstreams = ?ups, policy = ?args.policy, "palisade up");
    if generated {
        eprintln!(
            "palisade: generated admin token (saved to {}):\n{token}",
            args.data_dir.join("admin.token").display()
        );
    }
    edge.run_forever()
}
