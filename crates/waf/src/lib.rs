//! Palisade WAF: a pure-Rust engine for the ModSecurity rule language
//! (SecLang) that loads the OWASP Core Rule Set unchanged from a directory.
//!
//! Owns: parsing SecLang ([`parser`]), compiling rules ([`rules`]), the
//! built-in detector rules (`rules/palisade-detectors.conf`, over
//! [`detect`]),
//! request body processing ([`body`]), transformations ([`transform`]),
//! operators ([`operators`]; the few regexes that need PCRE-only
//! constructs on a bounded backtracking engine, [`backtrack`]), evaluation ([`transaction`]), decoding
//! compressed bodies ([`decompress`]) and the step-by-step inspection of an
//! HTTP exchange, request and response ([`exchange`]); the false-positive
//! rate on a corpus of benign requests ([`benign`]).
//! Must not: do network I/O, read the clock, or panic on request input.
//! Files are read only when a rule set is loaded.

pub mod backtrack;
pub mod benign;
pub mod config;
pub mod confine;
pub mod conformance;
pub mod crs;
pub mod decompress;
pub mod exchange;
pub mod lazydfa;
pub mod macros;
pub mod memo;
pub mod operators;
pub mod parser;
pub mod pmset;
pub mod prefilter;
pub mod refine;
mod report;
pub mod rules;
pub mod site;
pub mod transaction;
pub mod txvars;
pub mod variables;

pub mod body;
pub mod transform;

/// Palisade's detectors (the libinjection port and the structural ones),
/// behind the `@detect*` operators.
pub use palisade_detect as detect;

pub use config::{Waf, WafVerdict};
pub use exchange::{BodyPush, Exchange, ExchangeVerdict, RequestBodyPlan, ResponseBodyPlan};
pub use palisade_policy::waf::{WafMode, WafSettings};
pub use rules::{EngineMode, RuleSet};
pub use transaction::{HttpRequest, Interruption, MatchedRule, ResponseData, Transaction};

/// Errors loading or compiling a rule set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WafError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{location}: {message}")]
    At { location: String, message: String },
    #[error("invalid rule set:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("{0}")]
    Config(String),
}

impl WafError {
    pub(crate) fn at(location: &parser::Location, message: impl Into<String>) -> WafError {
        WafError::At {
            location: location.to_string(),
            message: message.into(),
        }
    }
}
