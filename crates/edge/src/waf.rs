//! The WAF in the edge: builds a [`palisade_waf::Waf`] from the policy's
//! `[waf]` settings, turns Pingora's request and response headers into the
//! engine's input, and the engine's verdict into the evidence of a security
//! event.
//!
//! The engine decides; this module only translates. What it must not do:
//! hold bodies or answer requests (that is [`crate::inspect`], driven by the
//! proxy's hooks).

use palisade_policy::waf::{WafMode, WafSettings};
use palisade_policy::WafEventDetail;
use palisade_waf::exchange::ExchangeVerdict;
use palisade_waf::{HttpRequest, MatchedRule, Waf, WafError, WafVerdict};
use pingora_http::{RequestHeader, ResponseHeader};
use std::borrow::Cow;
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

/// The protocol name the engine uses (`REQUEST_PROTOCOL`, `RESPONSE_PROTOCOL`).
pub fn protocol(version: http::Version) -> &'static [u8] {
    match version {
        http::Version::HTTP_09 => b"HTTP/0.9",
        http::Version::HTTP_10 => b"HTTP/1.0",
        http::Version::HTTP_2 => b"HTTP/2.0",
        http::Version::HTTP_3 => b"HTTP/3.0",
        _ => b"HTTP/1.1",
    }
}

/// The request target as sent, in origin form: path and query (an
/// absolute-form target `http://host/a?b` gives `/a?b`).
pub fn origin_form(req: &RequestHeader) -> Cow<'_, [u8]> {
    let raw = req.raw_path();
    if raw.starts_with(b"/") {
        return Cow::Borrowed(raw);
    }
    match memchr::memmem::find(raw, b"://") {
        Some(i) => {
            let rest = &raw[i + 3..];
            match memchr::memchr2(b'/', b'?', rest) {
                Some(p) if rest[p] == b'/' => Cow::Borrowed(&rest[p..]),
                // `http://host?q`: the root with that query.
                Some(p) => Cow::Owned([&b"/"[..], &rest[p..]].concat()),
                None => Cow::Borrowed(b"/"),
            }
        }
        None => Cow::Borrowed(raw),
    }
}

/// The path of a request as sent (the origin-form target without its query).
pub fn raw_path(req: &RequestHeader) -> Cow<'_, [u8]> {
    match origin_form(req) {
        Cow::Borrowed(t) => Cow::Borrowed(match memchr::memchr(b'?', t) {
            Some(i) => &t[..i],
            None => t,
        }),
        Cow::Owned(_) => Cow::Borrowed(b"/"),
    }
}

/// The response headers for the engine, names as the upstream sent them
/// when Pingora kept their case.
pub fn response_headers(resp: &ResponseHeader) -> Vec<(Vec<u8>, Vec<u8>)> {
    if resp.has_case() {
        resp.case_header_iter()
            .map(|(k, v)| (k.as_slice().to_vec(), v.as_bytes().to_vec()))
            .collect()
    } else {
        resp.headers
            .iter()
            .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }
}

/// The engine's view of a request (without body): method, request target as
/// sent, protocol, every header, client address and request id.
pub fn http_request(
    req: &RequestHeader,
    client_ip: IpAddr,
    client_port: u16,
    request_id: &str,
) -> HttpRequest {
    let protocol = protocol(req.version);
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

/// The evidence of an event: the scores, the phase, and the first
/// [`WafEventDetail::MAX_RULES`] rules that matched.
pub fn event_detail(v: &ExchangeVerdict) -> WafEventDetail {
    WafEventDetail {
        anomaly_score: v.inbound_score,
        phase: v.phase,
        outbound_score: v.outbound_score,
        reason: v.reason.map(str::to_string),
        rules: v
            .matched
            .iter()
            .take(WafEventDetail::MAX_RULES)
            .map(MatchedRule::event_hit)
            .collect(),
        rules_omitted: v.matched.len().saturating_sub(WafEventDetail::MAX_RULES) as u32,
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
            matched_var_names: vec!["ARGS:q".into()],
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
    fn raw_paths_and_response_headers() {
        let req = RequestHeader::build("GET", b"/a/%2e%2e/b?q=1", None).unwrap();
        assert_eq!(&*raw_path(&req), b"/a/%2e%2e/b");
        let req = RequestHeader::build("GET", b"http://h/admin?x", None).unwrap();
        assert_eq!(&*raw_path(&req), b"/admin");
        let req = RequestHeader::build("GET", b"http://h", None).unwrap();
        assert_eq!(&*raw_path(&req), b"/");
        let req = RequestHeader::build("GET", b"http://h/a/b?c=/d", None).unwrap();
        assert_eq!(&*origin_form(&req), b"/a/b?c=/d");
        let req = RequestHeader::build("GET", b"http://h?q=1", None).unwrap();
        assert_eq!(&*origin_form(&req), b"/?q=1");
        assert_eq!(&*raw_path(&req), b"/");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("Content-Type", "text/html").unwrap();
        resp.append_header("Set-Cookie", "a=1").unwrap();
        resp.append_header("Set-Cookie", "b=2").unwrap();
        let h = response_headers(&resp);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0], (b"Content-Type".to_vec(), b"text/html".to_vec()));
        assert_eq!(protocol(http::Version::HTTP_2), b"HTTP/2.0");
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
        let d = event_detail(&ExchangeVerdict {
            verdict: v.clone(),
            phase: 2,
            outbound_score: 0,
            reason: Some("body_truncated"),
        });
        assert_eq!((d.anomaly_score, d.phase), (10, 2));
        assert_eq!(d.reason.as_deref(), Some("body_truncated"));
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
