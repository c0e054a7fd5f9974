//! What the control plane checks in a policy version before storing it,
//! beyond the TOML and its expressions: the `[waf]` section, loaded and
//! compiled as an edge would, with the paths it names confined to the rule
//! directories (`palisade_waf::confine`, docs/trust.md).
//!
//! The control plane may run where the rule files are not (a separate
//! machine): a version is refused when a path lies outside the rule
//! directories (told without looking at the file) or when its rules are
//! all here and do not compile; when a file it names, or the CRS it
//! searches for, is not on this machine, the version is stored with a
//! warning saying so, and the edges' refusals (`GET /api/v1/nodes`) tell
//! the rest. Must not: store anything (see [`crate::backend`]).

use palisade_policy::waf::WafSettings;
use palisade_waf::confine::{confine, RuleRoots};

/// The outcome of [`check_waf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WafCheck {
    /// Compiled here (or no `[waf]`); `warnings` say what was not checked.
    Stored { warnings: Vec<String> },
    /// Refused: every problem (paths, then the engine's errors).
    Invalid(Vec<String>),
}

/// Checks a policy's `[waf]` section (see the module documentation).
/// Reads and compiles rule files: call it off the async threads.
pub fn check_waf(waf: Option<&WafSettings>, roots: &RuleRoots) -> WafCheck {
    let Some(settings) = waf else {
        return WafCheck::Stored {
            warnings: Vec::new(),
        };
    };
    let confined = confine(settings, roots);
    if !confined.errors.is_empty() {
        return WafCheck::Invalid(confined.errors);
    }
    if !confined.missing.is_empty() {
        return WafCheck::Stored {
            warnings: vec![format!(
                "[waf] not compiled on the control plane: {} not on this machine; each edge compiles it and reports a refusal in GET /api/v1/nodes",
                confined.missing.join(", ")
            )],
        };
    }
    if settings.crs_dir.is_none() {
        if let Err(e) = palisade_waf::crs::locate(None) {
            return WafCheck::Stored {
                warnings: vec![format!(
                    "[waf] not compiled on the control plane: no CRS installed on this machine ({e}); each edge compiles it and reports a refusal in GET /api/v1/nodes"
                )],
            };
        }
    }
    match palisade_waf::Waf::build(&confined.settings) {
        Ok(_) => WafCheck::Stored {
            warnings: Vec::new(),
        },
        Err(palisade_waf::WafError::Invalid(list)) => WafCheck::Invalid(list),
        Err(e) => WafCheck::Invalid(vec![e.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn outside_paths_are_refused_and_missing_ones_warned_about() {
        let s =
            Scratch(std::env::temp_dir().join(format!("palisade-check-{}", std::process::id())));
        std::fs::create_dir_all(&s.0).unwrap();
        let roots = RuleRoots::new(vec![s.0.clone()]).unwrap();
        let waf = |extra: &str| WafSettings {
            extra_rules: vec![extra.to_string()],
            ..WafSettings::default()
        };
        match check_waf(Some(&waf("/etc/passwd")), &roots) {
            WafCheck::Invalid(e) => {
                assert_eq!(e.len(), 1);
                assert!(
                    e[0].contains("extra_rules") && e[0].contains("/etc/passwd"),
                    "{e:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        let missing = s.0.join("later.conf");
        match check_waf(Some(&waf(missing.to_str().unwrap())), &roots) {
            WafCheck::Stored { warnings } => {
                assert!(warnings[0].contains("later.conf"), "{warnings:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_waf(None, &roots),
            WafCheck::Stored {
                warnings: Vec::new()
            }
        );
    }
}
