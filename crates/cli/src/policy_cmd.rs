//! `palisade policy …`

use clap::Subcommand;
use palisade_policy::Policy;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file; print every error with file, line and column.
    Validate {
        /// The policy file (TOML).
        file: PathBuf,
    },
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<i32> {
    match cmd {
        PolicyCommand::Validate { file } => {
            let name = file.display().to_string();
            let src = match std::fs::read_to_string(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{name}: {e}");
                    return Ok(1);
                }
            };
            match Policy::from_toml(&src, &name) {
                Ok(p) => {
                    println!(
                        "{name}: ok ({} rules, {} rate limits{})",
                        p.rules.len(),
                        p.rate_limits.len(),
                        if p.allowlist.is_some() {
                            ", allowlist"
                        } else {
                            ""
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
    }
}
