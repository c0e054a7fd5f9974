//! Evaluation of one HTTP transaction against a [`RuleSet`], phase by phase.
//!
//! The request is parsed once into [`RequestData`] (arguments, cookies,
//! body), the response (when there is one) into [`ResponseData`]. Mutable
//! evaluation state (TX collection, matched variables, runtime `ctl:`
//! changes) lives in [`State`], and transformation results in a cache of
//! their own, so rules can read request data and transformed values by
//! reference while updating state.
//!
//! A transaction owns an `Arc` of its rule set and is `Send + Sync`: it may
//! live between the hooks of a proxy, on any thread. Which phase runs when,
//! and what happens to bodies, is decided by [`crate::exchange`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::body::{self, BodyLimits, ParsedBody, Processor};
use crate::macros::Resolve;
use crate::operators::Captures;
use crate::prefilter::{FxBuild, RX_NONE};
use crate::rules::{Ctl, Disruptive, EngineMode, IdRange, Rule, RuleSet, SetOp, Step};
use crate::transform::Transform;
use crate::variables::{Selector, Target, TargetList, Var};

/// The request as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: Vec<u8>,
    /// The request target exactly as sent (`/a/b?x=1`).
    pub uri: Vec<u8>,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub remote_addr: String,
    pub remote_port: u16,
    pub unique_id: String,
}

/// Why and how the engine stopped the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub rule_id: u32,
    pub status: u16,
    pub action: Disruptive,
    pub phase: u8,
}

/// A rule that matched (the whole chain, for chained rules).
#[derive(Debug, Clone)]
pub struct MatchedRule {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub logdata: String,
    pub severity: Option<u8>,
    pub tags: Vec<String>,
    pub matched_var_name: String,
    pub log: bool,
}

/// The response as the engine sees it (phases 3 and 4).
#[derive(Debug, Clone, Default)]
pub struct ResponseData {
    /// Response headers were given: response variables exist.
    pub seen: bool,
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `RESPONSE_STATUS`: the status as text.
    pub status_text: Vec<u8>,
    /// `STATUS_LINE`: `HTTP/1.1 200 OK`.
    pub status_line: Vec<u8>,
    /// `RESPONSE_BODY`: what phase 4 inspects (decoded, at most the limit).
    pub body: Vec<u8>,
    /// The body was read for phase 4 (`RESPONSE_CONTENT_LENGTH` falls back
    /// to its length when the response declared none).
    pub body_read: bool,
    /// `OUTBOUND_DATA_ERROR`: the body was longer than the limit.
    pub body_over_limit: bool,
}

impl ResponseData {
    /// The response headers a backend sent, for phase 3.
    pub fn new(status: u16, protocol: &[u8], headers: Vec<(Vec<u8>, Vec<u8>)>) -> ResponseData {
        let status_text = status.to_string().into_bytes();
        let mut status_line = protocol.to_vec();
        status_line.push(b' ');
        status_line.extend_from_slice(&status_text);
        if let Some(reason) = reason_phrase(status) {
            status_line.push(b' ');
            status_line.extend_from_slice(reason.as_bytes());
        }
        ResponseData {
            seen: true,
            status,
            protocol: protocol.to_vec(),
            headers,
            status_text,
            status_line,
            body: Vec::new(),
            body_read: false,
            body_over_limit: false,
        }
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// The reason phrase of a status code (RFC 9110), for `STATUS_LINE`.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

/// Request data derived once per transaction.
#[derive(Debug, Default)]
pub struct RequestData {
    pub req: HttpRequest,
    /// How much of `req.body` is inspected (`None`: all of it). A body
    /// inspected by its prefix keeps every byte received, to be forwarded.
    pub inspect_len: Option<usize>,
    /// `req.body` (as far as inspected) is only the start of the body.
    pub body_partial: bool,
    /// `INBOUND_DATA_ERROR`: the body was longer than the limit.
    pub body_over_limit: bool,
    /// The response, once its headers are known.
    pub resp: ResponseData,
    pub path_decoded: Vec<u8>,
    pub uri_decoded: Vec<u8>,
    pub basename: Vec<u8>,
    pub query: Vec<u8>,
    pub request_line: Vec<u8>,
    pub args_get: Vec<(Vec<u8>, Vec<u8>)>,
    pub cookies: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Option<ParsedBody>,
    pub processor: Option<Processor>,
    pub server_name: Vec<u8>,
}

/// One value selected by a target: its variable name and its bytes.
struct Item<'d> {
    var: Var,
    key: Cow<'d, [u8]>,
    value: Cow<'d, [u8]>,
}

impl Item<'_> {
    fn full_name(&self) -> String {
        if self.key.is_empty() {
            self.var.name().to_string()
        } else {
            format!("{}:{}", self.var.name(), String::from_utf8_lossy(&self.key))
        }
    }
}

/// A runtime exclusion from `ctl:ruleRemoveTarget*`.
#[derive(Debug, Clone)]
enum RuleSel {
    Id(IdRange),
    Tag(String),
}

/// Mutable evaluation state.
#[derive(Default)]
pub struct State {
    // Every field is owned data (no `Rc`, no cells): a transaction can move
    // between threads with the proxy hook that drives it.
    pub tx: HashMap<String, Vec<u8>>,
    /// Other collections written by setvar (ip, global, ...), per request.
    colls: HashMap<String, HashMap<String, Vec<u8>>>,
    matched_var: Vec<u8>,
    matched_var_name: Vec<u8>,
    matched_vars: Vec<(String, Vec<u8>)>,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(RuleSel, Var, Selector)>,
    pub mode: EngineMode,
    body_processor: Option<Processor>,
    body_access: bool,
    response_body_access: bool,
    force_body_var: bool,
    /// Per rule group: 0 = clean, 1 = some value may match, else not yet known.
    group_bits: Vec<u32>,
    pub matched: Vec<MatchedRule>,
    pub interruption: Option<Interruption>,
    allowed: bool,
    rule_id: u32,
    rule_msg: Vec<u8>,
    captures: Captures,
}

/// A transaction: request data plus evaluation state, and the rule set
/// it is evaluated against.
pub struct Transaction {
    rules: Arc<RuleSet>,
    pub data: RequestData,
    pub state: State,
    /// Transformation results (apart from `state`: rules borrow values from
    /// it while they update the state).
    cache: TransformCache,
}

/// Transformation results of a transaction, by (value address, value
/// length, chain node). Valid while the values they were computed from
/// live: cleared whenever values are freed or replaced.
#[derive(Default)]
struct TransformCache {
    /// Key → index in `values`, or `None`: the chain left the value unchanged.
    index: HashMap<(usize, usize, u32), Option<u32>, FxBuild>,
    values: Vec<Vec<u8>>,
}

impl TransformCache {
    fn clear(&mut self) {
        self.index.clear();
        self.values.clear();
    }

    fn bytes<'a>(&'a self, v: &'a Transformed) -> &'a [u8] {
        match v {
            Transformed::Cached(i) => self.values.get(*i as usize).map_or(&[], |v| v.as_slice()),
            Transformed::Owned(v) => v,
        }
    }
}

/// A value after its transformations (when they changed it).
enum Transformed {
    /// In the cache, at this index.
    Cached(u32),
    /// Not cacheable (a value computed for this rule only).
    Owned(Vec<u8>),
}

/// URL percent-decoding (`%XX` only; `+` kept), ModSecurity-style:
/// invalid escapes are kept as they are.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            let h = hex(input[i + 1]);
            let l = hex(input[i + 2]);
            if let (Some(h), Some(l)) = (h, l) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_cookies(headers: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for piece in value.split(|&b| b == b';') {
            let start = piece
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(piece.len());
            let piece = &piece[start..];
            if piece.is_empty() {
                continue;
            }
            match piece.iter().position(|&b| b == b'=') {
                Some(eq) => out.push((piece[..eq].to_vec(), piece[eq + 1..].to_vec())),
                None => out.push((piece.to_vec(), Vec::new())),
            }
        }
    }
}

impl RequestData {
    pub fn new(req: HttpRequest) -> RequestData {
        let (path, query) = match req.uri.iter().position(|&b| b == b'?') {
            Some(q) => (&req.uri[..q], &req.uri[q + 1..]),
            None => (&req.uri[..], &b""[..]),
        };
        // An absolute-form target (`http://host/path`) names the path after the authority.
        let path = strip_scheme_host(path);
        let path_decoded = percent_decode(path);
        let basename = match path_decoded.iter().rposition(|&b| b == b'/' || b == b'\\') {
            Some(i) => path_decoded[i + 1..].to_vec(),
            None => path_decoded.clone(),
        };
        let mut request_line = req.method.clone();
        request_line.push(b' ');
        request_line.extend_from_slice(&req.uri);
        request_line.push(b' ');
        request_line.extend_from_slice(&req.protocol);
        let mut args_get = Vec::new();
        body::parse_urlencoded(query, &mut args_get);
        let mut cookies = Vec::new();
        parse_cookies(&req.headers, &mut cookies);
        let server_name = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
            .map(|(_, v)| match v.iter().rposition(|&b| b == b':') {
                Some(i) if !v.contains(&b']') || v[i - 1..].starts_with(b"]") => v[..i].to_vec(),
                _ => v.clone(),
            })
            .unwrap_or_default();
        RequestData {
            uri_decoded: percent_decode(&req.uri),
            query: query.to_vec(),
            path_decoded,
            basename,
            request_line,
            args_get,
            cookies,
            body: None,
            processor: None,
            server_name,
            inspect_len: None,
            body_partial: false,
            body_over_limit: false,
            resp: ResponseData::default(),
            req,
        }
    }

    /// The request body as far as it is inspected.
    pub fn inspected_body(&self) -> &[u8] {
        let b = &self.req.body;
        match self.inspect_len {
            Some(n) => &b[..n.min(b.len())],
            None => b,
        }
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn args_post(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.body.as_ref().map(|b| b.args.as_slice()).unwrap_or(&[])
    }
}

fn strip_scheme_host(path: &[u8]) -> &[u8] {
    if path.starts_with(b"/") {
        return path;
    }
    if let Some(i) = memchr::memmem::find(path, b"://") {
        let rest = &path[i + 3..];
        return match rest.iter().position(|&b| b == b'/') {
            Some(p) => &rest[p..],
            None => b"",
        };
    }
    path
}

/// Resolves macros against request data and state.
struct Ctx<'a> {
    data: &'a RequestData,
    state: &'a State,
}

impl Resolve for Ctx<'_> {
    fn resolve(&self, var: &str, key: Option<&str>, out: &mut Vec<u8>) {
        let s = self.state;
        match var {
            "TX" => {
                if let Some(v) = key.and_then(|k| s.tx.get(k)) {
                    out.extend_from_slice(v);
                }
            }
            "MATCHED_VAR" => out.extend_from_slice(&s.matched_var),
            "MATCHED_VAR_NAME" => out.extend_from_slice(&s.matched_var_name),
            "RULE" => match key {
                Some("id") => out.extend_from_slice(s.rule_id.to_string().as_bytes()),
                Some("msg") => out.extend_from_slice(&s.rule_msg),
                _ => {}
            },
            "REMOTE_ADDR" => out.extend_from_slice(self.data.req.remote_addr.as_bytes()),
            "UNIQUE_ID" => out.extend_from_slice(self.data.req.unique_id.as_bytes()),
            "REQUEST_HEADERS" => {
                if let Some(v) = key.and_then(|k| self.data.header(k.as_bytes())) {
                    out.extend_from_slice(v);
                }
            }
            "RESPONSE_HEADERS" => {
                if let Some(v) = key.and_then(|k| self.data.resp.header(k.as_bytes())) {
                    out.extend_from_slice(v);
                }
            }
            "REQBODY_ERROR_MSG" => {
                if let Some(e) = self.data.body.as_ref().and_then(|b| b.error.as_ref()) {
                    out.extend_from_slice(e.as_bytes());
                }
            }
            "REQUEST_FILENAME" => out.extend_from_slice(&self.data.path_decoded),
            "REQUEST_METHOD" => out.extend_from_slice(&self.data.req.method),
            "ARGS"
            | "ARGS_GET"
            | "ARGS_POST"
            | "REQUEST_COOKIES"
            | "FILES"
            | "MULTIPART_PART_HEADERS"
            | "REQUEST_URI"
            | "REQUEST_URI_RAW"
            | "REQUEST_LINE"
            | "REQUEST_BASENAME"
            | "QUERY_STRING"
            | "REQUEST_PROTOCOL"
            | "REQBODY_PROCESSOR"
            | "SERVER_NAME"
            | "REMOTE_PORT"
            | "RESPONSE_STATUS"
            | "RESPONSE_PROTOCOL"
            | "RESPONSE_CONTENT_TYPE"
            | "RESPONSE_CONTENT_LENGTH"
            | "STATUS_LINE" => {
                let Some(v) = Var::from_name(var) else {
                    return;
                };
                let target = Target {
                    var: v,
                    selector: match key {
                        Some(k) => Selector::Key(k.to_string()),
                        None => Selector::All,
                    },
                    count: false,
                };
                let mut items = Vec::new();
                collect(
                    self.data,
                    s,
                    &target,
                    &TargetList::default(),
                    None,
                    &mut items,
                );
                if let Some(first) = items.first() {
                    out.extend_from_slice(&first.value);
                }
            }
            "IP" | "GLOBAL" | "SESSION" | "USER" | "RESOURCE" => {
                let coll = var.to_ascii_lowercase();
                if let Some(v) = key.and_then(|k| s.colls.get(&coll).and_then(|c| c.get(k))) {
                    out.extend_from_slice(v);
                }
            }
            _ => {}
        }
    }
}

impl Transaction {
    pub fn new(rules: Arc<RuleSet>, req: HttpRequest) -> Transaction {
        let state = State {
            // CRS sets about a hundred TX variables per request.
            tx: HashMap::with_capacity(128),
            mode: rules.settings.mode,
            body_access: rules.settings.request_body_access,
            response_body_access: rules.settings.response_body_access,
            group_bits: vec![RX_NONE; rules.group_sets.len()],
            ..State::default()
        };
        Transaction {
            rules,
            data: RequestData::new(req),
            state,
            cache: TransformCache::default(),
        }
    }

    /// The rule set this transaction runs.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Runs phases 1 and 2 (request headers and body).
    pub fn process_request(&mut self) -> Option<&Interruption> {
        self.process_request_headers();
        self.process_request_body()
    }

    /// Phase 1: request headers.
    pub fn process_request_headers(&mut self) -> Option<&Interruption> {
        self.run_phase(1);
        self.state.interruption.as_ref()
    }

    /// Parses `data.req.body` (as far as inspected) and runs phase 2,
    /// unless an earlier phase interrupted the transaction.
    pub fn process_request_body(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() && self.state.mode != EngineMode::Off {
            self.parse_body();
            self.run_phase(2);
        }
        self.state.interruption.as_ref()
    }

    /// Gives the request body back and drops what was derived from it
    /// (`REQUEST_BODY`, `ARGS_POST`, `FILES`, `XML`...): later phases see
    /// a request without body.
    pub fn take_request_body(&mut self) -> Vec<u8> {
        let body = std::mem::take(&mut self.data.req.body);
        self.data.inspect_len = None;
        if let Some(b) = self.data.body.as_mut() {
            // Keep the error flags (`REQBODY_ERROR`...), drop the values.
            b.args = Vec::new();
            b.files = Vec::new();
            b.multipart_part_headers = Vec::new();
            b.xml = None;
        }
        self.values_replaced();
        body
    }

    /// Sets the response headers (phase 3 data).
    pub fn set_response(&mut self, resp: ResponseData) {
        self.data.resp = resp;
        self.values_replaced();
    }

    /// Phase 3: response headers, unless an earlier phase interrupted.
    pub fn process_response_headers(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() {
            self.run_phase(3);
        }
        self.state.interruption.as_ref()
    }

    /// Sets `RESPONSE_BODY` (what phase 4 inspects). Without body access
    /// (`SecResponseBodyAccess Off`) the body stays empty.
    pub fn set_response_body(&mut self, body: Vec<u8>, over_limit: bool) {
        self.data.resp.body = if self.state.response_body_access {
            body
        } else {
            Vec::new()
        };
        self.data.resp.body_read = true;
        self.data.resp.body_over_limit = over_limit;
        self.values_replaced();
    }

    /// Frees `RESPONSE_BODY` (after phase 4).
    pub fn release_response_body(&mut self) {
        self.data.resp.body = Vec::new();
        self.values_replaced();
    }

    /// The body processor a `ctl:requestBodyProcessor` chose, if any.
    pub fn request_body_processor(&self) -> Option<Processor> {
        self.state.body_processor
    }

    /// Phase 4: response body, unless an earlier phase interrupted.
    pub fn process_response_body(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() {
            self.run_phase(4);
        }
        self.state.interruption.as_ref()
    }

    /// Phase 5: logging. Runs even after an interruption; nothing it
    /// matches can interrupt.
    pub fn process_logging(&mut self) {
        self.run_phase(5);
    }

    /// Whether response bodies are inspected (`SecResponseBodyAccess`).
    pub fn response_body_access(&self) -> bool {
        self.state.response_body_access
    }

    /// Values were freed or replaced: cached results keyed by their
    /// address must go, and group checks must see the new values.
    fn values_replaced(&mut self) {
        self.cache.clear();
        self.state.group_bits.iter_mut().for_each(|g| *g = RX_NONE);
    }

    /// Inbound anomaly score CRS computed (`tx.blocking_inbound_anomaly_score`).
    pub fn inbound_score(&self) -> i64 {
        self.tx_num("blocking_inbound_anomaly_score")
            .or_else(|| self.tx_num("inbound_anomaly_score"))
            .or_else(|| self.tx_num("anomaly_score"))
            .unwrap_or(0)
    }

    /// Outbound anomaly score CRS computed (`tx.blocking_outbound_anomaly_score`).
    pub fn outbound_score(&self) -> i64 {
        self.tx_num("blocking_outbound_anomaly_score")
            .or_else(|| self.tx_num("outbound_anomaly_score"))
            .unwrap_or(0)
    }

    /// A `tx.` variable as a number.
    pub fn tx_num(&self, name: &str) -> Option<i64> {
        self.state
            .tx
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
    }

    fn parse_body(&mut self) {
        let processor = self.state.body_processor.or_else(|| {
            let ct = self.data.header(b"content-type").unwrap_or(b"");
            default_processor(ct)
        });
        self.data.processor = processor;
        if !self.state.body_access {
            return;
        }
        let ct = self.data.header(b"content-type").unwrap_or(b"").to_vec();
        let limits = BodyLimits {
            max_body_bytes: self.rules.settings.request_body_limit,
            max_args: self.rules.settings.arguments_limit,
            max_json_depth: self.rules.settings.json_depth_limit,
        };
        let body = self.data.inspected_body();
        let parsed = match processor {
            Some(p) => body::parse_with(p, &ct, body, &limits, self.data.body_partial),
            None => ParsedBody::default(),
        };
        self.data.body = Some(parsed);
        // Group unions computed before the body was parsed miss its values.
        self.state.group_bits.iter_mut().for_each(|g| *g = RX_NONE);
    }

    fn run_phase(&mut self, phase: u8) {
        // `allow` ends the transaction's rule processing, but not logging.
        if self.state.mode == EngineMode::Off || (self.state.allowed && phase != 5) {
            return;
        }
        let holder = Arc::clone(&self.rules);
        let rs: &RuleSet = &holder;
        let steps = &rs.phases[phase as usize];
        let mut i = 0;
        let mut skip = 0u32;
        while i < steps.len() {
            let Step::Rule(idx) = &steps[i] else {
                i += 1;
                continue;
            };
            if skip > 0 {
                skip -= 1;
                i += 1;
                continue;
            }
            let rule = &rs.rules[*idx];
            if self.is_removed(rule) {
                i += 1;
                continue;
            }
            if self.eval_chain(rs, rule) {
                if let Some(m) = &rule.skip_after {
                    match rs.markers[phase as usize].get(m) {
                        Some(&pos) if pos > i => i = pos,
                        _ => i = steps.len(),
                    }
                }
                skip = rule.skip;
                if let Some(action) = disruptive_of(rs, rule) {
                    match action {
                        Disruptive::Pass | Disruptive::Block => {}
                        Disruptive::Allow => {
                            self.state.allowed = true;
                            return;
                        }
                        // Too late to interrupt anything in logging.
                        _ if phase == 5 => {}
                        other => {
                            if self.state.mode == EngineMode::On {
                                let status = rule.status.unwrap_or(match other {
                                    Disruptive::Redirect(_) => 302,
                                    _ => 403,
                                });
                                self.state.interruption = Some(Interruption {
                                    rule_id: rule.id,
                                    status,
                                    action: other,
                                    phase,
                                });
                                return;
                            }
                        }
                    }
                }
            }
            i += 1;
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        let s = &self.state;
        s.removed_ids.iter().any(|r| r.contains(rule.id))
            || (!s.removed_tags.is_empty() && rule.tags.iter().any(|t| s.removed_tags.contains(t)))
    }

    /// Evaluates a rule and its chain; on a full match runs the actions of
    /// every link and records the match. Returns whether it matched.
    fn eval_chain(&mut self, rs: &RuleSet, head: &Rule) -> bool {
        self.state.rule_id = head.id;
        self.state.rule_msg.clear();
        // Like ModSecurity, the non-disruptive actions of a link run as soon
        // as that link matches: later links may read what earlier ones set.
        let mut link = head;
        loop {
            if !self.eval_rule(rs, head, link) {
                return false;
            }
            match &link.chained {
                Some(next) => link = next,
                None => break,
            }
        }
        let ctx = Ctx {
            data: &self.data,
            state: &self.state,
        };
        let msg = head
            .msg
            .as_ref()
            .map(|m| String::from_utf8_lossy(&m.expand(&ctx)).into_owned())
            .unwrap_or_default();
        let mut logdata = String::new();
        let mut l = Some(head);
        while let Some(r) = l {
            if let Some(d) = &r.logdata {
                logdata = String::from_utf8_lossy(&d.expand(&ctx)).into_owned();
            }
            l = r.chained.as_deref();
        }
        let entry = MatchedRule {
            id: head.id,
            phase: head.phase,
            msg,
            logdata,
            severity: head.severity,
            tags: head.tags.clone(),
            matched_var_name: String::from_utf8_lossy(&self.state.matched_var_name).into_owned(),
            log: head.log,
        };
        self.state.rule_msg = entry.msg.as_bytes().to_vec();
        self.state.matched.push(entry);
        true
    }
}

fn disruptive_of(rs: &RuleSet, rule: &Rule) -> Option<Disruptive> {
    match &rule.disruptive {
        Some(Disruptive::Block) => Some(rs.block_action[rule.phase as usize].clone()),
        Some(d) => Some(d.clone()),
        None => None,
    }
}

/// Runs the non-disruptive actions (setvar, ctl) of a rule that matched.
fn run_actions(data: &RequestData, state: &mut State, rule: &Rule) {
    for sv in &rule.setvars {
        let ctx = Ctx { data, state };
        let name = String::from_utf8_lossy(&sv.name.expand(&ctx)).to_ascii_lowercase();
        let new = match &sv.op {
            SetOp::Set(v) => Some(v.expand(&ctx)),
            SetOp::Add(v) | SetOp::Sub(v) => {
                let cur = coll_get(state, &sv.collection, &name).map(num).unwrap_or(0);
                let delta = num(&v.expand(&ctx));
                let n = if matches!(sv.op, SetOp::Add(_)) {
                    cur.saturating_add(delta)
                } else {
                    cur.saturating_sub(delta)
                };
                Some(n.to_string().into_bytes())
            }
            SetOp::Delete => None,
        };
        let coll = if sv.collection == "tx" {
            &mut state.tx
        } else {
            state.colls.entry(sv.collection.clone()).or_default()
        };
        match new {
            Some(v) => {
                coll.insert(name, v);
            }
            None => {
                coll.remove(&name);
            }
        }
    }
    for ctl in &rule.ctls {
        match ctl {
            Ctl::RuleRemoveById(r) => state.removed_ids.extend_from_slice(r),
            Ctl::RuleRemoveByTag(t) => state.removed_tags.push(t.clone()),
            Ctl::RuleRemoveTargetById(r, v, s) => {
                state.removed_targets.push((RuleSel::Id(*r), *v, s.clone()))
            }
            Ctl::RuleRemoveTargetByTag(t, v, s) => {
                state
                    .removed_targets
                    .push((RuleSel::Tag(t.clone()), *v, s.clone()))
            }
            Ctl::RuleEngine(m) => state.mode = *m,
            Ctl::RequestBodyProcessor(p) => state.body_processor = Some(*p),
            Ctl::RequestBodyAccess(on) => state.body_access = *on,
            Ctl::ForceRequestBodyVariable(on) => state.force_body_var = *on,
            Ctl::Ignored => {}
        }
    }
}

fn coll_get<'s>(state: &'s State, coll: &str, name: &str) -> Option<&'s [u8]> {
    if coll == "tx" {
        state.tx.get(name).map(Vec::as_slice)
    } else {
        state
            .colls
            .get(coll)
            .and_then(|c| c.get(name))
            .map(Vec::as_slice)
    }
}

impl Transaction {
    /// Evaluates one link against its targets. Sets MATCHED_VAR(S) and
    /// captures. `head` carries the id and tags used by exclusions.
    fn eval_rule(&mut self, rs: &RuleSet, head: &Rule, rule: &Rule) -> bool {
        if rule.unconditional {
            run_actions(&self.data, &mut self.state, rule);
            return true;
        }
        let data = &self.data;
        let state = &mut self.state;
        let cache = &mut self.cache;
        // Fast path: if no value of the rule's group (after its
        // transformations) matches any attack pattern, skip the rule.
        if let Some(g) = rule.group {
            if !group_dirty(rs, data, state, cache, rule, g) {
                return false;
            }
        }
        let mut items: Vec<Item<'_>> = Vec::new();
        for t in &rule.targets.targets {
            collect(data, state, t, &rule.targets, Some(head), &mut items);
        }
        state.matched_vars.clear();
        let mut matched = false;
        let chains = &rs.chains;
        for item in &items {
            let cacheable = item.var.is_request_static() && matches!(item.value, Cow::Borrowed(_));
            let hit = if rule.multi_match {
                multi_match(chains, state, cache, data, rule, &item.value, cacheable)
            } else {
                let value = transformed(chains, cache, &item.value, rule.chain_id, cacheable);
                let value: &[u8] = match &value {
                    Some(v) => cache.bytes(v),
                    None => &item.value,
                };
                let hit = eval_op(rule, value, data, state);
                hit.then(|| value.to_vec())
            };
            if let Some(v) = hit {
                matched = true;
                let name = item.full_name();
                state.matched_var = v.clone();
                state.matched_var_name = name.clone().into_bytes();
                state.matched_vars.push((name, v));
                // Like ModSecurity, actions run once per matching value.
                run_actions(data, state, rule);
            }
        }
        matched
    }
}

/// Whether any value a rule group inspects may match an attack pattern.
/// Ignores runtime target removals, so it over-approximates: it is only
/// used to skip rules that cannot match.
fn group_dirty(
    rs: &RuleSet,
    data: &RequestData,
    state: &mut State,
    cache: &mut TransformCache,
    rule: &Rule,
    g: u32,
) -> bool {
    match state.group_bits.get(g as usize).copied() {
        Some(0) => return false,
        Some(1) => return true,
        _ => {}
    }
    let Some(Some(set)) = rs.group_sets.get(g as usize) else {
        return true;
    };
    let mut items: Vec<Item<'_>> = Vec::new();
    for t in &rule.targets.targets {
        collect(data, state, t, &rule.targets, None, &mut items);
    }
    let mut dirty = false;
    for item in &items {
        let cacheable = matches!(item.value, Cow::Borrowed(_));
        let v = transformed(&rs.chains, cache, &item.value, rule.chain_id, cacheable);
        let value: &[u8] = match &v {
            Some(v) => cache.bytes(v),
            None => &item.value,
        };
        if set.is_match(value) {
            dirty = true;
            break;
        }
    }
    if let Some(slot) = state.group_bits.get_mut(g as usize) {
        *slot = dirty as u32;
    }
    dirty
}

/// Runs the operator; on a match with `capture`, copies captures to TX.0-9.
fn eval_op(rule: &Rule, value: &[u8], data: &RequestData, state: &mut State) -> bool {
    let want_caps = rule.capture && !rule.negated;
    let mut caps = std::mem::take(&mut state.captures);
    let hit = {
        let ctx = Ctx { data, state };
        if let (Some(re), false) = (rule.operator.static_regex(), want_caps) {
            re.is_match(value)
        } else {
            rule.operator
                .eval(value, &ctx, want_caps.then_some(&mut caps))
        }
    };
    let result = hit != rule.negated;
    if result && want_caps {
        for (i, c) in caps.iter().enumerate() {
            state.tx.insert(i.to_string(), c.clone());
        }
    }
    state.captures = caps;
    result
}

fn multi_match(
    chains: &crate::rules::TransformChains,
    state: &mut State,
    cache: &mut TransformCache,
    data: &RequestData,
    rule: &Rule,
    original: &[u8],
    cacheable: bool,
) -> Option<Vec<u8>> {
    if eval_op(rule, original, data, state) {
        return Some(original.to_vec());
    }
    // Walk the chain from the root, testing each value that changed.
    let mut path = Vec::new();
    let mut n = rule.chain_id;
    while let Some(id) = n {
        path.push(id);
        n = chains.nodes[id as usize].0;
    }
    let mut last: Option<Vec<u8>> = None;
    for &id in path.iter().rev() {
        let Some(v) = transformed(chains, cache, original, Some(id), cacheable) else {
            continue;
        };
        let val = cache.bytes(&v);
        if last.as_deref() != Some(val) {
            if eval_op(rule, val, data, state) {
                return Some(val.to_vec());
            }
            last = Some(val.to_vec());
        }
    }
    None
}

/// The value after the chain ending at `node`; `None` = unchanged.
fn transformed(
    chains: &crate::rules::TransformChains,
    cache: &mut TransformCache,
    value: &[u8],
    node: Option<u32>,
    cacheable: bool,
) -> Option<Transformed> {
    let node = node?;
    // No byte this chain reacts to: every step leaves the value alone.
    let mask = chains.masks.get(node as usize).copied().unwrap_or(u32::MAX);
    let flags = if mask == u32::MAX {
        u32::MAX
    } else {
        crate::transform::byte_flags(value)
    };
    if flags & mask == 0 {
        return None;
    }
    transformed_from(chains, cache, value, node, flags, cacheable)
}

/// [`transformed`] once the value's byte classes are known.
fn transformed_from(
    chains: &crate::rules::TransformChains,
    cache: &mut TransformCache,
    value: &[u8],
    node: u32,
    flags: u32,
    cacheable: bool,
) -> Option<Transformed> {
    let mask = chains.masks.get(node as usize).copied().unwrap_or(u32::MAX);
    if flags & mask == 0 {
        return None;
    }
    let key = (value.as_ptr() as usize, value.len(), node);
    if cacheable {
        if let Some(hit) = cache.index.get(&key) {
            return hit.map(Transformed::Cached);
        }
    }
    let (parent, t) = chains.nodes[node as usize];
    let input = match parent {
        Some(p) => transformed_from(chains, cache, value, p, flags, cacheable),
        None => None,
    };
    let out = {
        let src: &[u8] = match &input {
            Some(v) => cache.bytes(v),
            None => value,
        };
        match t {
            Transform::None => None,
            t => t.apply(src),
        }
    };
    let result = match out {
        Some(v) if cacheable => {
            cache.values.push(v);
            Some(Transformed::Cached((cache.values.len() - 1) as u32))
        }
        Some(v) => Some(Transformed::Owned(v)),
        None => input,
    };
    if cacheable {
        let slot = match &result {
            Some(Transformed::Cached(i)) => Some(*i),
            // Not reached: cacheable chains produce cached values.
            Some(Transformed::Owned(_)) => return result,
            None => None,
        };
        cache.index.insert(key, slot);
    }
    result
}

fn num(v: &[u8]) -> i64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
                .map(|(i, _)| i)
                .unwrap_or(s.len());
            s[..end].parse().ok()
        })
        .unwrap_or(0)
}

/// The default body processor for a Content-Type, as ModSecurity's
/// recommended configuration selects it.
pub fn default_processor(ct: &[u8]) -> Option<Processor> {
    match Processor::for_content_type(ct) {
        Processor::None => None,
        p => Some(p),
    }
}

fn excluded(list: &TargetList, state: &State, head: Option<&Rule>, var: Var, key: &[u8]) -> bool {
    if list
        .exclusions
        .iter()
        .any(|(v, s)| *v == var && s.matches(key))
    {
        return true;
    }
    let Some(head) = head else {
        return false;
    };
    state.removed_targets.iter().any(|(sel, v, s)| {
        *v == var
            && s.matches(key)
            && match sel {
                RuleSel::Id(r) => r.contains(head.id),
                RuleSel::Tag(t) => head.tags.iter().any(|x| x == t),
            }
    })
}

/// Appends the values a target selects.
fn collect<'d>(
    data: &'d RequestData,
    state: &State,
    t: &Target,
    list: &TargetList,
    head: Option<&Rule>,
    out: &mut Vec<Item<'d>>,
) {
    let start = out.len();
    let var = t.var;
    let kv = |pairs: &'d [(Vec<u8>, Vec<u8>)], names: bool, out: &mut Vec<Item<'d>>| {
        for (k, v) in pairs {
            if !t.selector.matches(k) || excluded(list, state, head, var, k) {
                continue;
            }
            out.push(Item {
                var,
                key: Cow::Borrowed(k.as_slice()),
                value: Cow::Borrowed(if names { k.as_slice() } else { v.as_slice() }),
            });
        }
    };
    let scalar = |value: Cow<'d, [u8]>, out: &mut Vec<Item<'d>>| {
        if !excluded(list, state, head, var, b"") {
            out.push(Item {
                var,
                key: Cow::Borrowed(b""),
                value,
            });
        }
    };
    let body = data.body.as_ref();
    match var {
        Var::Args => {
            kv(&data.args_get, false, out);
            kv(data.args_post(), false, out);
        }
        Var::ArgsNames => {
            kv(&data.args_get, true, out);
            kv(data.args_post(), true, out);
        }
        Var::ArgsGet => kv(&data.args_get, false, out),
        Var::ArgsGetNames => kv(&data.args_get, true, out),
        Var::ArgsPost => kv(data.args_post(), false, out),
        Var::ArgsPostNames => kv(data.args_post(), true, out),
        Var::ArgsCombinedSize => {
            let n: usize = data
                .args_get
                .iter()
                .chain(data.args_post())
                .map(|(k, v)| k.len() + v.len())
                .sum();
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::RequestHeaders => kv(&data.req.headers, false, out),
        Var::RequestHeadersNames => kv(&data.req.headers, true, out),
        Var::RequestCookies => kv(&data.cookies, false, out),
        Var::RequestCookiesNames => kv(&data.cookies, true, out),
        Var::RequestFilename => scalar(Cow::Borrowed(&data.path_decoded), out),
        Var::RequestBasename => scalar(Cow::Borrowed(&data.basename), out),
        Var::RequestUri => scalar(Cow::Borrowed(&data.uri_decoded), out),
        Var::RequestUriRaw => scalar(Cow::Borrowed(&data.req.uri), out),
        Var::RequestLine => scalar(Cow::Borrowed(&data.request_line), out),
        Var::RequestMethod => scalar(Cow::Borrowed(&data.req.method), out),
        Var::RequestProtocol => scalar(Cow::Borrowed(&data.req.protocol), out),
        Var::RequestBody => {
            // The URLENCODED and JSON processors (as in Coraza, which the CRS
            // suite runs against) or ctl:forceRequestBodyVariable expose the
            // raw body here; XML and MULTIPART do not.
            let exposed = matches!(
                data.processor,
                Some(Processor::UrlEncoded | Processor::Json)
            );
            if exposed || state.force_body_var {
                scalar(Cow::Borrowed(data.inspected_body()), out)
            }
        }
        Var::RequestBodyLength => scalar(
            Cow::Owned(data.inspected_body().len().to_string().into_bytes()),
            out,
        ),
        Var::QueryString => scalar(Cow::Borrowed(&data.query), out),
        Var::Files | Var::FilesNames | Var::FilesSizes | Var::FilesTmpContent => {
            if let Some(b) = body {
                for f in &b.files {
                    let key = f.name.as_slice();
                    if !t.selector.matches(key) || excluded(list, state, head, var, key) {
                        continue;
                    }
                    let value = match var {
                        Var::Files => Cow::Borrowed(f.filename.as_slice()),
                        Var::FilesNames => Cow::Borrowed(key),
                        Var::FilesSizes => Cow::Owned(f.size.to_string().into_bytes()),
                        _ => Cow::Borrowed(f.content.as_slice()),
                    };
                    out.push(Item {
                        var,
                        key: Cow::Borrowed(key),
                        value,
                    });
                }
            }
        }
        Var::FilesCombinedSize => {
            let n: usize = body
                .map(|b| b.files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::MultipartPartHeaders => {
            if let Some(b) = body {
                kv(&b.multipart_part_headers, false, out)
            }
        }
        Var::Multipart(m) => {
            let v = body
                .and_then(|b| b.multipart.as_ref())
                .and_then(|f| f.get(m.name()))
                .map(|v| v.to_bytes())
                .unwrap_or_else(|| b"0".to_vec());
            scalar(Cow::Owned(v), out)
        }
        Var::Xml => {
            if let Some(x) = body.and_then(|b| b.xml.as_ref()) {
                let attrs = matches!(&t.selector, Selector::XPath(p) if p.contains('@'));
                let list = if attrs { &x.attributes } else { &x.text };
                for v in list {
                    out.push(Item {
                        var,
                        key: Cow::Borrowed(b""),
                        value: Cow::Borrowed(v.as_slice()),
                    });
                }
            }
        }
        Var::Tx if matches!(t.selector, Selector::Key(_)) => {
            if let Selector::Key(k) = &t.selector {
                let lower = k.to_ascii_lowercase();
                if let Some((k, v)) = state.tx.get_key_value(&lower) {
                    if !excluded(list, state, head, var, k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Cow::Owned(k.as_bytes().to_vec()),
                            value: Cow::Owned(v.clone()),
                        });
                    }
                }
            }
        }
        Var::Tx => {
            let mut keys: Vec<&String> = state
                .tx
                .keys()
                .filter(|k| t.selector.matches(k.as_bytes()))
                .collect();
            keys.sort();
            for k in keys {
                if excluded(list, state, head, var, k.as_bytes()) {
                    continue;
                }
                out.push(Item {
                    var,
                    key: Cow::Owned(k.as_bytes().to_vec()),
                    value: Cow::Owned(state.tx[k].clone()),
                });
            }
        }
        Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
            if let Some(c) = state.colls.get(&var.name().to_ascii_lowercase()) {
                for (k, v) in c {
                    if t.selector.matches(k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Cow::Owned(k.as_bytes().to_vec()),
                            value: Cow::Owned(v.clone()),
                        });
                    }
                }
            }
        }
        Var::MatchedVar => scalar(Cow::Owned(state.matched_var.clone()), out),
        Var::MatchedVarName => scalar(Cow::Owned(state.matched_var_name.clone()), out),
        Var::MatchedVars | Var::MatchedVarsNames => {
            for (name, v) in &state.matched_vars {
                if !t.selector.matches(name.as_bytes()) {
                    continue;
                }
                let value = if var == Var::MatchedVars {
                    v.clone()
                } else {
                    name.as_bytes().to_vec()
                };
                out.push(Item {
                    var,
                    key: Cow::Owned(name.as_bytes().to_vec()),
                    value: Cow::Owned(value),
                });
            }
        }
        Var::ReqbodyError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyProcessorError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyErrorMsg => {
            let m = body
                .and_then(|b| b.error.as_ref())
                .map(|e| e.as_bytes().to_vec())
                .unwrap_or_default();
            scalar(Cow::Owned(m), out)
        }
        Var::ReqbodyProcessor => {
            // Before the body is read, this reflects a ctl: choice or the default.
            let p = data
                .processor
                .or(state.body_processor)
                .or_else(|| default_processor(data.header(b"content-type").unwrap_or(b"")));
            // Empty (not absent) without a processor: CRS tests it with `!@rx`.
            let name: &'static [u8] = p.map(|p| p.name().as_bytes()).unwrap_or(b"");
            scalar(Cow::Borrowed(name), out)
        }
        Var::RemoteAddr => scalar(Cow::Borrowed(data.req.remote_addr.as_bytes()), out),
        Var::RemotePort => scalar(
            Cow::Owned(data.req.remote_port.to_string().into_bytes()),
            out,
        ),
        Var::ServerName => scalar(Cow::Borrowed(&data.server_name), out),
        Var::UniqueId => scalar(Cow::Borrowed(data.req.unique_id.as_bytes()), out),
        Var::FullRequestLength => {
            let n = data.request_line.len()
                + data
                    .req
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + data.inspected_body().len();
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::HighestSeverity => {
            let s = state
                .matched
                .iter()
                .filter_map(|m| m.severity)
                .min()
                .unwrap_or(255);
            scalar(Cow::Owned(s.to_string().into_bytes()), out)
        }
        Var::Duration => scalar(Cow::Borrowed(b"0"), out),
        Var::UrlencodedError => {
            let e = body.is_some_and(|b| b.urlencoded_error);
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::InboundDataError => {
            let e = data.body_over_limit;
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::OutboundDataError => {
            let e = data.resp.body_over_limit;
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        // Response variables exist once the response headers are known.
        Var::ResponseHeaders if data.resp.seen => kv(&data.resp.headers, false, out),
        Var::ResponseHeadersNames if data.resp.seen => kv(&data.resp.headers, true, out),
        Var::ResponseStatus if data.resp.seen => scalar(Cow::Borrowed(&data.resp.status_text), out),
        Var::ResponseProtocol if data.resp.seen => scalar(Cow::Borrowed(&data.resp.protocol), out),
        Var::StatusLine if data.resp.seen => scalar(Cow::Borrowed(&data.resp.status_line), out),
        Var::ResponseContentType if data.resp.seen => {
            if let Some(v) = data.resp.header(b"content-type") {
                scalar(Cow::Borrowed(v), out)
            }
        }
        Var::ResponseContentLength if data.resp.seen => match data.resp.header(b"content-length") {
            Some(v) => scalar(Cow::Borrowed(v), out),
            None if data.resp.body_read => scalar(
                Cow::Owned(data.resp.body.len().to_string().into_bytes()),
                out,
            ),
            None => {}
        },
        Var::ResponseBody if data.resp.body_read => scalar(Cow::Borrowed(&data.resp.body), out),
        // Host variables, and response variables before the response.
        _ => {}
    }
    if t.count {
        let n = out.len() - start;
        out.truncate(start);
        out.push(Item {
            var,
            key: Cow::Owned(t.selector.text().into_bytes()),
            value: Cow::Owned(n.to_string().into_bytes()),
        });
    }
}
