//! Bulk import of decisions: `POST /api/v1/decisions/import`.
//!
//! Reads a blocklist in one of three formats (`format` query parameter):
//!
//! - `crowdsec-json`: the output of `cscli decisions list -o json` (an array
//!   of alerts, each with `decisions`), a flat array of decision objects (the
//!   format of `cscli decisions import`), or JSON lines of either;
//! - `csv`: a header line naming the columns, as `cscli decisions list -o raw`
//!   writes it (`ip` holds `Scope:value`) or as `cscli decisions import`
//!   reads it (`value`, `duration`, `reason`, `scope`, `type`);
//! - `lines` (default): one ip or network per line; `#` starts a comment.
//!
//! Every entry becomes a [`NewDecision`] and goes through
//! [`NewDecision::into_decision`], so that the guardrails of a single
//! `POST /api/v1/decisions` apply to each (known scope, valid value,
//! duration or `permanent`, no ban broader than /8 or /32 without `force`,
//! reason at most 1024 bytes). Query parameters give what an entry does not
//! say: `duration`, `permanent`, `reason`, `action`, `simulated`, `force`,
//! `origin` (a label, as for a single decision).
//!
//! All or nothing: when an entry is invalid, nothing is imported and the
//! answer (400) lists every invalid entry with its line (at most
//! [`MAX_REPORTED`], and how many there were); `on_error=skip` imports the
//! valid entries and reports the others the same way. Entries already expired
//! (a negative CrowdSec duration) are skipped and counted. When a key appears
//! more than once the last entry wins, as with successive single writes, and
//! the repeats are counted.

use std::collections::HashSet;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_policy::decisions::Scope;
use palisade_policy::Decision;
use serde::{Deserialize, Serialize};

use crate::api::{api_error, deny, error, unauthorized, ApiConfig, NewDecision, Role};

/// The largest import body: 256 MiB (a million CrowdSec JSON decisions).
pub const MAX_IMPORT_BYTES: usize = 256 << 20;

/// Invalid entries listed in an answer at most (all are counted).
pub const MAX_REPORTED: usize = 1000;

/// Query of `POST /api/v1/decisions/import`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `lines` (default), `csv` or `crowdsec-json`.
    #[serde(default)]
    pub format: Option<String>,
    /// Duration of entries that give none.
    #[serde(default)]
    pub duration: Option<String>,
    /// Entries that give no duration last until deleted.
    #[serde(default)]
    pub permanent: bool,
    /// Reason of entries that give none.
    #[serde(default)]
    pub reason: Option<String>,
    /// Action of entries that give none (`ban` by default).
    #[serde(default)]
    pub action: Option<String>,
    /// Import in shadow mode.
    #[serde(default)]
    pub simulated: bool,
    /// Accept bans broader than the minimum prefix.
    #[serde(default)]
    pub force: bool,
    /// A label added to the origin (`api:<role>:<label>`); `import` by default.
    #[serde(default)]
    pub origin: Option<String>,
    /// `reject` (default: nothing is imported when an entry is invalid) or `skip`.
    #[serde(default)]
    pub on_error: Option<String>,
}

/// Import formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One ip or network per line.
    Lines,
    /// CSV with a header.
    Csv,
    /// CrowdSec's JSON (alerts with decisions, or decisions).
    CrowdsecJson,
}

impl Format {
    /// Reads a format name.
    pub fn parse(s: Option<&str>) -> Result<Format, String> {
        match s.map(str::trim) {
            None | Some("") | Some("lines") | Some("list") => Ok(Format::Lines),
            Some("csv") => Ok(Format::Csv),
            Some("crowdsec-json") | Some("json") | Some("crowdsec") => Ok(Format::CrowdsecJson),
            Some(other) => Err(format!(
                "unknown format `{other}` (expected lines, csv or crowdsec-json)"
            )),
        }
    }
}

/// An entry that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// 1-based line of the body (a JSON array: the line where its element
    /// starts, `entry` telling which decision of it).
    pub line: usize,
    /// Where in a JSON document (`[3].decisions[0]`), when that helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Why.
    pub error: String,
}

/// What an import did (the answer's body).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Decisions written (distinct keys).
    pub imported: usize,
    /// Entries whose key appeared again later in the body (the last one wins).
    pub duplicates: usize,
    /// Entries already expired, not imported.
    pub skipped_expired: usize,
    /// Invalid entries, at most [`MAX_REPORTED`].
    pub rejected: Vec<Rejected>,
    /// How many entries were invalid.
    pub rejected_total: usize,
    /// Decision-log sequence of the last op written (0 when nothing was).
    pub seq: u64,
}

/// The entries of a body, parsed and validated.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid decisions, in body order, one per key (the last entry of a key).
    pub decisions: Vec<Decision>,
    /// See [`ImportReport`].
    pub duplicates: usize,
    /// See [`ImportReport`].
    pub skipped_expired: usize,
    /// Every invalid entry (not capped).
    pub rejected: Vec<Rejected>,
}

/// Defaults taken from the query.
struct Defaults<'a> {
    q: &'a ImportQuery,
    now_ms: u64,
    origin_base: &'a str,
}

impl Defaults<'_> {
    /// A request for `scope` + `value`, with the query's defaults.
    fn request(&self, scope: String, value: String) -> NewDecision {
        NewDecision {
            scope,
            value,
            action: self.q.action.clone(),
            duration: self.q.duration.clone(),
            permanent: self.q.permanent,
            reason: self.q.reason.clone().unwrap_or_else(|| "import".into()),
            origin: Some(self.q.origin.clone().unwrap_or_else(|| "import".into())),
            simulated: self.q.simulated,
            force: self.q.force,
        }
    }
}

/// What one entry gave: a request, an expired entry, or an error.
enum Entry {
    Req(NewDecision),
    Expired,
}

/// Parses and validates `body`. `origin_base` is `api:<role>`.
pub fn parse(
    format: Format,
    body: &str,
    q: &ImportQuery,
    now_ms: u64,
    origin_base: &str,
) -> Parsed {
    let defaults = Defaults {
        q,
        now_ms,
        origin_base,
    };
    let mut out = Parsed::default();
    let mut valid: Vec<Decision> = Vec::new();
    // Each entry is validated as it is read: nothing but decisions is kept.
    let mut emit = |(line, entry, e): Item| match e.and_then(|e| match e {
        Entry::Req(r) => r
            .into_decision(defaults.now_ms, defaults.origin_base)
            .map(Some),
        Entry::Expired => Ok(None),
    }) {
        Ok(Some(d)) => valid.push(d),
        Ok(None) => out.skipped_expired += 1,
        Err(error) => out.rejected.push(Rejected { line, entry, error }),
    };
    match format {
        Format::Lines => lines(body, &defaults, &mut emit),
        Format::Csv => csv(body, &defaults, &mut emit),
        Format::CrowdsecJson => crowdsec_json(body, &defaults, &mut emit),
    }
    // The last entry of a key wins: keep it, in body order.
    let mut seen: HashSet<(Scope, &str)> = HashSet::with_capacity(valid.len());
    let mut keep = vec![false; valid.len()];
    for (i, d) in valid.iter().enumerate().rev() {
        if seen.insert((d.scope, d.value.as_str())) {
            keep[i] = true;
        } else {
            out.duplicates += 1;
        }
    }
    drop(seen);
    out.decisions = valid
        .into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect();
    out
}

/// One entry read: its line, where in a JSON document, and what it gave.
type Item = (usize, Option<String>, Result<Entry, String>);

fn lines(body: &str, d: &Defaults<'_>, out: &mut impl FnMut(Item)) {
    for (i, raw) in body.lines().enumerate() {
        let text = raw.split('#').next().unwrap_or("").trim();
        let Some(value) = text.split_whitespace().next() else {
            continue;
        };
        let scope = if value.contains('/') { "cidr" } else { "ip" };
        out((
            i + 1,
            None,
            Ok(Entry::Req(d.request(scope.into(), value.into()))),
        ));
    }
}

/// Splits one CSV line (RFC 4180 quoting on one line).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return Err("unterminated quoted field (a field may not span lines)".into());
    }
    fields.push(cur);
    Ok(fields)
}

fn csv(body: &str, d: &Defaults<'_>, out: &mut impl FnMut(Item)) {
    let mut rows = body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hline, header)) = rows.next() else {
        return;
    };
    let header = match csv_fields(header) {
        Ok(h) => h
            .into_iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect::<Vec<_>>(),
        Err(e) => {
            out((hline + 1, None, Err(format!("header: {e}"))));
            return;
        }
    };
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let c_value = col(&["value"]);
    let c_scope_value = col(&["ip", "scope:value"]);
    let c_scope = col(&["scope"]);
    let c_type = col(&["type", "action"]);
    let c_duration = col(&["duration", "expiration"]);
    let c_reason = col(&["reason", "scenario"]);
    let c_simulated = col(&["simulated"]);
    if c_value.is_none() && c_scope_value.is_none() {
        out((
            hline + 1,
            None,
            Err("header: no `value` or `ip` (Scope:value) column".into()),
        ));
        return;
    }
    for (i, line) in rows {
        let n = i + 1;
        let fields = match csv_fields(line) {
            Ok(f) => f,
            Err(e) => {
                out((n, None, Err(e)));
                continue;
            }
        };
        if fields.len() != header.len() {
            out((
                n,
                None,
                Err(format!(
                    "{} fields, the header names {}",
                    fields.len(),
                    header.len()
                )),
            ));
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| fields.get(c))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let (scope, value) = match (get(c_value), get(c_scope_value)) {
            (Some(v), _) => (get(c_scope).unwrap_or("ip").to_string(), v.to_string()),
            (None, Some(sv)) => match sv.split_once(':') {
                // `Ip:1.2.3.4`, `Range:10.0.0.0/8`; an IPv6 value keeps its colons.
                Some((s, v)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()) => {
                    (s.to_string(), v.to_string())
                }
                _ => (get(c_scope).unwrap_or("ip").to_string(), sv.to_string()),
            },
            (None, None) => {
                out((n, None, Err("no value".into())));
                continue;
            }
        };
        let mut req = d.request(scope.to_ascii_lowercase(), value);
        if let Some(t) = get(c_type) {
            req.action = Some(t.to_ascii_lowercase());
        }
        if let Some(r) = get(c_reason) {
            req.reason = r.to_string();
        }
        if let Some(s) = get(c_simulated) {
            req.simulated = s.eq_ignore_ascii_case("true");
        }
        let entry = match get(c_duration) {
            None => Ok(Entry::Req(req)),
            Some(dur) => with_go_duration(req, dur),
        };
        out((n, None, entry));
    }
}

/// Sets `req`'s duration from a Go duration (`3h59m45.1s`, `-2m`): an
/// expired one (zero or negative) is [`Entry::Expired`].
fn with_go_duration(mut req: NewDecision, dur: &str) -> Result<Entry, String> {
    let ms = go_duration_ms(dur)?;
    if ms <= 0 {
        return Ok(Entry::Expired);
    }
    req.duration = Some(format!("{ms}ms"));
    req.permanent = false;
    Ok(Entry::Req(req))
}

/// Milliseconds of a Go duration: an optional sign, then numbers (with an
/// optional fraction) each followed by `h`, `m`, `s`, `ms`, `us`, `µs` or `ns`.
fn go_duration_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "invalid duration `{}`",
            t.chars().take(40).collect::<String>()
        )
    };
    let (neg, mut rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += n * unit_ms;
    }
    if !total.is_finite() || total > 1e15 {
        return Err(bad());
    }
    let ms = total as i64;
    Ok(if neg { -ms } else { ms })
}

/// One CrowdSec decision object.
#[derive(Debug, Deserialize)]
struct CsDecision {
    value: Option<String>,
    scope: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    duration: Option<String>,
    scenario: Option<String>,
    reason: Option<String>,
    simulated: Option<bool>,
}

fn cs_entry(d: &Defaults<'_>, v: serde_json::Value) -> Result<Entry, String> {
    let c: CsDecision = serde_json::from_value(v).map_err(|e| format!("decision: {e}"))?;
    let value = c.value.ok_or("decision without `value`")?;
    let scope = c.scope.unwrap_or_else(|| "ip".into()).to_ascii_lowercase();
    let mut req = d.request(scope, value);
    if let Some(t) = c.kind {
        req.action = Some(t.to_ascii_lowercase());
    }
    if let Some(r) = c.reason.or(c.scenario).filter(|r| !r.is_empty()) {
        req.reason = r;
    }
    if let Some(s) = c.simulated {
        req.simulated = s;
    }
    match c
        .duration
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(dur) => with_go_duration(req, dur),
        None => Ok(Entry::Req(req)),
    }
}

/// The 1-based line of byte `offset`, counting from `from` (at `from_line`).
struct LineCounter<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> usize {
        let end = offset.min(self.body.len());
        if end > self.pos {
            self.line += self.body[self.pos..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.pos = end;
        }
        self.line
    }
}

fn crowdsec_json(body: &str, d: &Defaults<'_>, out: &mut impl FnMut(Item)) {
    let trimmed = body.trim_start();
    let lead = body.len() - trimmed.len();
    let mut lc = LineCounter {
        body: body.as_bytes(),
        pos: 0,
        line: 1,
    };
    if trimmed.starts_with('[') {
        // An array: walk its elements with their offsets, so that every entry has a line.
        let mut idx = 0usize;
        let mut offset = lead + 1;
        loop {
            // Skip whitespace and one comma between elements.
            let rest = &body[offset..];
            let skip = rest.len() - rest.trim_start().len();
            offset += skip;
            let rest = &body[offset..];
            if let Some(after) = rest.strip_prefix(']') {
                if !after.trim().is_empty() {
                    out((
                        lc.line_at(offset + 1),
                        None,
                        Err("text after the array".into()),
                    ));
                }
                return;
            }
            if idx > 0 {
                if !rest.starts_with(',') {
                    out((lc.line_at(offset), None, Err("expected `,` or `]`".into())));
                    return;
                }
                offset += 1;
                let rest = &body[offset..];
                offset += rest.len() - rest.trim_start().len();
            }
            let line = lc.line_at(offset);
            let mut stream = serde_json::Deserializer::from_str(&body[offset..])
                .into_iter::<serde_json::Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    let used = stream.byte_offset();
                    json_item(d, v, line, &format!("[{idx}]"), out);
                    offset += used;
                }
                Some(Err(e)) => {
                    out((
                        line + e.line().saturating_sub(1),
                        Some(format!("[{idx}]")),
                        Err(format!("invalid JSON: {e}")),
                    ));
                    return;
                }
                None => {
                    out((line, None, Err("unterminated array".into())));
                    return;
                }
            }
            idx += 1;
        }
    }
    // JSON lines.
    for (i, l) in body.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => json_item(d, v, i + 1, "", out),
            Err(e) => out((i + 1, None, Err(format!("invalid JSON: {e}")))),
        }
    }
}

/// An alert (with `decisions`) or a decision.
fn json_item(
    d: &Defaults<'_>,
    v: serde_json::Value,
    line: usize,
    path: &str,
    out: &mut impl FnMut(Item),
) {
    let entry = |p: String| (!p.is_empty()).then_some(p);
    match v {
        serde_json::Value::Object(mut m) if m.contains_key("decisions") => {
            match m.remove("decisions") {
                Some(serde_json::Value::Array(ds)) => {
                    for (j, dv) in ds.into_iter().enumerate() {
                        out((
                            line,
                            entry(format!("{path}.decisions[{j}]")),
                            cs_entry(d, dv),
                        ));
                    }
                }
                Some(serde_json::Value::Null) => {}
                _ => out((
                    line,
                    entry(path.to_string()),
                    Err("`decisions` is not an array".into()),
                )),
            }
        }
        v @ serde_json::Value::Object(_) => out((line, entry(path.to_string()), cs_entry(d, v))),
        _ => out((
            line,
            entry(path.to_string()),
            Err("expected an object".into()),
        )),
    }
}

/// `POST /api/v1/decisions/import`.
pub(crate) async fn import_decisions(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    let Some(role) = cfg.tokens.role_of(&headers) else {
        return unauthorized();
    };
    let format = match Format::parse(q.format.as_deref()) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let skip = match q.on_error.as_deref() {
        None | Some("reject") => false,
        Some("skip") => true,
        Some(o) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown on_error `{o}` (expected reject or skip)"),
            )
        }
    };
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not UTF-8: {e}"),
            )
        }
    };
    let now = (cfg.clock)();
    let base = format!("api:{}", role.as_str());
    let started = std::time::Instant::now();
    let parsed = parse(format, text, &q, now, &base);
    drop(body);
    let mut report = ImportReport {
        duplicates: parsed.duplicates,
        skipped_expired: parsed.skipped_expired,
        rejected_total: parsed.rejected.len(),
        rejected: parsed.rejected.into_iter().take(MAX_REPORTED).collect(),
        ..ImportReport::default()
    };
    if report.rejected_total > 0 && !skip {
        tracing::warn!(
            invalid = report.rejected_total,
            "decision import refused: invalid entries (nothing imported)"
        );
        return (StatusCode::BAD_REQUEST, Json(report)).into_response();
    }
    let n = parsed.decisions.len();
    match cfg.backend.import_decisions(parsed.decisions).await {
        Ok(seq) => {
            report.imported = n;
            report.seq = seq;
            tracing::info!(
                imported = n,
                duplicates = report.duplicates,
                skipped_expired = report.skipped_expired,
                rejected = report.rejected_total,
                ms = started.elapsed().as_millis() as u64,
                "decisions imported"
            );
            (StatusCode::OK, Json(report)).into_response()
        }
        Err(e) => api_error(e),
    }
}

#[cfg(test)]
mod tests;
