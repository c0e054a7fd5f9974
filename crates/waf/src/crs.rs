//! Which OWASP Core Rule Set the engine loads: finding an installed one,
//! and telling which it is (version, digest, rules per phase).
//!
//! Owns: the documented search order for `[waf]` without `crs_dir`
//! ([`SEARCH_PATHS`]), the setup file that goes with a CRS found there, and
//! [`CrsInfo`], what `palisade waf check`, the edge's heartbeat and
//! `palisade nodes` say about a rule set. Must not: parse or compile rules
//! (see [`crate::parser`], [`crate::rules`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::operators::Operator;
use crate::rules::{Rule, RuleSet};
use crate::WafError;

/// Where an installed CRS is looked for when `[waf]` names no `crs_dir`,
/// in this order; the first that holds `REQUEST-*.conf` rule files (in it
/// or in its `rules/`) is used. A `*` stands for any version suffix
/// (`coreruleset-4.28.0`); the newest version is tried first.
pub const SEARCH_PATHS: &[&str] = &[
    // Palisade's own place: a CRS the administrator chose.
    "/etc/palisade/crs",
    // A CRS v4 release unpacked by hand (see docs/waf.md).
    "/usr/local/share/coreruleset*",
    "/opt/coreruleset*",
    // Distribution packages: Debian and Ubuntu (`modsecurity-crs`), their
    // older package name, Fedora/RHEL (`mod_security_crs`), others.
    "/usr/share/modsecurity-crs",
    "/usr/share/owasp-modsecurity-crs",
    "/usr/share/mod_modsecurity_crs",
    "/usr/share/coreruleset",
];

/// Setup files that go with a CRS found by the search, besides a
/// `crs-setup.conf` in the CRS directory itself: (CRS directory, setup).
const PACKAGED_SETUP: &[(&str, &str)] = &[
    (
        "/usr/share/modsecurity-crs",
        "/etc/modsecurity/crs/crs-setup.conf",
    ),
    (
        "/usr/share/owasp-modsecurity-crs",
        "/etc/modsecurity/crs/crs-setup.conf",
    ),
    (
        "/usr/share/mod_modsecurity_crs",
        "/etc/httpd/modsecurity.d/crs-setup.conf",
    ),
];

/// A CRS on disk: its rules directory and the setup file to load with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsLocation {
    /// The directory of the `REQUEST-*.conf` files.
    pub rules_dir: PathBuf,
    /// The `crs-setup.conf` that goes with a CRS found by the search
    /// (`None` for a configured `crs_dir`: the policy's `setup` applies).
    pub setup: Option<PathBuf>,
    /// Found by the search rather than configured.
    pub searched: bool,
}

/// The CRS directory to load: `crs_dir` when given (which must exist and
/// hold rule files), else the first installed one in [`SEARCH_PATHS`].
pub fn locate(crs_dir: Option<&str>) -> Result<CrsLocation, WafError> {
    match crs_dir {
        Some(dir) => configured(dir),
        None => search(SEARCH_PATHS, PACKAGED_SETUP),
    }
}

/// The `rules/` directory of `dir` if it has one, else `dir`.
fn rules_dir(dir: &Path) -> PathBuf {
    let sub = dir.join("rules");
    if sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// Whether `dir` holds CRS rule files.
fn has_rule_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("REQUEST-") && name.ends_with(".conf")
        })
    })
}

fn configured(dir: &str) -> Result<CrsLocation, WafError> {
    let path = Path::new(dir);
    if !path.is_dir() {
        return Err(WafError::Config(format!(
            "crs_dir {dir}: not a directory (install OWASP CRS, see docs/waf.md, or leave crs_dir out to search {})",
            SEARCH_PATHS.join(", ")
        )));
    }
    let rules = rules_dir(path);
    if !has_rule_files(&rules) {
        return Err(WafError::Config(format!(
            "crs_dir {}: no REQUEST-*.conf rule files found",
            rules.display()
        )));
    }
    Ok(CrsLocation {
        rules_dir: rules,
        setup: None,
        searched: false,
    })
}

/// The places `pattern` stands for: itself, or for `prefix*` the entries
/// of its directory that start with `prefix`, newest version first.
pub(crate) fn expand(pattern: &str) -> Vec<PathBuf> {
    let Some(prefix) = pattern.strip_suffix('*') else {
        return vec![PathBuf::from(pattern)];
    };
    let prefix = Path::new(prefix);
    let (Some(parent), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
        return Vec::new();
    };
    let stem = stem.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&stem))
        .map(|e| e.path())
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(version_key(&p.to_string_lossy())));
    found
}

/// The numbers in `s`, in order (`coreruleset-4.28.0` → [4, 28, 0]).
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect()
}

fn search(places: &[&str], packaged: &[(&str, &str)]) -> Result<CrsLocation, WafError> {
    for pattern in places {
        for dir in expand(pattern) {
            let rules = rules_dir(&dir);
            if !has_rule_files(&rules) {
                continue;
            }
            let beside = dir.join("crs-setup.conf");
            let setup = if beside.is_file() {
                Some(beside)
            } else {
                packaged
                    .iter()
                    .find(|(d, _)| Path::new(d) == dir)
                    .map(|(_, s)| PathBuf::from(s))
                    .filter(|s| s.is_file())
            };
            return Ok(CrsLocation {
                rules_dir: rules,
                setup,
                searched: true,
            });
        }
    }
    Err(WafError::Config(format!(
        "[waf] names no crs_dir and no OWASP CRS is installed in any of: {} \
         (install one, e.g. `apt-get install modsecurity-crs`, or the latest CRS v4 release: see docs/waf.md; or set crs_dir)",
        places.join(", ")
    )))
}

/// What identifies a loaded CRS: where it is, its version, a digest of its
/// rule files, and how many rules it has.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CrsInfo {
    /// The rules directory loaded.
    pub rules_dir: String,
    /// The setup file loaded with it, if any.
    pub setup: Option<String>,
    /// Found by the search rather than configured.
    pub searched: bool,
    /// The CRS version the rules declare (`ver:'OWASP_CRS/4.28.0'` →
    /// `4.28.0`), if they declare one.
    pub version: Option<String>,
    /// `sha256:` and the SHA-256 over the rule directory's files (`*.conf`,
    /// `*.data`), sorted by name: each name, a NUL, its length and its
    /// contents. Same digest, same rules.
    pub digest: String,
}

impl CrsInfo {
    /// Reads the version and digest of the rule set at `loc`.
    pub fn read(loc: &CrsLocation) -> Result<CrsInfo, WafError> {
        let io = |path: &Path, e: std::io::Error| WafError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&loc.rules_dir)
            .map_err(|e| io(&loc.rules_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "conf" || e == "data"))
            .collect();
        files.sort();
        let mut hash = Sha256::new();
        let mut version = None;
        for f in &files {
            let text = std::fs::read(f).map_err(|e| io(f, e))?;
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            hash.update(name.unwrap_or_default().as_bytes());
            hash.update([0]);
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(&text);
            if version.is_none() {
                version = declared_version(&text);
            }
        }
        let mut digest = String::from("sha256:");
        for b in hash.finalize() {
            let _ = write!(digest, "{b:02x}");
        }
        Ok(CrsInfo {
            rules_dir: loc.rules_dir.display().to_string(),
            setup: loc.setup.as_ref().map(|s| s.display().to_string()),
            searched: loc.searched,
            version,
            digest,
        })
    }

    /// The digest's first 12 hex digits, for tables.
    pub fn short_digest(&self) -> &str {
        short_digest(&self.digest)
    }
}

/// The first 12 hex digits of a `sha256:…` digest.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

/// The first `ver:'OWASP_CRS/x.y.z'` in a rule file.
fn declared_version(text: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"ver:'OWASP_CRS/";
    let at = memchr::memmem::find(text, KEY)? + KEY.len();
    let rest = &text[at..];
    let end = rest.iter().position(|&b| b == b'\'')?;
    let v = std::str::from_utf8(&rest[..end]).ok()?;
    (!v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    .then(|| v.to_string())
}

/// How a compiled rule set is made up: rules per phase and the rules that
/// run (in whole or in a chain link) on the backtracking engine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RuleStats {
    pub total: usize,
    /// Rules (chain heads and `SecAction`s) per phase 1..=5.
    pub per_phase: [usize; 5],
    /// Ids of the rules whose regexes need PCRE-only constructs
    /// ([`crate::backtrack`]).
    pub backtracking: Vec<u32>,
}

impl RuleStats {
    pub fn of(rules: &RuleSet) -> RuleStats {
        let mut s = RuleStats {
            total: rules.len(),
            ..RuleStats::default()
        };
        for head in &rules.rules {
            if (1..=5).contains(&head.phase) {
                s.per_phase[head.phase as usize - 1] += 1;
            }
            let mut link: Option<&Rule> = Some(head);
            while let Some(r) = link {
                if matches!(r.operator, Operator::RxBacktrack(_)) {
                    s.backtracking.push(head.id);
                    break;
                }
                link = r.chained.as_deref();
            }
        }
        s.backtracking.sort_unstable();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("palisade-crs-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn crs(&self, sub: &str, ver: &str) -> PathBuf {
            let dir = self.0.join(sub);
            std::fs::create_dir_all(dir.join("rules")).unwrap();
            std::fs::write(
                dir.join("rules/REQUEST-901-INITIALIZATION.conf"),
                format!("SecAction \"id:901001,phase:1,pass,nolog,ver:'OWASP_CRS/{ver}'\"\n"),
            )
            .unwrap();
            dir
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_search_takes_the_first_place_in_order_and_the_newest_version() {
        let s = Scratch::new("order");
        let first = s.0.join("first");
        let glob = format!("{}/coreruleset*", s.0.display());
        let pkg = s.crs("pkg", "3.3.4");
        s.crs("coreruleset-4.9.0", "4.9.0");
        s.crs("coreruleset-4.28.0", "4.28.0");
        std::fs::write(pkg.join("crs-setup.conf"), "").unwrap();
        let places = [first.to_str().unwrap(), &glob, pkg.to_str().unwrap()];
        let found = search(&places, &[]).unwrap();
        assert!(found.searched);
        assert_eq!(found.rules_dir, s.0.join("coreruleset-4.28.0/rules"));
        assert_eq!(found.setup, None);
        assert_eq!(
            CrsInfo::read(&found).unwrap().version.as_deref(),
            Some("4.28.0")
        );
        // Without the versioned ones: the package, with its setup beside it.
        let found = search(&[places[0], places[2]], &[]).unwrap();
        assert_eq!(found.rules_dir, pkg.join("rules"));
        assert_eq!(found.setup, Some(pkg.join("crs-setup.conf")));
    }

    #[test]
    fn nothing_found_lists_every_place_tried() {
        let s = Scratch::new("none");
        let a = s.0.join("a");
        let b = format!("{}/coreruleset*", s.0.display());
        let e = search(&[a.to_str().unwrap(), &b], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(a.to_str().unwrap()), "{e}");
        assert!(e.contains(&b), "{e}");
        assert!(e.contains("docs/waf.md"), "{e}");
    }

    #[test]
    fn a_configured_dir_must_exist_and_hold_rules() {
        let s = Scratch::new("configured");
        let e = locate(Some(s.0.join("missing").to_str().unwrap())).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let e = locate(Some(s.0.to_str().unwrap())).unwrap_err();
        assert!(e.to_string().contains("no REQUEST-*.conf"), "{e}");
        let dir = s.crs("crs", "4.28.0");
        let found = locate(Some(dir.to_str().unwrap())).unwrap();
        assert_eq!(found.rules_dir, dir.join("rules"));
        assert!(!found.searched);
        let rules = dir.join("rules");
        assert_eq!(
            locate(Some(rules.to_str().unwrap())).unwrap().rules_dir,
            rules
        );
    }

    #[test]
    fn the_digest_changes_with_any_rule_file() {
        let s = Scratch::new("digest");
        let dir = s.crs("crs", "4.28.0");
        let loc = locate(Some(dir.to_str().unwrap())).unwrap();
        let a = CrsInfo::read(&loc).unwrap();
        assert!(a.digest.starts_with("sha256:") && a.digest.len() == 7 + 64);
        assert_eq!(a, CrsInfo::read(&loc).unwrap());
        std::fs::write(dir.join("rules/x.data"), "phrase\n").unwrap();
        let b = CrsInfo::read(&loc).unwrap();
        assert_ne!(a.digest, b.digest);
        assert_eq!(b.short_digest().len(), 12);
        assert_eq!(
            declared_version(b"x ver:'OWASP_CRS/3.3.4',"),
            Some("3.3.4".into())
        );
        assert_eq!(declared_version(b"ver:'OWASP_CRS/a b'"), None);
    }
}
