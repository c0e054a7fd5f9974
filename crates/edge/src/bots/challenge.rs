//! The answer to a `challenge` verdict, and the endpoint that turns a
//! solved challenge into a clearance.
//!
//! - A client that asks for a page (`Accept: text/html`, or a navigation)
//!   gets [`PAGE`]: a plain, accessible page without third-party assets
//!   whose Web Worker solves the proof of work and posts it to
//!   [`super::VERIFY_PATH`]; a GET then reloads (the original request goes
//!   on, now with the clearance cookie), any other method is asked to
//!   submit again.
//! - Any other client (an API, `Accept: application/json`) gets JSON with
//!   the same status: it cannot run the page.
//! - Without the fleet's keys (the control plane never wrote them), a
//!   challenge cannot be minted: the request is refused with the status
//!   as a plain block, and a warning says why.
//!
//! The status is the verdict's: 403 for rules and decisions, 429 for rate
//! limits (their configured `status`).

use super::{clearance_settings, wants_html, Assessed, CLEARANCE_COOKIE};
use crate::respond;
use crate::state::EdgeState;
use bytes::Bytes;
use palisade_policy::bots::BotsPolicy;
use palisade_policy::CheckKind;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// The challenge page (a template: see [`render`]).
pub const PAGE: &str = include_str!("challenge/page.html");

/// The most bytes of a posted solution read.
const MAX_SOLUTION_BYTES: usize = 4096;

/// The page with its placeholders filled. Every value is base64url, digits
/// or a method name (checked): nothing needs escaping.
pub fn render(token: &str, bits: u8, method: &str, request_id: &str, nonce: &str) -> String {
    let method = if method.bytes().all(|b| b.is_ascii_uppercase()) && method.len() <= 16 {
        method
    } else {
        "POST"
    };
    let request_id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    PAGE.replace("{{TOKEN}}", token)
        .replace("{{BITS}}", &bits.to_string())
        .replace("{{METHOD}}", method)
        .replace("{{REQUEST_ID}}", &request_id)
        .replace("{{NONCE}}", nonce)
        .replace("{{VERIFY_PATH}}", super::VERIFY_PATH)
}

/// The Content-Security-Policy of the page.
pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; worker-src blob:; style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Answers a challenged request (see the module docs).
#[allow(clippy::too_many_arguments)]
pub async fn answer(
    st: &EdgeState,
    session: &mut Session,
    bots: &BotsPolicy,
    status: u16,
    check: CheckKind,
    assessed: &Assessed,
    ip: IpAddr,
    request_id: &str,
    now: u64,
) -> pingora_core::Result<()> {
    let req = session.req_header();
    let html = wants_html(&req.headers);
    let kind = if html { "page" } else { "json" };
    st.metrics
        .bots
        .challenges
        .with_label_values(&[kind, check.as_str()])
        .inc();
    if !html {
        let body = format!(
            "{{\"error\":\"challenge_required\",\"status\":{status},\"message\":\"This request must pass a browser challenge: open the page in a browser, or slow down.\",\"request_id\":\"{request_id}\"}}\n"
        );
        return send(session, status, "application/json", body, request_id, None).await;
    }
    let ua = req
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let bits = bots.challenge.bits_for(assessed.bot_score());
    let settings = clearance_settings(&bots.challenge);
    let score = assessed.bot_score().unwrap_or(0);
    let Some(token) =
        st.bots
            .clearances
            .challenge(&settings, ip, ua, bits, score, rand::random(), now)
    else {
        tracing::warn!(
            request_id,
            "challenge asked but no key ring from the control plane yet: refused instead"
        );
        return respond::send(session, status, None, request_id, false).await;
    };
    let nonce = hex(&rand::random::<[u8; 12]>());
    let method = req.method.as_str().to_string();
    let page = render(&token, bits, &method, request_id, &nonce);
    let csp = csp(&nonce);
    send(
        session,
        status,
        "text/html; charset=utf-8",
        page,
        request_id,
        Some(&csp),
    )
    .await
}

async fn send(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: String,
    request_id: &str,
    csp: Option<&str>,
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(6))?;
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(crate::proxy::X_REQUEST_ID, request_id)?;
    resp.insert_header("x-palisade-challenge", "proof-of-work")?;
    if let Some(csp) = csp {
        resp.insert_header("content-security-policy", csp)?;
        resp.insert_header("x-frame-options", "DENY")?;
    }
    // A request with a body it did not read: the connection ends with the
    // answer (no draining of a body of unknown size on a challenge).
    let req = session.req_header();
    let has_body = req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body && !session.as_mut().is_body_done() {
        resp.insert_header(http::header::CONNECTION, "close")?;
        session.set_keepalive(None);
    }
    let head = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(resp), head).await?;
    if !head {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Reads `token=...&counter=...` (a form) from the request body.
fn parse_solution(body: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut token = None;
    let mut counter = None;
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=')?;
        match k {
            "token" => token = Some(v.replace("%2E", ".").replace("%2e", ".")),
            "counter" => counter = v.trim().parse::<u64>().ok(),
            _ => {}
        }
    }
    Some((token?, counter?))
}

/// Serves [`super::VERIFY_PATH`]: checks a solved challenge and sets the
/// clearance cookie (200), or says why not (403). Always answered here.
pub async fn verify(
    st: &EdgeState,
    session: &mut Session,
    bots: &BotsPolicy,
    ip: IpAddr,
    request_id: &str,
    now: u64,
) -> pingora_core::Result<()> {
    if session.req_header().method != http::Method::POST {
        let body = "{\"ok\":false,\"reason\":\"method\"}\n".to_string();
        return send(session, 405, "application/json", body, request_id, None).await;
    }
    let mut body = Vec::new();
    let mut too_long = false;
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_SOLUTION_BYTES {
            too_long = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let ua = session
        .req_header()
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let settings = clearance_settings(&bots.challenge);
    let outcome = match parse_solution(&body).filter(|_| !too_long) {
        None => Err("malformed"),
        Some((token, counter)) => st
            .bots
            .clearances
            .redeem(&settings, &token, counter, ip, &ua, rand::random(), now)
            .map_err(|r| r.as_str()),
    };
    match outcome {
        Ok((clearance, ttl_ms)) => {
            st.metrics.bots.solved.with_label_values(&["cleared"]).inc();
            let tls = session
                .as_ref()
                .digest()
                .is_some_and(|d| d.ssl_digest.is_some());
            let cookie = format!(
                "{CLEARANCE_COOKIE}={clearance}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
                ttl_ms / 1000,
                if tls { "; Secure" } else { "" }
            );
            let body = "{\"ok\":true}\n";
            let mut resp = ResponseHeader::build(200, Some(6))?;
            resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
            resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
            resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
            resp.insert_header(http::header::SET_COOKIE, cookie)?;
            resp.insert_header(crate::proxy::X_REQUEST_ID, request_id)?;
            session.write_response_header(Box::new(resp), false).await?;
            session
                .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
                .await?;
            Ok(())
        }
        Err(reason) => {
            st.metrics.bots.solved.with_label_values(&[reason]).inc();
            tracing::info!(request_id, reason, client = %ip, "challenge solution refused");
            let body = format!("{{\"ok\":false,\"reason\":\"{reason}\"}}\n");
            send(session, 403, "application/json", body, request_id, None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_every_placeholder_filled() {
        let p = render("abc.def", 16, "GET", "req-1<script>", "n0nce");
        assert!(!p.contains("{{"), "{p}");
        assert!(p.contains("abc.def") && p.contains("req-1script") && !p.contains("<script>alert"));
        assert!(render("t", 1, "get'", "r", "n").contains("\"POST\""));
    }

    #[test]
    fn solutions_parse() {
        assert_eq!(
            parse_solution(b"token=a.b&counter=42"),
            Some(("a.b".to_string(), 42))
        );
        assert_eq!(
            parse_solution(b"token=a%2Eb&counter=7"),
            Some(("a.b".to_string(), 7))
        );
        assert_eq!(parse_solution(b"token=a.b"), None);
        assert_eq!(parse_solution(b"counter=x&token=a"), None);
        assert_eq!(parse_solution(&[0xff, 0xfe]), None);
    }
}
