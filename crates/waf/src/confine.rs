//! Where the files a *pushed* policy names may be: the rule directories an
//! edge (or a control plane) is configured with.
//!
//! Owns: [`RuleRoots`] (the directories, and Palisade's default ones) and
//! [`confine`], which checks every path-valued key of a `[waf]` section
//! (`crs_dir`, `setup`, `plugins_dir`, `extra_rules`) against them and
//! returns the settings with each path replaced by its canonical form (so
//! the engine opens exactly the file that was checked). Must not: read the
//! files (see [`crate::config`]).
//!
//! A policy file given on the command line (`--policy FILE`) is the
//! operator's own and is not confined; a policy version that arrives through
//! the mesh or the API is (docs/trust.md). The CRS the engine finds by
//! itself when `crs_dir` is left out is not named by the policy and is not
//! confined either.
//!
//! The checks, in order, so that nothing about a file outside the roots is
//! revealed (not even whether it exists): the path must be absolute, have no
//! `..` component and lie lexically inside a root; then it is canonicalized
//! (symlinks resolved) and must still lie inside a root's canonical form.

use std::path::{Component, Path, PathBuf};

use palisade_policy::waf::WafSettings;

use crate::crs::{self, SEARCH_PATHS};

/// Palisade's own directory for rule files and a CRS of the administrator's
/// choice; the first of the default roots.
pub const PALISADE_DIR: &str = "/etc/palisade";

/// The directories of the setup files that distribution packages install
/// beside their CRS (Debian's `/etc/modsecurity/crs/crs-setup.conf`, …).
const PACKAGED_SETUP_DIRS: &[&str] = &["/etc/modsecurity/crs", "/etc/httpd/modsecurity.d"];

/// The directories whose files pushed policies may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRoots {
    /// Absolute directories; a trailing `*` in the last component stands for
    /// any suffix (`/opt/coreruleset*`), as in [`SEARCH_PATHS`].
    roots: Vec<PathBuf>,
}

impl Default for RuleRoots {
    /// [`PALISADE_DIR`], every place of the CRS search ([`SEARCH_PATHS`]) and
    /// the directories of the packaged CRS setup files.
    fn default() -> Self {
        let mut roots: Vec<PathBuf> = vec![PathBuf::from(PALISADE_DIR)];
        roots.extend(SEARCH_PATHS.iter().map(PathBuf::from));
        roots.extend(PACKAGED_SETUP_DIRS.iter().map(PathBuf::from));
        roots.dedup();
        RuleRoots { roots }
    }
}

/// One path-valued key of `[waf]` and what it names.
struct Named<'a> {
    key: &'static str,
    path: &'a str,
}

/// The outcome of [`confine`].
#[derive(Debug, Clone, Default)]
pub struct Confined {
    /// The settings with every named path replaced by its canonical form
    /// (paths that do not exist here are left as given).
    pub settings: WafSettings,
    /// Paths that lie outside the roots, or are not valid: `key: message`
    /// (never the content of a file).
    pub errors: Vec<String>,
    /// Paths inside the roots that do not exist on this machine: `key path`.
    pub missing: Vec<String>,
}

impl RuleRoots {
    /// These directories (each must be absolute; see [`RuleRoots::parse`]).
    pub fn new(roots: Vec<PathBuf>) -> Result<RuleRoots, String> {
        if roots.is_empty() {
            return Err("no rule directory given".into());
        }
        for r in &roots {
            if !r.is_absolute() {
                return Err(format!(
                    "rule directory {}: must be an absolute path",
                    r.display()
                ));
            }
            if r.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(format!(
                    "rule directory {}: must not contain `..`",
                    r.display()
                ));
            }
        }
        Ok(RuleRoots { roots })
    }

    /// The directories as configured.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The roots as a human-readable list.
    pub fn describe(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every root directory as it exists now: the configured path and its
    /// canonical form (globs expanded).
    fn existing(&self) -> Vec<(PathBuf, Option<PathBuf>)> {
        let mut out = Vec::new();
        for r in &self.roots {
            let text = r.to_string_lossy();
            let expanded = if text.ends_with('*') {
                crs::expand(&text)
            } else {
                vec![r.clone()]
            };
            for dir in expanded {
                let canonical = std::fs::canonicalize(&dir).ok();
                out.push((dir, canonical));
            }
        }
        out
    }

    /// Whether `path` lies lexically inside one of the roots (a glob root
    /// matches any directory its pattern stands for).
    fn lexically_inside(&self, path: &Path, existing: &[(PathBuf, Option<PathBuf>)]) -> bool {
        let glob_match = self.roots.iter().any(|r| {
            let text = r.to_string_lossy();
            let Some(prefix) = text.strip_suffix('*') else {
                return false;
            };
            // `/opt/coreruleset*` holds `/opt/coreruleset-4.28.0/rules/x.conf`:
            // the first component below the parent starts with the prefix.
            let prefix = Path::new(prefix);
            match (prefix.parent(), prefix.file_name()) {
                (Some(parent), Some(stem)) => path
                    .strip_prefix(parent)
                    .ok()
                    .and_then(|rest| rest.components().next())
                    .is_some_and(|c| {
                        c.as_os_str()
                            .to_string_lossy()
                            .starts_with(&*stem.to_string_lossy())
                    }),
                _ => false,
            }
        });
        glob_match
            || existing.iter().any(|(dir, canonical)| {
                path.starts_with(dir) || canonical.as_ref().is_some_and(|c| path.starts_with(c))
            })
    }
}

/// The path-valued keys of a `[waf]` section, in the order they are reported.
fn named(settings: &WafSettings) -> Vec<Named<'_>> {
    let mut out = Vec::new();
    if let Some(p) = &settings.crs_dir {
        out.push(Named {
            key: "crs_dir",
            path: p,
        });
    }
    if let Some(p) = &settings.setup {
        out.push(Named {
            key: "setup",
            path: p,
        });
    }
    if let Some(p) = &settings.plugins_dir {
        out.push(Named {
            key: "plugins_dir",
            path: p,
        });
    }
    for p in &settings.extra_rules {
        out.push(Named {
            key: "extra_rules",
            path: p,
        });
    }
    out
}

/// The path shown in a message: at most 200 bytes, control characters
/// replaced (a path is the policy's text, not a file's, but a log line must
/// stay one line).
fn shown(path: &str) -> String {
    let mut s: String = path
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Checks every path `settings` name against `roots` (see the module
/// documentation) and returns the settings with canonical paths, the
/// paths refused, and the paths inside the roots that do not exist here.
pub fn confine(settings: &WafSettings, roots: &RuleRoots) -> Confined {
    let existing = roots.existing();
    let mut out = Confined {
        settings: settings.clone(),
        ..Confined::default()
    };
    let mut resolved: Vec<Option<String>> = Vec::new();
    for n in named(settings) {
        let p = Path::new(n.path);
        let what = format!("[waf] {} {:?}", n.key, shown(n.path));
        let outside = || {
            format!(
                "{what}: outside the rule directories this node accepts pushed policies from ({}; see --rules-dir)",
                roots.describe()
            )
        };
        if !p.is_absolute() {
            out.errors.push(format!(
                "{what}: a pushed policy must name an absolute path"
            ));
            resolved.push(None);
            continue;
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            out.errors.push(format!(
                "{what}: a pushed policy must not use `..` in paths"
            ));
            resolved.push(None);
            continue;
        }
        if !roots.lexically_inside(p, &existing) {
            out.errors.push(outside());
            resolved.push(None);
            continue;
        }
        match std::fs::canonicalize(p) {
            Ok(c) => {
                let inside = existing
                    .iter()
                    .filter_map(|(_, canonical)| canonical.as_ref())
                    .any(|root| c.starts_with(root));
                if inside {
                    resolved.push(Some(c.display().to_string()));
                } else {
                    out.errors.push(format!(
                        "{what}: resolves (through a symbolic link) outside the rule directories this node accepts pushed policies from ({}; see --rules-dir)",
                        roots.describe()
                    ));
                    resolved.push(None);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.missing.push(format!("{} {}", n.key, shown(n.path)));
                resolved.push(None);
            }
            Err(e) => {
                out.errors.push(format!("{what}: {e}"));
                resolved.push(None);
            }
        }
    }
    // Replace what resolved, in the same order as `named`.
    let mut it = resolved.into_iter();
    let s = &mut out.settings;
    if s.crs_dir.is_some() {
        if let Some(Some(c)) = it.next() {
            s.crs_dir = Some(c);
        }
    }
    if s.setup.is_some() {
        if let Some(Some(c)) = it.next() {
            s.setup = Some(c);
        }
    }
    if s.plugins_dir.is_some() {
        if let Some(Some(c)) = it.next() {
            s.plugins_dir = Some(c);
        }
    }
    for f in s.extra_rules.iter_mut() {
        if let Some(Some(c)) = it.next() {
            *f = c;
        }
    }
    out
}

/// [`confine`] for a node that loads the rules now: a missing path is an
/// error too. Returns the settings with canonical paths, or every problem.
pub fn confine_for_load(
    settings: &WafSettings,
    roots: &RuleRoots,
) -> Result<WafSettings, Vec<String>> {
    let c = confine(settings, roots);
    let mut errors = c.errors;
    errors.extend(
        c.missing
            .iter()
            .map(|m| format!("[waf] {m}: does not exist on this node")),
    );
    if errors.is_empty() {
        Ok(c.settings)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir()
                .join(format!("palisade-confine-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("rules")).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn waf(extra: &[&str]) -> WafSettings {
        WafSettings {
            extra_rules: extra.iter().map(|s| s.to_string()).collect(),
            ..WafSettings::default()
        }
    }

    #[test]
    fn paths_inside_are_canonical_and_outside_ones_are_refused() {
        let s = Scratch::new("inside");
        let roots = RuleRoots::new(vec![s.0.join("rules")]).unwrap();
        let ok = s.0.join("rules/a.conf");
        std::fs::write(&ok, "SecAction \"id:1,phase:1,pass\"\n").unwrap();
        let c = confine(&waf(&[ok.to_str().unwrap()]), &roots);
        assert!(c.errors.is_empty() && c.missing.is_empty(), "{c:?}");
        assert_eq!(
            c.settings.extra_rules,
            vec![std::fs::canonicalize(&ok).unwrap().display().to_string()]
        );

        let dotdot = format!("{}/rules/../../../etc/passwd", s.0.display());
        let c = confine(&waf(&["/etc/passwd", &dotdot, "rules/a.conf"]), &roots);
        assert_eq!(c.errors.len(), 3, "{:?}", c.errors);
        assert!(c.errors[0].contains("extra_rules") && c.errors[0].contains("/etc/passwd"));
        assert!(c.errors[0].contains("outside"), "{}", c.errors[0]);
        assert!(c.errors[1].contains("`..`"), "{}", c.errors[1]);
        assert!(c.errors[2].contains("absolute"), "{}", c.errors[2]);
        assert!(confine_for_load(&waf(&["/etc/passwd"]), &roots).is_err());
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let s = Scratch::new("link");
        let roots = RuleRoots::new(vec![s.0.join("rules")]).unwrap();
        let link = s.0.join("rules/passwd.conf");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let settings = WafSettings {
            setup: Some(link.display().to_string()),
            ..WafSettings::default()
        };
        let e = confine_for_load(&settings, &roots).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("[waf] setup") && e[0].contains("symbolic link"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_paths_inside_are_told_apart_and_globs_match() {
        let s = Scratch::new("missing");
        let glob = format!("{}/crs*", s.0.display());
        let roots = RuleRoots::new(vec![PathBuf::from(&glob)]).unwrap();
        std::fs::create_dir_all(s.0.join("crs-4.28.0/rules")).unwrap();
        let settings = WafSettings {
            crs_dir: Some(format!("{}/crs-4.28.0", s.0.display())),
            plugins_dir: Some(format!("{}/crs-4.28.0/plugins", s.0.display())),
            ..WafSettings::default()
        };
        let c = confine(&settings, &roots);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.missing.len(), 1, "{:?}", c.missing);
        assert!(c.missing[0].starts_with("plugins_dir "));
        // Outside: neither existence nor anything else is looked at.
        let c = confine(&waf(&["/nonexistent/x.conf"]), &roots);
        assert!(c.missing.is_empty() && c.errors.len() == 1);
        assert!(RuleRoots::new(vec![PathBuf::from("rel")]).is_err());
        assert!(RuleRoots::new(Vec::new()).is_err());
        assert!(RuleRoots::default()
            .describe()
            .starts_with("/etc/palisade, "));
    }
}
