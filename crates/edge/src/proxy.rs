//! The [`ProxyHttp`] implementation: where the security pipeline meets Pingora.
//!
//! Phases used (see `docs/phase_chart.md`):
//! - `request_filter`: request id, input limits, framing ([`crate::framing`]),
//!   client address, GeoIP, the normalized facts rules see, the pipeline,
//!   then the WAF's request headers ([`crate::inspect::start`]); a block is
//!   answered here through [`crate::respond`].
//! - `request_body_filter`: the body size limit on streamed bodies, and the
//!   WAF holding the body until it has decided ([`crate::inspect`]).
//! - `upstream_peer`: round robin over healthy upstreams not yet tried.
//! - `fail_to_connect` / `error_while_proxy`: passive failure detection and
//!   failover (never a retry of a request the WAF refused).
//! - `upstream_request_filter`: `X-Request-Id`, the client-address headers
//!   ([`crate::forwarded`]), the normalized target when the policy says so,
//!   no `Expect` when the edge answered `100 Continue` itself.
//! - `response_filter` / `response_body_filter`: the WAF's response phases,
//!   `X-Request-Id`.
//! - `fail_to_proxy`: 502/503/504 (and WAF refusals after the request header
//!   went upstream) with a clear body.
//! - `logging`: the WAF's logging phase, status and latency metrics.

use crate::conn::stream::GuardedStream;
use crate::inspect::{self, Start, WafFlow, Who};
use crate::respond;
use crate::state::EdgeState;
use crate::upstream::{Tried, UpstreamPool};
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
    /// The socket peer (a trusted proxy, or the client itself).
    peer: IpAddr,
    tried: Tried,
    upstream: Option<usize>,
    upstream_failed: bool,
    body_bytes: u64,
    /// GeoIP facts of the client (for escalations after the pipeline).
    geo: Geo,
    /// The WAF's state for this request (see [`crate::inspect`]).
    waf: Option<Box<WafFlow>>,
    /// The normalized target to send upstream instead of the one received
    /// (`[url_normalization] forward_normalized`, when normalizing changed it).
    forward_target: Option<String>,
    /// A check of the pipeline matched with a block verdict, enforced or
    /// simulated: the positive model does not learn from the request.
    flagged: bool,
    /// The bot defence's state of the request (`[bots]` in the policy).
    bots: Option<Box<BotCtx>>,
}

/// What the bot defence keeps of a request across phases.
struct BotCtx {
    policy: Arc<palisade_policy::Policy>,
    assessed: crate::bots::Assessed,
    login: Option<crate::bots::logins::LoginAttempt>,
    /// A challenge decided after the header (a guessed username): answered
    /// from `fail_to_proxy`.
    pending_challenge: Option<u16>,
}

impl Ctx {
    fn who(&self, port: u16) -> Who<'_> {
        Who {
            request_id: self.id.as_str(),
            client_ip: self.client_ip,
            client_port: port,
            geo: self.geo,
        }
    }
}

/// The client's port, when the socket peer is the client itself.
fn client_port(session: &Session, client: IpAddr) -> u16 {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .filter(|a| a.ip() == client)
        .map_or(0, |a| a.port())
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

/// The `id` label of `palisade_verdicts_total`: the rule or rate-limit id
/// (a bounded set: the policy's), but never a decision's id — decisions are
/// minted per offending source (escalations, floods), so one series per
/// decision would let clients grow the metrics without bound; their events
/// carry the id.
pub(crate) fn metric_id(check: CheckKind, id: &str) -> &str {
    if check == CheckKind::Decision {
        "decision"
    } else {
        id
    }
}

impl EdgeProxy {
    fn record_match(
        &self,
        m: &Match<'_>,
        req: &Request<'_>,
        bot: Option<&crate::bots::Assessed>,
        id: RequestId,
        now: u64,
    ) {
        let st = &self.state;
        let verdict = m.verdict.as_str();
        st.metrics
            .verdicts
            .with_label_values(&[
                m.check.as_str(),
                metric_id(m.check, m.id),
                verdict,
                if m.simulate { "true" } else { "false" },
            ])
            .inc();
        if m.check == CheckKind::Allowlist {
            return;
        }
        let status = match m.verdict {
            Verdict::Block { status, .. } | Verdict::Challenge { status } => Some(status),
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
            bot: bot.and_then(crate::bots::Assessed::event_detail),
        };
        if !st.events.emit(ev) {
            st.metrics.events_dropped.inc();
        }
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
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tried: Tried::default(),
            upstream: None,
            upstream_failed: false,
            body_bytes: 0,
            geo: Geo::default(),
            waf: None,
            forward_target: None,
            flagged: false,
            bots: None,
        }
    }

    /// No downstream modules: Pingora's default adds a (disabled) compression
    /// module whose per-request context and filters cost time on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let st = &self.state;
        // The connection guard: the header is in; the body (if any) is next.
        let guarded = GuardedStream::of(session.as_ref()).map(|conn| {
            let req = session.req_header();
            let has_body = req.headers.contains_key(http::header::TRANSFER_ENCODING)
                || req
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() != b"0");
            (conn.request_started(has_body), conn.keepalive_secs())
        });
        match guarded {
            // The connection's last request (max_requests).
            Some((false, _)) => session.set_keepalive(None),
            // (No keep-alive: Pingora is shutting down and ends the connection.)
            Some((true, secs)) if session.as_ref().get_keepalive().is_some() => {
                session.set_keepalive(Some(secs))
            }
            _ => {}
        }
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
        // HTTP/1.1 pipelining (RFC 9112, 9.3.2) as nginx serves it: each
        // pipelined request is read, checked and answered in turn.
        session.as_mut().set_pipelining_enabled(true);
        let req = session.req_header();
        let framing = crate::framing::check(req, || {
            session
                .as_ref()
                .as_http1()
                .map(|h1| h1.get_headers_raw_bytes())
        });
        if let Some(reason) = framing {
            st.metrics.bad_requests.with_label_values(&[reason]).inc();
            tracing::warn!(
                request_id = ctx.id.as_str(),
                reason,
                status = 400,
                "rejected request"
            );
            respond::send(session, 400, None, ctx.id.as_str(), true).await?;
            return Ok(true);
        }

        ctx.peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let peer = ctx.peer;
        let req = session.req_header();
        ctx.client_ip = st.trusted.client_ip(peer, || {
            req.headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(|v| v.as_bytes())
        });
        // What rules see: the host lower-cased without a trailing dot, the
        // target with its path normalized (both borrowed unless that changes
        // something), and the target as sent (non-UTF-8 bytes as U+FFFD).
        let host = palisade_policy::normalize_host(
            req.headers
                .get(http::header::HOST)
                .map(|h| h.as_bytes())
                .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()))
                .unwrap_or_default(),
        );
        let target = crate::waf::origin_form(req);
        let raw_uri = String::from_utf8_lossy(&target);
        let uri = palisade_policy::normalize_uri(raw_uri.as_bytes());
        let geo = st
            .geo
            .as_ref()
            .map(|g| g.lookup(ctx.client_ip))
            .unwrap_or_default();
        let now = now_ms();
        // The bot defence: its endpoint, then what it learns of the client.
        let policy_now = st.policy_full();
        let bots_policy = policy_now.bots.as_ref();
        if let Some(b) = bots_policy {
            if req.uri.path() == crate::bots::VERIFY_PATH {
                let banned = st.with_decisions(|d| {
                    d.lookup_hit(ctx.client_ip, geo, now).is_some_and(|h| {
                        h.action == palisade_policy::DecisionAction::Ban && !h.simulated
                    })
                });
                if banned {
                    respond::send(session, 403, None, ctx.id.as_str(), true).await?;
                } else {
                    let b = b.clone();
                    crate::bots::challenge::verify(
                        st,
                        session,
                        &b,
                        ctx.client_ip,
                        ctx.id.as_str(),
                        now,
                    )
                    .await?;
                }
                return Ok(true);
            }
        }
        let req = session.req_header();
        let assessed = bots_policy.map(|b| {
            let raw_head = session
                .as_ref()
                .as_http1()
                .map(|h1| h1.get_headers_raw_bytes());
            crate::bots::assess(
                st,
                b,
                &crate::bots::Seen {
                    ip: ctx.client_ip,
                    host: &host,
                    method: req.method.as_str(),
                    path: palisade_policy::request::split_path(&uri),
                    headers: &req.headers,
                    raw_head: raw_head.as_deref(),
                    prints: session
                        .client_addr()
                        .and_then(|a| a.as_inet())
                        .and_then(|a| st.conns.prints.get(a)),
                },
                now,
            )
        });
        let request = Request {
            client_ip: ctx.client_ip,
            host: &host,
            method: req.method.as_str(),
            uri: &uri,
            raw_uri: &raw_uri,
            headers: &req.headers,
            geo,
            client: assessed
                .as_ref()
                .map_or(palisade_policy::Client::UNKNOWN, |a| a.client()),
        };

        let t0 = Instant::now();
        let id = ctx.id;
        let verdict = {
            // The snapshot the bot defence read above: one policy per request.
            let policy: &palisade_policy::Policy = &policy_now;
            let escalating = !policy.escalations.is_empty();
            let mut blocked_by = None;
            let mut challenged_by = None;
            let mut flagged = false;
            let mut under_attack = false;
            let verdict = st.with_decisions(|decisions| {
                under_attack = crate::flood::under_attack(decisions, &host, now);
                Checks {
                    policy,
                    decisions,
                    limiter: &st.limiter,
                    under_attack,
                    global: Some(&st.global_limiter),
                }
                .evaluate(&request, now, &mut |m| {
                    if matches!(m.verdict, Verdict::Challenge { .. }) {
                        challenged_by = Some(m.check);
                    }
                    if matches!(m.verdict, Verdict::Block { .. }) {
                        flagged = true;
                        if escalating {
                            blocked_by = Some(m.check);
                        }
                    }
                    self.record_match(m, &request, assessed.as_ref(), id, now)
                })
            });
            ctx.flagged = flagged || challenged_by.is_some();
            // Outside the decision table's read lock: an escalation or a
            // flood may write to it.
            crate::flood::observe(st, policy, &request, under_attack, now);
            if let Some(kind) = blocked_by {
                st.escalate(policy, kind, ctx.client_ip, geo, now);
            }
            if policy.forward_normalized_path {
                if let std::borrow::Cow::Owned(normalized) = &uri {
                    ctx.forward_target = Some(normalized.clone());
                }
            }
            (verdict, challenged_by)
        };
        let (verdict, challenged_by) = verdict;
        let login = match (bots_policy, verdict) {
            (Some(b), Verdict::Continue | Verdict::Allow) if !b.logins.is_empty() => {
                crate::bots::logins::LoginAttempt::start(
                    b,
                    req.method.as_str(),
                    request.path(),
                    &req.headers,
                )
            }
            _ => None,
        };
        if let Verdict::Challenge { status } = verdict {
            let default_bots;
            let b = match bots_policy {
                Some(b) => b,
                None => {
                    default_bots = crate::bots::default_policy();
                    &default_bots
                }
            };
            let empty = crate::bots::Assessed::default();
            crate::bots::challenge::answer(
                st,
                session,
                b,
                status,
                challenged_by.unwrap_or(CheckKind::Rule),
                assessed.as_ref().unwrap_or(&empty),
                ctx.client_ip,
                ctx.id.as_str(),
                now,
            )
            .await?;
            if let Some(a) = assessed {
                ctx.bots = Some(Box::new(BotCtx {
                    policy: policy_now.clone(),
                    assessed: a,
                    login: None,
                    pending_challenge: None,
                }));
            }
            return Ok(true);
        }
        if let Some(a) = assessed {
            ctx.bots = Some(Box::new(BotCtx {
                policy: policy_now.clone(),
                assessed: a,
                login,
                pending_challenge: None,
            }));
        }
        st.metrics
            .pipeline_seconds
            .observe(t0.elapsed().as_secs_f64());

        ctx.geo = geo;

        // The WAF runs after the pipeline, on requests it let through without
        // an explicit allow.
        if let (Verdict::Continue, Some(waf)) = (verdict, st.waf()) {
            let port = client_port(session, ctx.client_ip);
            return match inspect::start(st, session, waf, ctx.who(port)).await? {
                Start::Proceed(flow) => {
                    ctx.waf = Some(flow);
                    Ok(false)
                }
                Start::Respond { status, close } => {
                    inspect::respond(session, status, close, ctx.id.as_str()).await
                }
            };
        }

        match verdict {
            Verdict::Block {
                status,
                retry_after_secs,
            } => {
                respond::send(session, status, retry_after_secs, ctx.id.as_str(), false).await?;
                Ok(true)
            }
            Verdict::Allow | Verdict::Continue => Ok(false),
            // Answered above.
            Verdict::Challenge { .. } => Ok(true),
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if end_of_stream {
            if let Some(conn) = GuardedStream::of(session.as_ref()) {
                conn.body_done();
            }
        }
        if let Some(bc) = ctx.bots.as_mut() {
            if let Some(login) = bc.login.as_mut() {
                // Held until it ends, so that a guessed username is checked
                // before anything reaches the origin.
                login.hold(body);
                if end_of_stream {
                    let now = now_ms();
                    if let Some(bots) = bc.policy.bots.as_ref() {
                        let marked = login.finish(&self.state, bots, body, now);
                        // A clearance earned since the username was marked
                        // (each new failure moves the mark): one solve per
                        // attempt for a guessed account, none for others.
                        let cleared_since = |since: u64| {
                            bc.assessed.clearance.is_some_and(|t| t.issued_ms >= since)
                        };
                        match marked {
                            Some((palisade_bots::logins::Action::Challenge, since))
                                if !cleared_since(since) =>
                            {
                                bc.pending_challenge = Some(403);
                                return Error::e_explain(
                                    ErrorType::HTTPStatus(403),
                                    "login attempt for a guessed username: challenged",
                                );
                            }
                            Some((palisade_bots::logins::Action::Ban, _)) => {
                                return Error::e_explain(
                                    ErrorType::HTTPStatus(403),
                                    "login attempt for a guessed username: refused",
                                );
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
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
        if let Some(mut flow) = ctx.waf.take() {
            let port = client_port(session, ctx.client_ip);
            let r = flow
                .request_chunk(&self.state, session, body, end_of_stream, ctx.who(port))
                .await;
            ctx.waf = Some(flow);
            r?;
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
        let waf_says_no = ctx.waf.as_ref().is_some_and(|w| !w.may_retry());
        if waf_says_no
            || !session.req_header().method.is_idempotent()
            || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_request.insert_header(X_REQUEST_ID, ctx.id.as_str())?;
        if ctx.waf.as_ref().is_some_and(|w| w.continue_sent) {
            // The client already sent its body (after our 100 Continue).
            upstream_request.remove_header(&http::header::EXPECT);
        }
        if let Some(target) = &ctx.forward_target {
            upstream_request.set_raw_path(target.as_bytes())?;
        }
        if ctx.bots.is_some() {
            // The clearance is the edge's: the origin never sees it.
            crate::bots::strip_clearance(upstream_request)?;
        }
        let tls = session
            .as_ref()
            .digest()
            .is_some_and(|d| d.ssl_digest.is_some());
        crate::forwarded::rewrite(
            upstream_request,
            &self.state.trusted,
            ctx.peer,
            ctx.client_ip,
            tls,
        )?;
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(mut flow) = ctx.waf.take() {
            let port = client_port(session, ctx.client_ip);
            let r = flow.response_header(&self.state, session, upstream_response, ctx.who(port));
            ctx.waf = Some(flow);
            r?;
        }
        if let Some(bc) = ctx.bots.as_ref() {
            if let (Some(login), Some(bots)) = (bc.login.as_ref(), bc.policy.bots.as_ref()) {
                login.answered(
                    &self.state,
                    bots,
                    upstream_response.status.as_u16(),
                    &upstream_response.headers,
                    ctx.client_ip,
                    ctx.geo.asn,
                    now_ms(),
                );
            }
        }
        upstream_response.insert_header(X_REQUEST_ID, ctx.id.as_str())?;
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(mut flow) = ctx.waf.take() {
            let port = client_port(session, ctx.client_ip);
            let r = flow.response_chunk(&self.state, session, body, end_of_stream, ctx.who(port));
            ctx.waf = Some(flow);
            r?;
        }
        Ok(None)
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
        if let Some(bc) = ctx.bots.as_mut() {
            // Set only by a `[bots]` login check (`request_body_filter`).
            let pending = bc.pending_challenge.take();
            if let (Some(status), false, Some(bots)) = (pending, answered, bc.policy.bots.as_ref())
            {
                let r = crate::bots::challenge::answer(
                    &self.state,
                    session,
                    bots,
                    status,
                    CheckKind::Rule,
                    &bc.assessed,
                    ctx.client_ip,
                    ctx.id.as_str(),
                    now_ms(),
                )
                .await;
                if let Err(err) = r {
                    tracing::debug!(error = %err, "could not send the challenge");
                }
                return FailToProxy {
                    error_code: status,
                    can_reuse_downstream: false,
                };
            }
        }
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
        if let Some(conn) = GuardedStream::of(session.as_ref()) {
            conn.request_done();
        }
        if let Some(flow) = ctx.waf.as_mut() {
            flow.finish();
        }
        let m = &self.state.metrics;
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        m.count_status(status);
        if let Some(key) = ctx.bots.as_ref().and_then(|b| b.assessed.key) {
            let set_cookie = session
                .response_written()
                .is_some_and(|r| r.headers.contains_key(http::header::SET_COOKIE));
            self.state
                .bots
                .table
                .observe_response(key, status, set_cookie, now_ms());
        }
        // The positive model learns from what passed every check and what
        // the origin served (a 4xx or 5xx says the request was not one the
        // route expects).
        if let Some(flow) = ctx.waf.as_ref() {
            let settings = flow.model_settings();
            if settings.learn
                && !ctx.flagged
                && e.is_none()
                && !ctx.upstream_failed
                && (100..400).contains(&status)
                && flow.teachable()
            {
                self.state
                    .model
                    .observe(settings, session.req_header(), ctx.client_ip);
                m.model_learned.inc();
            }
        }
        m.request_seconds.observe(ctx.start.elapsed().as_secs_f64());
        if let (Some(i), None, false) = (ctx.upstream, e, ctx.upstream_failed) {
            self.pool.report_success(i);
        }
    }
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
            ..crate::Limits::default()
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
}
