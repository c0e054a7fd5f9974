//! `palisade policy …`

use crate::client::{block_on, Api, ApiArgs};
use anyhow::Context;
use clap::Subcommand;
use palisade_policy::Policy;
use reqwest::Method;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file offline; print every error with file, line and column.
    Validate {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Store a policy file as the new cluster version (validated first).
    Apply {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Show how a policy file differs from the current cluster version.
    Diff {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// List the stored policy versions.
    History,
    /// Make an old version current again (stored as a new version).
    Rollback {
        /// The version to restore.
        version: u64,
    },
    /// Print the current cluster policy.
    Show,
}

fn validate(file: &PathBuf) -> anyhow::Result<i32> {
    let name = file.display().to_string();
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return Ok(1);
        }
    };
    match Policy::from_toml(&src, &name) {
        Ok(p) => {
            // The CRS directory must exist (or, without crs_dir, be found).
            let crs = match p
                .waf
                .as_ref()
                .map(|w| palisade_waf::crs::locate(w.crs_dir.as_deref()))
            {
                Some(Err(e)) => {
                    eprintln!("{name}: waf: {e}");
                    eprintln!("{name}: 1 error(s)");
                    return Ok(1);
                }
                Some(Ok(found)) => found.rules_dir.display().to_string(),
                None => String::new(),
            };
            println!(
                "{name}: ok ({} rules, {} rate limits{}{})",
                p.rules.len(),
                p.rate_limits.len(),
                if p.allowlist.is_some() {
                    ", allowlist"
                } else {
                    ""
                },
                match &p.waf {
                    Some(w) => format!(", waf ({}, {crs})", w.mode.as_str()),
                    None => String::new(),
                }
            );
            Ok(0)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{name}: {} error(s)", errors.0.len());
            Ok(1)
        }
    }
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

pub fn run(api: ApiArgs, cmd: PolicyCommand) -> anyhow::Result<i32> {
    match cmd {
        PolicyCommand::Validate { file } => validate(&file),
        PolicyCommand::Apply { file } => block_on(async move {
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
            let v: serde_json::Value = api
                .call(Method::PUT, "/api/v1/policy", Some(src.into()))
                .await?
                .json()
                .await?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "policy version {} stored ({})",
                    v["version"],
                    v["digest"].as_str().unwrap_or("")
                );
            }
            Ok(0)
        }),
        PolicyCommand::Diff { file } => block_on(async move {
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
        PolicyCommand::History => block_on(async move {
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
            println!(
                "{:<8} {:<18} {:<24} CREATED (ms since epoch)",
                "VERSION", "DIGEST", "AUTHOR"
            );
            for v in &list {
                println!(
                    "{:<8} {:<18} {:<24} {}",
                    v["version"],
                    v["digest"].as_str().unwrap_or(""),
                    v["author"].as_str().unwrap_or(""),
                    v["created_at"]
                );
            }
            Ok(0)
        }),
        PolicyCommand::Rollback { version } => block_on(async move {
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
        PolicyCommand::Show => block_on(async move {
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
