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
    api: String,
    /// Bearer token (see `DATA_DIR/admin.token`).
    #[arg(long, env = "PALISADE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
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
        /// How long (e.g. 10m, 4h); omit for until deleted.
        #[arg(long)]
        duration: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Log matches only, do not enforce.
        #[arg(long)]
        simulated: bool,
    },
    /// List active decisions.
    List,
    /// Delete a decision by id.
    Delete {
        /// The decision id.
        id: u64,
    },
}

async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(body);
    bail!("{status}: {msg}")
}

fn print_table(ds: &[Decision]) {
    println!(
        "{:<8} {:<8} {:<40} {:<7} {:<10} {:<20} REASON",
        "ID", "SCOPE", "VALUE", "ACTION", "SIMULATED", "EXPIRES"
    );
    for d in ds {
        let expires = d
            .expires_at
            .map(|e| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                format!(
                    "in {}",
                    palisade_policy::duration::format_duration_ms(
                        e.saturating_sub(now) / 1000 * 1000
                    )
                )
            })
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<8} {:<8} {:<40} {:<7} {:<10} {:<20} {}",
            d.id,
            d.scope.as_str(),
            d.value,
            d.action.as_str(),
            d.simulated,
            expires,
            d.reason
        );
    }
}

pub fn run(api: ApiArgs, cmd: DecisionsCommand) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let Some(token) = api.token.clone() else {
            bail!("no token: pass --token or set PALISADE_TOKEN (palisade up writes it to DATA_DIR/admin.token)");
        };
        let base = api.api.trim_end_matches('/');
        let http = reqwest::Client::new();
        let auth = format!("Bearer {token}");
        match cmd {
            DecisionsCommand::Add { scope, value, action, duration, reason, simulated } => {
                let body = serde_json::json!({
                    "scope": scope, "value": value, "action": action,
                    "duration": duration, "reason": reason, "simulated": simulated, "origin": "cli",
                });
                let resp = http
                    .post(format!("{base}/api/v1/decisions"))
                    .header("authorization", &auth)
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("calling {base}"))?;
                let d: Decision = check(resp).await?.json().await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    println!("added decision {}: {} {} {}", d.id, d.action.as_str(), d.scope.as_str(), d.value);
                }
            }
            DecisionsCommand::List => {
                let resp = http
                    .get(format!("{base}/api/v1/decisions"))
                    .header("authorization", &auth)
                    .send()
                    .await
                    .with_context(|| format!("calling {base}"))?;
                let ds: Vec<Decision> = check(resp).await?.json().await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&ds)?);
                } else {
                    print_table(&ds);
                }
            }
            DecisionsCommand::Delete { id } => {
                let resp = http
                    .delete(format!("{base}/api/v1/decisions/{id}"))
                    .header("authorization", &auth)
                    .send()
                    .await
                    .with_context(|| format!("calling {base}"))?;
                let d: Decision = check(resp).await?.json().await?;
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
