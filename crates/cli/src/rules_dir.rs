//! `--rules-dir`: where the files a pushed policy names may be (shared by
//! `palisade up`, `palisade edge` and `palisade control`; docs/trust.md).

use clap::Args;
use palisade_waf::confine::RuleRoots;
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct RulesDirArgs {
    /// A directory whose files policy versions pushed through the API or
    /// the mesh may name in [waf] (crs_dir, setup, plugins_dir,
    /// extra_rules); repeatable, or comma-separated in PALISADE_RULES_DIR.
    /// Default: /etc/palisade and the places the CRS search looks in (see
    /// docs/trust.md). A --policy file is not restricted.
    #[arg(long = "rules-dir", env = "PALISADE_RULES_DIR", value_delimiter = ',')]
    pub rules_dirs: Vec<PathBuf>,
}

impl RulesDirArgs {
    /// The directories given, or Palisade's defaults.
    pub fn roots(&self) -> anyhow::Result<RuleRoots> {
        if self.rules_dirs.is_empty() {
            return Ok(RuleRoots::default());
        }
        RuleRoots::new(self.rules_dirs.clone()).map_err(|e| anyhow::anyhow!("--rules-dir: {e}"))
    }
}
