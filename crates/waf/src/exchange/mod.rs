//! One HTTP exchange (request and response) through the engine, step by
//! step, without doing any I/O: the caller (the edge's proxy hooks, the
//! conformance runner, [`Waf::inspect`]) feeds what arrives and is told what
//! to do.
//!
//! Owns: the decisions about bodies and responses — whether a request body
//! is expected, refused (413 / 415), inspected whole or by its prefix, how
//! it is decoded (`Content-Encoding`), when phase 2 runs; whether a
//! response body is inspected (enabled, media type, limit, status, method,
//! encoding); the running of phases 1 to 5 at the right moment; the
//! verdicts, with the phase and the reason. This is the one place those
//! rules live: the edge and the conformance runner both use it.
//!
//! Must not: do I/O, read the clock, panic on any input or call order, or
//! hold more body than the limits allow (the request's raw bytes up to its
//! limit plus the chunk that crossed it; the decoded copy of an encoded
//! body up to the limit; the response up to its limit).
//!
//! An [`Exchange`] owns an `Arc` of the rule set and is
//! `Send + Sync + 'static`, so it can live in a proxy's per-request context
//! between hooks.
//!
//! ```text
//! request headers ─▶ request_headers()            phase 1
//!                    request_body_plan(expected)  None | Refuse | Uninspected | Inspect
//! body chunks     ─▶ push_request_body(chunk)*    Continue | Full | TooLarge
//! end of body     ─▶ finish_request_body()        decode, phase 2
//!                    take_request_body()          the bytes to forward, as received
//! response header ─▶ response_headers(..)         phase 3, ResponseBodyPlan
//! body chunks     ─▶ push_response_body(chunk)*   Continue | Full | TooLarge
//! end of body     ─▶ finish_response_body()       decode, phase 4
//! done            ─▶ logging()                    phase 5
//! ```
//!
//! After [`Exchange::take_request_body`] the request body and what was
//! parsed from it (`REQUEST_BODY`, `ARGS_POST`, `FILES`, `XML`, ...) are
//! gone: the response phases see the request without its body (CRS' response
//! rules do not read it). The response body is kept only until phase 4 ran.
//!
//! Detection mode never refuses: where block mode would (a body over a
//! `reject` limit, an encoding refused or not decodable, corrupt compressed
//! data), the exchange inspects what it can, and the verdict says
//! `would_block` with the reason.

use std::ops::Deref;
use std::sync::Arc;

use palisade_policy::waf::{BodyLimitAction, ContentEncodingAction, WafMode, WafSettings};

use crate::body::{self, Processor};
use crate::config::{is_generated, Waf, WafVerdict};
use crate::decompress::{self, Codings, DecompressError};
use crate::rules::Disruptive;
use crate::transaction::{
    default_processor, HttpRequest, Interruption, MatchedRule, ResponseData, Transaction,
};

mod inbox;
#[cfg(test)]
mod tests;

use inbox::{Fill, Inbox};

/// Reasons an [`ExchangeVerdict`] or a plan gives (metric labels).
pub mod reason;

/// What to do with a request body, decided from the request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBodyPlan {
    /// There is no body: call [`Exchange::finish_request_body`] at once.
    None,
    /// Answer `status` (413 or 415) without reading the body.
    Refuse { status: u16, reason: &'static str },
    /// Forward the body as it comes without inspecting it (`reason`: a
    /// metric label); still call [`Exchange::finish_request_body`] (phase 2
    /// runs on the headers) before forwarding.
    Uninspected { reason: &'static str },
    /// Hold the body back and push it: up to `limit` bytes are inspected.
    /// `declared`: its `Content-Length` (not with chunked framing).
    Inspect { limit: usize, declared: Option<u64> },
}

/// What to do with a response body, decided from the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBodyPlan {
    /// Hold the body back and push it: up to `limit` bytes are inspected.
    Inspect { limit: usize },
    /// Forward the body as it comes; call
    /// [`Exchange::finish_response_body`] at once (phase 4 runs without
    /// `RESPONSE_BODY`). `reason`: a metric label.
    Skip { reason: &'static str },
}

/// What a pushed chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPush {
    /// Held; push the next chunk (or finish at the end of the body).
    Continue,
    /// The limit is reached (`inspect_prefix`, or detection mode): stop
    /// pushing, call finish now, then forward what was held and stream the
    /// rest uninspected. The chunk that crossed the limit is held whole.
    Full,
    /// Over the limit with `reject` in block mode: refuse the request
    /// (413), or cut the response. Nothing more is held.
    TooLarge,
}

/// A verdict of one step of an exchange: the [`WafVerdict`] (also reached
/// through `Deref`: `v.blocked`, `v.matched`), the phase it is about, the
/// outbound score and why a body was refused or only partly inspected.
#[derive(Debug, Clone, Default)]
pub struct ExchangeVerdict {
    /// Blocked / would block, status, rule, inbound score and every rule
    /// matched so far in the exchange (request and response).
    pub verdict: WafVerdict,
    /// The phase that blocked, else the last phase this step ran (1-5; 2
    /// for a request body refused by a limit or its encoding).
    pub phase: u8,
    /// CRS' blocking outbound anomaly score (0 before the response).
    pub outbound_score: i64,
    /// Why the body was refused, not inspected, or inspected by its first
    /// bytes only (see [`reason`]).
    pub reason: Option<&'static str>,
}

impl Deref for ExchangeVerdict {
    type Target = WafVerdict;
    fn deref(&self) -> &WafVerdict {
        &self.verdict
    }
}

impl From<ExchangeVerdict> for WafVerdict {
    fn from(v: ExchangeVerdict) -> WafVerdict {
        v.verdict
    }
}

/// Where the exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Begun,
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    Logged,
}

/// One request and its response going through the WAF (see the module
/// documentation for the order of calls).
pub struct Exchange {
    tx: Transaction,
    settings: Arc<WafSettings>,
    step: Step,
    /// `Content-Encoding` of the request body.
    req_codings: Result<Codings, DecompressError>,
    req: Inbox,
    /// The tx holds the raw request body (not a decoded copy).
    raw_in_tx: bool,
    /// A refusal decided by the exchange itself (status, reason).
    refused: Option<(u16, &'static str)>,
    req_reason: Option<&'static str>,
    /// Block mode would have refused the body (detection mode reports it).
    req_would_refuse: bool,
    resp_plan: ResponseBodyPlan,
    resp_codings: Codings,
    resp: Inbox,
    resp_reason: Option<&'static str>,
}

// The per-request context of a proxy must be `Send + Sync + 'static`.
const _: fn() = || {
    fn assert<T: Send + Sync + 'static>() {}
    assert::<Exchange>();
};

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("step", &self.step)
            .field("request_body_bytes", &self.req.raw.len())
            .field("response_body_bytes", &self.resp.raw.len())
            .finish_non_exhaustive()
    }
}

/// Every value of a header, joined with `, ` (as one list).
fn joined_header(headers: &[(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case(name) {
            match &mut out {
                Some(o) => {
                    o.extend_from_slice(b", ");
                    o.extend_from_slice(v);
                }
                None => out = Some(v.clone()),
            }
        }
    }
    out
}

/// The `Content-Length` of a message, unless it is chunked (then a
/// `Content-Length` means nothing).
fn declared_length(headers: &[(Vec<u8>, Vec<u8>)]) -> Option<u64> {
    let chunked = joined_header(headers, b"transfer-encoding").is_some_and(|te| {
        te.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        return None;
    }
    header(headers, b"content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// A declared length as the bytes to allocate for a body: at most `limit`.
fn clamp(declared: Option<u64>, limit: usize) -> usize {
    declared.map_or(0, |n| n.min(limit as u64) as usize)
}

fn header<'h>(headers: &'h [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

impl Exchange {
    pub(crate) fn new(waf: &Waf, mut req: HttpRequest) -> Exchange {
        let settings = Arc::clone(&waf.settings);
        let ct = header(&req.headers, b"content-type").unwrap_or(b"");
        let limit = settings.body.limit_for(ct);
        let block = settings.mode == WafMode::Block;
        let reject = block && settings.body.limit_action == BodyLimitAction::Reject;
        let req_codings = match joined_header(&req.headers, b"content-encoding") {
            Some(v) => decompress::parse_codings(&v),
            None => Ok(Codings::default()),
        };
        let declared = declared_length(&req.headers);
        let early_body = std::mem::take(&mut req.body);
        let mut ex = Exchange {
            tx: Transaction::new(Arc::clone(&waf.rules), req),
            settings,
            step: Step::Begun,
            req_codings,
            req: Inbox::new(limit, reject, true),
            raw_in_tx: false,
            refused: None,
            req_reason: None,
            req_would_refuse: false,
            resp_plan: ResponseBodyPlan::Skip {
                reason: reason::NO_BODY,
            },
            resp_codings: Codings::default(),
            resp: Inbox::new(0, false, false),
            resp_reason: None,
        };
        ex.req.expected = clamp(declared, limit);
        if !early_body.is_empty() {
            ex.push_owned_request_body(early_body);
        }
        ex
    }

    fn block_mode(&self) -> bool {
        self.settings.mode == WafMode::Block
    }

    /// Sets `tx.<name>` for this exchange's rules. Call it before
    /// [`Exchange::request_headers`]: rules that already ran do not see it.
    pub fn set_tx(&mut self, name: &str, value: &[u8]) {
        self.tx.set_tx(name, value);
    }

    /// Phase 1, on the request line and headers. Call it once the headers
    /// are known; a blocked verdict ends the exchange (answer its status,
    /// then call [`Exchange::logging`]).
    pub fn request_headers(&mut self) -> ExchangeVerdict {
        self.run_request_headers();
        self.request_verdict(1)
    }

    fn run_request_headers(&mut self) {
        if self.step < Step::RequestHeaders {
            self.step = Step::RequestHeaders;
            self.tx.process_request_headers();
        }
    }

    /// What to do with the request body. `body_expected`: the request has
    /// one (for HTTP/1: a `Content-Length` over 0 or chunked framing; for
    /// HTTP/2 and 3: no END_STREAM on the headers) — the framing is the
    /// caller's to know.
    pub fn request_body_plan(&self, body_expected: bool) -> RequestBodyPlan {
        if !body_expected {
            return RequestBodyPlan::None;
        }
        let declared = declared_length(&self.tx.data.req.headers);
        if declared == Some(0) {
            return RequestBodyPlan::None;
        }
        if let Some(why) = self.refused_encoding() {
            return if self.block_mode() {
                RequestBodyPlan::Refuse {
                    status: 415,
                    reason: why,
                }
            } else {
                RequestBodyPlan::Uninspected { reason: why }
            };
        }
        if self.req.limit == 0 {
            return RequestBodyPlan::Uninspected {
                reason: reason::DISABLED,
            };
        }
        if self.req.reject && declared.is_some_and(|n| n > self.req.limit as u64) {
            return RequestBodyPlan::Refuse {
                status: 413,
                reason: reason::BODY_TOO_LARGE,
            };
        }
        RequestBodyPlan::Inspect {
            limit: self.req.limit,
            declared,
        }
    }

    /// Why the request's `Content-Encoding` is not inspected, if it is not.
    fn refused_encoding(&self) -> Option<&'static str> {
        match &self.req_codings {
            Err(_) => Some(reason::ENCODING_UNSUPPORTED),
            Ok(c)
                if !c.is_empty()
                    && self.settings.body.content_encoding == ContentEncodingAction::Refuse =>
            {
                Some(reason::ENCODING_REFUSED)
            }
            Ok(_) => None,
        }
    }

    /// Holds a chunk of the request body (as received, still encoded).
    /// Up to the limit is kept for inspection; see [`BodyPush`].
    pub fn push_request_body(&mut self, chunk: &[u8]) -> BodyPush {
        if self.step >= Step::RequestBody {
            // Phase 2 ran: nothing more is inspected.
            return BodyPush::Full;
        }
        if self.req.limit == 0 || self.refused_encoding().is_some() {
            // Not inspected; a chunk pushed all the same is held to be
            // forwarded, and the caller told to stop.
            if self.req.fill == Fill::Open {
                self.req.raw.extend_from_slice(chunk);
                self.req.fill = Fill::Full;
            }
            return BodyPush::Full;
        }
        self.req.push(chunk)
    }

    /// [`Exchange::push_request_body`] for a whole body already in memory
    /// (moved, not copied, when it fits).
    pub(crate) fn push_owned_request_body(&mut self, body: Vec<u8>) -> BodyPush {
        if self.req.raw.is_empty()
            && self.step < Step::RequestBody
            && body.len() <= self.req.limit
            && self.refused_encoding().is_none()
        {
            self.req.raw = body;
            return BodyPush::Continue;
        }
        self.push_request_body(&body)
    }

    /// Ends the request body: decodes it (per `Content-Encoding`, within
    /// the same limit) and runs phase 2 (also for a request without body:
    /// CRS' blocking evaluation is in phase 2). Runs phase 1 first if that
    /// was not done. Refusals: 413 for a body (or its decoded form) over a
    /// `reject` limit, 415 for an encoding refused or unsupported, 400 for
    /// corrupt compressed data; in detection mode these are reported
    /// (`would_block`, `reason`) and what can be is inspected.
    pub fn finish_request_body(&mut self) -> ExchangeVerdict {
        let phase = self.run_request_body();
        self.request_verdict(phase)
    }

    /// What [`Exchange::finish_request_body`] does; returns the phase its
    /// verdict is about.
    fn run_request_body(&mut self) -> u8 {
        if self.step >= Step::RequestBody {
            return 2;
        }
        self.run_request_headers();
        self.step = Step::RequestBody;
        if self.tx.state.interruption.is_some() {
            return 1;
        }
        if self.req.fill == Fill::TooLarge {
            self.mark_refused(413, reason::BODY_TOO_LARGE);
            return 2;
        }
        match self.prepare_request_body() {
            Ok((why, would_refuse)) => {
                self.req_reason = why;
                self.req_would_refuse = would_refuse;
            }
            Err((status, why)) => {
                self.mark_refused(status, why);
                return 2;
            }
        }
        self.tx.process_request_body();
        2
    }

    /// The request declares a body (`Content-Length` over 0, or chunked).
    fn body_declared(&self) -> bool {
        let headers = &self.tx.data.req.headers;
        header(headers, b"transfer-encoding").is_some()
            || header(headers, b"content-length")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
    }

    /// Puts what is inspected of the request body into the transaction.
    /// `Ok((reason, would_refuse))`; `Err((status, reason))`: refuse it
    /// (block mode only).
    fn prepare_request_body(
        &mut self,
    ) -> Result<(Option<&'static str>, bool), (u16, &'static str)> {
        let block = self.block_mode();
        let has_body = !self.req.raw.is_empty() || self.req.fill != Fill::Open;
        if let Some(why) = self.refused_encoding() {
            // Held (if pushed) to be forwarded, never inspected.
            if !has_body && !self.body_declared() {
                return Ok((None, false));
            }
            if block {
                return Err((415, why));
            }
            return Ok((Some(why), true));
        }
        let limit = self.req.limit;
        if limit == 0 {
            return Ok((has_body.then_some(reason::DISABLED), false));
        }
        let raw = std::mem::take(&mut self.req.raw);
        let over = self.req.over_limit();
        let reject = self.settings.body.limit_action == BodyLimitAction::Reject;
        let processor = self.request_processor();
        let (mut why, mut would_refuse) = match (over, reject) {
            (false, _) => (None, false),
            // Detection mode: the reject limit is reported, the prefix inspected.
            (true, true) => (Some(reason::BODY_TOO_LARGE), true),
            (true, false) => (Some(reason::BODY_TRUNCATED), false),
        };
        let codings = self.req_codings.unwrap_or_default();
        if codings.is_empty() || raw.is_empty() {
            let data = &mut self.tx.data;
            data.body_partial = over;
            data.body_over_limit = over;
            data.inspect_len =
                over.then(|| body::prefix_len(processor, &raw[..raw.len().min(limit)]));
            data.req.body = raw;
            self.raw_in_tx = true;
            return Ok((why, would_refuse));
        }
        let decoded = decompress::decode(&raw[..raw.len().min(limit)], &codings, limit, !over);
        // Forwarded as received; the decoded copy is what is inspected.
        self.req.raw = raw;
        let d = match decoded {
            Ok(d) => d,
            Err(_) if block => return Err((400, reason::ENCODING_CORRUPT)),
            Err(_) => return Ok((Some(reason::ENCODING_CORRUPT), true)),
        };
        if d.over_limit {
            if reject {
                if block {
                    return Err((413, reason::DECODED_TOO_LARGE));
                }
                why = Some(reason::DECODED_TOO_LARGE);
                would_refuse = true;
            } else if why.is_none() {
                why = Some(reason::BODY_TRUNCATED);
            }
        }
        let partial = over || d.over_limit || d.unfinished;
        let data = &mut self.tx.data;
        data.body_partial = partial;
        data.body_over_limit = over || d.over_limit;
        data.inspect_len = partial.then(|| body::prefix_len(processor, &d.data));
        data.req.body = d.data;
        self.raw_in_tx = false;
        Ok((why, would_refuse))
    }

    /// The body processor phase 2 will use (a `ctl:` of phase 1, else the
    /// one for the `Content-Type`).
    fn request_processor(&self) -> Option<Processor> {
        self.tx.request_body_processor().or_else(|| {
            default_processor(header(&self.tx.data.req.headers, b"content-type").unwrap_or(b""))
        })
    }

    /// The request body as received (still encoded) to forward upstream,
    /// without a copy; everything held for the body (the decoded copy, the
    /// parsed arguments, files and XML) is released. Call it after
    /// [`Exchange::finish_request_body`].
    pub fn take_request_body(&mut self) -> Vec<u8> {
        let in_tx = self.tx.take_request_body();
        let raw = std::mem::take(&mut self.req.raw);
        if self.raw_in_tx {
            self.raw_in_tx = false;
            in_tx
        } else {
            raw
        }
    }

    /// A refusal decided here (a limit or an encoding): blocks in block
    /// mode (later phases do not run).
    fn mark_refused(&mut self, status: u16, why: &'static str) {
        if self.block_mode() {
            self.refused = Some((status, why));
            if self.tx.state.interruption.is_none() {
                self.tx.state.interruption = Some(Interruption {
                    rule_id: 0,
                    status,
                    action: Disruptive::Deny,
                    phase: 2,
                });
            }
        }
        self.req_reason = Some(why);
        self.req_would_refuse = true;
        if self.step < Step::RequestBody {
            self.step = Step::RequestBody;
        }
    }

    /// Runs the request phases of [`Waf::inspect`]: phase 1, then the body
    /// (given whole), then phase 2; the verdict takes the matched rules
    /// along instead of copying them.
    pub fn inspect_request(mut self, body: Vec<u8>) -> WafVerdict {
        self.run_request_headers();
        let phase = if self.tx.state.interruption.is_some() {
            1
        } else {
            match self.request_body_plan(!body.is_empty()) {
                RequestBodyPlan::Refuse { status, reason } => {
                    self.mark_refused(status, reason);
                    2
                }
                RequestBodyPlan::Inspect { .. } => {
                    self.push_owned_request_body(body);
                    self.run_request_body()
                }
                RequestBodyPlan::None | RequestBodyPlan::Uninspected { .. } => {
                    self.run_request_body()
                }
            }
        };
        let matched = std::mem::take(&mut self.tx.state.matched)
            .into_iter()
            .filter(|m| m.log && !is_generated(m.id))
            .collect();
        self.request_verdict_with(phase, matched).verdict
    }

    /// Phase 3 on the response headers, and what to do with the body.
    /// Runs phase 2 first if the request body was not finished.
    pub fn response_headers(
        &mut self,
        status: u16,
        protocol: &[u8],
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> (ExchangeVerdict, ResponseBodyPlan) {
        if self.step < Step::RequestBody {
            self.finish_request_body();
        }
        let skip = |reason| ResponseBodyPlan::Skip { reason };
        if self.step >= Step::ResponseHeaders {
            return (self.response_verdict(3), self.resp_plan);
        }
        self.step = Step::ResponseHeaders;
        if self.tx.state.interruption.is_some() {
            self.resp_plan = skip(reason::BLOCKED);
            return (self.response_verdict(3), self.resp_plan);
        }
        let settings = Arc::clone(&self.settings);
        let rs = &settings.response;
        let codings = joined_header(&headers, b"content-encoding")
            .map(|v| decompress::parse_codings(&v))
            .unwrap_or(Ok(Codings::default()));
        let content_type = header(&headers, b"content-type").map(<[u8]>::to_vec);
        if !rs.enabled {
            self.resp_plan = skip(reason::DISABLED);
            return (self.response_verdict(3), self.resp_plan);
        }
        self.tx
            .set_response(ResponseData::new(status, protocol, headers));
        self.tx.process_response_headers();
        let v = self.response_verdict(3);
        let head = self.tx.data.req.method.eq_ignore_ascii_case(b"HEAD");
        self.resp_plan = if self.tx.state.interruption.is_some() {
            skip(reason::BLOCKED)
        } else if head || status < 200 || status == 204 || status == 304 {
            skip(reason::NO_BODY)
        } else if rs.body_limit == 0 || !self.tx.response_body_access() {
            skip(reason::DISABLED)
        } else if !content_type.is_some_and(|ct| rs.inspects_type(&ct)) {
            skip(reason::MIME_TYPE)
        } else {
            match codings {
                Err(_) => skip(reason::ENCODING_UNSUPPORTED),
                Ok(c) => {
                    self.resp_codings = c;
                    let reject = self.block_mode() && rs.limit_action == BodyLimitAction::Reject;
                    self.resp = Inbox::new(rs.body_limit, reject, false);
                    self.resp.expected =
                        clamp(declared_length(&self.tx.data.resp.headers), rs.body_limit);
                    ResponseBodyPlan::Inspect {
                        limit: rs.body_limit,
                    }
                }
            }
        };
        (v, self.resp_plan)
    }

    /// Holds a chunk of the response body (as received, for inspection
    /// only: the caller forwards its own copy). See [`BodyPush`].
    pub fn push_response_body(&mut self, chunk: &[u8]) -> BodyPush {
        if self.step != Step::ResponseHeaders
            || !matches!(self.resp_plan, ResponseBodyPlan::Inspect { .. })
        {
            return BodyPush::Full;
        }
        self.resp.push(chunk)
    }

    /// Ends the response body: decodes it for inspection (gzip, deflate,
    /// br, within the limit) and runs phase 4 with `RESPONSE_BODY`; for a
    /// skipped body, phase 4 runs without it. A body over a `reject` limit
    /// (block mode) gives a blocked verdict (500): cut the response.
    pub fn finish_response_body(&mut self) -> ExchangeVerdict {
        if self.step >= Step::ResponseBody {
            return self.response_verdict(4);
        }
        if self.step < Step::ResponseHeaders {
            // No response headers were given: nothing to inspect.
            return self.response_verdict(3);
        }
        self.step = Step::ResponseBody;
        if self.tx.state.interruption.is_some() || !self.settings.response.enabled {
            return self.response_verdict(4);
        }
        if self.resp.fill == Fill::TooLarge {
            self.resp_reason = Some(reason::BODY_TOO_LARGE);
            self.tx.state.interruption = Some(Interruption {
                rule_id: 0,
                status: 500,
                action: Disruptive::Deny,
                phase: 4,
            });
            return self.response_verdict(4);
        }
        if let ResponseBodyPlan::Inspect { limit } = self.resp_plan {
            let raw = std::mem::take(&mut self.resp.raw);
            let mut over = self.resp.over_limit();
            let mut reason = over.then_some(reason::BODY_TRUNCATED);
            let body = if self.resp_codings.is_empty() {
                raw
            } else {
                match decompress::decode(&raw, &self.resp_codings, limit, !over) {
                    Ok(d) => {
                        over |= d.over_limit;
                        if over {
                            reason = Some(reason::BODY_TRUNCATED);
                        }
                        // What phase 4 sees is no longer encoded (as after
                        // Apache's mod_inflate), so CRS' "compressed
                        // response" skips do not apply to it.
                        self.tx
                            .data
                            .resp
                            .headers
                            .retain(|(k, _)| !k.eq_ignore_ascii_case(b"content-encoding"));
                        d.data
                    }
                    Err(_) => {
                        reason = Some(reason::ENCODING_CORRUPT);
                        Vec::new()
                    }
                }
            };
            self.resp_reason = reason;
            self.tx.set_response_body(body, over);
        } else if let ResponseBodyPlan::Skip { reason } = self.resp_plan {
            self.resp_reason = Some(reason);
        }
        self.tx.process_response_body();
        // RESPONSE_BODY is not needed any more.
        self.tx.release_response_body();
        self.response_verdict(4)
    }

    /// Phase 5 (logging, CRS' reporting rules). Call it last, whatever
    /// happened (also after a block).
    pub fn logging(&mut self) {
        if self.step < Step::Logged {
            self.step = Step::Logged;
            self.tx.process_logging();
        }
    }

    /// Every logged rule that matched so far, in evaluation order.
    pub fn matched(&self) -> impl Iterator<Item = &MatchedRule> + '_ {
        self.tx
            .state
            .matched
            .iter()
            .filter(|m| m.log && !is_generated(m.id))
    }

    /// The transaction (variables and evaluation state), read-only.
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }

    fn interruption(&self) -> Option<&Interruption> {
        self.tx.state.interruption.as_ref()
    }

    fn base_verdict(&self, matched: Vec<MatchedRule>) -> WafVerdict {
        let i = self.interruption();
        let refused = self.refused;
        WafVerdict {
            blocked: i.is_some(),
            would_block: i.is_some(),
            status: refused.map(|(s, _)| s).or(i.map(|i| i.status)).unwrap_or(0),
            rule_id: i.map(|i| i.rule_id).filter(|&id| id != 0),
            inbound_score: self.tx.inbound_score(),
            matched,
        }
    }

    /// The verdict of a request step (`phase` 1 or 2).
    fn request_verdict(&self, phase: u8) -> ExchangeVerdict {
        self.request_verdict_with(phase, self.matched().cloned().collect())
    }

    fn request_verdict_with(&self, phase: u8, matched: Vec<MatchedRule>) -> ExchangeVerdict {
        let mut v = self.base_verdict(matched);
        v.would_block |= self.req_would_refuse;
        let anomaly = v.matched.iter().any(|m| m.id == 949110 || m.id == 949111);
        v.would_block |= anomaly || v.inbound_score >= i64::from(self.settings.inbound_threshold);
        if v.rule_id.is_none() && anomaly && self.refused.is_none() {
            v.rule_id = v
                .matched
                .iter()
                .find(|m| m.id == 949110 || m.id == 949111)
                .map(|m| m.id);
        }
        let why = if phase >= 2 { self.req_reason } else { None };
        ExchangeVerdict {
            phase: self.interruption().map(|i| i.phase).unwrap_or(phase),
            outbound_score: 0,
            reason: self.refused.map(|(_, r)| r).or(why),
            verdict: v,
        }
    }

    /// The verdict of a response step (`phase` 3 or 4): about the response
    /// (outbound), not the request.
    fn response_verdict(&self, phase: u8) -> ExchangeVerdict {
        let mut v = self.base_verdict(self.matched().cloned().collect());
        let outbound = self.tx.outbound_score();
        let request_blocked = self.interruption().is_some_and(|i| i.phase <= 2);
        if request_blocked {
            return ExchangeVerdict {
                phase: self.interruption().map(|i| i.phase).unwrap_or(phase),
                outbound_score: outbound,
                reason: Some(reason::BLOCKED),
                verdict: v,
            };
        }
        let anomaly = v.matched.iter().find(|m| m.id == 959100 || m.id == 959101);
        let phase4 = self.step >= Step::ResponseBody;
        v.would_block |= anomaly.is_some()
            || (phase4 && outbound >= i64::from(self.settings.outbound_threshold));
        if v.rule_id.is_none() {
            v.rule_id = anomaly.map(|m| m.id);
        }
        ExchangeVerdict {
            phase: self.interruption().map(|i| i.phase).unwrap_or(phase),
            outbound_score: outbound,
            reason: self.resp_reason,
            verdict: v,
        }
    }
}
