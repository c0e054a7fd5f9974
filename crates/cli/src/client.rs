//! `palisade decisions …`: a thin client of the management API.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use palisade_policy::Decision;

#[derive(Args)]
pub struct ApiArgs {
    /// Base URL of the management API.
    #[arg(
        long,
        env = "PALISADE_API",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    pub api: String,
    /// Bearer token (see `DATA_DIR/admin.token`).
    #[arg(long, env = "PALISADE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client of the management API.
pub struct Api {
    pub base: String,
    auth: String,
    pub http: reqwest::Client,
    pub json: bool,
}

impl Api {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Api> {
        let Some(token) = args.token.clone() else {
            bail!("no token: pass --token or set PALISADE_TOKEN (palisade up writes it to DATA_DIR/admin.token)");
        };
        Ok(Api {
            base: args.api.trim_end_matches('/').to_string(),
            auth: format!("Bearer {token}"),
            http: reqwest::Client::new(),
            json: args.json,
        })
    }

    /// The authorization header's value.
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// Sends a request to `path` and returns the checked response.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
        check(resp).await
    }
}

/// Runs an async command on a small runtime.
pub fn block_on<T, F: std::future::Future<Output = anyhow::Result<T>>>(f: F) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// Filters of `palisade events`.
#[derive(Args)]
pub struct EventArgs {
    /// Only events of the last DURATION (e.g. 10m, 1h).
    #[arg(long)]
    since: Option<String>,
    /// Only from this node.
    #[arg(long)]
    node: Option<String>,
    /// Only for this client address.
    #[arg(long)]
    client_ip: Option<String>,
    /// Only for this rule, limit or decision id.
    #[arg(long)]
    rule: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// `palisade events`.
pub fn events(args: ApiArgs, f: EventArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let api = Api::new(&args)?;
        let mut q = vec![format!("limit={}", f.limit)];
        if let Some(s) = &f.since {
            let ms = palisade_policy::duration::parse_duration_ms(s).map_err(anyhow::Error::msg)?;
            q.push(format!(
                "since={}",
                palisade_edge::now_ms().saturating_sub(ms)
            ));
        }
        for (k, v) in [
            ("node", &f.node),
            ("client_ip", &f.client_ip),
            ("rule", &f.rule),
        ] {
            if let Some(v) = v {
                let enc: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.:".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                q.push(format!("{k}={enc}"));
            }
        }
        let path = format!("/api/v1/events?{}", q.join("&"));
        let list: Vec<palisade_policy::SecurityEvent> = api
            .call(reqwest::Method::GET, &path, None)
            .await?
            .json()
            .await?;
        if api.json {
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(0);
        }
        let now = palisade_edge::now_ms();
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    crate::table::when(now, e.time_ms),
                    e.node.clone(),
                    e.client_ip.to_string(),
                    e.check.as_str().to_string(),
                    e.rule_id.clone(),
                    e.action.to_string(),
                    if e.simulate { "yes" } else { "no" }.to_string(),
                    format!("{} {}", e.method, e.path),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(
                &[
                    "TIME",
                    "NODE",
                    "CLIENT",
                    "CHECK",
                    "RULE",
                    "ACTION",
                    "SIMULATED",
                    "REQUEST"
                ],
                &rows
            )
        );
        Ok(0)
    })
}

/// `palisade nodes`.
pub fn nodes(args: ApiArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let api = Api::new(&args)?;
        let nodes: Vec<serde_json::Value> = api
            .call(reqwest::Method::GET, "/api/v1/nodes", None)
            .await?
            .json()
            .await?;
        if api.json {
            println!("{}", serde_json::to_string_pretty(&nodes)?);
            return Ok(0);
        }
        let now = palisade_edge::now_ms();
        let rows: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                vec![
                    n["node_id"].as_str().unwrap_or("").to_string(),
                    n["address"].as_str().unwrap_or("").to_string(),
                    policy_cell(n),
                    n["decisions"].as_u64().unwrap_or(0).to_string(),
                    n["decisions_seq"].as_u64().unwrap_or(0).to_string(),
                    if n["healthy"].as_bool().unwrap_or(false) {
                        "ok"
                    } else {
                        "stale"
                    }
                    .to_string(),
                    crs_cell(n),
                    crate::table::ago(now, n["last_heartbeat_ms"].as_u64().unwrap_or(0)),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(
                &[
                    "NODE",
                    "ADDRESS",
                    "POLICY",
                    "DECISIONS",
                    "LOG SEQ",
                    "HEALTH",
                    "CRS (VERSION DIGEST)",
                    "LAST HEARTBEAT"
                ],
                &rows
            )
        );
        let differ = nodes
            .iter()
            .filter(|n| n["crs_differs"].as_bool().unwrap_or(false))
            .count();
        if differ > 0 {
            println!(
                "* {differ} node(s) run other CRS rules than most nodes of this cluster (another rule-file digest, or no WAF)"
            );
        }
        for n in &nodes {
            if let Some(v) = n["policy_refused"]["version"].as_u64() {
                println!(
                    "! {} refused policy v{v}: {}",
                    n["node_id"].as_str().unwrap_or(""),
                    crate::rollout::one_line(n["policy_refused"]["reason"].as_str().unwrap_or(""))
                );
            }
        }
        Ok(0)
    })
}

/// `palisade waf model`: the fleet's positive model, busiest routes first.
pub fn waf_model(args: ApiArgs, limit: usize) -> anyhow::Result<i32> {
    use palisade_policy::learn::model::{ModelView, ValueView};
    block_on(async move {
        let api = Api::new(&args)?;
        let path = format!("/api/v1/waf/model?limit={}", limit.clamp(1, 10_000));
        let view: ModelView = api
            .call(reqwest::Method::GET, &path, None)
            .await?
            .json()
            .await?;
        if api.json {
            println!("{}", serde_json::to_string_pretty(&view)?);
            return Ok(0);
        }
        // `GET 120 (14 networks)`, untrusted values marked with `?`.
        let list = |vs: &[ValueView]| {
            if vs.is_empty() {
                return "-".to_string();
            }
            vs.iter()
                .map(|v| {
                    format!(
                        "{}{} {}/{}",
                        v.value,
                        if v.trusted { "" } else { "?" },
                        v.count,
                        v.sources
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows: Vec<Vec<String>> = view
            .routes
            .iter()
            .map(|r| {
                vec![
                    r.route.clone(),
                    r.requests.to_string(),
                    r.sources.to_string(),
                    if r.mature { "yes" } else { "no" }.to_string(),
                    list(&r.methods),
                    list(&r.content_types),
                    r.params
                        .iter()
                        .map(|(n, s)| format!("{n}: {s}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        print!(
            "{}",
            crate::table::render(
                &[
                    "ROUTE",
                    "REQUESTS",
                    "NETWORKS",
                    "MATURE",
                    "METHODS",
                    "CONTENT TYPES",
                    "PARAMETERS"
                ],
                &rows
            )
        );
        println!(
            "{} of {} routes, merged from {} node(s). Values: requests/networks; `?`: not trusted yet (fewer networks than [waf.model] min_sources).",
            view.routes.len(),
            view.total_routes,
            view.nodes
        );
        Ok(0)
    })
}

#[derive(Subcommand)]
pub enum DecisionsCommand {
    /// Add a decision (ban by default).
    Add {
        /// ip, cidr, country or asn.
        #[arg(long, default_value = "ip")]
        scope: String,
        /// Address, network, country code or AS number.
        #[arg(long)]
        value: String,
        /// ban or allow.
        #[arg(long, default_value = "ban")]
        action: String,
        /// How long (e.g. 10m, 4h). Required unless --permanent.
        #[arg(long, required_unless_present = "permanent")]
        duration: Option<String>,
        /// Until deleted (instead of --duration).
        #[arg(long, conflicts_with = "duration")]
        permanent: bool,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Log matches only, do not enforce.
        #[arg(long)]
        simulated: bool,
        /// Accept a ban broader than /8 (IPv4) or /32 (IPv6).
        #[arg(long)]
        force: bool,
    },
    /// List active decisions.
    List {
        /// Only this scope (ip, cidr, country, asn).
        #[arg(long)]
        scope: Option<String>,
        /// Only values containing this text.
        #[arg(long)]
        value: Option<String>,
        /// Only origins starting with this (api:, escalation:, incident:).
        #[arg(long)]
        origin: Option<String>,
        /// At most this many (default: every match, fetched page by page).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete a decision by id.
    Delete {
        /// The decision id.
        id: u64,
    },
    /// Import a blocklist: CrowdSec exports (cscli decisions list -o json or
    /// -o raw) or one ip/network per line. Nothing is imported when an entry
    /// is invalid (each is reported with its line) unless --skip-invalid.
    Import(crate::import_cmd::ImportArgs),
}

pub async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let parsed = serde_json::from_str::<serde_json::Value>(&body).ok();
    let mut msg = parsed
        .as_ref()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(body);
    // Every error of an invalid policy, one per line.
    for e in parsed
        .as_ref()
        .and_then(|v| v["errors"].as_array())
        .into_iter()
        .flatten()
    {
        let text = e["message"].as_str().unwrap_or("");
        match (e["line"].as_u64(), e["column"].as_u64()) {
            (Some(l), Some(c)) => msg.push_str(&format!("\n  line {l}, column {c}: {text}")),
            _ => msg.push_str(&format!("\n  {text}")),
        }
    }
    bail!("{status}: {msg}")
}

fn print_table(ds: &[Decision]) {
    let now = palisade_edge::now_ms();
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            let expires = d
                .expires_at
                .map(|e| {
                    format!(
                        "in {}",
                        palisade_policy::duration::format_duration_ms(
                            e.saturating_sub(now) / 1000 * 1000
                        )
                    )
                })
                .unwrap_or_else(|| "never".into());
            vec![
                d.id.to_string(),
                d.scope.as_str().to_string(),
                d.value.clone(),
                d.action.as_str().to_string(),
                if d.simulated { "yes" } else { "no" }.to_string(),
                expires,
                d.reason.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(
            &[
                "ID",
                "SCOPE",
                "VALUE",
                "ACTION",
                "SIMULATED",
                "EXPIRES",
                "REASON"
            ],
            &rows
        )
    );
}

pub fn run(args: ApiArgs, cmd: DecisionsCommand) -> anyhow::Result<i32> {
    use reqwest::Method;
    block_on(async move {
        let api = Api::new(&args)?;
        match cmd {
            DecisionsCommand::Add {
                scope,
                value,
                action,
                duration,
                permanent,
                reason,
                simulated,
                force,
            } => {
                let body = serde_json::json!({
                    "scope": scope, "value": value, "action": action,
                    "duration": duration, "permanent": permanent, "reason": reason,
                    "simulated": simulated, "origin": "cli", "force": force,
                });
                let d: Decision = api
                    .call(
                        Method::POST,
                        "/api/v1/decisions",
                        Some(body.to_string().into()),
                    )
                    .await?
                    .json()
                    .await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    println!(
                        "added decision {}: {} {} {}",
                        d.id,
                        d.action.as_str(),
                        d.scope.as_str(),
                        d.value
                    );
                }
            }
            DecisionsCommand::List {
                scope,
                value,
                origin,
                limit,
            } => {
                // Page through the API (`after` = the previous page's
                // X-Next-After) until the limit or the last page.
                let mut filters = String::new();
                for (k, v) in [("scope", &scope), ("value", &value), ("origin", &origin)] {
                    if let Some(v) = v {
                        filters.push_str(&format!("&{k}={}", percent_encode(v)));
                    }
                }
                let mut ds: Vec<Decision> = Vec::new();
                let mut after: Option<u64> = None;
                loop {
                    let want =
                        limit.map_or(10_000, |l| l.saturating_sub(ds.len()).clamp(1, 10_000));
                    let mut path = format!("/api/v1/decisions?limit={want}{filters}");
                    if let Some(a) = after {
                        path.push_str(&format!("&after={a}"));
                    }
                    let resp = api.call(Method::GET, &path, None).await?;
                    let next = resp
                        .headers()
                        .get("x-next-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let page: Vec<Decision> = resp.json().await?;
                    ds.extend(page);
                    match next {
                        Some(n) if limit.is_none_or(|l| ds.len() < l) => after = Some(n),
                        _ => break,
                    }
                }
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&ds)?);
                } else {
                    print_table(&ds);
                }
            }
            DecisionsCommand::Import(args) => return crate::import_cmd::run(&api, args).await,
            DecisionsCommand::Delete { id } => {
                let d: Decision = api
                    .call(Method::DELETE, &format!("/api/v1/decisions/{id}"), None)
                    .await?
                    .json()
                    .await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    println!("deleted decision {}", d.id);
                }
            }
        }
        Ok(0)
    })
}

/// The POLICY column of `palisade nodes`: the version the node runs, and
/// the version it refused (`v3, refused v4 !`; the reasons follow the table).
fn policy_cell(n: &serde_json::Value) -> String {
    let running = n["policy_version"]
        .as_u64()
        .map(|v| format!("v{v}"))
        .unwrap_or_else(|| "-".into());
    match n["policy_refused"]["version"].as_u64() {
        Some(r) => format!("{running}, refused v{r} !"),
        None => running,
    }
}

/// The CRS column of `palisade nodes`: version and short digest, `*` when
/// the node runs other rules than most of the cluster.
fn crs_cell(n: &serde_json::Value) -> String {
    let differs = n["crs_differs"].as_bool().unwrap_or(false);
    let mark = if differs { " *" } else { "" };
    match n["crs_digest"].as_str() {
        Some(d) => format!(
            "{} {}{mark}",
            n["crs_version"].as_str().unwrap_or("?"),
            palisade_waf::crs::short_digest(d)
        ),
        None => format!("-{mark}"),
    }
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded
/// (for query values).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
