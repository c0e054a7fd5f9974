//! Fuzzes a whole HTTP exchange through the WAF with OWASP CRS loaded
//! (once, from `PALISADE_CRS_DIR` or `../shared/crs/rules`): an arbitrary
//! request (method, target, headers, a body in arbitrary chunks) and an
//! arbitrary response, driven like the edge drives them, in block and
//! detection mode with small limits. Never panics, and the exchange keeps
//! its contract: the body it gives back is exactly what it held, detection
//! mode never blocks, a block has a status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_policy::waf::{BodyLimitAction, ContentEncodingAction, WafMode};
use palisade_waf::{
    BodyPush, HttpRequest, RequestBodyPlan, ResponseBodyPlan, Waf, WafSettings,
};
use std::path::PathBuf;
use std::sync::OnceLock;

fn crs_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        std::env::var_os("PALISADE_CRS_DIR").map(PathBuf::from),
        Some(root.join("../shared/crs/rules")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_dir())
}

/// Block and detection mode, each with `reject` and `inspect_prefix`.
fn wafs() -> &'static [Waf] {
    static WAFS: OnceLock<Vec<Waf>> = OnceLock::new();
    WAFS.get_or_init(|| {
        let Some(dir) = crs_dir() else {
            eprintln!("engine_request: no CRS found (set PALISADE_CRS_DIR); nothing is fuzzed");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, mode) in [WafMode::Block, WafMode::Detect].into_iter().enumerate() {
            for action in [BodyLimitAction::Reject, BodyLimitAction::InspectPrefix] {
                let mut s = WafSettings {
                    crs_dir: Some(dir.display().to_string()),
                    mode,
                    blocking_paranoia_level: 1 + 3 * i as u8,
                    ..WafSettings::default()
                };
                s.body.limit = 4096;
                s.body.limit_no_files = 1024;
                s.body.limit_action = action;
                if i == 1 {
                    s.body.content_encoding = ContentEncodingAction::Refuse;
                }
                s.response.body_limit = 1024;
                s.response.limit_action = action;
                out.push(Waf::build(&s).expect("CRS loads"));
            }
        }
        out
    })
}

/// Reads the fuzzer's bytes as a sequence of small fields.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A field of up to 255 bytes.
    fn field(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    /// A known word or arbitrary bytes.
    fn pick(&mut self, words: &[&'static str]) -> Vec<u8> {
        let b = self.byte() as usize;
        match words.get(b % (words.len() + 1)) {
            Some(w) => w.as_bytes().to_vec(),
            None => self.field().to_vec(),
        }
    }

    fn headers(&mut self, names: &[&'static str], values: &[&'static str]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n = self.byte() % 10;
        (0..n).map(|_| (self.pick(names), self.pick(values))).collect()
    }

    /// Splits `body` into chunks of sizes read from the input.
    fn chunks(&mut self, body: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = usize::from(self.byte()).max(1) * 16;
            let (a, b) = rest.split_at(n.min(rest.len()));
            out.push(a);
            rest = b;
        }
        out
    }
}

const REQUEST_HEADERS: &[&str] = &[
    "Host",
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "Transfer-Encoding",
    "Cookie",
    "User-Agent",
    "Accept",
];
const RESPONSE_HEADERS: &[&str] = &["Content-Type", "Content-Encoding", "Content-Length", "Set-Cookie", "Server"];
const VALUES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json",
    "text/xml",
    "text/html; charset=utf-8",
    "gzip",
    "br",
    "deflate, gzip",
    "chunked",
    "0",
    "100",
    "localhost",
];

fuzz_target!(|data: &[u8]| {
    let wafs = wafs();
    if wafs.is_empty() {
        return;
    }
    let mut inp = Input(data);
    let waf = &wafs[usize::from(inp.byte()) % wafs.len()];
    let detect = waf.mode() == WafMode::Detect;
    let req = HttpRequest {
        method: inp.pick(&["GET", "POST", "HEAD", "PUT", "OPTIONS"]),
        uri: inp.field().to_vec(),
        protocol: inp.pick(&["HTTP/1.1", "HTTP/2.0", "HTTP/1.0"]),
        headers: inp.headers(REQUEST_HEADERS, VALUES),
        body: Vec::new(),
        remote_addr: "192.0.2.1".into(),
        remote_port: 1234,
        unique_id: "fuzz".into(),
    };
    let n = usize::from(inp.byte()) * 64 + usize::from(inp.byte());
    let body = inp.take(n);
    let body_chunks = inp.chunks(body);
    let expected = inp.byte() & 1 == 1 || !body.is_empty();
    let status = u16::from_be_bytes([inp.byte(), inp.byte()]) % 600;
    let resp_protocol = inp.pick(&["HTTP/1.1", "HTTP/2.0"]);
    let resp_headers = inp.headers(RESPONSE_HEADERS, VALUES);
    let resp_body = inp.0;
    let resp_chunks = inp.chunks(resp_body);

    let mut ex = waf.begin(req);
    let check = |v: &palisade_waf::ExchangeVerdict| {
        assert!(!(detect && v.blocked), "detection mode blocked: {v:?}");
        assert!(!v.blocked || v.would_block);
        assert!(!v.blocked || v.status > 0, "a block without status: {v:?}");
        assert!((1..=5).contains(&v.phase));
    };
    let v = ex.request_headers();
    check(&v);
    if !v.blocked {
        let mut held = Vec::new();
        let plan = ex.request_body_plan(expected);
        if let RequestBodyPlan::Refuse { status, .. } = plan {
            assert!(!detect && (status == 413 || status == 415));
        } else {
            if !matches!(plan, RequestBodyPlan::None) {
                for c in &body_chunks {
                    match ex.push_request_body(c) {
                        BodyPush::Continue => held.extend_from_slice(c),
                        BodyPush::Full => {
                            held.extend_from_slice(c);
                            break;
                        }
                        BodyPush::TooLarge => {
                            assert!(!detect);
                            held.clear();
                            break;
                        }
                    }
                }
            }
            let v = ex.finish_request_body();
            check(&v);
            assert_eq!(ex.take_request_body(), held, "the body given back is the one held");
            if !v.blocked {
                let (v, plan) = ex.response_headers(status, &resp_protocol, resp_headers);
                check(&v);
                if let ResponseBodyPlan::Inspect { .. } = plan {
                    for c in &resp_chunks {
                        match ex.push_response_body(c) {
                            BodyPush::Continue => {}
                            BodyPush::Full => break,
                            BodyPush::TooLarge => {
                                assert!(!detect);
                                break;
                            }
                        }
                    }
                }
                check(&ex.finish_response_body());
            }
        }
    }
    ex.logging();
});
