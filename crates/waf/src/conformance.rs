//! Replays the CRS regression suite (flattened to JSON lines) through the
//! engine and reports the pass rate.
//!
//! A case passes when every `expect_ids` rule matched and no
//! `no_expect_ids` rule matched, with the regression settings: detection
//! only, the paranoia level under test, and the CRS test `tx.` values.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::Waf;
use crate::transaction::HttpRequest;
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
    /// Cases judged only by status or log regex (not counted).
    pub not_judged: usize,
    pub failures: Vec<CaseResult>,
}

/// The settings CRS' regression suite runs with.
pub fn regression_config(rules: &Path, pl: u8) -> WafSettings {
    WafSettings {
        crs_dir: rules.display().to_string(),
        mode: WafMode::Detect,
        blocking_paranoia_level: pl,
        detection_paranoia_level: Some(pl),
        tx: [
            ("arg_length", "400"),
            ("total_arg_length", "6400"),
            ("max_file_size", "64100"),
            ("combined_file_sizes", "65535"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
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
        let verdict = waf.inspect(req);
        let ids: Vec<u32> = verdict.matched.iter().map(|m| m.id).collect();
        let log: String = verdict
            .matched
            .iter()
            .map(|m| {
                format!(
                    "[id \"{}\"] [msg \"{}\"] [data \"{}\"]\n",
                    m.id,
                    log_escape(&m.msg),
                    log_escape(&m.logdata)
                )
            })
            .collect();
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
        if label == "block" || label == "pass" {
            report.overall.total += 1;
            report.overall.passed += passed as usize;
        }
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
            "  not judged by rule ids (status or log regex only): {}",
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
