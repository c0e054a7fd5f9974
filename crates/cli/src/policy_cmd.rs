//! `palisade policy …`

use crate::client::{block_on, Api, ApiArgs};
use anyhow::Context;
use clap::Subcommand;
use palisade_policy::Policy;
use reqwest::Method;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file offline, and load its WAF the way `palisade up`
    /// would (CRS rules found and compiled); print every error with file,
    /// line and column. Exit status 1 when anything is wrong.
    Validate {
        /// The policy file (TOML).
        file: PathBuf,
        /// Print the result as JSON (on standard output).
        #[arg(long)]
        json: bool,
    },
    /// Store a policy file as the new cluster version (validated first,
    /// here and by the control plane), then wait for the edges: print which
    /// run it and which refused it, with the reason. Exit status 1 when an
    /// edge refused it (the version stays stored).
    Apply {
        #[command(flatten)]
        api: ApiArgs,
        /// The policy file (TOML).
        file: PathBuf,
        /// How long to wait for every healthy edge to apply or refuse the
        /// version, in seconds (0: do not wait).
        #[arg(long, default_value_t = 15)]
        wait: u64,
    },
    /// Show how a policy file differs from the current cluster version.
    Diff {
        #[command(flatten)]
        api: ApiArgs,
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// List the stored policy versions.
    History {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make an old version current again (stored as a new version).
    Rollback {
        #[command(flatten)]
        api: ApiArgs,
        /// The version to restore.
        version: u64,
    },
    /// Print the current cluster policy.
    Show {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// One problem `policy validate` found.
#[derive(Serialize)]
struct Problem {
    /// `file` (unreadable), `policy` (the TOML and its expressions) or `waf`
    /// (loading and compiling the rule files).
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(col)) => write!(f, "{file}:{line}:{col}: ")?,
            (Some(file), _, _) => write!(f, "{file}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// The WAF as `policy validate` loaded it.
#[derive(Serialize)]
struct WafSummary {
    mode: String,
    crs_dir: String,
    /// Rules loaded (0 when the rules did not load).
    rules: usize,
    /// Rules left out (`skip_unsupported_rules`), one line each.
    skipped: Vec<String>,
}

/// What `policy validate --json` prints.
#[derive(Serialize)]
struct Report {
    file: String,
    ok: bool,
    errors: Vec<Problem>,
    rules: usize,
    rate_limits: usize,
    escalations: usize,
    allowlist: bool,
    waf: Option<WafSummary>,
}

/// The lines of a WAF load error: one per problem.
fn waf_problems(e: &palisade_waf::WafError) -> Vec<Problem> {
    let lines = match e {
        palisade_waf::WafError::Invalid(list) => list.clone(),
        other => vec![other.to_string()],
    };
    lines
        .into_iter()
        .map(|message| Problem {
            source: "waf",
            file: None,
            line: None,
            column: None,
            message,
        })
        .collect()
}

fn validate(file: &Path, json: bool) -> anyhow::Result<i32> {
    let name = file.display().to_string();
    let mut report = Report {
        file: name.clone(),
        ok: false,
        errors: Vec::new(),
        rules: 0,
        rate_limits: 0,
        escalations: 0,
        allowlist: false,
        waf: None,
    };
    match std::fs::read_to_string(file) {
        Err(e) => report.errors.push(Problem {
            source: "file",
            file: Some(name.clone()),
            line: None,
            column: None,
            message: e.to_string(),
        }),
        Ok(src) => {
            let (policy, waf) = Policy::check_toml(&src, &name);
            match policy {
                Ok(p) => {
                    report.rules = p.rules.len();
                    report.rate_limits = p.rate_limits.len();
                    report.escalations = p.escalations.len();
                    report.allowlist = p.allowlist.is_some();
                }
                Err(errors) => report.errors.extend(errors.0.into_iter().map(|e| Problem {
                    source: "policy",
                    file: Some(e.file),
                    line: Some(e.line),
                    column: Some(e.column),
                    message: e.message,
                })),
            }
            // The WAF is loaded as `palisade up` loads it, whenever the
            // `[waf]` section itself is valid.
            if let Some(settings) = waf {
                let mut summary = WafSummary {
                    mode: settings.mode.as_str().to_string(),
                    // Where CRS is, as the edge finds it (crs_dir, else the search).
                    crs_dir: palisade_waf::crs::locate(settings.crs_dir.as_deref())
                        .map(|c| c.rules_dir.display().to_string())
                        .unwrap_or_else(|_| settings.crs_dir.clone().unwrap_or_default()),
                    rules: 0,
                    skipped: Vec::new(),
                };
                match palisade_waf::Waf::build(&settings) {
                    Ok(w) => {
                        summary.rules = w.rules().len();
                        summary.skipped = w.skipped_rules().to_vec();
                    }
                    Err(e) => report.errors.extend(waf_problems(&e)),
                }
                report.waf = Some(summary);
            }
        }
    }
    report.ok = report.errors.is_empty();
    let status = i32::from(!report.ok);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(status);
    }
    if let Some(w) = &report.waf {
        for s in &w.skipped {
            eprintln!("{name}: WAF rule left out (skip_unsupported_rules): {s}");
        }
    }
    if !report.ok {
        for e in &report.errors {
            eprintln!("{e}");
        }
        eprintln!("{name}: {} error(s)", report.errors.len());
        return Ok(status);
    }
    println!(
        "{name}: ok ({} rules, {} rate limits{}{}{})",
        report.rules,
        report.rate_limits,
        if report.escalations > 0 {
            format!(", {} escalations", report.escalations)
        } else {
            String::new()
        },
        if report.allowlist { ", allowlist" } else { "" },
        match &report.waf {
            Some(w) => format!(
                ", waf: {} mode, {} CRS rules loaded from {}{}",
                w.mode,
                w.rules,
                w.crs_dir,
                if w.skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} left out", w.skipped.len())
                }
            ),
            None => String::new(),
        }
    );
    Ok(status)
}

/// A line diff (longest common subsequence): `-` removed, `+` added, ` ` kept.
pub fn diff_lines(old: &str, new: &str) -> Vec<(char, String)> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((' ', a[i].to_string()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(('+', b[j].to_string()));
            j += 1;
        } else {
            out.push(('-', a[i].to_string()));
            i += 1;
        }
    }
    out
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<i32> {
    match cmd {
        PolicyCommand::Validate { file, json } => validate(&file, json),
        PolicyCommand::Apply { api, file, wait } => block_on(async move {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // Validate locally first: the errors then name the file.
            if let Err(errors) = Policy::from_toml(&src, &file.display().to_string()) {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!(
                    "{}: {} error(s); nothing applied",
                    file.display(),
                    errors.0.len()
                );
                return Ok(1);
            }
            let api = Api::new(&api)?;
            let mut v: serde_json::Value = api
                .call(Method::PUT, "/api/v1/policy", Some(src.into()))
                .await?
                .json()
                .await?;
            let version = v["version"].as_u64().unwrap_or(0);
            if !api.json {
                println!(
                    "policy version {version} stored ({})",
                    v["digest"].as_str().unwrap_or("")
                );
                for w in v["warnings"].as_array().into_iter().flatten() {
                    eprintln!("warning: {}", w.as_str().unwrap_or(""));
                }
            }
            let edges = crate::rollout::wait(&api, version, Duration::from_secs(wait)).await?;
            let refused = edges.iter().filter(|e| e.refused.is_some()).count();
            if api.json {
                v["edges"] = serde_json::to_value(&edges)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if wait > 0 {
                print!("{}", crate::rollout::render(version, &edges));
            }
            if refused > 0 {
                eprintln!(
                    "{refused} edge(s) refused version {version} and keep enforcing the version they ran; fix the policy and apply it again"
                );
                return Ok(1);
            }
            Ok(0)
        }),
        PolicyCommand::Diff { api, file } => block_on(async move {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let api = Api::new(&api)?;
            let current = match api.call(Method::GET, "/api/v1/policy", None).await {
                Ok(r) => r.json::<serde_json::Value>().await?["source"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                Err(e) if e.to_string().starts_with("404") => String::new(),
                Err(e) => return Err(e),
            };
            let d = diff_lines(&current, &src);
            let changed = d.iter().any(|(k, _)| *k != ' ');
            for (k, line) in d.iter().filter(|(k, _)| *k != ' ') {
                println!("{k}{line}");
            }
            if !changed {
                println!("no changes");
            }
            Ok(i32::from(changed))
        }),
        PolicyCommand::History { api } => block_on(async move {
            let api = Api::new(&api)?;
            let list: Vec<serde_json::Value> = api
                .call(Method::GET, "/api/v1/policy/versions", None)
                .await?
                .json()
                .await?;
            if api.json {
                let slim: Vec<_> = list
                    .iter()
                    .map(|v| serde_json::json!({"version": v["version"], "digest": v["digest"], "author": v["author"], "created_at": v["created_at"]}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&slim)?);
                return Ok(0);
            }
            let now = palisade_edge::now_ms();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    vec![
                        v["version"].to_string(),
                        v["digest"].as_str().unwrap_or("").to_string(),
                        v["author"].as_str().unwrap_or("").to_string(),
                        v["created_at"]
                            .as_u64()
                            .map(|ms| crate::table::when(now, ms))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                crate::table::render(&["VERSION", "DIGEST", "AUTHOR", "CREATED"], &rows)
            );
            Ok(0)
        }),
        PolicyCommand::Rollback { api, version } => block_on(async move {
            let api = Api::new(&api)?;
            let v: serde_json::Value = api
                .call(
                    Method::POST,
                    &format!("/api/v1/policy/rollback/{version}"),
                    None,
                )
                .await?
                .json()
                .await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "rolled back to version {version}: now version {}",
                    v["version"]
                );
            }
            Ok(0)
        }),
        PolicyCommand::Show { api } => block_on(async move {
            let api = Api::new(&api)?;
            let v: serde_json::Value = api
                .call(Method::GET, "/api/v1/policy", None)
                .await?
                .json()
                .await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "# version {} by {}",
                    v["version"],
                    v["author"].as_str().unwrap_or("")
                );
                print!("{}", v["source"].as_str().unwrap_or(""));
            }
            Ok(0)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::diff_lines;

    #[test]
    fn diff_marks_added_and_removed_lines() {
        let d = diff_lines("a\nb\nc\n", "a\nc\nd\n");
        let s: Vec<String> = d.iter().map(|(k, l)| format!("{k}{l}")).collect();
        assert_eq!(s, vec![" a", "-b", " c", "+d"]);
        assert!(diff_lines("x", "x").iter().all(|(k, _)| *k == ' '));
    }
}
