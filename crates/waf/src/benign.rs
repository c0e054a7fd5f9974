//! Replays a corpus of benign requests through the engine in block mode and
//! reports the false-positive rate: overall, per application, and the rules
//! behind the blocks.
//!
//! Owns: the corpus format (JSON lines, gzip-compressed or not; see
//! `testdata/benign/README.md`), the settings it is measured with
//! ([`measure_settings`]: block mode, paranoia level 1, inbound threshold 5,
//! everything else at its default) and the report.
//! Must not: change the rule set or its settings to suit the corpus.
//!
//! Each request goes through an [`Exchange`] as the edge drives it: headers
//! (phase 1), the body plan (a refused body counts as blocked), the body in
//! chunks, its end (phase 2). A request is blocked when a step says so.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::config::Waf;
use crate::decompress;
use crate::exchange::{BodyPush, RequestBodyPlan};
use crate::transaction::HttpRequest;
use crate::WafError;
use palisade_policy::waf::{WafMode, WafSettings};

/// A decompressed corpus larger than this is refused (the committed one is
/// about 10 MB).
pub const MAX_CORPUS_BYTES: usize = 256 << 20;

/// One request of the corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct BenignRequest {
    /// The application it was made for (`github`, `stripe`, ...).
    pub app: String,
    pub id: String,
    /// The operation (OpenAPI `operationId`, or `METHOD path`).
    #[serde(default)]
    pub op: String,
    pub method: String,
    pub uri: String,
    #[serde(default)]
    pub header_list: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_b64: Option<String>,
}

impl BenignRequest {
    /// The request's body bytes (`None` when `body_b64` is not base64).
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        match (&self.body, &self.body_b64) {
            (_, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).ok(),
            (Some(b), None) => Some(b.as_bytes().to_vec()),
            (None, None) => Some(Vec::new()),
        }
    }

    /// The request as the engine sees it.
    pub fn to_http(&self) -> Option<HttpRequest> {
        Some(HttpRequest {
            method: self.method.as_bytes().to_vec(),
            uri: self.uri.as_bytes().to_vec(),
            protocol: b"HTTP/1.1".to_vec(),
            headers: self
                .header_list
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: self.body_bytes()?,
            remote_addr: "192.0.2.10".into(),
            remote_port: 50000,
            unique_id: self.id.clone(),
        })
    }
}

/// Reads a corpus: JSON lines, gzip-compressed when the file starts with
/// gzip's magic bytes. Every bad line is reported with its number.
pub fn load_corpus(path: &Path) -> Result<Vec<BenignRequest>, WafError> {
    let io = |message: String| WafError::Io {
        path: path.display().to_string(),
        message,
    };
    let raw = std::fs::read(path).map_err(|e| io(e.to_string()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let codings = decompress::parse_codings(b"gzip").map_err(|e| io(e.to_string()))?;
        decompress::decompress(&raw, &codings, MAX_CORPUS_BYTES)
            .map_err(|e| io(format!("gzip: {e}")))?
    } else {
        raw
    };
    let text = String::from_utf8(text).map_err(|e| io(format!("not UTF-8: {e}")))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BenignRequest>(line) {
            Ok(r) => out.push(r),
            Err(e) => errors.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(WafError::Invalid(errors))
    }
}

/// The settings the corpus is measured with: block mode, paranoia level 1,
/// inbound threshold 5, every other setting at its default.
pub fn measure_settings(crs_dir: &Path) -> WafSettings {
    WafSettings {
        crs_dir: Some(crs_dir.display().to_string()),
        mode: WafMode::Block,
        blocking_paranoia_level: 1,
        detection_paranoia_level: None,
        inbound_threshold: 5,
        ..WafSettings::default()
    }
}

/// Blocked out of total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rate {
    pub blocked: usize,
    pub total: usize,
}

impl Rate {
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.blocked as f64 * 100.0 / self.total as f64
        }
    }
}

/// A rule that matched in blocked requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleCount {
    pub id: u32,
    pub msg: String,
    /// Blocked requests it matched in.
    pub requests: usize,
}

/// A blocked request.
#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    pub id: String,
    pub app: String,
    /// The rules that matched (the anomaly evaluation rules left out), or
    /// why the body was refused.
    pub rules: Vec<u32>,
    pub reason: Option<String>,
    /// What each of those rules matched: rule id, variable, log data (cut
    /// to 120 characters).
    pub hits: Vec<Hit>,
}

/// One rule's match in a blocked request.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: u32,
    pub var: String,
    pub data: String,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FpReport {
    pub overall: Rate,
    pub by_app: BTreeMap<String, Rate>,
    /// Most frequent first.
    pub rules: Vec<RuleCount>,
    pub blocked: Vec<Blocked>,
}

/// Rules that only evaluate the anomaly score (or report it): not a cause.
fn is_evaluation_rule(id: u32) -> bool {
    (949_000..950_000).contains(&id)
        || (959_000..960_000).contains(&id)
        || (980_000..981_000).contains(&id)
}

/// Chunk sizes a body is pushed in, in turn.
const CHUNKS: &[usize] = &[1000, 4093, 7];

/// Why a request was blocked: the rules that matched (id, message) and the
/// reason a step gave.
type Cause = (Vec<(u32, String, Hit)>, Option<String>);

/// At most this many characters of a match's log data in a report.
const HIT_DATA_CHARS: usize = 120;

/// Runs one request through an exchange in the order the edge does: `Some`
/// when it was blocked.
fn inspect(waf: &Waf, req: &BenignRequest) -> Option<Cause> {
    let Some(mut http) = req.to_http() else {
        return Some((Vec::new(), Some("body_b64 is not base64".into())));
    };
    let body = std::mem::take(&mut http.body);
    let mut ex = waf.begin(http);
    let causes = |ex: &crate::Exchange| {
        ex.matched()
            .filter(|m| !is_evaluation_rule(m.id))
            .map(|m| {
                let hit = Hit {
                    id: m.id,
                    var: m.matched_var_name.clone(),
                    data: m.logdata.chars().take(HIT_DATA_CHARS).collect(),
                };
                (m.id, m.msg.clone(), hit)
            })
            .collect::<Vec<_>>()
    };
    let v = ex.request_headers();
    if v.blocked {
        return Some((causes(&ex), v.reason.map(String::from)));
    }
    match ex.request_body_plan(!body.is_empty()) {
        RequestBodyPlan::Refuse { status, reason } => {
            return Some((causes(&ex), Some(format!("{status} {reason}"))));
        }
        RequestBodyPlan::Inspect { .. } => {
            let mut rest = &body[..];
            for &n in CHUNKS.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(n.min(rest.len()));
                rest = tail;
                if ex.push_request_body(chunk) != BodyPush::Continue {
                    break;
                }
            }
        }
        RequestBodyPlan::None | RequestBodyPlan::Uninspected { .. } => {}
    }
    let v = ex.finish_request_body();
    if v.blocked {
        return Some((causes(&ex), v.reason.map(String::from)));
    }
    None
}

/// Runs every request of the corpus.
pub fn run(waf: &Waf, corpus: &[BenignRequest]) -> FpReport {
    let mut report = FpReport::default();
    let mut rules: BTreeMap<u32, RuleCount> = BTreeMap::new();
    for req in corpus {
        let blocked = inspect(waf, req);
        for rate in [
            &mut report.overall,
            report.by_app.entry(req.app.clone()).or_default(),
        ] {
            rate.total += 1;
            rate.blocked += blocked.is_some() as usize;
        }
        let Some((matched, reason)) = blocked else {
            continue;
        };
        let mut ids: Vec<u32> = matched.iter().map(|(id, _, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        for (id, msg, _) in &matched {
            let r = rules.entry(*id).or_insert_with(|| RuleCount {
                id: *id,
                msg: msg.clone(),
                requests: 0,
            });
            if r.msg.is_empty() {
                r.msg = msg.clone();
            }
        }
        for id in &ids {
            if let Some(r) = rules.get_mut(id) {
                r.requests += 1;
            }
        }
        report.blocked.push(Blocked {
            id: req.id.clone(),
            app: req.app.clone(),
            rules: ids,
            reason,
            hits: matched.into_iter().map(|(_, _, hit)| hit).collect(),
        });
    }
    report.rules = rules.into_values().collect();
    report
        .rules
        .sort_by(|a, b| b.requests.cmp(&a.requests).then(a.id.cmp(&b.id)));
    report
}

impl FpReport {
    /// Human-readable report ending with the `benign blocked:` line;
    /// `top` rules, and every blocked request when `list_blocked`.
    pub fn render(&self, top: usize, list_blocked: bool) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "by application:");
        for (app, r) in &self.by_app {
            let _ = writeln!(
                s,
                "  {app:<14} {:6.2}% ({}/{})",
                r.percent(),
                r.blocked,
                r.total
            );
        }
        let _ = writeln!(
            s,
            "rules behind the blocks (blocked requests they matched in):"
        );
        for r in self.rules.iter().take(top) {
            let _ = writeln!(s, "  {:<7} {:>5}  {}", r.id, r.requests, r.msg);
        }
        if list_blocked {
            let _ = writeln!(s, "blocked requests:");
            for b in &self.blocked {
                let _ = writeln!(
                    s,
                    "  {:<20} {:?}{}",
                    b.id,
                    b.rules,
                    b.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
                for h in &b.hits {
                    let _ = writeln!(s, "      {} {}: {}", h.id, h.var, h.data);
                }
            }
        }
        let _ = writeln!(
            s,
            "benign blocked: {:.2}% ({}/{})",
            self.overall.percent(),
            self.overall.blocked,
            self.overall.total
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(app: &str, id: &str, uri: &str, body: Option<&str>) -> BenignRequest {
        BenignRequest {
            app: app.into(),
            id: id.into(),
            op: String::new(),
            method: if body.is_some() { "POST" } else { "GET" }.into(),
            uri: uri.into(),
            header_list: vec![
                ("Host".into(), "example.com".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: body.map(String::from),
            body_b64: None,
        }
    }

    /// A rule set of one scoring rule and CRS' blocking evaluation, in a
    /// directory of its own.
    fn waf() -> (Waf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("palisade-benign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("REQUEST-900-TEST.conf"),
            r#"SecRule ARGS "@contains forbidden" "id:1001,phase:2,pass,log,msg:'forbidden word',setvar:tx.score=+5"
SecRule REQUEST_HEADERS:X-Bad "@streq 1" "id:1002,phase:1,pass,log,msg:'bad header',setvar:tx.score=+5"
SecRule TX:SCORE "@ge 5" "id:949110,phase:2,deny,status:403,log,msg:'score'"
SecRule TX:SCORE "@ge 5" "id:949111,phase:1,deny,status:403,log,msg:'score'"
"#,
        )
        .unwrap();
        let waf = Waf::build(&measure_settings(&dir)).unwrap();
        (waf, dir)
    }

    #[test]
    fn blocked_requests_are_counted_per_app_with_their_rules() {
        let (waf, dir) = waf();
        let mut bad_header = request("b", "b-1", "/x", None);
        bad_header.header_list.push(("X-Bad".into(), "1".into()));
        let corpus = vec![
            request("a", "a-1", "/search?q=hello", None),
            request("a", "a-2", "/post", Some("text=forbidden+fruit")),
            request("a", "a-3", "/post", Some("text=allowed")),
            bad_header,
        ];
        let report = run(&waf, &corpus);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!((report.overall.blocked, report.overall.total), (2, 4));
        assert_eq!(
            (report.by_app["a"].blocked, report.by_app["a"].total),
            (1, 3)
        );
        assert_eq!(
            (report.by_app["b"].blocked, report.by_app["b"].total),
            (1, 1)
        );
        let ids: Vec<(u32, usize)> = report.rules.iter().map(|r| (r.id, r.requests)).collect();
        assert_eq!(ids, vec![(1001, 1), (1002, 1)]);
        assert_eq!(report.blocked[0].id, "a-2");
        assert!(report
            .render(10, true)
            .ends_with("benign blocked: 50.00% (2/4)\n"));
    }

    #[test]
    fn corpora_load_gzipped_or_plain_and_bad_lines_are_all_reported() {
        let dir = std::env::temp_dir().join(format!("palisade-benign-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = r#"{"app":"a","id":"a-1","method":"GET","uri":"/","body_b64":"aGk="}"#;
        let plain = dir.join("c.jsonl");
        std::fs::write(&plain, format!("{line}\n\n{line}\n")).unwrap();
        let loaded = load_corpus(&plain).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].body_bytes().unwrap(), b"hi");
        // A gzip member with a stored (uncompressed) deflate block.
        let data = format!("{line}\n");
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
        let len = data.len() as u16;
        gz.extend_from_slice(&len.to_le_bytes());
        gz.extend_from_slice(&(!len).to_le_bytes());
        gz.extend_from_slice(data.as_bytes());
        gz.extend_from_slice(&crc32fast::hash(data.as_bytes()).to_le_bytes());
        gz.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let zipped = dir.join("c.jsonl.gz");
        std::fs::write(&zipped, gz).unwrap();
        assert_eq!(load_corpus(&zipped).unwrap().len(), 1);
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, format!("{line}\nnot json\n{{\"app\":1}}\n")).unwrap();
        let err = load_corpus(&bad).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            err.contains("bad.jsonl:2:") && err.contains("bad.jsonl:3:"),
            "{err}"
        );
    }
}
