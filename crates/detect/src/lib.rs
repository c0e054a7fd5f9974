//! Palisade's attack detectors, shared by the WAF engine's operators, the
//! rules and future signals.
//!
//! Owns: the libinjection port ([`libinjection`], behind `@detectSQLi` and
//! `@detectXSS`) and Palisade's own detectors that understand structure
//! rather than match token patterns: path traversal after full decoding and
//! segment resolution ([`traversal`]), SQL statements by grammar
//! ([`sql`]), JavaScript reaching dangerous sinks ([`js`]) and shell
//! commands after separators or substitutions ([`shell`]). Each detector
//! is one module with one entry point, `detect(input) -> Option<Finding>`,
//! and counts its calls and findings ([`stats`]).
//!
//! Must not: do I/O, read the clock, allocate without bound or panic on
//! any input. Every detector caps how much of its input it looks at
//! ([`MAX_INPUT`]) and how deep it recurses.

pub mod js;
pub mod libinjection;
pub mod shell;
pub mod sql;
pub mod stats;
pub mod traversal;

mod text;

use std::fmt;

/// The most bytes of one value a structural detector looks at: attacks
/// come first in a value, and a cap keeps every detector linear in time
/// and bounded in memory whatever the request.
pub const MAX_INPUT: usize = 8 * 1024;

/// Palisade's structural detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detector {
    Traversal,
    Sql,
    Js,
    Shell,
}

impl Detector {
    /// Every detector, in the order of [`stats::snapshot`].
    pub const ALL: [Detector; 4] = [
        Detector::Traversal,
        Detector::Sql,
        Detector::Js,
        Detector::Shell,
    ];

    /// The detector's name, as in metrics (`traversal`, `sql`, `js`, `shell`).
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Traversal => "traversal",
            Detector::Sql => "sql",
            Detector::Js => "js",
            Detector::Shell => "shell",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Detector::Traversal => 0,
            Detector::Sql => 1,
            Detector::Js => 2,
            Detector::Shell => 3,
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most characters of evidence a finding carries.
const MAX_EVIDENCE: usize = 80;

/// What a detector found: which detector, why (a fixed reason, usable as a
/// label), and the evidence (the decoded construct, at most
/// [`MAX_EVIDENCE`] characters), what a rule logs as its matched data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detector: Detector,
    pub reason: &'static str,
    pub evidence: String,
}

impl Finding {
    pub(crate) fn new(detector: Detector, reason: &'static str, evidence: &str) -> Finding {
        let mut evidence: String = evidence
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_EVIDENCE)
            .collect();
        evidence.truncate(evidence.trim_end().len());
        Finding {
            detector,
            reason,
            evidence,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.detector, self.reason, self.evidence)
    }
}

/// Runs `detector` on `input`.
pub fn detect(detector: Detector, input: &[u8]) -> Option<Finding> {
    match detector {
        Detector::Traversal => traversal::detect(input),
        Detector::Sql => sql::detect(input),
        Detector::Js => js::detect(input),
        Detector::Shell => shell::detect(input),
    }
}
