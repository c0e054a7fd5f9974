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
    /// The bot defence's view of the client, when `[bots]` scored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<BotEventDetail>,
}

/// The bot defence's view of a client, in events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotEventDetail {
    /// `palisade.bot.score` (1 automated … 99 human).
    pub score: u8,
    /// `palisade.anomaly.score`.
    pub anomaly: u8,
    /// A verified crawler.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
    /// The request carried a valid clearance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
    /// Why the score is what it is (`library_ua`, `regular_timing`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
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
    /// Rules that matched but were left out of `rules` to keep the event
    /// within [`MAX_EVENT_BYTES`] (see [`SecurityEvent::bound`]).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub rules_omitted: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
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

/// The most an event takes as a JSON line: a request that matches every
/// rule it can, with megabytes of matched data, still makes one small event
/// (the event log, spool, bus and store are sized from it).
pub const MAX_EVENT_BYTES: usize = 2048;

/// Bytes kept of each field a client controls, or that quotes what it sent
/// (cut on a character boundary, ending with [`CUT_MARKER`]).
pub mod field_limits {
    pub const NODE: usize = 64;
    pub const REQUEST_ID: usize = 64;
    pub const RULE_ID: usize = 128;
    pub const ACTION: usize = 16;
    pub const METHOD: usize = 16;
    pub const HOST: usize = 255;
    pub const PATH: usize = 512;
    pub const WAF_REASON: usize = 64;
    pub const HIT_MSG: usize = 120;
    pub const HIT_DATA: usize = 160;
    pub const HIT_VAR: usize = 96;
    /// Variable names kept per hit (`WafRuleHit::MAX_VARS`); lists are
    /// halved (down to [`HIT_VARS_MIN`]) before hits are left out, when an
    /// event is over [`super::MAX_EVENT_BYTES`]: `palisade waf tune` needs
    /// every variable a rule matched to propose an exclusion that covers
    /// the request.
    pub const HIT_VARS: usize = 32;
    pub const HIT_VARS_MIN: usize = 4;
}

/// What ends a field that was cut.
pub const CUT_MARKER: &str = "…";

/// Where a cut of `s` to at most `max` bytes ends (before the marker), on
/// a character boundary; `None` when `s` fits.
fn cut_end(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let mut end = max.saturating_sub(CUT_MARKER.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

/// `s` cut to at most `max` bytes, the cut marked with [`CUT_MARKER`].
pub fn cut(s: &mut String, max: usize) {
    if let Some(end) = cut_end(s, max) {
        s.truncate(end);
        s.push_str(CUT_MARKER);
    }
}

/// A copy of at most `max` bytes of `s` (cut as [`cut`] does), without
/// copying what is cut off.
pub fn cut_copy(s: &str, max: usize) -> String {
    match cut_end(s, max) {
        None => s.to_string(),
        Some(end) => [&s[..end], CUT_MARKER].concat(),
    }
}

impl SecurityEvent {
    /// Bounds the event: every text field cut to its limit
    /// ([`field_limits`]), then WAF rule hits left out from the last until
    /// the JSON line fits in [`MAX_EVENT_BYTES`] (counted in
    /// `rules_omitted`). The edge bounds each event it emits and the
    /// control plane each one it receives.
    pub fn bound(&mut self) {
        use field_limits as l;
        cut(&mut self.node, l::NODE);
        cut(&mut self.request_id, l::REQUEST_ID);
        cut(&mut self.rule_id, l::RULE_ID);
        cut(&mut self.action, l::ACTION);
        cut(&mut self.method, l::METHOD);
        cut(&mut self.host, l::HOST);
        cut(&mut self.path, l::PATH);
        let Some(waf) = &mut self.waf else {
            return;
        };
        if let Some(r) = &mut waf.reason {
            cut(r, l::WAF_REASON);
        }
        let limit = WafEventDetail::MAX_RULES;
        if waf.rules.len() > limit {
            waf.rules_omitted = waf
                .rules_omitted
                .saturating_add((waf.rules.len() - limit) as u32);
            waf.rules.truncate(limit);
        }
        for hit in &mut waf.rules {
            cut(&mut hit.msg, l::HIT_MSG);
            cut(&mut hit.data, l::HIT_DATA);
            cut(&mut hit.var, l::HIT_VAR);
            hit.vars.truncate(l::HIT_VARS);
            for v in &mut hit.vars {
                cut(v, l::HIT_VAR);
            }
        }
        while self.json_len() > MAX_EVENT_BYTES {
            let Some(waf) = &mut self.waf else { break };
            // Halve the longest list of variable names first, then leave out
            // hits from the last.
            if let Some(hit) = waf
                .rules
                .iter_mut()
                .filter(|h| h.vars.len() > l::HIT_VARS_MIN)
                .max_by_key(|h| h.vars.len())
            {
                let keep = (hit.vars.len() / 2).max(l::HIT_VARS_MIN);
                hit.vars.truncate(keep);
                continue;
            }
            if waf.rules.pop().is_none() {
                break;
            }
            waf.rules_omitted = waf.rules_omitted.saturating_add(1);
        }
    }

    /// What the event holds in memory, roughly: the struct itself and its
    /// text (cheap: no serialization). For byte caps on event queues.
    pub fn approx_bytes(&self) -> usize {
        let mut n = std::mem::size_of::<Self>()
            + self.node.len()
            + self.request_id.len()
            + self.rule_id.len()
            + self.action.len()
            + self.method.len()
            + self.host.len()
            + self.path.len();
        if let Some(w) = &self.waf {
            n += w.reason.as_ref().map_or(0, String::len);
            for h in &w.rules {
                n += std::mem::size_of::<WafRuleHit>() + h.msg.len() + h.data.len() + h.var.len();
                n += h.vars.iter().map(|v| v.len() + 24).sum::<usize>();
            }
        }
        n
    }

    /// The length of the event as a JSON line.
    pub fn json_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }
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
            bot: None,
        }
    }

    #[test]
    fn events_are_bounded_whatever_the_request() {
        let huge = "x".repeat(60_000);
        let mut ev = event();
        ev.host = format!("{huge}.example");
        ev.path = format!("/{huge}");
        ev.method = huge.clone();
        ev.request_id = huge.clone();
        ev.waf = Some(WafEventDetail {
            anomaly_score: 130,
            rules: (0..40)
                .map(|i| WafRuleHit {
                    id: 942100 + i,
                    msg: format!("rule {i} {huge}"),
                    data: format!("Matched Data: {huge}"),
                    var: format!("ARGS:{huge}"),
                    vars: vec![huge.clone(); 32],
                })
                .collect(),
            reason: Some(huge.clone()),
            ..WafEventDetail::default()
        });
        ev.bound();
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.len() <= MAX_EVENT_BYTES, "{} bytes", json.len());
        assert!(ev.path.ends_with(CUT_MARKER) && ev.path.len() <= field_limits::PATH);
        let waf = ev.waf.as_ref().unwrap();
        assert!(!waf.rules.is_empty(), "the first hits stay");
        assert_eq!(waf.rules.len() as u32 + waf.rules_omitted, 40);
        assert_eq!(waf.rules[0].id, 942100, "in evaluation order");
        assert!(waf.rules[0].data.ends_with(CUT_MARKER));
        // Bounded events round-trip, and bounding is idempotent.
        let back: SecurityEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
        let mut again = ev.clone();
        again.bound();
        assert_eq!(again, ev);
        // Small events are left alone.
        let mut small = event();
        small.bound();
        assert_eq!(small, event());
    }

    #[test]
    fn variable_lists_shrink_before_hits_go() {
        let mut ev = event();
        ev.waf = Some(WafEventDetail {
            anomaly_score: 5,
            rules: vec![WafRuleHit {
                id: 930120,
                msg: "OS File Access Attempt".into(),
                data: "Matched Data: .forward found within ARGS_NAMES".into(),
                var: "ARGS_NAMES:json.rules.array_0.id".into(),
                vars: (0..40)
                    .map(|i| format!("ARGS_NAMES:json.rules.array_{i}.id"))
                    .collect(),
            }],
            ..WafEventDetail::default()
        });
        ev.bound();
        assert!(ev.json_len() <= MAX_EVENT_BYTES);
        let w = ev.waf.unwrap();
        assert_eq!(w.rules.len(), 1);
        assert_eq!(w.rules[0].vars.len(), 32, "fits: all 32 kept");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut s = "é".repeat(100);
        cut(&mut s, 11);
        assert!(s.len() <= 11 && s.ends_with(CUT_MARKER), "{s}");
        assert!(s.starts_with("ééé"));
        let mut short = "abc".to_string();
        cut(&mut short, 3);
        assert_eq!(short, "abc");
        assert_eq!(cut_copy(&"é".repeat(100), 11), {
            let mut c = "é".repeat(100);
            cut(&mut c, 11);
            c
        });
        let mut tiny = "abcdef".to_string();
        cut(&mut tiny, 2);
        assert_eq!(tiny, CUT_MARKER);
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
