//! The messages that travel over the mesh.

use palisade_policy::decisions::Scope;
use palisade_policy::{Decision, UnixMillis};
use serde::{Deserialize, Serialize};

/// An operation on the cluster-wide decision table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DecisionOp {
    /// Add or replace the decision for `decision.scope` + `decision.value`.
    Upsert {
        /// The decision (its value already normalized).
        decision: Decision,
    },
    /// Remove the decision for a scope + value.
    Delete {
        /// Scope of the decision to remove.
        scope: Scope,
        /// Normalized value of the decision to remove.
        value: String,
    },
}

impl DecisionOp {
    /// The key the op applies to: `scope:value`.
    pub fn key(&self) -> String {
        match self {
            DecisionOp::Upsert { decision } => {
                format!("{}:{}", decision.scope.as_str(), decision.value)
            }
            DecisionOp::Delete { scope, value } => format!("{}:{}", scope.as_str(), value),
        }
    }
}

/// A decision op as delivered by the mesh, with its position in the total order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionUpdate {
    /// Strictly increasing position in the decision log (JetStream stream sequence).
    /// Sequences may skip (superseded ops are compacted away).
    pub seq: u64,
    /// The operation.
    pub op: DecisionOp,
}

/// One version of the cluster policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// 1, 2, 3, ... assigned by the mesh when the version is written.
    pub version: u64,
    /// The policy file (TOML), exactly as submitted.
    pub source: String,
    /// Digest of the source (`Policy::digest`).
    pub digest: String,
    /// Who wrote it (operator name, token id, or `rollback to N`).
    pub author: String,
    /// When it was written.
    pub created_at: UnixMillis,
}

/// What a node reports about itself, periodically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Node id.
    pub node_id: String,
    /// Address the node serves traffic on.
    pub address: String,
    /// Version of the policy the node enforces (None: never received one).
    pub policy_version: Option<u64>,
    /// Active decisions on the node.
    pub decisions: u64,
    /// Position in the decision log of the last op the node applied (see
    /// `docs/mesh.md`, "Ordering and delivery guarantees").
    pub decisions_seq: u64,
    /// When the heartbeat was sent.
    pub time_ms: UnixMillis,
    /// Version of the OWASP CRS the node's WAF runs (`4.28.0`; None: no
    /// WAF, undeclared, or a node older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs_version: Option<String>,
    /// Digest of the node's CRS rule files (`sha256:…`, see
    /// `palisade_waf::crs::CrsInfo::digest`): same digest, same rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs_digest: Option<String>,
    /// The newest cluster policy version the node refused (it keeps
    /// enforcing `policy_version`), and why. None: it applied every
    /// version it received (or is older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_refused: Option<PolicyRefusal>,
}

/// A cluster policy version a node did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRefusal {
    /// The version refused.
    pub version: u64,
    /// Why, at most [`PolicyRefusal::MAX_REASON_BYTES`] (the node's error:
    /// which key, which path or rule file and line; never a file's content).
    pub reason: String,
}

impl PolicyRefusal {
    /// The longest reason carried in a heartbeat.
    pub const MAX_REASON_BYTES: usize = 1024;

    /// A refusal with `reason` cut to [`PolicyRefusal::MAX_REASON_BYTES`]
    /// (marked `…`).
    pub fn new(version: u64, reason: &str) -> PolicyRefusal {
        let mut reason = reason.trim().to_string();
        if reason.len() > Self::MAX_REASON_BYTES {
            let mut end = Self::MAX_REASON_BYTES - '…'.len_utf8();
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        PolicyRefusal { version, reason }
    }
}

/// Errors of a mesh backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The bus is unreachable or timed out; the caller should retry with backoff.
    #[error("mesh unavailable: {0}")]
    Unavailable(String),
    /// A message could not be encoded or decoded.
    #[error("bad message: {0}")]
    Codec(String),
    /// The request is invalid (unknown version, ...).
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_of_older_nodes_still_decode() {
        let old = r#"{"node_id":"e1","address":"a:1","policy_version":2,"decisions":0,"decisions_seq":5,"time_ms":9}"#;
        let hb: Heartbeat = serde_json::from_str(old).unwrap();
        assert_eq!((hb.crs_version, hb.crs_digest), (None, None));
        assert_eq!(hb.policy_refused, None);
        let new = Heartbeat {
            crs_version: Some("4.28.0".into()),
            crs_digest: Some("sha256:ab".into()),
            policy_refused: Some(PolicyRefusal::new(3, "bad")),
            ..hb
        };
        let back: Heartbeat = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }

    #[test]
    fn refusal_reasons_are_bounded() {
        let r = PolicyRefusal::new(1, &"é".repeat(2000));
        assert!(r.reason.len() <= PolicyRefusal::MAX_REASON_BYTES);
        assert!(r.reason.ends_with('…'));
        assert_eq!(PolicyRefusal::new(1, " short\n").reason, "short");
    }
}
