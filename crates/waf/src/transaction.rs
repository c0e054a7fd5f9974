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

use std::collections::HashMap;
use std::sync::Arc;

use crate::body::{self, BodyLimits, ParsedBody, Processor};
use crate::macros::Resolve;
use crate::memo::LocalMemo;
use crate::operators::Captures;
use crate::prefilter::{FxBuild, SeededBuild, RX_NONE};
use crate::rules::{Ctl, Disruptive, EngineMode, IdRange, Rule, RuleSet, SetOp, Step};
use crate::transform::Transform;
use crate::txvars::TxVars;
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
    /// Every variable the rule (for a chain: its last link) matched, in
    /// order, at most [`MatchedRule::MAX_VARS`] (a full list may have been
    /// cut): `matched_var_name` is the last of them.
    pub matched_var_names: Vec<String>,
    pub log: bool,
}

impl MatchedRule {
    /// Variables kept in [`MatchedRule::matched_var_names`].
    pub const MAX_VARS: usize = 32;

    /// The rule as a security event records it (`vars` only when it
    /// matched several variables).
    pub fn event_hit(&self) -> palisade_policy::WafRuleHit {
        palisade_policy::WafRuleHit {
            id: self.id,
            msg: self.msg.clone(),
            data: self.logdata.clone(),
            var: self.matched_var_name.clone(),
            vars: if self.matched_var_names.len() > 1 {
                self.matched_var_names.clone()
            } else {
                Vec::new()
            },
        }
    }
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

/// Bytes of an [`Item`]: borrowed from the request, the response or the
/// rule set, or a copy (inline when short: reading a TX variable, a count
/// or a flag allocates nothing).
enum Val<'d> {
    Ref(&'d [u8]),
    Inline(u8, [u8; INLINE]),
    Heap(Vec<u8>),
}

const INLINE: usize = 30;

impl<'d> Val<'d> {
    fn copy(b: &[u8]) -> Val<'d> {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Val::Inline(b.len() as u8, buf)
        } else {
            Val::Heap(b.to_vec())
        }
    }

    fn num(n: usize) -> Val<'d> {
        let mut buf = [0u8; 20];
        let text = fmt_u64(n as u64, &mut buf);
        Val::copy(text)
    }

    /// Borrowed from data that lives as long as the transaction's values.
    fn is_ref(&self) -> bool {
        matches!(self, Val::Ref(_))
    }
}

impl std::ops::Deref for Val<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Ref(b) => b,
            Val::Inline(n, buf) => &buf[..*n as usize],
            Val::Heap(v) => v,
        }
    }
}

/// `n` in decimal, written at the end of `buf`.
fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `n` in decimal.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut buf = [0u8; 20];
    out.extend_from_slice(fmt_u64(n.unsigned_abs(), &mut buf));
}

/// One value selected by a target: its variable name and its bytes.
struct Item<'d> {
    var: Var,
    key: Val<'d>,
    value: Val<'d>,
}

impl Item<'_> {
    /// `VAR` or `VAR:key` (the key read as UTF-8, lossily).
    fn write_name(&self, out: &mut String) {
        out.clear();
        out.push_str(self.var.name());
        if !self.key.is_empty() {
            out.push(':');
            match std::str::from_utf8(&self.key) {
                Ok(key) => out.push_str(key),
                Err(_) => out.push_str(&String::from_utf8_lossy(&self.key)),
            }
        }
    }
}

/// The values a rule's targets select: the first one inline (most targets
/// select one value), the others in a vector.
#[derive(Default)]
struct Items<'d> {
    first: Option<Item<'d>>,
    rest: Vec<Item<'d>>,
}

impl<'d> Items<'d> {
    #[inline]
    fn push(&mut self, item: Item<'d>) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            if self.rest.capacity() == 0 {
                // Collections (headers, arguments) come in tens: one
                // allocation rather than a chain of growing ones.
                self.rest.reserve(15);
            }
            self.rest.push(item);
        }
    }

    fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }

    fn truncate(&mut self, len: usize) {
        if len == 0 {
            self.first = None;
            self.rest.clear();
        } else {
            self.rest.truncate(len - 1);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Item<'d>> {
        self.first.iter().chain(self.rest.iter())
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
    pub tx: TxVars,
    /// Other collections written by setvar (ip, global, ...), per request.
    colls: HashMap<String, HashMap<String, Vec<u8>, SeededBuild>>,
    matched_var: Vec<u8>,
    matched_var_name: Vec<u8>,
    /// `MATCHED_VARS` of the rule being evaluated: the first
    /// `matched_vars_len` entries (the others are buffers kept for reuse).
    matched_vars: Vec<(String, Vec<u8>)>,
    matched_vars_len: usize,
    /// Most severe (lowest) severity of the rules matched so far.
    highest_severity: Option<u8>,
    /// Buffers for macro expansion and names (reused, not reallocated).
    scratch: Vec<u8>,
    scratch_name: String,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(RuleSel, Var, Selector)>,
    pub mode: EngineMode,
    body_processor: Option<Processor>,
    body_access: bool,
    response_body_access: bool,
    force_body_var: bool,
    /// Per rule group: 0 = no `@rx` pattern can match, 1 = some value may
    /// match one, [`RX_NONE`] = not computed yet for the current values.
    group_bits: Vec<u32>,
    /// Per grouped `@pm` rule ([`Rule::pm_bit`]): a phrase of it is in some
    /// value (valid where its group is computed).
    pm_bits: Vec<u64>,
    pub matched: Vec<MatchedRule>,
    pub interruption: Option<Interruption>,
    allowed: bool,
    rule_id: u32,
    rule_msg: Vec<u8>,
    captures: Captures,
}

impl State {
    /// The values the rule groups check changed: their answers must be
    /// computed again.
    fn groups_replaced(&mut self) {
        self.group_bits.fill(RX_NONE);
        self.pm_bits.fill(0);
    }
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
    /// This transaction's entries of the rule set's value memo.
    memo: LocalMemo,
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
    fn resolve_tx(&self, slot: u32, _key: &str, out: &mut Vec<u8>) {
        if let Some(v) = self.state.tx.get_slot(slot) {
            out.extend_from_slice(v);
        }
    }

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
                let target = Target::new(
                    v,
                    match key {
                        Some(k) => Selector::Key(k.to_string()),
                        None => Selector::All,
                    },
                    false,
                );
                let mut items = Items::default();
                collect(
                    self.data,
                    s,
                    &target,
                    &TargetList::default(),
                    None,
                    &mut items,
                );
                if let Some(first) = &items.first {
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
            tx: TxVars::new(Arc::clone(&rules.tx_names)),
            mode: rules.settings.mode,
            body_access: rules.settings.request_body_access,
            response_body_access: rules.settings.response_body_access,
            group_bits: vec![RX_NONE; rules.groups.len()],
            pm_bits: vec![0; rules.pm_bits.div_ceil(64)],
            ..State::default()
        };
        Transaction {
            rules,
            data: RequestData::new(req),
            state,
            cache: TransformCache::default(),
            memo: LocalMemo::default(),
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
        if let Some(memo) = &self.rules.memo {
            self.memo.flush_and_clear(memo);
        }
        self.cache.clear();
        self.state.groups_replaced();
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

    /// Sets `tx.<name>` (any case) before the rules run: values the caller
    /// knows per request (the edge's positive model, see
    /// [`crate::config::MODEL_METHODS_TX`]).
    pub fn set_tx(&mut self, name: &str, value: &[u8]) {
        self.state.tx.set(&name.to_ascii_lowercase(), value);
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
            None if body::is_text_plain(&ct) => {
                body::parse_text(body, &limits, self.data.body_partial)
            }
            None => ParsedBody::default(),
        };
        self.data.body = Some(parsed);
        // Group answers computed before the body was parsed miss its values.
        self.state.groups_replaced();
    }

    fn run_phase(&mut self, phase: u8) {
        self.run_phase_rules(phase);
        // What the phase learned goes back to the memo for later requests.
        if let Some(memo) = &self.rules.memo {
            self.memo.flush(memo);
        }
    }

    fn run_phase_rules(&mut self, phase: u8) {
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
                if rule.skip_after.is_some() {
                    match rule.skip_after_step {
                        Some(pos) if pos > i => i = pos,
                        _ => i = steps.len(),
                    }
                }
                skip = rule.skip;
                if matches!(rule.disruptive, None | Some(Disruptive::Pass)) {
                    i += 1;
                    continue;
                }
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
        if let Some(s) = head.severity {
            let h = &mut self.state.highest_severity;
            *h = Some(h.map_or(s, |h| h.min(s)));
        }
        // Only logged matches are reported (verdicts, the log): a `nolog`
        // rule (CRS' paranoia-level skips, its scoring) costs no more.
        if !head.log {
            return true;
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
            matched_var_names: self.state.matched_vars[..self.state.matched_vars_len]
                .iter()
                .take(MatchedRule::MAX_VARS)
                .map(|(name, _)| name.clone())
                .collect(),
            log: head.log,
        };
        self.state.rule_msg.extend_from_slice(entry.msg.as_bytes());
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
    if rule.setvars.is_empty() && rule.ctls.is_empty() {
        return;
    }
    // Expansions go to buffers the state keeps: an existing variable is
    // updated in place, without allocating.
    let mut value = std::mem::take(&mut state.scratch);
    let mut name_buf = std::mem::take(&mut state.scratch_name);
    for sv in &rule.setvars {
        let ctx = Ctx { data, state };
        let name: &str = match sv.name.as_literal() {
            // Lower-cased when parsed.
            Some(l) => l,
            None => {
                value.clear();
                sv.name.expand_into(&ctx, &mut value);
                name_buf.clear();
                name_buf.push_str(&String::from_utf8_lossy(&value));
                name_buf.make_ascii_lowercase();
                &name_buf
            }
        };
        value.clear();
        let set = match &sv.op {
            SetOp::Set(v) => {
                v.expand_into(&ctx, &mut value);
                true
            }
            SetOp::Add(v) | SetOp::Sub(v) => {
                let cur = match sv.tx_slot {
                    Some(slot) => state.tx.get_slot(slot),
                    None => coll_get(state, &sv.collection, name),
                };
                let cur = cur.map(num).unwrap_or(0);
                v.expand_into(&ctx, &mut value);
                let delta = num(&value);
                let n = if matches!(sv.op, SetOp::Add(_)) {
                    cur.saturating_add(delta)
                } else {
                    cur.saturating_sub(delta)
                };
                value.clear();
                push_i64(&mut value, n);
                true
            }
            SetOp::Delete => false,
        };
        if sv.collection == "tx" {
            match (set, sv.tx_slot) {
                (true, Some(slot)) => state.tx.set_slot(slot, &value),
                (true, None) => state.tx.set(name, &value),
                (false, Some(slot)) => state.tx.remove_slot(slot),
                (false, None) => state.tx.remove(name),
            }
            continue;
        }
        let coll = state.colls.entry(sv.collection.clone()).or_default();
        if set {
            match coll.get_mut(name) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(&value);
                }
                None => {
                    coll.insert(name.to_string(), value.clone());
                }
            }
        } else {
            coll.remove(name);
        }
    }
    state.scratch = value;
    state.scratch_name = name_buf;
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
        state.tx.get(name)
    } else {
        state
            .colls
            .get(coll)
            .and_then(|c| c.get(name))
            .map(Vec::as_slice)
    }
}

/// Sets `MATCHED_VAR` and `MATCHED_VAR_NAME` and adds to `MATCHED_VARS`,
/// reusing their buffers.
fn record_match(state: &mut State, item: &Item<'_>, value: &[u8]) {
    let name = next_matched_var(state, value);
    item.write_name(name);
    matched_var_name_done(state);
}

/// [`record_match`] for a value named `VAR:key` with a key known to be text.
fn record_match_str(state: &mut State, var: Var, key: &str, value: &[u8]) {
    let name = next_matched_var(state, value);
    name.clear();
    name.push_str(var.name());
    name.push(':');
    name.push_str(key);
    matched_var_name_done(state);
}

/// Adds a `MATCHED_VARS` entry holding `value` and sets `MATCHED_VAR`;
/// returns the entry's name, to be written.
fn next_matched_var<'s>(state: &'s mut State, value: &[u8]) -> &'s mut String {
    let i = state.matched_vars_len;
    if i == state.matched_vars.len() {
        state.matched_vars.push((String::new(), Vec::new()));
    }
    state.matched_vars_len = i + 1;
    state.matched_var.clear();
    state.matched_var.extend_from_slice(value);
    let (name, v) = &mut state.matched_vars[i];
    v.clear();
    v.extend_from_slice(value);
    name
}

/// Sets `MATCHED_VAR_NAME` to the name of the last `MATCHED_VARS` entry.
fn matched_var_name_done(state: &mut State) {
    let name = &state.matched_vars[state.matched_vars_len - 1].0;
    state.matched_var_name.clear();
    state.matched_var_name.extend_from_slice(name.as_bytes());
}

fn bit_is_set(bits: &[u64], bit: u32) -> bool {
    bits.get(bit as usize / 64)
        .is_some_and(|w| w & (1 << (bit % 64)) != 0)
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
        let local = &mut self.memo;
        // Fast path: one `TX:key` target, read where it is stored (CRS'
        // paranoia-level checks and scoring).
        if let [t] = rule.targets.targets.as_slice() {
            if let (Some(key), false) = (t.tx_key.as_deref(), t.count) {
                // (Captures are only taken by rules that are not negated.)
                let captures = rule.capture && !rule.negated;
                if rule.chain_id.is_none() && !rule.multi_match && !captures {
                    if excluded(&rule.targets, state, Some(head), t.var, key.as_bytes()) {
                        state.matched_vars_len = 0;
                        return false;
                    }
                    return eval_tx_scalar(data, state, rule, t, key);
                }
            }
        }
        // Fast path: the rule's group tells whether it can match at all.
        let mut op_false = false;
        if let Some(g) = rule.group {
            let rx_dirty = group_check(rs, data, state, cache, local, rule, g);
            match rule.pm_bit {
                None if !rx_dirty => return false,
                None => {}
                Some(bit) if !bit_is_set(&state.pm_bits, bit) => {
                    if !rule.negated {
                        return false;
                    }
                    // None of its phrases is in any value: `!@pm` matches
                    // every one, without searching them again.
                    op_false = true;
                }
                Some(_) => {}
            }
        }
        let mut items = Items::default();
        for t in &rule.targets.targets {
            collect(data, state, t, &rule.targets, Some(head), &mut items);
        }
        state.matched_vars_len = 0;
        let mut matched = false;
        let chains = &rs.chains;
        for item in items.iter() {
            let cacheable = item.var.is_request_static() && item.value.is_ref();
            // A value this link found nothing in before, in any request.
            let memo = match (&rs.memo, rule.memo_slot, cacheable) {
                (Some(m), Some(slot), true) => local.rec(m, &item.value).map(|r| (m, r, slot)),
                _ => None,
            };
            if let Some((m, r, slot)) = memo {
                if local.negative(m, r, slot) {
                    continue;
                }
            }
            if rule.multi_match {
                let Some(v) = multi_match(chains, state, cache, data, rule, &item.value, cacheable)
                else {
                    if let Some((m, r, slot)) = memo {
                        local.set_negative(m, r, slot);
                    }
                    continue;
                };
                record_match(state, item, &v);
            } else {
                if let Some(f) = &rule.contains_filter {
                    if !f.may_match(&item.value) {
                        continue;
                    }
                }
                let t = transformed(chains, cache, &item.value, rule.chain_id, cacheable);
                let value: &[u8] = match &t {
                    Some(v) => cache.bytes(v),
                    None => &item.value,
                };
                let hit = if op_false {
                    rule.negated
                } else {
                    eval_op(rule, value, data, state)
                };
                if !hit {
                    if let Some((m, r, slot)) = memo {
                        local.set_negative(m, r, slot);
                    }
                    continue;
                }
                record_match(state, item, value);
            }
            matched = true;
            // Like ModSecurity, actions run once per matching value.
            run_actions(data, state, rule);
        }
        matched
    }
}

/// [`Transaction::eval_rule`] for a link with one `TX:key` target, no
/// transformation, no capture, no exclusion: the value is compared where
/// it is stored, without copying it unless it matches.
fn eval_tx_scalar(
    data: &RequestData,
    state: &mut State,
    rule: &Rule,
    t: &Target,
    key: &str,
) -> bool {
    state.matched_vars_len = 0;
    let mut scratch = std::mem::take(&mut state.scratch);
    let value = match t.tx_slot {
        Some(slot) => state.tx.get_slot(slot),
        None => state.tx.get(key),
    };
    let hit = match value {
        None => false,
        Some(v) => {
            let hit = match rule.operator.literal_compare(v) {
                Some(hit) => hit,
                None => {
                    let ctx = Ctx { data, state };
                    rule.operator.eval_with(v, &ctx, None, &mut scratch)
                }
            } != rule.negated;
            if hit {
                scratch.clear();
                scratch.extend_from_slice(v);
            }
            hit
        }
    };
    if hit {
        record_match_str(state, t.var, key, &scratch);
    }
    state.scratch = scratch;
    if hit {
        run_actions(data, state, rule);
    }
    hit
}

/// No exclusions: what a group checks is every value its rules' targets
/// select, whatever each rule leaves out.
static NO_EXCLUSIONS: TargetList = TargetList {
    targets: Vec::new(),
    exclusions: Vec::new(),
};

/// A rule group's answer for the current values, computed once (until the
/// values are replaced): whether some value may match one of its `@rx`
/// patterns (returned), and which of its `@pm` rules have a phrase in some
/// value (their bits set in `state.pm_bits`). It checks every value the
/// targets select, ignoring exclusions and runtime target removals, so it
/// over-approximates: it is only used to skip rules that cannot match.
fn group_check(
    rs: &RuleSet,
    data: &RequestData,
    state: &mut State,
    cache: &mut TransformCache,
    local: &mut LocalMemo,
    rule: &Rule,
    g: u32,
) -> bool {
    match state.group_bits.get(g as usize).copied() {
        Some(RX_NONE) => {}
        Some(dirty) => return dirty != 0,
        None => return true,
    }
    let Some(group) = rs.groups.get(g as usize) else {
        return true;
    };
    let mut items = Items::default();
    for t in &rule.targets.targets {
        collect(data, state, t, &NO_EXCLUSIONS, None, &mut items);
    }
    // Without an `@rx` set there is no `@rx` rule to skip.
    let mut rx_dirty = group.rx.is_none();
    // The bits were cleared with the values: all of them are pending.
    let mut pending = if group.pm.is_some() {
        group.pm_bits.len()
    } else {
        0
    };
    let (rx_slot, pm_slot) = RuleSet::group_memo_slots(g);
    let all_pm = pending;
    for item in items.iter() {
        if rx_dirty && pending == 0 {
            break;
        }
        let cacheable = item.value.is_ref();
        // What the memo knows of this value: the sets that found nothing.
        let memo = match (&rs.memo, cacheable && item.var.is_request_static()) {
            (Some(m), true) => local.rec(m, &item.value).map(|r| (m, r)),
            _ => None,
        };
        let (mut rx_known, mut pm_known) = (false, false);
        if let Some((m, r)) = memo {
            rx_known = local.negative(m, r, rx_slot);
            pm_known = local.negative(m, r, pm_slot);
        }
        let rx_todo = !rx_dirty && !rx_known && group.rx.is_some();
        let pm_todo = pending > 0 && !pm_known && group.pm.is_some();
        if !rx_todo && !pm_todo {
            continue;
        }
        let v = transformed(&rs.chains, cache, &item.value, rule.chain_id, cacheable);
        let value: &[u8] = match &v {
            Some(v) => cache.bytes(v),
            None => &item.value,
        };
        if let (true, Some(set)) = (rx_todo, &group.rx) {
            rx_dirty = set.is_match(value);
            if let (false, Some((m, r))) = (rx_dirty, memo) {
                local.set_negative(m, r, rx_slot);
            }
        }
        if let (true, Some(pm)) = (pm_todo, &group.pm) {
            let before = pending;
            pending = pm.scan(value, &mut state.pm_bits, pending);
            // Nothing found while every phrase list was still looked for:
            // none of them is in this value.
            if let (true, Some((m, r))) = (before == all_pm && pending == before, memo) {
                local.set_negative(m, r, pm_slot);
            }
        }
    }
    if let Some(slot) = state.group_bits.get_mut(g as usize) {
        *slot = rx_dirty as u32;
    }
    rx_dirty
}

/// Names of TX.0 to TX.9.
const CAPTURE_KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Runs the operator; on a match with `capture`, copies captures to TX.0-9.
fn eval_op(rule: &Rule, value: &[u8], data: &RequestData, state: &mut State) -> bool {
    let want_caps = rule.capture && !rule.negated;
    if let (Some(re), false) = (rule.operator.static_regex(), want_caps) {
        return re.is_match(value) != rule.negated;
    }
    let mut caps = std::mem::take(&mut state.captures);
    let mut scratch = std::mem::take(&mut state.scratch);
    let hit = {
        let ctx = Ctx { data, state };
        rule.operator
            .eval_with(value, &ctx, want_caps.then_some(&mut caps), &mut scratch)
    };
    let result = hit != rule.negated;
    if result && want_caps {
        for (key, c) in CAPTURE_KEYS.iter().zip(caps.iter()) {
            state.tx.set(key, c);
        }
    }
    state.captures = caps;
    state.scratch = scratch;
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

#[inline]
fn excluded(list: &TargetList, state: &State, head: Option<&Rule>, var: Var, key: &[u8]) -> bool {
    if list.exclusions.is_empty() && (head.is_none() || state.removed_targets.is_empty()) {
        return false;
    }
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
    t: &'d Target,
    list: &TargetList,
    head: Option<&Rule>,
    out: &mut Items<'d>,
) {
    let start = out.len();
    let var = t.var;
    let kv = |pairs: &'d [(Vec<u8>, Vec<u8>)], names: bool, out: &mut Items<'d>| {
        for (k, v) in pairs {
            if !t.selector.matches(k) || excluded(list, state, head, var, k) {
                continue;
            }
            out.push(Item {
                var,
                key: Val::Ref(k.as_slice()),
                value: Val::Ref(if names { k.as_slice() } else { v.as_slice() }),
            });
        }
    };
    let scalar = |value: Val<'d>, out: &mut Items<'d>| {
        if !excluded(list, state, head, var, b"") {
            out.push(Item {
                var,
                key: Val::Ref(b""),
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
            scalar(Val::num(n), out)
        }
        Var::RequestHeaders => kv(&data.req.headers, false, out),
        Var::RequestHeadersNames => kv(&data.req.headers, true, out),
        Var::RequestCookies => kv(&data.cookies, false, out),
        Var::RequestCookiesNames => kv(&data.cookies, true, out),
        Var::RequestFilename => scalar(Val::Ref(&data.path_decoded), out),
        Var::RequestBasename => scalar(Val::Ref(&data.basename), out),
        Var::RequestUri => scalar(Val::Ref(&data.uri_decoded), out),
        Var::RequestUriRaw => scalar(Val::Ref(&data.req.uri), out),
        Var::RequestLine => scalar(Val::Ref(&data.request_line), out),
        Var::RequestMethod => scalar(Val::Ref(&data.req.method), out),
        Var::RequestProtocol => scalar(Val::Ref(&data.req.protocol), out),
        Var::RequestBody => {
            // The URLENCODED and JSON processors (as in Coraza, which the CRS
            // suite runs against) or ctl:forceRequestBodyVariable expose the
            // raw body here; XML and MULTIPART do not.
            let exposed = matches!(
                data.processor,
                Some(Processor::UrlEncoded | Processor::Json)
            );
            if exposed || state.force_body_var {
                scalar(Val::Ref(data.inspected_body()), out)
            }
        }
        Var::RequestBodyLength => scalar(Val::num(data.inspected_body().len()), out),
        Var::QueryString => scalar(Val::Ref(&data.query), out),
        Var::Files | Var::FilesNames | Var::FilesSizes | Var::FilesTmpContent => {
            if let Some(b) = body {
                for f in &b.files {
                    let key = f.name.as_slice();
                    if !t.selector.matches(key) || excluded(list, state, head, var, key) {
                        continue;
                    }
                    let value = match var {
                        Var::Files => Val::Ref(f.filename.as_slice()),
                        Var::FilesNames => Val::Ref(key),
                        Var::FilesSizes => Val::num(f.size),
                        _ => Val::Ref(f.content_in(data.inspected_body())),
                    };
                    out.push(Item {
                        var,
                        key: Val::Ref(key),
                        value,
                    });
                }
            }
        }
        Var::FilesCombinedSize => {
            let n: usize = body
                .map(|b| b.files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            scalar(Val::num(n), out)
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
                .map(|v| Val::copy(&v.to_bytes()))
                .unwrap_or(Val::Ref(b"0"));
            scalar(v, out)
        }
        Var::Xml => {
            if let Some(x) = body.and_then(|b| b.xml.as_ref()) {
                let attrs = matches!(&t.selector, Selector::XPath(p) if p.contains('@'));
                let list = if attrs { &x.attributes } else { &x.text };
                for v in list {
                    out.push(Item {
                        var,
                        key: Val::Ref(b""),
                        value: Val::Ref(v.as_slice()),
                    });
                }
            }
        }
        Var::Tx if t.tx_key.is_some() => {
            if let Some(key) = t.tx_key.as_deref() {
                // Exclusions compare names case-insensitively.
                let value = match t.tx_slot {
                    Some(slot) => state.tx.get_slot(slot),
                    None => state.tx.get(key),
                };
                if let Some(v) = value {
                    if !excluded(list, state, head, var, key.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Val::Ref(key.as_bytes()),
                            value: Val::copy(v),
                        });
                    }
                }
            }
        }
        Var::Tx => {
            let mut vars: Vec<(&str, &[u8])> = state
                .tx
                .iter()
                .filter(|(k, _)| t.selector.matches(k.as_bytes()))
                .collect();
            vars.sort();
            for (k, v) in vars {
                if excluded(list, state, head, var, k.as_bytes()) {
                    continue;
                }
                out.push(Item {
                    var,
                    key: Val::copy(k.as_bytes()),
                    value: Val::copy(v),
                });
            }
        }
        Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
            if let Some(c) = state.colls.get(&var.name().to_ascii_lowercase()) {
                for (k, v) in c {
                    if t.selector.matches(k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Val::copy(k.as_bytes()),
                            value: Val::copy(v),
                        });
                    }
                }
            }
        }
        Var::MatchedVar => scalar(Val::copy(&state.matched_var), out),
        Var::MatchedVarName => scalar(Val::copy(&state.matched_var_name), out),
        Var::MatchedVars | Var::MatchedVarsNames => {
            for (name, v) in &state.matched_vars[..state.matched_vars_len] {
                if !t.selector.matches(name.as_bytes()) {
                    continue;
                }
                let value = if var == Var::MatchedVars {
                    Val::copy(v)
                } else {
                    Val::copy(name.as_bytes())
                };
                out.push(Item {
                    var,
                    key: Val::copy(name.as_bytes()),
                    value,
                });
            }
        }
        Var::ReqbodyError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyProcessorError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyErrorMsg => {
            let m = body
                .and_then(|b| b.error.as_ref())
                .map(|e| e.as_bytes())
                .unwrap_or_default();
            scalar(Val::Ref(m), out)
        }
        Var::ReqbodyProcessor => {
            // Before the body is read, this reflects a ctl: choice or the default.
            let p = data
                .processor
                .or(state.body_processor)
                .or_else(|| default_processor(data.header(b"content-type").unwrap_or(b"")));
            // Empty (not absent) without a processor: CRS tests it with `!@rx`.
            let name: &'static [u8] = p.map(|p| p.name().as_bytes()).unwrap_or(b"");
            scalar(Val::Ref(name), out)
        }
        Var::RemoteAddr => scalar(Val::Ref(data.req.remote_addr.as_bytes()), out),
        Var::RemotePort => scalar(Val::num(data.req.remote_port as usize), out),
        Var::ServerName => scalar(Val::Ref(&data.server_name), out),
        Var::UniqueId => scalar(Val::Ref(data.req.unique_id.as_bytes()), out),
        Var::FullRequestLength => {
            let n = data.request_line.len()
                + data
                    .req
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + data.inspected_body().len();
            scalar(Val::num(n), out)
        }
        Var::HighestSeverity => {
            let s = state.highest_severity.unwrap_or(255);
            scalar(Val::num(s as usize), out)
        }
        Var::Duration => scalar(Val::Ref(b"0"), out),
        Var::UrlencodedError => {
            let e = body.is_some_and(|b| b.urlencoded_error);
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::InboundDataError => {
            let e = data.body_over_limit;
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::OutboundDataError => {
            let e = data.resp.body_over_limit;
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        // Response variables exist once the response headers are known.
        Var::ResponseHeaders if data.resp.seen => kv(&data.resp.headers, false, out),
        Var::ResponseHeadersNames if data.resp.seen => kv(&data.resp.headers, true, out),
        Var::ResponseStatus if data.resp.seen => scalar(Val::Ref(&data.resp.status_text), out),
        Var::ResponseProtocol if data.resp.seen => scalar(Val::Ref(&data.resp.protocol), out),
        Var::StatusLine if data.resp.seen => scalar(Val::Ref(&data.resp.status_line), out),
        Var::ResponseContentType if data.resp.seen => {
            if let Some(v) = data.resp.header(b"content-type") {
                scalar(Val::Ref(v), out)
            }
        }
        Var::ResponseContentLength if data.resp.seen => match data.resp.header(b"content-length") {
            Some(v) => scalar(Val::Ref(v), out),
            None if data.resp.body_read => scalar(Val::num(data.resp.body.len()), out),
            None => {}
        },
        Var::ResponseBody if data.resp.body_read => scalar(Val::Ref(&data.resp.body), out),
        // Host variables, and response variables before the response.
        _ => {}
    }
    if t.count {
        let n = out.len() - start;
        out.truncate(start);
        out.push(Item {
            var,
            key: match &t.selector {
                Selector::All => Val::Ref(b""),
                Selector::Key(k) | Selector::XPath(k) => Val::Ref(k.as_bytes()),
                other => Val::Heap(other.text().into_bytes()),
            },
            value: Val::num(n),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rules(src: &str) -> Arc<RuleSet> {
        let directives =
            crate::parser::parse_str(src, &Arc::from("test.conf"), &Arc::from(Path::new(".")))
                .unwrap();
        Arc::new(crate::rules::compile(&directives).unwrap())
    }

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: b"GET".to_vec(),
            uri: uri.as_bytes().to_vec(),
            protocol: b"HTTP/1.1".to_vec(),
            headers: vec![(b"Host".to_vec(), b"example.com".to_vec())],
            ..HttpRequest::default()
        }
    }

    fn ids(tx: &Transaction) -> Vec<u32> {
        tx.state.matched.iter().map(|m| m.id).collect()
    }

    #[test]
    fn files_tmp_content_is_read_from_the_body() {
        let rs = rules(
            r#"SecRule FILES_TMP_CONTENT "@rx <\?php" "id:1,phase:2,pass,log,msg:'php',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule FILES_SIZES:up "@eq 30" "id:2,phase:2,pass,log""#,
        );
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"x.php\"\r\n\r\n<?php system($_GET['c']); ?>\r\n\r\n--b--\r\n";
        let mut req = get("/upload");
        req.method = b"POST".to_vec();
        req.headers.push((
            b"Content-Type".to_vec(),
            b"multipart/form-data; boundary=b".to_vec(),
        ));
        req.body = body.to_vec();
        let mut tx = Transaction::new(rs, req);
        tx.process_request();
        assert_eq!(ids(&tx), vec![1, 2]);
        assert_eq!(
            tx.state.matched[0].logdata,
            "FILES_TMP_CONTENT:up=<?php system($_GET['c']); ?>\r\n"
        );
        // Released with the body.
        tx.take_request_body();
        assert!(tx.data.body.as_ref().unwrap().files.is_empty());
    }

    #[test]
    fn groups_check_every_value_whatever_a_rule_excludes() {
        // Both rules share a group (same targets, same transformations);
        // the first leaves ARGS:a out, the second must still see it.
        let rs = rules(
            r#"SecRule ARGS|!ARGS:a "@rx attack" "id:1,phase:2,pass,log"
SecRule ARGS "@rx attack" "id:2,phase:2,pass,log"
SecRule ARGS|!ARGS:a "@pm evil wicked" "id:3,phase:2,pass,log"
SecRule ARGS "@pm evil wicked" "id:4,phase:2,pass,log""#,
        );
        assert!(rs.rules.iter().all(|r| r.group.is_some()));
        let mut tx = Transaction::new(rs.clone(), get("/?a=attack+evil&b=ok"));
        tx.process_request();
        assert_eq!(ids(&tx), vec![2, 4]);
        let mut tx = Transaction::new(rs, get("/?a=ok&b=attack+wicked"));
        tx.process_request();
        assert_eq!(ids(&tx), vec![1, 2, 3, 4]);
    }

    #[test]
    fn response_groups_start_afresh_with_the_response() {
        let rs = rules(
            r#"SecResponseBodyAccess On
SecRule RESPONSE_HEADERS "@pm leak secret" "id:10,phase:3,pass,log"
SecRule RESPONSE_HEADERS "@pm token" "id:11,phase:3,pass,log"
SecRule RESPONSE_BODY "@pm Fatal error" "id:20,phase:4,pass,log,capture,logdata:'%{TX.0}'"
SecRule RESPONSE_BODY "!@pm ORA- mysql_" "id:21,phase:4,pass,log,skipAfter:END"
SecRule RESPONSE_BODY "@rx ORA-\d+" "id:22,phase:4,pass,log"
SecMarker END
SecRule RESPONSE_BODY "@rx <title>Index of" "id:23,phase:4,pass,log""#,
        );
        assert_eq!(rs.rules.iter().filter(|r| r.pm_bit.is_some()).count(), 4);
        let run = |headers: &[(&str, &str)], body: &str| {
            let mut tx = Transaction::new(rs.clone(), get("/"));
            tx.process_request();
            tx.set_response(ResponseData::new(
                200,
                b"HTTP/1.1",
                headers
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect(),
            ));
            tx.process_response_headers();
            tx.set_response_body(body.as_bytes().to_vec(), false);
            tx.process_response_body();
            tx
        };
        // Nothing in the headers, nothing in the body: the negated rule
        // matches (and skips the ORA- rule).
        assert_eq!(ids(&run(&[("X", "a")], "<p>all fine</p>")), vec![21]);
        assert_eq!(ids(&run(&[("X", "a secret")], "")), vec![10, 21]);
        assert_eq!(ids(&run(&[("X", "TOKEN")], "")), vec![11, 21]);
        // The body's phrases (`Fatal`, `error`): the leftmost is captured.
        let tx = run(&[], "x FATAL ERROR: ORA-01756 mysql_");
        assert_eq!(ids(&tx), vec![20, 22]);
        assert_eq!(tx.state.matched[0].logdata, "FATAL");
        assert_eq!(ids(&run(&[], "<title>Index of /</title>")), vec![21, 23]);
        assert_eq!(ids(&run(&[], "a mysql_ error")), vec![20]);
        assert_eq!(ids(&run(&[], "a mysql_ warning")), Vec::<u32>::new());
    }
}
