//! `palisade decisions import FILE`: a blocklist through
//! `POST /api/v1/decisions/import` (see `palisade_control::import`).

use anyhow::{bail, Context};
use clap::Args;

use crate::client::Api;

/// Options of `palisade decisions import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file (`-` reads standard input).
    pub file: std::path::PathBuf,
    /// lines (one ip or network per line), csv (cscli raw or import CSV) or
    /// crowdsec-json (cscli decisions list -o json). Default: from the file
    /// name (.csv, .json, .jsonl), else lines.
    #[arg(long)]
    pub format: Option<String>,
    /// Duration of entries that give none (e.g. 24h).
    #[arg(long)]
    pub duration: Option<String>,
    /// Entries that give no duration last until deleted.
    #[arg(long, conflicts_with = "duration")]
    pub permanent: bool,
    /// Reason of entries that give none.
    #[arg(long)]
    pub reason: Option<String>,
    /// ban or allow, for entries that give none.
    #[arg(long)]
    pub action: Option<String>,
    /// Log matches only, do not enforce.
    #[arg(long)]
    pub simulated: bool,
    /// Accept bans broader than /8 (IPv4) or /32 (IPv6).
    #[arg(long)]
    pub force: bool,
    /// Import the valid entries even when some are invalid (default: nothing
    /// is imported then).
    #[arg(long)]
    pub skip_invalid: bool,
}

fn format_of(args: &ImportArgs) -> String {
    if let Some(f) = &args.format {
        return f.clone();
    }
    match args.file.extension().and_then(|e| e.to_str()) {
        Some("csv") => "csv".into(),
        Some("json") | Some("jsonl") => "crowdsec-json".into(),
        _ => "lines".into(),
    }
}

/// Runs the import; exit code 1 when entries were rejected.
pub async fn run(api: &Api, args: ImportArgs) -> anyhow::Result<i32> {
    let body = if args.file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("reading stdin")?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/decisions/import", api.base))
        .context("the API address")?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("format", &format_of(&args));
        q.append_pair("origin", "cli");
        for (k, v) in [
            ("duration", &args.duration),
            ("reason", &args.reason),
            ("action", &args.action),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        for (k, on) in [
            ("permanent", args.permanent),
            ("simulated", args.simulated),
            ("force", args.force),
        ] {
            if on {
                q.append_pair(k, "true");
            }
        }
        if args.skip_invalid {
            q.append_pair("on_error", "skip");
        }
    }
    let started = std::time::Instant::now();
    let resp = api
        .http
        .post(url)
        .header("authorization", api.auth())
        .body(body)
        .send()
        .await
        .with_context(|| format!("calling {}", api.base))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if report.get("imported").is_none() {
        let msg = report["error"].as_str().unwrap_or(&text);
        bail!("{status}: {msg}");
    }
    if api.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in report["rejected"].as_array().into_iter().flatten() {
            let entry = r["entry"]
                .as_str()
                .map(|e| format!(" {e}"))
                .unwrap_or_default();
            eprintln!(
                "{}:{}{entry}: {}",
                args.file.display(),
                r["line"],
                r["error"].as_str().unwrap_or("")
            );
        }
        let rejected = report["rejected_total"].as_u64().unwrap_or(0);
        let listed = report["rejected"].as_array().map_or(0, Vec::len) as u64;
        if rejected > listed {
            eprintln!("… and {} more invalid entries", rejected - listed);
        }
        println!(
            "imported {} decisions in {:.1} s ({} repeated keys, {} expired skipped, {} invalid{})",
            report["imported"],
            started.elapsed().as_secs_f64(),
            report["duplicates"],
            report["skipped_expired"],
            rejected,
            if rejected > 0 && !args.skip_invalid {
                ": nothing imported; fix them or pass --skip-invalid"
            } else {
                ""
            }
        );
    }
    Ok(if status.is_success() && report["rejected_total"] == 0 {
        0
    } else {
        1
    })
}
