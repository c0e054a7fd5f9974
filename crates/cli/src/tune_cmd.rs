//! `palisade waf tune`: reads WAF events (a file of JSON lines or an array,
//! or the control plane's store) and prints proposed `[[waf.exclusions]]`
//! (see `palisade_policy::waf::tune`); with `--policy` and `--out`, checks
//! them against the policy's CRS and writes the policy with them appended.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use palisade_policy::waf::tune::{self, TuneOptions};
use palisade_policy::{Policy, SecurityEvent};

#[derive(Args)]
pub struct TuneArgs {
    /// Events as JSON lines (what `palisade up --events FILE` writes) or as a
    /// JSON array (`palisade events --json`); `-` reads standard input.
    #[arg(long, required_unless_present = "api", conflicts_with = "api")]
    events: Option<PathBuf>,
    /// Read the events from this management API instead (token from
    /// `--token` or `PALISADE_TOKEN`).
    #[arg(long)]
    api: Option<String>,
    /// Bearer token for `--api`.
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With `--api`: how many of the newest WAF events to read.
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
    /// Leave out groups seen in fewer requests.
    #[arg(long, default_value_t = 1)]
    min_requests: usize,
    /// Sample values shown per proposal.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// A policy file whose `[waf]` section the proposals are for: they are
    /// checked against it (the policy with them must validate and its CRS
    /// compile).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Write the policy with the proposals appended to this file (needs
    /// `--policy`); push it with `palisade policy push` to apply it as a new
    /// version.
    #[arg(long, requires = "policy")]
    out: Option<PathBuf>,
    /// Print the proposals as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses events from text: a JSON array, or one JSON object per line.
/// Lines that are not events are counted, with the first few reported.
fn parse_events(text: &str, what: &str) -> anyhow::Result<Vec<SecurityEvent>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text)
            .with_context(|| format!("{what}: not a JSON array of events"));
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SecurityEvent>(line) {
            Ok(e) => out.push(e),
            Err(e) => bad.push((i + 1, e)),
        }
    }
    for (line, e) in bad.iter().take(5) {
        eprintln!("{what}:{line}: not an event ({e}); skipped");
    }
    if bad.len() > 5 {
        eprintln!(
            "{what}: {} more lines that are not events skipped",
            bad.len() - 5
        );
    }
    if out.is_empty() && !bad.is_empty() {
        bail!(
            "{what}: no events (every one of its {} lines failed to parse)",
            bad.len()
        );
    }
    Ok(out)
}

fn read_events(args: &TuneArgs) -> anyhow::Result<Vec<SecurityEvent>> {
    if let Some(api) = &args.api {
        let api_args = crate::client::ApiArgs {
            api: api.clone(),
            token: args.token.clone(),
            json: false,
        };
        let limit = args.limit;
        return crate::client::block_on(async {
            let api = crate::client::Api::new(&api_args)?;
            api.call(
                reqwest::Method::GET,
                &format!("/api/v1/events?limit={limit}"),
                None,
            )
            .await?
            .json::<Vec<SecurityEvent>>()
            .await
            .context("the events API answered something that is not a list of events")
        });
    }
    let path = args.events.as_deref().unwrap_or(Path::new("-"));
    let (text, what) = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading events from standard input")?;
        (s, "stdin".to_string())
    } else {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("reading events from {}", path.display()))?;
        (s, path.display().to_string())
    };
    parse_events(&text, &what)
}

/// The policy with `exclusions` (rendered TOML) appended, checked: it must
/// parse and its `[waf]` section compile.
fn with_exclusions(policy: &Path, exclusions: &str) -> anyhow::Result<String> {
    let src =
        std::fs::read_to_string(policy).with_context(|| format!("reading {}", policy.display()))?;
    let Ok(base) = Policy::from_toml(&src, &policy.display().to_string()) else {
        bail!(
            "{} does not validate on its own: fix it first (palisade policy validate {})",
            policy.display(),
            policy.display()
        );
    };
    if base.waf.is_none() {
        bail!(
            "{} has no [waf] section: exclusions need one",
            policy.display()
        );
    }
    let mut new = src.clone();
    if !new.ends_with('\n') {
        new.push('\n');
    }
    new.push('\n');
    new.push_str(exclusions);
    let name = format!("{} + proposed exclusions", policy.display());
    let p = Policy::from_toml(&new, &name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(w) = &p.waf {
        // Relative crs_dir: relative to the policy file's directory, as the
        // edge resolves it when run from there.
        let mut w = w.clone();
        if let Some(dir) = w.crs_dir.clone() {
            let dir = Path::new(&dir);
            if dir.is_relative() {
                if let Some(parent) = policy.parent() {
                    w.crs_dir = Some(parent.join(dir).display().to_string());
                }
            }
        }
        palisade_waf::Waf::build(&w)
            .map_err(|e| anyhow::anyhow!("the policy with the proposals does not compile: {e}"))?;
    }
    Ok(new)
}

pub fn run(args: TuneArgs) -> anyhow::Result<i32> {
    let events = read_events(&args)?;
    let opts = TuneOptions {
        min_requests: args.min_requests,
        samples: args.samples,
        ..TuneOptions::default()
    };
    let t = tune::propose(&events, &opts);
    let toml = tune::render(&t);
    if args.json {
        let list: Vec<serde_json::Value> = t
            .proposals
            .iter()
            .map(|p| {
                serde_json::json!({
                    "rule_id": p.rule_id,
                    "msg": p.msg,
                    "host": p.host,
                    "path_prefix": p.path_prefix,
                    "target": p.target,
                    "requests": p.requests,
                    "clients": p.clients,
                    "paths": p.paths,
                    "samples": p.samples,
                    "risk": p.risk.as_str(),
                    "note": p.note,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "events": t.events,
                "would_block": t.would_block,
                "proposals": list,
            }))?
        );
    } else if args.out.is_none() {
        print!("{toml}");
    }
    if let Some(policy) = &args.policy {
        let new = with_exclusions(policy, &toml)?;
        match &args.out {
            Some(out) => {
                std::fs::write(out, new).with_context(|| format!("writing {}", out.display()))?;
                eprintln!(
                    "{}: {} with {} proposed exclusions (checked: validates, CRS compiles); review it, then `palisade policy push {}`",
                    out.display(),
                    policy.display(),
                    t.proposals.len(),
                    out.display()
                );
            }
            None => eprintln!(
                "checked against {}: the policy with these exclusions validates and its CRS compiles",
                policy.display()
            ),
        }
    }
    if t.would_block == 0 {
        eprintln!(
            "no blocks or would-be blocks among {} events: nothing to tune",
            t.events
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_lines_or_array_and_bad_lines_are_reported() {
        let ev = r#"{"time_ms":1,"request_id":"r","client_ip":"192.0.2.1","check":"waf","rule_id":"949110","action":"log","simulate":true,"method":"GET","host":"h","path":"/"}"#;
        let lines = format!("{ev}\nnot json\n\n{ev}\n");
        assert_eq!(parse_events(&lines, "f").unwrap().len(), 2);
        assert_eq!(parse_events(&format!("[{ev},{ev}]"), "f").unwrap().len(), 2);
        let e = parse_events("nope\n{}\n", "f").unwrap_err().to_string();
        assert!(e.contains("no events"), "{e}");
        assert!(parse_events("[1]", "f").is_err());
    }
}
