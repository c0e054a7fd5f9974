//! Security events: one structured record each time a check acts (or would act, in simulate mode).

use crate::verdict::CheckKind;
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One security event, emitted as one JSON line by the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// When it happened (ms since the Unix epoch).
    pub time_ms: UnixMillis,
    /// The node that saw the request.
    #[serde(default)]
    pub node: String,
    /// The request id also sent in `X-Request-Id`.
    pub request_id: String,
    /// The client address the pipeline used.
    pub client_ip: IpAddr,
    /// Which check produced it.
    pub check: CheckKind,
    /// The rule id, rate-limit id, or decision id that matched.
    pub rule_id: String,
    /// `block`, `log`, `allow` or `skip`.
    pub action: String,
    /// Whether the match was in simulate (shadow) mode: logged, not enforced.
    pub simulate: bool,
    /// Method, host and path of the request, for context.
    pub method: String,
    /// Host header.
    pub host: String,
    /// Path of the request.
    pub path: String,
    /// The status sent when the request was blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What the WAF matched (events of `check: waf` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<WafEventDetail>,
}

/// The WAF's evidence for an event: the anomaly score and the rules that matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WafEventDetail {
    /// The request's inbound anomaly score.
    pub anomaly_score: i64,
    /// Rules that matched, in evaluation order (at most [`WafEventDetail::MAX_RULES`]).
    pub rules: Vec<WafRuleHit>,
    /// The phase that decided: 1-2 request (headers, body), 3-4 response
    /// (headers, body). 0 in events written before phases were recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub phase: u8,
    /// The response's outbound anomaly score (response phases only).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub outbound_score: i64,
    /// Why a body was refused or inspected only in part (`body_too_large`,
    /// `encoding_unsupported`, `body_truncated`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

impl WafRuleHit {
    /// Variables kept in [`WafRuleHit::vars`].
    pub const MAX_VARS: usize = 32;
}

impl WafEventDetail {
    /// Rules kept per event; further matches are counted in metrics only.
    pub const MAX_RULES: usize = 32;
}

/// One WAF rule that matched a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WafRuleHit {
    /// The CRS rule id (e.g. 942100).
    pub id: u32,
    /// The rule's message.
    #[serde(default)]
    pub msg: String,
    /// The rule's log data (what matched, truncated by the rule set).
    #[serde(default)]
    pub data: String,
    /// The variable that matched (`ARGS:q`, `REQUEST_HEADERS:User-Agent`,
    /// `REQUEST_FILENAME`...; the engine's `MATCHED_VAR_NAME`). Empty in
    /// events written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub var: String,
    /// Every variable the rule matched when there were several (at most
    /// [`WafRuleHit::MAX_VARS`]: a list that long may have been cut; `var`
    /// is the last): what a target exclusion must name to cover the
    /// request. Empty when the rule matched one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckKind;

    fn event() -> SecurityEvent {
        SecurityEvent {
            time_ms: 1,
            node: "n".into(),
            request_id: "r".into(),
            client_ip: "192.0.2.1".parse().unwrap(),
            check: CheckKind::Waf,
            rule_id: "949110".into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            status: Some(403),
            waf: None,
        }
    }

    #[test]
    fn waf_detail_is_optional_and_round_trips() {
        let plain = event();
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("\"waf\":{"), "{json}");
        assert!(json.contains("\"check\":\"waf\""), "{json}");
        // Events written before the field existed still parse.
        let old = json.replace(",\"status\":403", "");
        let back: SecurityEvent = serde_json::from_str(&old).unwrap();
        assert_eq!(back.waf, None);

        let mut ev = event();
        ev.waf = Some(WafEventDetail {
            anomaly_score: 10,
            rules: vec![WafRuleHit {
                id: 942100,
                msg: "SQL Injection Attack Detected via libinjection".into(),
                data: "Matched Data: s&sos found within ARGS:q".into(),
                var: "ARGS:q".into(),
                vars: Vec::new(),
            }],
            ..WafEventDetail::default()
        });
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains("\"anomaly_score\":10"), "{json}");
        assert!(!json.contains("phase"), "{json}");
        assert_eq!(serde_json::from_str::<SecurityEvent>(&json).unwrap(), ev);
        ev.waf = Some(WafEventDetail {
            phase: 4,
            outbound_score: 5,
            reason: Some("body_truncated".into()),
            ..WafEventDetail::default()
        });
        let json = serde_json::to_string(&ev).unwrap();
        assert!(
            json.contains("\"phase\":4,\"outbound_score\":5,\"reason\":\"body_truncated\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<SecurityEvent>(&json).unwrap(), ev);
    }
}
