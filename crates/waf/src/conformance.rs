//! Replays the CRS regression suite (flattened to JSON lines) through the
//! engine and reports the pass rate.
//!
//! Every case goes through an [`Exchange`], the code the edge uses: request
//! headers (phase 1), the body pushed in chunks and finished (phase 2), then
//! the response of a backend that answers like go-ftw's backend "albedo"
//! ([`backend_response`]): its headers (phase 3), its body pushed in chunks
//! and finished (phase 4), and logging (phase 5).
//!
//! A case passes when every `expect_ids` rule matched, no `no_expect_ids`
//! rule matched, and the log lines of the matched rules (ModSecurity's
//! `[id "N"] [msg "..."] [data "..."]`) match `match_regex` and not
//! `no_match_regex`, with the regression settings: detection only, the
//! paranoia level under test, and the CRS test `tx.` values. Cases judged
//! only by the response status are not judged here (`not_judged`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::Waf;
use crate::exchange::{BodyPush, Exchange, RequestBodyPlan, ResponseBodyPlan};
use crate::transaction::{HttpRequest, MatchedRule};
use crate::WafError;
use palisade_policy::waf::{WafMode, WafSettings};

/// One stage of a regression test.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub id: String,
    #[serde(default)]
    pub rule_id: u32,
    #[serde(default)]
    pub rule_file: Option<String>,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub header_list: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_b64: Option<String>,
    #[serde(default)]
    pub raw_b64: Option<String>,
    #[serde(default)]
    pub expect_ids: Vec<u32>,
    #[serde(default)]
    pub no_expect_ids: Vec<u32>,
    /// Regex that must (or must not) match the log lines of the rules that fired.
    #[serde(default)]
    pub match_regex: Option<String>,
    #[serde(default)]
    pub no_match_regex: Option<String>,
}

/// Outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub rule_id: u32,
    pub rule_file: String,
    pub label: String,
    pub passed: bool,
    /// Expected ids that did not match.
    pub missing: Vec<u32>,
    /// Forbidden ids that matched.
    pub unexpected: Vec<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub passed: usize,
    pub total: usize,
}

impl Tally {
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.passed as f64 * 100.0 / self.total as f64
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub by_label: BTreeMap<String, Tally>,
    pub by_file: BTreeMap<String, Tally>,
    /// Over `block` and `pass` cases.
    pub overall: Tally,
    /// Over judged `other` cases (response phases, log lines, statuses of
    /// rules outside categories 913-944).
    pub other: Tally,
    /// Cases judged only by the response status (not counted).
    pub not_judged: usize,
    pub failures: Vec<CaseResult>,
}

/// The settings CRS' regression suite runs with.
pub fn regression_config(rules: &Path, pl: u8) -> WafSettings {
    WafSettings {
        crs_dir: Some(rules.display().to_string()),
        mode: WafMode::Detect,
        blocking_paranoia_level: pl,
        detection_paranoia_level: Some(pl),
        tx: [
            ("arg_length", "400"),
            ("total_arg_length", "6400"),
            ("max_file_size", "64100"),
            ("combined_file_sizes", "65535"),
            // CRS' own defaults, which its tests expect (Palisade's differ:
            // config::PALISADE_TX_DEFAULTS).
            ("allowed_methods", "GET HEAD POST OPTIONS"),
            ("palisade_same_site_referer", "0"),
            ("palisade_file_names_at_segment_start", "0"),
            (
                "allowed_request_content_type",
                "|application/x-www-form-urlencoded| |multipart/form-data| |text/xml| |application/xml| |application/soap+xml| |application/json|",
            ),
            (
                "restricted_headers_basic",
                "/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/ /x-http-method-override/ /x-http-method/ /x-method-override/ /x-middleware-subrequest/ /expect/",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        // CRS as shipped: its regression cases test its own rules.
        refinements: false,
        ..WafSettings::default()
    }
}

pub fn load_cases(path: &Path) -> Result<Vec<Case>, WafError> {
    let text = std::fs::read_to_string(path).map_err(|e| WafError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| WafError::At {
            location: format!("{}:{}", path.display(), i + 1),
            message: e.to_string(),
        })?;
        out.push(case);
    }
    Ok(out)
}

/// The request a case sends: parsed from the raw bytes when present (what
/// the server would receive), else from the structured fields.
pub fn case_request(case: &Case) -> HttpRequest {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(raw) = case.raw_b64.as_ref().and_then(|r| b64.decode(r).ok()) {
        if let Some(req) = parse_raw(&raw) {
            return req;
        }
    }
    let body = match (&case.body, &case.body_b64) {
        (_, Some(b)) => b64.decode(b).unwrap_or_default(),
        (Some(b), None) => b.as_bytes().to_vec(),
        (None, None) => Vec::new(),
    };
    HttpRequest {
        method: case
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .into_bytes(),
        uri: case.uri.clone().unwrap_or_else(|| "/".into()).into_bytes(),
        protocol: case
            .version
            .clone()
            .unwrap_or_else(|| "HTTP/1.1".into())
            .into_bytes(),
        headers: case
            .header_list
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        body,
        remote_addr: "127.0.0.1".into(),
        remote_port: 40000,
        unique_id: case.id.clone(),
    }
}

/// A lenient HTTP/1 request parser, enough for test traffic.
pub fn parse_raw(raw: &[u8]) -> Option<HttpRequest> {
    let (head, body) = match memchr::memmem::find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match memchr::memmem::find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, &b""[..]),
        },
    };
    // Like Apache httpd (which the CRS suite's expectations follow): a
    // bare CR also ends a header line.
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .flat_map(|l| l.split(|&b| b == b'\r'));
    let line = lines.next()?;
    let parts: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|p| !p.is_empty())
        .collect();
    let (method, uri, protocol) = match parts.len() {
        0 => return None,
        1 => (parts[0].to_vec(), Vec::new(), b"HTTP/1.0".to_vec()),
        2 => (parts[0].to_vec(), parts[1].to_vec(), b"HTTP/0.9".to_vec()),
        n => (
            parts[0].to_vec(),
            parts[1..n - 1].join(&b' '),
            parts[n - 1].to_vec(),
        ),
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        if (l[0] == b' ' || l[0] == b'\t') && !headers.is_empty() {
            if let Some(last) = headers.last_mut() {
                last.1.push(b' ');
                last.1.extend_from_slice(l.trim_ascii());
            }
            continue;
        }
        match l.iter().position(|&b| b == b':') {
            Some(c) => headers.push((
                l[..c].trim_ascii().to_vec(),
                l[c + 1..].trim_ascii().to_vec(),
            )),
            None => headers.push((l.trim_ascii().to_vec(), Vec::new())),
        }
    }
    // httpd joins repeated headers into one value.
    let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (k, v) in headers {
        match merged
            .iter_mut()
            .find(|(mk, _)| mk.eq_ignore_ascii_case(&k))
        {
            Some((_, mv)) => {
                mv.extend_from_slice(b", ");
                mv.extend_from_slice(&v);
            }
            None => merged.push((k, v)),
        }
    }
    let mut headers = merged;
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case(b"transfer-encoding") && v.eq_ignore_ascii_case(b"chunked")
    });
    let body = if chunked {
        // Transfer-Encoding wins over Content-Length, which the server drops.
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(b"content-length"));
        dechunk(body).unwrap_or_else(|| body.to_vec())
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
        // Without a length HTTP/1.1 has no body.
        match len {
            Some(n) if n < body.len() => body[..n].to_vec(),
            Some(_) => body.to_vec(),
            None => Vec::new(),
        }
    };
    Some(HttpRequest {
        method,
        uri,
        protocol,
        headers,
        body,
        remote_addr: "127.0.0.1".into(),
        remote_port: 40000,
        unique_id: String::new(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = memchr::memchr(b'\n', b)?;
        let size_line = std::str::from_utf8(&b[..nl]).ok()?.trim();
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        b = &b[nl + 1..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size {
            out.extend_from_slice(b);
            return Some(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size..];
        b = b
            .strip_prefix(b"\r\n")
            .or_else(|| b.strip_prefix(b"\n"))
            .unwrap_or(b);
    }
}

/// Escapes control characters the way ModSecurity's log does (`\x0a`).
fn log_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 0x20 || c as u32 == 0x7f {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// What the engine did with one case.
#[derive(Debug, Clone, Default)]
pub struct CaseRun {
    /// Every logged rule that matched, in order (request and response phases).
    pub matched: Vec<MatchedRule>,
    /// Their log lines, as ModSecurity writes them.
    pub log: String,
    /// The backend's response (none when the request was refused).
    pub response: Option<BackendResponse>,
}

/// A backend's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendResponse {
    pub status: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The body of a response to any request but `POST /reflect`.
const DEFAULT_BODY: &[u8] = b"<html><body>palisade conformance backend</body></html>\n";

/// What go-ftw's backend "albedo" answers: `POST /reflect` with a JSON
/// body `{"status": N, "headers": {...}, "body": "...", "encodedBody":
/// "base64"}` gets that response (status 200 when none is given; 400 for a
/// status outside 100-599; `body` wins over `encodedBody`). A body on
/// `/reflect` that is not that JSON is reflected as it is (case 956110-4:
/// "reflect body is not JSON"; albedo itself answers 400 with an error
/// text there, which CRS' rules do not match either). Any other request
/// gets 200 with a small HTML page (albedo: an empty body; no rule matches
/// either). Like Go's server, a response without `Content-Type` gets one
/// sniffed from its body, and `Content-Length` is set.
pub fn backend_response(method: &[u8], uri: &[u8], body: &[u8]) -> BackendResponse {
    let path = uri.split(|&b| b == b'?').next().unwrap_or(b"");
    let reflect = method == b"POST" && (path == b"/reflect" || path == b"/reflect/");
    let mut resp = if !reflect {
        BackendResponse {
            status: 200,
            headers: vec![(
                b"Content-Type".to_vec(),
                b"text/html; charset=utf-8".to_vec(),
            )],
            body: DEFAULT_BODY.to_vec(),
        }
    } else {
        reflect_response(body)
    };
    // No body for 1xx, 204, 304.
    if resp.status < 200 || resp.status == 204 || resp.status == 304 {
        resp.body.clear();
    } else {
        let has =
            |h: &[(Vec<u8>, Vec<u8>)], n: &[u8]| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !resp.body.is_empty() && !has(&resp.headers, b"content-type") {
            let ct = sniff_content_type(&resp.body);
            resp.headers
                .push((b"Content-Type".to_vec(), ct.as_bytes().to_vec()));
        }
        if !has(&resp.headers, b"content-length") && !has(&resp.headers, b"transfer-encoding") {
            let len = resp.body.len().to_string().into_bytes();
            resp.headers.push((b"Content-Length".to_vec(), len));
        }
    }
    resp.headers
        .push((b"Date".to_vec(), b"Mon, 01 Jan 2024 00:00:00 GMT".to_vec()));
    resp
}

/// albedo's `/reflect`.
fn reflect_response(body: &[u8]) -> BackendResponse {
    let plain = |status: u16, text: &[u8]| BackendResponse {
        status,
        headers: Vec::new(),
        body: text.to_vec(),
    };
    let Ok(serde_json::Value::Object(spec)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return plain(200, body);
    };
    // Go's JSON decoding matches field names case-insensitively.
    let field = |name: &str| {
        spec.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let status = match field("status") {
        None | Some(serde_json::Value::Null) => 0,
        Some(v) => match v.as_u64() {
            Some(n) => n,
            None => return plain(400, b"Invalid JSON in request body"),
        },
    };
    if status > 0 && !(100..600).contains(&status) {
        return plain(400, format!("Invalid status code: {status}").as_bytes());
    }
    let status = if status == 0 { 200 } else { status as u16 };
    let mut headers = Vec::new();
    if let Some(serde_json::Value::Object(h)) = field("headers") {
        for (k, v) in h {
            let Some(v) = v.as_str() else {
                return plain(400, b"Invalid JSON in request body");
            };
            let valid_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            let valid_value = !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
            if valid_name && valid_value {
                headers.push((canonical_header(k).into_bytes(), v.as_bytes().to_vec()));
            }
        }
    }
    let text = |name| field(name).and_then(|v| v.as_str()).unwrap_or("");
    let body = if !text("body").is_empty() {
        text("body").as_bytes().to_vec()
    } else if !text("encodedBody").is_empty() {
        let b64 = base64::engine::general_purpose::STANDARD;
        match b64.decode(text("encodedBody")) {
            Ok(b) => b,
            Err(_) => b"invalid base64 encoding of response body".to_vec(),
        }
    } else {
        Vec::new()
    };
    BackendResponse {
        status,
        headers,
        body,
    }
}

/// Go's `CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The media type Go's `http.DetectContentType` gives a text body (the
/// signatures that matter for CRS' response rules).
pub fn sniff_content_type(body: &[u8]) -> &'static str {
    let start = body
        .iter()
        .position(|&b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .unwrap_or(body.len());
    let b = &body[start..];
    const HTML: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    for sig in HTML {
        if b.len() > sig.len()
            && b[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(b[sig.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if b.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let binary = body[..body.len().min(512)].iter().any(|&c| {
        c <= 0x08 || c == 0x0b || (0x0e..=0x1a).contains(&c) || (0x1c..=0x1f).contains(&c)
    });
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Chunk sizes a body is pushed in, in turn (odd sizes on purpose).
const CHUNKS: &[usize] = &[1, 7, 64, 1000, 4093];

/// Pushes `body` in chunks until the push says stop.
fn push_chunks(body: &[u8], mut push: impl FnMut(&[u8]) -> BodyPush) {
    let mut rest = body;
    for &n in CHUNKS.iter().cycle() {
        if rest.is_empty() {
            return;
        }
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        if push(chunk) != BodyPush::Continue {
            return;
        }
    }
}

/// ModSecurity's log line of a matched rule.
pub fn log_line(m: &MatchedRule) -> String {
    format!(
        "[id \"{}\"] [msg \"{}\"] [data \"{}\"]\n",
        m.id,
        log_escape(&m.msg),
        log_escape(&m.logdata)
    )
}

/// Runs one request and its backend's response through an exchange.
pub fn run_case(waf: &Waf, mut req: HttpRequest) -> CaseRun {
    let body = std::mem::take(&mut req.body);
    let (method, uri) = (req.method.clone(), req.uri.clone());
    let mut ex = waf.begin(req);
    let response = run_exchange(&mut ex, &body, &method, &uri);
    ex.logging();
    let matched: Vec<MatchedRule> = ex.matched().cloned().collect();
    let log = matched.iter().map(log_line).collect();
    CaseRun {
        matched,
        log,
        response,
    }
}

/// The steps of an exchange as the edge drives them; the backend's
/// response, unless the request was refused.
fn run_exchange(
    ex: &mut Exchange,
    body: &[u8],
    method: &[u8],
    uri: &[u8],
) -> Option<BackendResponse> {
    if ex.request_headers().blocked {
        return None;
    }
    match ex.request_body_plan(!body.is_empty()) {
        RequestBodyPlan::Refuse { .. } => return None,
        RequestBodyPlan::Inspect { .. } => push_chunks(body, |c| ex.push_request_body(c)),
        RequestBodyPlan::None | RequestBodyPlan::Uninspected { .. } => {}
    }
    if ex.finish_request_body().blocked {
        return None;
    }
    // What the upstream gets: the bytes held, then the rest as it comes.
    let mut forwarded = ex.take_request_body();
    if forwarded.len() < body.len() {
        forwarded.extend_from_slice(&body[forwarded.len()..]);
    }
    let resp = backend_response(method, uri, &forwarded);
    let (v, plan) = ex.response_headers(resp.status, b"HTTP/1.1", resp.headers.clone());
    if v.blocked {
        return Some(resp);
    }
    if let ResponseBodyPlan::Inspect { .. } = plan {
        push_chunks(&resp.body, |c| ex.push_response_body(c));
    }
    ex.finish_response_body();
    Some(resp)
}

/// Runs every case.
pub fn run(waf: &Waf, cases: &[Case]) -> Report {
    let mut report = Report::default();
    for case in cases {
        let compile = |r: &Option<String>| r.as_deref().map(regex::Regex::new);
        let (must, must_not) = match (compile(&case.match_regex), compile(&case.no_match_regex)) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => (None, None),
            (a, b) => (a.and_then(Result::ok), b.and_then(Result::ok)),
        };
        let judged = !case.expect_ids.is_empty()
            || !case.no_expect_ids.is_empty()
            || must.is_some()
            || must_not.is_some();
        if !judged {
            report.not_judged += 1;
            continue;
        }
        let mut req = case_request(case);
        req.unique_id = case.id.clone();
        let run = run_case(waf, req);
        let ids: Vec<u32> = run.matched.iter().map(|m| m.id).collect();
        let log = run.log;
        let mut missing: Vec<u32> = case
            .expect_ids
            .iter()
            .copied()
            .filter(|i| !ids.contains(i))
            .collect();
        let mut unexpected: Vec<u32> = case
            .no_expect_ids
            .iter()
            .copied()
            .filter(|i| ids.contains(i))
            .collect();
        if must.as_ref().is_some_and(|r| !r.is_match(&log)) {
            missing.push(0);
        }
        if must_not.as_ref().is_some_and(|r| r.is_match(&log)) {
            unexpected.extend(ids.iter().copied());
        }
        let passed = missing.is_empty() && unexpected.is_empty();
        let file = case.rule_file.clone().unwrap_or_else(|| "?".into());
        let label = if case.label.is_empty() {
            "other".into()
        } else {
            case.label.clone()
        };
        for t in [
            report.by_label.entry(label.clone()).or_default(),
            report.by_file.entry(file.clone()).or_default(),
        ] {
            t.total += 1;
            t.passed += passed as usize;
        }
        let tally = if label == "block" || label == "pass" {
            &mut report.overall
        } else {
            &mut report.other
        };
        tally.total += 1;
        tally.passed += passed as usize;
        if !passed {
            report.failures.push(CaseResult {
                id: case.id.clone(),
                rule_id: case.rule_id,
                rule_file: file,
                label,
                passed,
                missing,
                unexpected,
            });
        }
    }
    report
}

impl Report {
    /// Human-readable report ending with the `overall:` line.
    pub fn render(&self, list_failures: bool) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "by label:");
        for (l, t) in &self.by_label {
            let _ = writeln!(
                s,
                "  {l:<8} {:6.2}% ({}/{})",
                t.percent(),
                t.passed,
                t.total
            );
        }
        let _ = writeln!(
            s,
            "  not judged (response status only): {}",
            self.not_judged
        );
        let _ = writeln!(s, "by rule file:");
        for (f, t) in &self.by_file {
            let _ = writeln!(
                s,
                "  {f:<48} {:6.2}% ({}/{})",
                t.percent(),
                t.passed,
                t.total
            );
        }
        if list_failures && !self.failures.is_empty() {
            let _ = writeln!(s, "failures:");
            for f in &self.failures {
                let _ = writeln!(
                    s,
                    "  {:<12} [{}] missing {:?} unexpected {:?}",
                    f.id, f.label, f.missing, f.unexpected
                );
            }
        }
        let _ = writeln!(
            s,
            "other: {:.2}% ({}/{})",
            self.other.percent(),
            self.other.passed,
            self.other.total
        );
        let _ = writeln!(
            s,
            "overall: {:.2}% ({}/{})",
            self.overall.percent(),
            self.overall.passed,
            self.overall.total
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'r>(r: &'r BackendResponse, name: &str) -> Option<&'r str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    #[test]
    fn the_backend_answers_like_albedo() {
        let r = backend_response(
            b"POST",
            b"/reflect",
            br#"{"status": 503, "headers": {"x-leak": "1", "bad name": "x"}, "body": "<html><title>r57 shell</title>"}"#,
        );
        assert_eq!(r.status, 503);
        assert_eq!(r.body, b"<html><title>r57 shell</title>");
        assert_eq!(header(&r, "X-Leak"), Some("1"));
        assert_eq!(header(&r, "bad name"), None);
        assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
        assert_eq!(header(&r, "Content-Length"), Some("30"));
        // encodedBody, and `body` winning over it; field names are case-insensitive.
        let r = backend_response(b"POST", b"/reflect/", br#"{"encodedBody": "PD9waHA="}"#);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<?php"[..]));
        assert_eq!(
            header(&r, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        let r = backend_response(
            b"POST",
            b"/reflect",
            br#"{"Body": "a", "encodedBody": "Yg=="}"#,
        );
        assert_eq!(r.body, b"a");
        let r = backend_response(b"POST", b"/reflect", br#"{"encodedBody": "***"}"#);
        assert_eq!(r.body, b"invalid base64 encoding of response body");
        // Bad statuses; no body for 204.
        let r = backend_response(b"POST", b"/reflect", br#"{"status": 99}"#);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (400, &b"Invalid status code: 99"[..])
        );
        let r = backend_response(b"POST", b"/reflect", br#"{"status": 204, "body": "x"}"#);
        assert!(r.status == 204 && r.body.is_empty() && header(&r, "Content-Length").is_none());
        // Not JSON: reflected as it is. Other paths and methods: a small page.
        let r = backend_response(b"POST", b"/reflect", b"<%- sidebar.id %>");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"<%- sidebar.id %>"[..])
        );
        for (m, u) in [(&b"GET"[..], &b"/reflect"[..]), (b"POST", b"/post?a=1")] {
            let r = backend_response(m, u, br#"{"body": "SQL syntax error"}"#);
            assert_eq!((r.status, r.body.as_slice()), (200, DEFAULT_BODY));
        }
    }

    #[test]
    fn content_types_are_sniffed_like_go() {
        assert_eq!(
            sniff_content_type(b"  <HTML><body>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<title>x</title>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<!-- c -->"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<?xml version='1.0'?>"),
            "text/xml; charset=utf-8"
        );
        assert_eq!(
            sniff_content_type(b"<?php echo 1; ?>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff_content_type(b"<htmlx>"), "text/plain; charset=utf-8");
        assert_eq!(
            sniff_content_type(b"\x00\x01binary"),
            "application/octet-stream"
        );
        assert_eq!(canonical_header("x-powered-BY"), "X-Powered-By");
    }

    #[test]
    fn raw_requests_parse_with_chunked_bodies() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_raw(raw).unwrap();
        assert_eq!(r.method, b"POST");
        assert_eq!(r.uri, b"/a?b=1");
        assert_eq!(r.protocol, b"HTTP/1.1");
        assert_eq!(r.body, b"abcde");
        assert_eq!(r.headers.len(), 2);
    }
}
