//! The WAF in the request path, hook by hook: one [`WafFlow`] per request
//! that the pipeline let through, driving a [`palisade_waf::Exchange`]
//! (which decides everything) from Pingora's phases.
//!
//! - `request_filter` → [`start`]: phase 1 on the headers, the body plan.
//!   A request without a body runs phase 2 at once. A refused body (its
//!   declared length over a `reject` limit: 413; an encoding refused or not
//!   decodable: 415) is answered before anything reaches the upstream. A
//!   body of declared length reserves its bytes under the process-wide cap
//!   ([`crate::budget`]) here, waiting if it must (503 after the wait).
//! - `request_body_filter` → [`WafFlow::request_chunk`]: every chunk is
//!   held (Pingora gets an empty chunk, so the upstream, which already has
//!   the request header, sees no body byte) until the body ends; then phase 2
//!   runs (on a blocking thread for large bodies) and the whole body is
//!   released at once, or the request is refused: the upstream request is
//!   aborted (its connection closed) and the client gets the block status.
//!   With `inspect_prefix`, the body is inspected once the limit is reached
//!   and the rest streams through.
//! - `response_filter` → [`WafFlow::response_header`]: phase 3. A block
//!   replaces the response by the block page (nothing was sent yet).
//! - `response_body_filter` → [`WafFlow::response_chunk`]: the body (of an
//!   inspected type, up to its limit) is held until phase 4 has run. The
//!   response header is already out, so a block cuts the response off:
//!   the connection is closed (HTTP/1) or the stream reset (HTTP/2).
//! - `logging` → [`WafFlow::finish`]: phase 5.
//!
//! Every step's verdict goes through one place ([`report`]): metrics, the
//! security event, the escalation count.

use crate::budget::{BudgetError, Reservation};
use crate::metrics::WafResult;
use crate::state::EdgeState;
use crate::waf::ActiveWaf;
use crate::{now_ms, respond};
use bytes::{Bytes, BytesMut};
use palisade_policy::{CheckKind, Geo, SecurityEvent};
use palisade_waf::exchange::{BodyPush, ExchangeVerdict, RequestBodyPlan, ResponseBodyPlan};
use palisade_waf::Exchange;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Bodies larger than this are inspected on a blocking thread, so that a
/// long inspection does not stall the other requests of a worker.
const BLOCKING_INSPECTION_BYTES: usize = 64 * 1024;

/// The bytes of the buffer cap a held request body of `n` bytes takes: the
/// body itself, and as much again for what the engine builds from it while
/// inspecting (decoded copies, parsed arguments).
fn held_cost(n: usize) -> usize {
    n.saturating_mul(2)
}

/// What a request is, for events and escalations.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub request_id: &'a str,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub geo: Geo,
}

/// What the proxy does after [`start`].
#[derive(Debug)]
pub enum Start {
    /// Proxy the request; keep the flow for the later hooks.
    Proceed(Box<WafFlow>),
    /// Answer `status` now (`close`: the body was not read).
    Respond { status: u16, close: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    /// Chunks are held; `reserved`: the whole declared length is reserved.
    Holding { reserved: bool },
    /// Decided: chunks pass.
    Streaming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespState {
    /// No response yet, or its body is not inspected.
    Passing,
    /// Chunks are held until phase 4.
    Holding,
}

/// The WAF's state for one request.
#[derive(Debug)]
pub struct WafFlow {
    waf: Arc<ActiveWaf>,
    /// `None` only while a blocking inspection holds it.
    ex: Option<Exchange>,
    req: ReqState,
    resp: RespState,
    req_reserved: Reservation,
    resp_reserved: Reservation,
    /// Response chunks held back (forwarded as received).
    resp_held: Vec<Bytes>,
    /// The WAF refused the request or cut the response: Pingora must not
    /// retry it on another upstream.
    pub refused: bool,
    /// The edge answered `Expect: 100-continue` itself: the upstream request
    /// goes without `Expect` (its body will come whole).
    pub continue_sent: bool,
}

impl WafFlow {
    /// Whether the positive model may learn from this request: the WAF let
    /// it through and flagged nothing but the lists the model replaces.
    pub fn teachable(&self) -> bool {
        !self.refused
            && self
                .ex
                .as_ref()
                .is_some_and(|ex| crate::model::teachable(ex.matched()))
    }

    /// The `[waf.model]` settings of the WAF that inspected the request.
    pub fn model_settings(&self) -> &palisade_policy::learn::model::ModelSettings {
        &self.waf.settings.model
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

/// Runs phase 1 (and phase 2 for a request without body), and decides what
/// happens to the body.
pub async fn start(
    st: &EdgeState,
    session: &mut Session,
    waf: Arc<ActiveWaf>,
    who: Who<'_>,
) -> Result<Start> {
    let body_expected = !session.as_mut().is_body_empty();
    let expect = expects_continue(session.req_header());
    let req = session.req_header();
    let input = crate::waf::http_request(req, who.client_ip, who.client_port, who.request_id);
    let t0 = Instant::now();
    let mut ex = waf.waf.begin(input);
    if st.model.apply(&waf.settings.model, req, &mut ex).is_some() {
        st.metrics.model_applied.inc();
    }
    let v = ex.request_headers();
    let plan = if v.blocked {
        None
    } else {
        Some(ex.request_body_plan(body_expected))
    };
    let mut flow = WafFlow {
        waf,
        ex: None,
        req: ReqState::Streaming,
        resp: RespState::Passing,
        req_reserved: Reservation::default(),
        resp_reserved: Reservation::default(),
        resp_held: Vec::new(),
        refused: false,
        continue_sent: false,
    };
    let outcome = match plan {
        None => {
            st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
            report(st, &flow.waf, req, who, &v, true);
            Start::Respond {
                status: crate::waf::block_status(&v),
                close: body_expected,
            }
        }
        Some(RequestBodyPlan::Refuse { status, reason }) => {
            st.metrics.bad_requests.with_label_values(&[reason]).inc();
            tracing::warn!(
                request_id = who.request_id,
                reason,
                status,
                "refused request body"
            );
            Start::Respond {
                status,
                close: true,
            }
        }
        Some(RequestBodyPlan::None) | Some(RequestBodyPlan::Uninspected { .. }) => {
            if let Some(RequestBodyPlan::Uninspected { reason }) = plan {
                st.metrics
                    .waf_body_uninspected
                    .with_label_values(&[reason])
                    .inc();
            }
            let v = ex.finish_request_body();
            st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
            report(st, &flow.waf, req, who, &v, true);
            if v.blocked {
                Start::Respond {
                    status: crate::waf::block_status(&v),
                    close: body_expected,
                }
            } else {
                flow.ex = Some(ex);
                Start::Proceed(Box::new(flow))
            }
        }
        Some(RequestBodyPlan::Inspect { limit, declared }) => {
            st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
            let reserve = declared.map(|n| (n as usize).min(limit));
            if let Some(n) = reserve {
                match st
                    .request_budget
                    .grow(&mut flow.req_reserved, held_cost(n))
                    .await
                {
                    Ok(waited) => {
                        if waited {
                            st.metrics
                                .body_buffer_waits
                                .with_label_values(&["request"])
                                .inc();
                        }
                    }
                    Err(e) => {
                        buffer_full(st, who.request_id, e);
                        return Ok(Start::Respond {
                            status: 503,
                            close: true,
                        });
                    }
                }
            }
            flow.req = ReqState::Holding {
                reserved: reserve.is_some(),
            };
            // The edge reads (and holds) the body whatever the upstream would
            // say: tell a client that waits for it to send it now.
            if expect {
                respond::send_continue(session).await?;
                flow.continue_sent = true;
            }
            flow.ex = Some(ex);
            Start::Proceed(Box::new(flow))
        }
    };
    Ok(outcome)
}

fn buffer_full(st: &EdgeState, request_id: &str, e: BudgetError) {
    st.metrics
        .bad_requests
        .with_label_values(&["body_buffer_full"])
        .inc();
    tracing::warn!(
        request_id,
        cap = st.request_budget.cap(),
        reason = ?e,
        "request body refused: the body buffer cap stayed full"
    );
}

/// An error that ends the exchange with `status` and is never retried.
fn refusal(status: u16, why: &'static str) -> Box<Error> {
    let mut e = Error::explain(ErrorType::HTTPStatus(status), why);
    e.set_retry(false);
    e
}

impl WafFlow {
    /// Whether Pingora may retry the request on another upstream: not once
    /// the WAF refused it, nor while its body is held (a retry would replay
    /// chunks the exchange already holds).
    pub fn may_retry(&self) -> bool {
        !self.refused && self.req == ReqState::Streaming
    }

    /// A request body chunk (see the module doc). `body` is replaced by an
    /// empty chunk while the body is held, and by the whole body once it
    /// passed.
    pub async fn request_chunk(
        &mut self,
        st: &EdgeState,
        session: &Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        who: Who<'_>,
    ) -> Result<()> {
        let ReqState::Holding { reserved } = self.req else {
            return Ok(());
        };
        let Some(ex) = self.ex.as_mut() else {
            return Ok(());
        };
        let mut push = BodyPush::Continue;
        if let Some(chunk) = body.take().filter(|c| !c.is_empty()) {
            if !reserved {
                if let Err(e) = st
                    .request_budget
                    .grow(&mut self.req_reserved, held_cost(chunk.len()))
                    .await
                {
                    buffer_full(st, who.request_id, e);
                    self.refused = true;
                    return Err(refusal(503, "request body buffer cap full"));
                }
            }
            push = ex.push_request_body(&chunk);
        }
        match push {
            BodyPush::TooLarge => {
                st.metrics
                    .bad_requests
                    .with_label_values(&["body_too_large"])
                    .inc();
                self.refused = true;
                return Err(refusal(413, "request body over the WAF limit"));
            }
            BodyPush::Continue if !end_of_stream => {
                // Held: nothing goes upstream yet.
                *body = Some(Bytes::new());
                return Ok(());
            }
            BodyPush::Full => {
                st.metrics
                    .waf_body_uninspected
                    .with_label_values(&["prefix"])
                    .inc();
            }
            BodyPush::Continue => {}
        }
        // End of the body, or the limit of `inspect_prefix`: decide.
        let Some(mut ex) = self.ex.take() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let (ex, v) = if self.req_reserved.bytes() > held_cost(BLOCKING_INSPECTION_BYTES) {
            let task = tokio::task::spawn_blocking(move || {
                let v = ex.finish_request_body();
                (ex, v)
            });
            match task.await {
                Ok(r) => r,
                Err(e) => {
                    self.refused = true;
                    tracing::error!(request_id = who.request_id, error = %e, "WAF inspection failed");
                    return Err(refusal(500, "WAF inspection failed"));
                }
            }
        } else {
            let v = ex.finish_request_body();
            (ex, v)
        };
        st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
        self.ex = Some(ex);
        report(st, &self.waf, session.req_header(), who, &v, true);
        if v.blocked {
            self.refused = true;
            return Err(refusal(
                crate::waf::block_status(&v),
                "request blocked by the WAF",
            ));
        }
        self.req = ReqState::Streaming;
        // The reservation stays until the request ends: the released body is
        // in memory until Pingora has written it upstream.
        let held = self
            .ex
            .as_mut()
            .map(Exchange::take_request_body)
            .unwrap_or_default();
        *body = Some(Bytes::from(held));
        Ok(())
    }

    /// Phase 3 on the response header (see the module doc).
    pub fn response_header(
        &mut self,
        st: &EdgeState,
        session: &Session,
        resp: &ResponseHeader,
        who: Who<'_>,
    ) -> Result<()> {
        if self.refused || !self.waf.settings.response.enabled {
            return Ok(());
        }
        let Some(ex) = self.ex.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let (v, plan) = ex.response_headers(
            resp.status.as_u16(),
            crate::waf::protocol(resp.version),
            crate::waf::response_headers(resp),
        );
        let skipped = match plan {
            ResponseBodyPlan::Inspect { .. } => None,
            ResponseBodyPlan::Skip { reason } => Some(reason),
        };
        // A body that is not inspected: phase 4 runs now, while the
        // response can still be replaced.
        let v = match skipped {
            Some(reason) if !v.blocked => {
                if reason != palisade_waf::exchange::reason::NO_BODY {
                    st.metrics
                        .waf_response_uninspected
                        .with_label_values(&[reason])
                        .inc();
                }
                ex.finish_response_body()
            }
            _ => v,
        };
        st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
        report(st, &self.waf, session.req_header(), who, &v, false);
        if v.blocked {
            self.refused = true;
            st.metrics
                .waf_response_blocked
                .with_label_values(&["headers"])
                .inc();
            return Err(refusal(
                crate::waf::block_status(&v),
                "response blocked by the WAF",
            ));
        }
        if skipped.is_none() {
            self.resp = RespState::Holding;
        }
        Ok(())
    }

    /// A response body chunk (see the module doc). Synchronous: Pingora's
    /// response body hook is.
    pub fn response_chunk(
        &mut self,
        st: &EdgeState,
        session: &Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        who: Who<'_>,
    ) -> Result<()> {
        if self.resp != RespState::Holding {
            return Ok(());
        }
        let Some(ex) = self.ex.as_mut() else {
            return Ok(());
        };
        let mut push = BodyPush::Continue;
        if let Some(chunk) = body.take().filter(|c| !c.is_empty()) {
            // The chunk is held here and (up to the limit) copied into the exchange.
            if !st
                .response_budget
                .try_grow(&mut self.resp_reserved, 2 * chunk.len())
            {
                st.metrics
                    .waf_response_uninspected
                    .with_label_values(&["buffer_full"])
                    .inc();
                push = BodyPush::Full;
            } else {
                push = ex.push_response_body(&chunk);
            }
            self.resp_held.push(chunk);
        }
        if push == BodyPush::Continue && !end_of_stream {
            *body = None;
            return Ok(());
        }
        let t0 = Instant::now();
        let v = if push == BodyPush::TooLarge {
            // Over a `reject` limit: cut off, whatever the rules say.
            ex.finish_response_body()
        } else {
            if push == BodyPush::Full {
                st.metrics
                    .waf_response_uninspected
                    .with_label_values(&["prefix"])
                    .inc();
            }
            ex.finish_response_body()
        };
        st.metrics.waf_seconds.observe(t0.elapsed().as_secs_f64());
        report(st, &self.waf, session.req_header(), who, &v, false);
        self.resp = RespState::Passing;
        let held = std::mem::take(&mut self.resp_held);
        self.resp_reserved = Reservation::default();
        if v.blocked || push == BodyPush::TooLarge {
            self.refused = true;
            st.metrics
                .waf_response_blocked
                .with_label_values(&["body"])
                .inc();
            return Err(refusal(
                crate::waf::block_status(&v),
                "response body blocked by the WAF: cut off",
            ));
        }
        *body = Some(match held.len() {
            0 => Bytes::new(),
            1 => held.into_iter().next().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(held.iter().map(Bytes::len).sum());
                for c in held {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        });
        Ok(())
    }

    /// Phase 5, when the request is done.
    pub fn finish(&mut self) {
        if let Some(ex) = self.ex.as_mut() {
            ex.logging();
        }
    }
}

/// Metrics, the security event and the escalation count of one verdict.
/// `request`: a request phase (1-2) rather than a response phase (3-4).
pub fn report(
    st: &EdgeState,
    waf: &ActiveWaf,
    req: &RequestHeader,
    who: Who<'_>,
    v: &ExchangeVerdict,
    request: bool,
) {
    let fired = v.blocked || v.would_block;
    if request {
        st.metrics.count_waf(match (v.blocked, v.would_block) {
            (true, _) => WafResult::Block,
            (false, true) => WafResult::Detect,
            (false, false) => WafResult::Pass,
        });
    }
    if !fired {
        return;
    }
    for m in &v.matched {
        st.metrics
            .waf_rule_matches
            .with_label_values(&[&m.id.to_string()])
            .inc();
    }
    let now = now_ms();
    let rule_id = crate::waf::event_rule_id(v);
    let simulate = waf.detect_only();
    let status = v.blocked.then(|| crate::waf::block_status(v));
    let verdict = if v.blocked { "block" } else { "continue" };
    st.metrics
        .verdicts
        .with_label_values(&[
            CheckKind::Waf.as_str(),
            &rule_id,
            verdict,
            if simulate { "true" } else { "false" },
        ])
        .inc();
    let host = req
        .headers
        .get(http::header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| req.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default();
    let ev = SecurityEvent {
        time_ms: now,
        node: st.node_id.clone(),
        request_id: who.request_id.to_string(),
        client_ip: who.client_ip,
        check: CheckKind::Waf,
        rule_id,
        action: if v.blocked { "block" } else { "log" }.to_string(),
        simulate,
        method: req.method.as_str().to_string(),
        host,
        path: String::from_utf8_lossy(&crate::waf::raw_path(req)).into_owned(),
        status,
        waf: Some(crate::waf::event_detail(v)),
        bot: None,
    };
    if !st.events.emit(ev) {
        st.metrics.events_dropped.inc();
    }
    if v.blocked {
        st.escalate(&st.policy(), CheckKind::Waf, who.client_ip, who.geo, now);
    }
}

/// The answer the proxy writes for [`Start::Respond`].
pub async fn respond(
    session: &mut Session,
    status: u16,
    close: bool,
    request_id: &str,
) -> Result<bool> {
    respond::send(session, status, None, request_id, close).await?;
    Ok(true)
}
