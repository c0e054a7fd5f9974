//! `palisade attack-mode on|off|status`: under-attack mode per host, through
//! the management API (`/api/v1/attack-mode`).

use crate::client::{block_on, Api, ApiArgs};
use clap::Subcommand;
use palisade_policy::Decision;

#[derive(Subcommand)]
pub enum AttackModeCommand {
    /// Turn under-attack mode on for a host, on every edge: the policy's
    /// `[attack_mode]` tightens its rate limits and flood thresholds.
    On {
        /// The host (`shop.example.com`; case and port do not matter).
        #[arg(long)]
        host: String,
        /// How long (`30m`, `6h`); until `attack-mode off` when absent.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: Option<String>,
        /// Log what it would tighten, do not enforce.
        #[arg(long)]
        simulated: bool,
    },
    /// Turn under-attack mode off for a host.
    Off {
        /// The host.
        #[arg(long)]
        host: String,
    },
    /// The hosts in under-attack mode.
    Status,
}

/// Percent-encodes a host for a path segment (host names need none; this
/// keeps anything else from changing the path).
fn segment(host: &str) -> String {
    host.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:[]".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn describe(d: &Decision) -> String {
    let until = match d.expires_at {
        Some(e) => format!(
            "for {}",
            palisade_policy::duration::format_duration_ms(
                e.saturating_sub(palisade_edge::now_ms()) / 1000 * 1000
            )
        ),
        None => "until turned off".into(),
    };
    let sim = if d.simulated { " (simulated)" } else { "" };
    format!("{}: under attack {until}{sim} (decision {})", d.value, d.id)
}

pub fn run(args: ApiArgs, cmd: AttackModeCommand) -> anyhow::Result<i32> {
    use reqwest::Method;
    block_on(async move {
        let api = Api::new(&args)?;
        match cmd {
            AttackModeCommand::On {
                host,
                duration,
                reason,
                simulated,
            } => {
                let body = serde_json::json!({
                    "duration": duration, "reason": reason, "simulated": simulated,
                });
                let d: Decision = api
                    .call(
                        Method::PUT,
                        &format!("/api/v1/attack-mode/{}", segment(&host)),
                        Some(body.to_string().into()),
                    )
                    .await?
                    .json()
                    .await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    println!("{}", describe(&d));
                }
            }
            AttackModeCommand::Off { host } => {
                let d: Decision = api
                    .call(
                        Method::DELETE,
                        &format!("/api/v1/attack-mode/{}", segment(&host)),
                        None,
                    )
                    .await?
                    .json()
                    .await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    println!("{}: under-attack mode off", d.value);
                }
            }
            AttackModeCommand::Status => {
                let ds: Vec<Decision> = api
                    .call(Method::GET, "/api/v1/attack-mode", None)
                    .await?
                    .json()
                    .await?;
                if api.json {
                    println!("{}", serde_json::to_string_pretty(&ds)?);
                } else if ds.is_empty() {
                    println!("no host is in under-attack mode");
                } else {
                    for d in &ds {
                        println!("{}", describe(d));
                    }
                }
            }
        }
        Ok(0)
    })
}
