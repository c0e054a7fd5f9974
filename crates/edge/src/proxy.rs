//! The [`ProxyHttp`] implementation: where the security pipeline meets Pingora.
//!
//! Phases used (see `docs/phase_chart.md`):
//! - `request_filter`: request id, input limits, client address, GeoIP, the
//!   pipeline, then the WAF (reading a small body first, see [`crate::waf`]);
//!   a block is answered here through [`crate::respond`].
//! - `request_body_filter`: enforces the body size limit on streamed bodies.
//! - `upstream_peer`: round robin over healthy upstreams not yet tried.
//! - `fail_to_connect` / `error_while_proxy`: passive failure detection and failover.
//! - `upstream_request_filter` / `response_filter`: `X-Request-Id`, `X-Forwarded-For`
//!   (and no `Expect` when the body was already read).
//! - `fail_to_proxy`: 502/503/504 with a clear body.
//! - `logging`: status and latency metrics.

use crate::metrics::WafResult;
use crate::respond;
use crate::state::EdgeState;
use crate::upstream::{Tried, UpstreamPool};
use crate::waf::{ActiveWaf, BodyPlan};
use crate::{now_ms, request_id::RequestId};
use async_trait::async_trait;
use bytes::Bytes;
use palisade_policy::pipeline::{Checks, Match};
use palisade_policy::{CheckKind, Geo, Request, SecurityEvent, Verdict};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
pub(crate) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// How long the edge waits for a body it reads for the WAF (at most 64 KiB).
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The edge proxy.
pub struct EdgeProxy {
    state: Arc<EdgeState>,
    pool: Arc<UpstreamPool>,
}

impl EdgeProxy {
    /// A proxy over shared state and an upstream pool.
    pub fn new(state: Arc<EdgeState>, pool: Arc<UpstreamPool>) -> Self {
        EdgeProxy { state, pool }
    }
}

/// Per-request context.
pub struct Ctx {
    start: Instant,
    id: RequestId,
    client_ip: IpAddr,
    tried: Tried,
    upstream: Option<usize>,
    upstream_failed: bool,
    body_bytes: u64,
    /// The whole body was read in `request_filter` (for the WAF); Pingora replays it.
    body_prefetched: bool,
}

/// Why a request was rejected before the pipeline ran.
fn check_limits(req: &RequestHeader, limits: &crate::Limits) -> Option<(u16, &'static str)> {
    if req.headers.len() > limits.max_headers {
        return Some((431, "too_many_headers"));
    }
    let header_bytes: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Some((431, "headers_too_large"));
    }
    let uri_len = req
        .uri
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > limits.max_uri_bytes {
        return Some((414, "uri_too_long"));
    }
    if limits.max_body_bytes > 0 {
        if let Some(cl) = req.headers.get(http::header::CONTENT_LENGTH) {
            match cl.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                Some(n) if n > limits.max_body_bytes => return Some((413, "body_too_large")),
                Some(_) => {}
                None => return Some((400, "bad_content_length")),
            }
        }
    }
    None
}

impl EdgeProxy {
    fn record_match(&self, m: &Match<'_>, req: &Request<'_>, id: RequestId, now: u64) {
        let st = &self.state;
        let verdict = m.verdict.as_str();
        st.metrics
            .verdicts
            .with_label_values(&[
                m.check.as_str(),
                m.id,
                verdict,
                if m.simulate { "true" } else { "false" },
            ])
            .inc();
        if m.check == CheckKind::Allowlist {
            return;
        }
        let status = match m.verdict {
            Verdict::Block { status, .. } => Some(status),
            _ => None,
        };
        let ev = SecurityEvent {
            time_ms: now,
            node: st.node_id.clone(),
            request_id: id.as_str().to_string(),
            client_ip: req.client_ip,
            check: m.check,
            rule_id: m.id.to_string(),
            action: m.action.as_str().to_string(),
            simulate: m.simulate,
            method: req.method.to_string(),
            host: req.host.to_string(),
            path: req.path().to_string(),
            status,
            waf: None,
        };
        if !st.events.emit(ev) {
            st.metrics.events_dropped.inc();
        }
    }

    /// Runs the WAF on a request that passed the pipeline: reads a small body
    /// first (Pingora keeps it and replays it to the upstream), inspects, and
    /// records metrics, the event and the escalation count.
    async fn inspect_waf(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        waf: &ActiveWaf,
        geo: Geo,
    ) -> Result<Verdict> {
        let st = &self.state;
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        let port = peer
            .filter(|p| p.ip() == ctx.client_ip)
            .map_or(0, |p| p.port());
        let mut input =
            crate::waf::http_request(session.req_header(), ctx.client_ip, port, ctx.id.as_str());
        let body_empty = session.as_mut().is_body_empty();
        match crate::waf::body_plan(
            session.req_header(),
            body_empty,
            waf.settings.body.limit_no_files,
        ) {
            BodyPlan::None => {}
            BodyPlan::Uninspected(reason) => st
                .metrics
                .waf_body_uninspected
                .with_label_values(&[reason])
                .inc(),
            BodyPlan::Read(len) => {
                if crate::waf::expects_continue(session.req_header()) {
                    respond::send_continue(session).await?;
                }
                // Keeps what is read so that Pingora sends it to the upstream
                // (at most 64 KiB, which `body_plan` guarantees).
                session.as_mut().enable_retry_buffering();
                let read = async {
                    let mut body = Vec::with_capacity(len);
                    while let Some(chunk) = session.read_request_body().await? {
                        body.extend_from_slice(&chunk);
                        if body.len() > len {
                            return Error::e_explain(
                                ErrorType::HTTPStatus(400),
                                "request body longer than its Content-Length",
                            );
                        }
                    }
                    Ok(body)
                };
                let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
                    Ok(body) => body?,
                    Err(_) => {
                        return Error::e_explain(
                            ErrorType::HTTPStatus(408),
                            "request body not received in time",
                        )
                    }
                };
                ctx.body_prefetched = true;
                input.body = body;
            }
        }

        let t0 = Instant::now();
        let v = waf.waf.inspect(input);
        st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
        for m in &v.matched {
            st.metrics
                .waf_rule_matches
                .with_label_values(&[&m.id.to_string()])
                .inc();
        }
        let verdict = if v.blocked {
            Verdict::Block {
                status: crate::waf::block_status(&v),
                retry_after_secs: None,
            }
        } else {
            Verdict::Continue
        };
        st.metrics.count_waf(match (v.blocked, v.would_block) {
            (true, _) => WafResult::Block,
            (false, true) => WafResult::Detect,
            (false, false) => WafResult::Pass,
        });
        if !(v.blocked || v.would_block) {
            return Ok(verdict);
        }

        let now = now_ms();
        let rule_id = crate::waf::event_rule_id(&v);
        let simulate = waf.detect_only();
        st.metrics
            .verdicts
            .with_label_values(&[
                CheckKind::Waf.as_str(),
                &rule_id,
                verdict.as_str(),
                if simulate { "true" } else { "false" },
            ])
            .inc();
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let ev = SecurityEvent {
            time_ms: now,
            node: st.node_id.clone(),
            request_id: ctx.id.as_str().to_string(),
            client_ip: ctx.client_ip,
            check: CheckKind::Waf,
            rule_id,
            action: if v.blocked { "block" } else { "log" }.to_string(),
            simulate,
            method: req.method.as_str().to_string(),
            host: host.to_string(),
            path: req.uri.path().to_string(),
            status: match verdict {
                Verdict::Block { status, .. } => Some(status),
                _ => None,
            },
            waf: Some(crate::waf::event_detail(&v)),
        };
        if !st.events.emit(ev) {
            st.metrics.events_dropped.inc();
        }
        if v.blocked {
            st.escalate(&st.policy(), CheckKind::Waf, ctx.client_ip, geo, now);
        }
        Ok(verdict)
    }
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            start: Instant::now(),
            id: self.state.ids.next(),
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tried: Tried::default(),
            upstream: None,
            upstream_failed: false,
            body_bytes: 0,
            body_prefetched: false,
        }
    }

    /// No downstream modules: Pingora's default adds a (disabled) compression
    /// module whose per-request context and filters cost time on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let st = &self.state;
        let req = session.req_header();

        if let Some((status, reason)) = check_limits(req, &st.limits) {
            st.metrics.bad_requests.with_label_values(&[reason]).inc();
            tracing::warn!(
                request_id = ctx.id.as_str(),
                reason,
                status,
                "rejected request"
            );
            respond::send(session, status, None, ctx.id.as_str(), true).await?;
            return Ok(true);
        }

        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let req = session.req_header();
        ctx.client_ip = st.trusted.client_ip(peer, || {
            req.headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(|v| v.as_bytes())
        });
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let uri = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let geo = st
            .geo
            .as_ref()
            .map(|g| g.lookup(ctx.client_ip))
            .unwrap_or_default();
        let request = Request {
            client_ip: ctx.client_ip,
            host,
            method: req.method.as_str(),
            uri,
            headers: &req.headers,
            geo,
        };

        let now = now_ms();
        let t0 = Instant::now();
        let id = ctx.id;
        let verdict = {
            let policy = st.policy();
            let escalating = !policy.escalations.is_empty();
            let mut blocked_by = None;
            let verdict = st.with_decisions(|decisions| {
                Checks {
                    policy: &policy,
                    decisions,
                    limiter: &st.limiter,
                }
                .evaluate(&request, now, &mut |m| {
                    if escalating && matches!(m.verdict, Verdict::Block { .. }) {
                        blocked_by = Some(m.check);
                    }
                    self.record_match(m, &request, id, now)
                })
            });
            // Outside the decision table's read lock: an escalation may write to it.
            if let Some(kind) = blocked_by {
                st.escalate(&policy, kind, ctx.client_ip, geo, now);
            }
            verdict
        };
        st.metrics
            .pipeline_seconds
            .observe(t0.elapsed().as_secs_f64());

        // The WAF runs after the pipeline, on requests it let through without
        // an explicit allow.
        let verdict = match (verdict, st.waf()) {
            (Verdict::Continue, Some(waf)) => self.inspect_waf(session, ctx, &waf, geo).await?,
            (v, _) => v,
        };

        match verdict {
            Verdict::Block {
                status,
                retry_after_secs,
            } => {
                respond::send(session, status, retry_after_secs, ctx.id.as_str(), false).await?;
                Ok(true)
            }
            Verdict::Allow | Verdict::Continue => Ok(false),
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let max = self.state.limits.max_body_bytes;
        if max > 0 {
            if let Some(b) = body {
                ctx.body_bytes += b.len() as u64;
                if ctx.body_bytes > max {
                    self.state
                        .metrics
                        .bad_requests
                        .with_label_values(&["body_too_large"])
                        .inc();
                    return Error::e_explain(
                        ErrorType::HTTPStatus(413),
                        "request body over the limit",
                    );
                }
            }
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        match self.pool.select(&ctx.tried, now_ms()) {
            Some((i, peer)) => {
                ctx.tried.add(i);
                ctx.upstream = Some(i);
                ctx.upstream_failed = false;
                Ok(peer)
            }
            None => Error::e_explain(ErrorType::HTTPStatus(503), "no healthy upstream"),
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(i) = ctx.upstream {
            ctx.upstream_failed = true;
            self.pool.report_failure(i, now_ms(), &self.state.metrics);
        }
        // Nothing was sent yet: trying another upstream is always safe.
        if self.pool.has_untried(&ctx.tried) {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        if let (Some(i), ErrorSource::Upstream) = (ctx.upstream, e.esource()) {
            // A reused keepalive connection that the upstream closed is not a failure of the upstream.
            if !client_reused {
                ctx.upstream_failed = true;
                self.pool.report_failure(i, now_ms(), &self.state.metrics);
            }
        }
        let mut e = e.more_context(format!("upstream: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_request.insert_header(X_REQUEST_ID, ctx.id.as_str())?;
        if ctx.body_prefetched {
            // The client already sent its body (after our 100 Continue, if it asked).
            upstream_request.remove_header(&http::header::EXPECT);
        }
        // Append the address we saw to X-Forwarded-For.
        let mut buf = [0u8; 64];
        let ip = format_ip(&mut buf, ctx.client_ip);
        match upstream_request
            .headers
            .get(X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.is_empty() => {
                let joined = format!("{prev}, {ip}");
                upstream_request.insert_header(X_FORWARDED_FOR, joined)?;
            }
            _ => upstream_request.insert_header(X_FORWARDED_FOR, ip)?,
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_response.insert_header(X_REQUEST_ID, ctx.id.as_str())?;
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code >= 500 {
            tracing::warn!(request_id = ctx.id.as_str(), status = code, error = %e, "proxy failure");
        }
        // Nothing but an interim 100 Continue written yet: the error can still be answered.
        let answered = session
            .response_written()
            .is_some_and(|r| !r.status.is_informational());
        if code > 0 && !answered {
            if let Err(err) = respond::send(session, code, None, ctx.id.as_str(), true).await {
                tracing::debug!(error = %err, "could not send error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let m = &self.state.metrics;
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        m.count_status(status);
        m.request_seconds.observe(ctx.start.elapsed().as_secs_f64());
        if let (Some(i), None, false) = (ctx.upstream, e, ctx.upstream_failed) {
            self.pool.report_success(i);
        }
    }
}

/// Formats an IP address into a stack buffer.
fn format_ip(buf: &mut [u8; 64], ip: IpAddr) -> &str {
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "{ip}");
    let n = cur.position() as usize;
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_reject_oversized_input() {
        let limits = crate::Limits {
            max_headers: 2,
            max_header_bytes: 100,
            max_uri_bytes: 10,
            max_body_bytes: 5,
        };
        let mut req = RequestHeader::build("GET", b"/ok", None).unwrap();
        assert_eq!(check_limits(&req, &limits), None);
        req.insert_header("content-length", "6").unwrap();
        assert_eq!(check_limits(&req, &limits), Some((413, "body_too_large")));
        req.insert_header("content-length", "x").unwrap();
        assert_eq!(
            check_limits(&req, &limits),
            Some((400, "bad_content_length"))
        );
        let req = RequestHeader::build("GET", b"/0123456789", None).unwrap();
        assert_eq!(check_limits(&req, &limits), Some((414, "uri_too_long")));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for h in ["a", "b", "c"] {
            req.insert_header(h, "1").unwrap();
        }
        assert_eq!(check_limits(&req, &limits), Some((431, "too_many_headers")));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("a", "x".repeat(200)).unwrap();
        assert_eq!(
            check_limits(&req, &limits),
            Some((431, "headers_too_large"))
        );
    }

    #[test]
    fn formats_ips() {
        let mut buf = [0u8; 64];
        assert_eq!(
            format_ip(&mut buf, "2001:db8::1".parse().unwrap()),
            "2001:db8::1"
        );
        assert_eq!(format_ip(&mut buf, "1.2.3.4".parse().unwrap()), "1.2.3.4");
    }
}
