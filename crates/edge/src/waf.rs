//! The WAF in the edge: builds a [`palisade_waf::Waf`] from the policy's
//! `[waf]` settings, turns a Pingora request into the engine's input, and
//! the engine's verdict into the evidence of a security event.
//!
//! The engine decides; this module only translates. What it must not do:
//! read the request body (the proxy does, see `proxy.rs`) or answer requests.
//!
//! Request bodies are inspected when their length is known in advance
//! (`Content-Length`) and at most `max_body_bytes` (≤ 64 KiB: Pingora replays
//! at most [`MAX_INSPECTED_BODY_BYTES`] of a body it has already read to the
//! upstream). Larger or chunked bodies are passed on uninspected (headers,
//! path and query still are), counted in `palisade_waf_body_uninspected_total`.

use palisade_policy::waf::{WafMode, WafSettings};

/// Pingora replays at most this much of a body read before proxying.
const MAX_INSPECTED_BODY_BYTES: usize = 64 * 1024;
use palisade_policy::{WafEventDetail, WafRuleHit};
use palisade_waf::{HttpRequest, Waf, WafError, WafVerdict};
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// A built WAF and the settings it was built from (to tell whether a new
/// policy needs a new build).
#[derive(Debug)]
pub struct ActiveWaf {
    /// The `[waf]` section it was built from.
    pub settings: WafSettings,
    /// The engine with CRS loaded.
    pub waf: Waf,
}

impl ActiveWaf {
    /// Loads CRS and compiles it with these settings (reads the rule files;
    /// takes a fraction of a second, more in debug builds).
    pub fn build(settings: &WafSettings) -> Result<ActiveWaf, WafError> {
        let waf = Waf::build(settings)?;
        for skipped in waf.skipped_rules() {
            tracing::warn!(rule = %skipped, "WAF rule left out: the engine cannot run it (skip_unsupported_rules)");
        }
        Ok(ActiveWaf {
            settings: settings.clone(),
            waf,
        })
    }

    /// Whether matches are enforced (block) or only reported (detect).
    pub fn detect_only(&self) -> bool {
        self.settings.mode == WafMode::Detect
    }
}

/// What to do with a request's body before inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// The request has no body.
    None,
    /// Read the whole body (this many bytes, from `Content-Length`) and inspect it.
    Read(usize),
    /// Inspect the headers only; the reason is the metric label.
    Uninspected(&'static str),
}

/// Whether the body of `req` can be read before proxying. `body_empty` is
/// Pingora's view (`is_body_empty`); `max` the `[waf] max_body_bytes`.
pub fn body_plan(req: &RequestHeader, body_empty: bool, max: usize) -> BodyPlan {
    if body_empty {
        return BodyPlan::None;
    }
    if max == 0 {
        return BodyPlan::Uninspected("disabled");
    }
    if req.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return BodyPlan::Uninspected("unknown_length");
    }
    let length = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    match length {
        Some(0) => BodyPlan::None,
        Some(n) if n <= max.min(MAX_INSPECTED_BODY_BYTES) as u64 => BodyPlan::Read(n as usize),
        Some(_) => BodyPlan::Uninspected("too_large"),
        None => BodyPlan::Uninspected("unknown_length"),
    }
}

/// Whether an HTTP/1.1 client waits for `100 Continue` before sending its body.
pub fn expects_continue(req: &RequestHeader) -> bool {
    req.version == http::Version::HTTP_11
        && req
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The engine's view of a request (without body): method, request target as
/// sent, protocol, every header, client address and request id.
pub fn http_request(
    req: &RequestHeader,
    client_ip: IpAddr,
    client_port: u16,
    request_id: &str,
) -> HttpRequest {
    let protocol: &[u8] = match req.version {
        http::Version::HTTP_09 => b"HTTP/0.9",
        http::Version::HTTP_10 => b"HTTP/1.0",
        http::Version::HTTP_2 => b"HTTP/2.0",
        http::Version::HTTP_3 => b"HTTP/3.0",
        _ => b"HTTP/1.1",
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(req.headers.len() + 1);
    // HTTP/2 carries the host in `:authority`; the rule set expects a Host header.
    if !req.headers.contains_key(http::header::HOST) {
        if let Some(a) = req.uri.authority() {
            headers.push((b"host".to_vec(), a.as_str().as_bytes().to_vec()));
        }
    }
    // Header names as the client sent them when Pingora kept their case.
    if req.has_case() {
        headers.extend(
            req.case_header_iter()
                .map(|(k, v)| (k.as_slice().to_vec(), v.as_bytes().to_vec())),
        );
    } else {
        headers.extend(
            req.headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
    }
    HttpRequest {
        method: req.method.as_str().as_bytes().to_vec(),
        uri: req.raw_path().to_vec(),
        protocol: protocol.to_vec(),
        headers,
        body: Vec::new(),
        remote_addr: client_ip.to_string(),
        remote_port: client_port,
        unique_id: request_id.to_string(),
    }
}

/// The id an event names: the rule that blocked (949110 for the anomaly
/// score), else the first rule that matched.
pub fn event_rule_id(v: &WafVerdict) -> String {
    v.rule_id
        .or_else(|| v.matched.first().map(|m| m.id))
        .map(|id| id.to_string())
        .unwrap_or_else(|| "waf".to_string())
}

/// The evidence of an event: the anomaly score and the first
/// [`WafEventDetail::MAX_RULES`] rules that matched.
pub fn event_detail(v: &WafVerdict) -> WafEventDetail {
    WafEventDetail {
        anomaly_score: v.inbound_score,
        rules: v
            .matched
            .iter()
            .take(WafEventDetail::MAX_RULES)
            .map(|m| WafRuleHit {
                id: m.id,
                msg: m.msg.clone(),
                data: m.logdata.clone(),
            })
            .collect(),
    }
}

/// The status a WAF block answers with (the engine's, when it is an error status).
pub fn block_status(v: &WafVerdict) -> u16 {
    if (400..=599).contains(&v.status) {
        v.status
    } else {
        403
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_waf::MatchedRule;

    fn rule(id: u32) -> MatchedRule {
        MatchedRule {
            id,
            phase: 2,
            msg: format!("rule {id}"),
            logdata: "data".into(),
            severity: Some(2),
            tags: Vec::new(),
            matched_var_name: "ARGS:q".into(),
            log: true,
        }
    }

    #[test]
    fn request_translation() {
        let mut req = RequestHeader::build("POST", b"/a%20b?q=1'+OR+1=1", None).unwrap();
        req.insert_header("content-type", "application/x-www-form-urlencoded")
            .unwrap();
        req.append_header("cookie", "a=1").unwrap();
        req.append_header("cookie", "b=2").unwrap();
        let r = http_request(&req, "192.0.2.7".parse().unwrap(), 4242, "abc");
        assert_eq!(r.method, b"POST");
        assert_eq!(r.uri, b"/a%20b?q=1'+OR+1=1");
        assert_eq!(r.protocol, b"HTTP/1.1");
        assert_eq!((r.remote_addr.as_str(), r.remote_port), ("192.0.2.7", 4242));
        assert_eq!(r.unique_id, "abc");
        let cookies: Vec<&[u8]> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(b"cookie"))
            .map(|(_, v)| v.as_slice())
            .collect();
        assert_eq!(cookies, vec![&b"a=1"[..], &b"b=2"[..]]);

        // HTTP/2: the authority becomes the Host header.
        let mut req = RequestHeader::build("GET", b"/x?y", None).unwrap();
        req.set_uri(http::Uri::from_static("https://example.com/x?y"));
        req.set_version(http::Version::HTTP_2);
        let r = http_request(&req, "::1".parse().unwrap(), 0, "id");
        assert_eq!(r.protocol, b"HTTP/2.0");
        assert_eq!(r.headers[0], (b"host".to_vec(), b"example.com".to_vec()));
        assert_eq!(r.uri, b"/x?y");
    }

    #[test]
    fn bodies_are_read_only_when_small_and_of_known_length() {
        let with = |headers: &[(&str, &str)]| {
            let mut req = RequestHeader::build("POST", b"/", None).unwrap();
            for (k, v) in headers {
                req.insert_header(k.to_string(), *v).unwrap();
            }
            req
        };
        let max = 65536;
        assert_eq!(body_plan(&with(&[]), true, max), BodyPlan::None);
        assert_eq!(
            body_plan(&with(&[("content-length", "0")]), false, max),
            BodyPlan::None
        );
        assert_eq!(
            body_plan(&with(&[("content-length", "1024")]), false, max),
            BodyPlan::Read(1024)
        );
        assert_eq!(
            body_plan(&with(&[("content-length", "65536")]), false, max),
            BodyPlan::Read(65536)
        );
        assert_eq!(
            body_plan(&with(&[("content-length", "65537")]), false, max),
            BodyPlan::Uninspected("too_large")
        );
        assert_eq!(
            body_plan(&with(&[("content-length", "2000")]), false, 1000),
            BodyPlan::Uninspected("too_large")
        );
        // A larger setting cannot exceed what Pingora replays.
        assert_eq!(
            body_plan(&with(&[("content-length", "70000")]), false, 1 << 20),
            BodyPlan::Uninspected("too_large")
        );
        assert_eq!(
            body_plan(&with(&[("transfer-encoding", "chunked")]), false, max),
            BodyPlan::Uninspected("unknown_length")
        );
        assert_eq!(
            body_plan(&with(&[("content-length", "10")]), false, 0),
            BodyPlan::Uninspected("disabled")
        );
    }

    #[test]
    fn expect_continue_is_recognized() {
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        assert!(!expects_continue(&req));
        req.insert_header("expect", "100-Continue").unwrap();
        assert!(expects_continue(&req));
        req.set_version(http::Version::HTTP_10);
        assert!(!expects_continue(&req));
    }

    #[test]
    fn verdicts_become_event_evidence() {
        let v = WafVerdict {
            blocked: true,
            would_block: true,
            status: 0,
            rule_id: Some(949110),
            inbound_score: 10,
            matched: (0..40).map(|i| rule(942100 + i)).collect(),
        };
        assert_eq!(event_rule_id(&v), "949110");
        assert_eq!(block_status(&v), 403);
        let d = event_detail(&v);
        assert_eq!(d.anomaly_score, 10);
        assert_eq!(d.rules.len(), WafEventDetail::MAX_RULES);
        assert_eq!(
            (
                d.rules[0].id,
                d.rules[0].msg.as_str(),
                d.rules[0].data.as_str()
            ),
            (942100, "rule 942100", "data")
        );
        let v = WafVerdict {
            rule_id: None,
            status: 406,
            matched: vec![rule(941100)],
            ..v
        };
        assert_eq!(event_rule_id(&v), "941100");
        assert_eq!(block_status(&v), 406);
        assert_eq!(event_rule_id(&WafVerdict::default()), "waf");
    }
}
