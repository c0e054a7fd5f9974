//! The bypass suite: every way around the checks that we know of, one line
//! each in `tests/bypass/vectors.txt` (its header says what each kind of
//! line proves), run against the real binary.
//!
//! Two `palisade up` run side by side, each in front of its own echo origin
//! (`tests/bypass/echo.rs`): "on" with the example policy's rules, a few
//! rules on hosts, arguments and cookies, and OWASP CRS at PL1 blocking;
//! "off" with no policy at all. Every vector is sent to both, over HTTP/1.1
//! and, where the vector exists there, HTTP/2 (h2c). A row passes only when
//! "off" shows the attack reaching the origin (so the bytes are an attack
//! that Palisade, not the harness, stopped) and "on" stops it.
//!
//! CRS is read from `PALISADE_CRS_DIR`, `../shared/crs/rules` or Debian's
//! `modsecurity-crs`; without any the test fails (the test command installs
//! Debian's).

mod common;
#[path = "bypass/echo.rs"]
mod echo;

use common::*;
use echo::Echo;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const VECTORS: &str = include_str!("bypass/vectors.txt");

/// Rules beyond the example policy's, for the vectors on hosts, arguments and cookies.
const EXTRA_RULES: &str = r#"
[[rules]]
id = "admin-host"
expression = 'http.host eq "admin.example.com"'
action = "block"

[[rules]]
id = "debug-argument"
expression = 'http.request.uri.args["debug"] eq "1"'
action = "block"

[[rules]]
id = "debug-cookie"
expression = 'http.request.cookies["debug"] eq "1"'
action = "block"
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attack,
    /// An attack refused with this status instead of 403.
    Refuse(u16),
    Path,
    Framing,
    Addr,
    Leak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
}

#[derive(Debug, Clone)]
struct Vector {
    line: usize,
    kind: Kind,
    protos: Vec<Proto>,
    name: String,
    marker: String,
    request: String,
    /// Only CRS v4 catches it.
    crs4: bool,
}

fn parse_vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for (i, line) in VECTORS.lines().enumerate() {
        let line_no = i + 1;
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut it = l.splitn(4, ' ');
        let kind = match it.next() {
            Some("attack") => Kind::Attack,
            Some("path") => Kind::Path,
            Some("framing") => Kind::Framing,
            Some("addr") => Kind::Addr,
            Some("leak") => Kind::Leak,
            Some(k) if k.starts_with("refuse") && k[6..].parse::<u16>().is_ok() => {
                Kind::Refuse(k[6..].parse().unwrap_or(0))
            }
            k => panic!("vectors.txt:{line_no}: unknown kind {k:?}"),
        };
        let mut crs4 = false;
        let protos = it
            .next()
            .unwrap_or_else(|| panic!("vectors.txt:{line_no}: no protocols"))
            .split(',')
            .filter_map(|p| match p {
                "h1" => Some(Proto::H1),
                "h2" => Some(Proto::H2),
                "crs4" => {
                    crs4 = true;
                    None
                }
                p => panic!("vectors.txt:{line_no}: unknown protocol {p:?}"),
            })
            .collect();
        let name = it.next().unwrap_or_default().to_string();
        let rest = it
            .next()
            .unwrap_or_else(|| panic!("vectors.txt:{line_no}: no request"));
        let (marker, request) = if kind == Kind::Path {
            (String::new(), rest.to_string())
        } else {
            let (m, r) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("vectors.txt:{line_no}: no marker or request"));
            (m.replace("%20", " ").replace("%25", "%"), r.to_string())
        };
        out.push(Vector {
            line: line_no,
            kind,
            protos,
            name,
            marker,
            request,
            crs4,
        });
    }
    out
}

/// `\r \n \t \\ \xHH` escapes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let v = u8::from_str_radix(&s[i + 2..i + 4], 16).expect("\\xHH escape");
                    out.push(v);
                    i += 4;
                    continue;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A piece of a request body after the macros.
#[derive(Debug, Clone)]
enum Piece {
    Raw(Vec<u8>),
    /// A chunk of a chunked body; `flush`: written on its own.
    Chunk(Vec<u8>, bool),
    LastChunk,
}

const MACROS: [&str; 6] = [
    "chunked:",
    "chunked1:",
    "gzip:",
    "deflate:",
    "pad:",
    "json:",
];

/// The body macros of the vector format, expanded (innermost first).
fn expand(body: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut raw = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let m = (body[i] == b'{')
            .then(|| {
                MACROS
                    .iter()
                    .find(|m| body[i + 1..].starts_with(m.as_bytes()))
            })
            .flatten();
        let Some(m) = m else {
            raw.push(body[i]);
            i += 1;
            continue;
        };
        // The macro's argument runs to its matching brace.
        let start = i + 1 + m.len();
        let mut depth = 1;
        let mut end = start;
        while end < body.len() {
            match body[end] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            end += 1;
        }
        let arg = flatten(&expand(&body[start..end]));
        match *m {
            "chunked:" => {
                out.push(Piece::Raw(std::mem::take(&mut raw)));
                out.push(Piece::Chunk(arg, false));
                out.push(Piece::LastChunk);
            }
            "chunked1:" => {
                out.push(Piece::Raw(std::mem::take(&mut raw)));
                for b in arg {
                    out.push(Piece::Chunk(vec![b], true));
                }
                out.push(Piece::LastChunk);
            }
            "gzip:" => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&arg).unwrap();
                raw.extend(e.finish().unwrap());
            }
            "deflate:" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&arg).unwrap();
                raw.extend(e.finish().unwrap());
            }
            "pad:" => {
                let n: usize = String::from_utf8_lossy(&arg).parse().expect("{pad:N}");
                let mut p = b"p=".to_vec();
                p.resize(n.saturating_sub(1), b'a');
                p.push(b'&');
                raw.extend(p);
            }
            "json:" => {
                let text = String::from_utf8_lossy(&arg).into_owned();
                let (n, value) = text.split_once(':').expect("{json:N:TEXT}");
                let n: usize = n.parse().expect("{json:N:TEXT}");
                let mut j = serde_json::Value::String(value.to_string());
                for d in 0..n {
                    let mut o = serde_json::Map::new();
                    o.insert(format!("k{d}"), j);
                    j = serde_json::Value::Object(o);
                }
                raw.extend(serde_json::to_vec(&j).unwrap());
            }
            _ => unreachable!(),
        }
        i = end + 1;
    }
    out.push(Piece::Raw(raw));
    out
}

/// The decoded body bytes of pieces (chunk payloads without framing).
fn flatten(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Raw(b) | Piece::Chunk(b, _) => out.extend_from_slice(b),
            Piece::LastChunk => {}
        }
    }
    out
}

/// What goes on the wire for HTTP/1.1, as separate writes.
fn wire_writes(head: &[u8], pieces: &[Piece]) -> Vec<Vec<u8>> {
    let mut writes = vec![head.to_vec()];
    for p in pieces {
        let last = writes.last_mut().unwrap();
        match p {
            Piece::Raw(b) => last.extend_from_slice(b),
            Piece::Chunk(b, flush) => {
                let framed = [
                    format!("{:x}\r\n", b.len()).into_bytes(),
                    b.clone(),
                    b"\r\n".to_vec(),
                ]
                .concat();
                if *flush {
                    writes.push(framed);
                } else {
                    last.extend(framed);
                }
            }
            Piece::LastChunk => {
                if matches!(writes.last(), Some(w) if !w.is_empty())
                    && pieces.iter().any(|p| matches!(p, Piece::Chunk(_, true)))
                {
                    writes.push(b"0\r\n\r\n".to_vec());
                } else {
                    writes.last_mut().unwrap().extend_from_slice(b"0\r\n\r\n");
                }
            }
        }
    }
    writes
}

/// A request of the vector file, ready to send.
struct Built {
    /// HTTP/1.1 writes.
    writes: Vec<Vec<u8>>,
    /// The first request's method, target and headers, and its body as DATA frames (HTTP/2).
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    frames: Vec<Vec<u8>>,
}

fn build(v: &Vector) -> Built {
    if v.kind == Kind::Path {
        let raw = format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", v.request);
        return Built {
            writes: vec![raw.into_bytes()],
            method: "GET".into(),
            target: v.request.clone(),
            headers: vec![("host".into(), b"t".to_vec())],
            frames: Vec::new(),
        };
    }
    let bytes = unescape(&v.request);
    let split = memchr_find(&bytes, b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(bytes.len());
    let (head, body) = bytes.split_at(split);
    let pieces = expand(body);
    let body_len: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Raw(b) => b.len(),
            Piece::Chunk(b, _) => b.len() + format!("{:x}\r\n\r\n", b.len()).len(),
            Piece::LastChunk => 5,
        })
        .sum();
    let head = String::from_utf8_lossy(head).replace("{len}", &body_len.to_string());
    let head_bytes = replace_len(&bytes[..split], body_len);
    let writes = wire_writes(&head_bytes, &pieces);

    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    // Header values from the raw bytes (they may hold non-UTF-8 bytes).
    for raw_line in head_bytes.split(|&b| b == b'\n').skip(1) {
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if raw_line.is_empty() {
            break;
        }
        if let Some(c) = raw_line.iter().position(|&b| b == b':') {
            let k = String::from_utf8_lossy(&raw_line[..c])
                .trim()
                .to_ascii_lowercase();
            headers.push((k, raw_line[c + 1..].trim_ascii().to_vec()));
        }
    }
    let chunked = pieces.iter().any(|p| matches!(p, Piece::Chunk(..)));
    let frames = if chunked {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Chunk(b, _) => Some(b.clone()),
                _ => None,
            })
            .collect()
    } else {
        let b = flatten(&pieces);
        if b.is_empty() {
            Vec::new()
        } else {
            vec![b]
        }
    };
    Built {
        writes,
        method,
        target,
        headers,
        frames,
    }
}

fn memchr_find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn replace_len(head: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    let mut i = 0;
    while i < head.len() {
        if head[i..].starts_with(b"{len}") {
            out.extend_from_slice(len.to_string().as_bytes());
            i += 5;
        } else {
            out.push(head[i]);
            i += 1;
        }
    }
    out
}

/// One response, or what happened instead.
#[derive(Debug, Clone, Default)]
struct Answer {
    status: u16,
    request_id: String,
    body: Vec<u8>,
    /// The connection was closed or the stream reset before the response was complete.
    cut: bool,
    /// HTTP/2: the stream was reset (or the request refused) without a response.
    reset: bool,
    /// The response's Content-Encoding.
    encoding: String,
}

impl Answer {
    /// The body as the client's application reads it (content codings undone).
    fn decoded(&self) -> Vec<u8> {
        let enc = (!self.encoding.is_empty()).then_some(self.encoding.as_str());
        echo::decode(enc, self.body.clone())
    }
}

/// Sends raw HTTP/1.1 writes and reads the responses (at most `expect`).
fn send_h1(addr: &str, writes: &[Vec<u8>], expect: usize) -> Vec<Answer> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for w in writes {
        if s.write_all(w).is_err() {
            break;
        }
        let _ = s.flush();
        if writes.len() > 2 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut chunk = [0u8; 65536];
    loop {
        // Parse what we have.
        while let Some((a, used)) = parse_response(&buf) {
            buf.drain(..used);
            if a.status >= 200 {
                answers.push(a);
            }
            if answers.len() >= expect {
                return answers;
            }
        }
        if Instant::now() > deadline {
            break;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    // A response started but cut off.
    if let Some(status) = status_of(&buf) {
        answers.push(Answer {
            status,
            request_id: header_of(&buf, "x-request-id"),
            body: buf.clone(),
            cut: true,
            reset: false,
            encoding: String::new(),
        });
    }
    answers
}

fn status_of(buf: &[u8]) -> Option<u16> {
    let line_end = memchr_find(buf, b"\r\n")?;
    let line = std::str::from_utf8(&buf[..line_end]).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

fn header_of(buf: &[u8], name: &str) -> String {
    let end = memchr_find(buf, b"\r\n\r\n").unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end])
        .split("\r\n")
        .skip(1)
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// One complete response at the start of `buf` and the bytes it took.
fn parse_response(buf: &[u8]) -> Option<(Answer, usize)> {
    let head_end = memchr_find(buf, b"\r\n\r\n")? + 4;
    let status = status_of(buf)?;
    if (100..200).contains(&status) {
        return Some((
            Answer {
                status,
                ..Answer::default()
            },
            head_end,
        ));
    }
    let rid = header_of(buf, "x-request-id");
    let (body, used) = if header_of(buf, "transfer-encoding").eq_ignore_ascii_case("chunked") {
        let mut i = head_end;
        let mut body = Vec::new();
        loop {
            let le = memchr_find(&buf[i..], b"\r\n")?;
            let n = usize::from_str_radix(std::str::from_utf8(&buf[i..i + le]).ok()?.trim(), 16)
                .ok()?;
            i += le + 2;
            if n == 0 {
                let end = memchr_find(&buf[i..], b"\r\n")?;
                break (body, i + end + 2);
            }
            if buf.len() < i + n + 2 {
                return None;
            }
            body.extend_from_slice(&buf[i..i + n]);
            i += n + 2;
        }
    } else {
        let n: usize = header_of(buf, "content-length").parse().ok()?;
        if buf.len() < head_end + n {
            return None;
        }
        (buf[head_end..head_end + n].to_vec(), head_end + n)
    };
    Some((
        Answer {
            status,
            request_id: rid,
            body,
            cut: false,
            reset: false,
            encoding: header_of(buf, "content-encoding"),
        },
        used,
    ))
}

/// Sends one request over prior-knowledge HTTP/2 (h2c).
fn send_h2(rt: &tokio::runtime::Runtime, addr: &str, b: &Built) -> Answer {
    rt.block_on(async {
        let fut = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let (mut client, conn) = h2::client::handshake(tcp)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut req = http::Request::builder()
                .method(b.method.as_str())
                .uri(format!("http://t{}", b.target));
            for (k, v) in &b.headers {
                // Connection-specific fields do not exist in HTTP/2.
                if matches!(
                    k.as_str(),
                    "host" | "transfer-encoding" | "connection" | "keep-alive" | "expect"
                ) {
                    continue;
                }
                req = req.header(
                    k.as_str(),
                    http::HeaderValue::from_bytes(v).map_err(|e| e.to_string())?,
                );
            }
            if let Some((_, host)) = b.headers.iter().find(|(k, _)| k == "host") {
                let host = String::from_utf8_lossy(host).into_owned();
                req = req.uri(format!("http://{host}{}", b.target));
            }
            let req = req.body(()).map_err(|e| e.to_string())?;
            let end = b.frames.is_empty();
            let (resp, mut stream) = client.send_request(req, end).map_err(|e| e.to_string())?;
            let n = b.frames.len();
            for (i, f) in b.frames.iter().enumerate() {
                stream
                    .send_data(bytes::Bytes::from(f.clone()), i + 1 == n)
                    .map_err(|e| e.to_string())?;
                tokio::task::yield_now().await;
            }
            let resp = match resp.await {
                Ok(r) => r,
                Err(e) => {
                    return Ok::<Answer, String>(Answer {
                        reset: true,
                        cut: true,
                        body: e.to_string().into_bytes(),
                        ..Answer::default()
                    })
                }
            };
            let status = resp.status().as_u16();
            let encoding = resp
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let rid = resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut body = resp.into_body();
            let mut data = Vec::new();
            let mut cut = false;
            while let Some(chunk) = body.data().await {
                match chunk {
                    Ok(c) => {
                        let _ = body.flow_control().release_capacity(c.len());
                        data.extend_from_slice(&c);
                    }
                    Err(_) => {
                        cut = true;
                        break;
                    }
                }
            }
            Ok(Answer {
                status,
                request_id: rid,
                body: data,
                cut,
                reset: false,
                encoding,
            })
        };
        match tokio::time::timeout(Duration::from_secs(15), fut).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => Answer {
                reset: true,
                cut: true,
                body: e.into_bytes(),
                ..Answer::default()
            },
            Err(_) => Answer {
                cut: true,
                body: b"timed out".to_vec(),
                ..Answer::default()
            },
        }
    })
}

/// The example policy's lists and rules (its rate limits would answer 429
/// to the repeated POSTs), the rules above, and CRS at PL1 blocking.
fn on_policy(crs: &Path) -> String {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.toml"),
    )
    .unwrap();
    let rules = example.split("[[rate_limits]]").next().unwrap().to_string();
    let v4 = crs_is_v4(crs);
    format!(
        "{rules}\n{EXTRA_RULES}\n[waf]\ncrs_dir = {:?}\nmode = \"block\"\nblocking_paranoia_level = 1\nskip_unsupported_rules = {}\n",
        crs.display().to_string(),
        !v4
    )
}

struct Side {
    echo: Echo,
    up: Up,
    addr: String,
}

fn side(policy: Option<&str>) -> Side {
    let echo = Echo::start();
    let up = Up::start(
        std::slice::from_ref(&echo.url),
        policy,
        &["--max-body-bytes", "0"],
    );
    let addr = up.proxy.trim_start_matches("http://").to_string();
    Side { echo, up, addr }
}

impl Side {
    fn send(
        &self,
        rt: &tokio::runtime::Runtime,
        proto: Proto,
        b: &Built,
        expect: usize,
    ) -> Vec<Answer> {
        match proto {
            Proto::H1 => send_h1(&self.addr, &b.writes, expect),
            Proto::H2 => vec![send_h2(rt, &self.addr, b)],
        }
    }

    /// The rule ids of the events about a request.
    fn rules_of(&self, request_id: &str) -> Vec<String> {
        let mut ids = Vec::new();
        eventually(Duration::from_secs(3), || {
            ids = self
                .up
                .events()
                .iter()
                .filter(|e| e["request_id"] == request_id)
                .map(|e| e["rule_id"].as_str().unwrap_or("").to_string())
                .collect();
            !ids.is_empty()
        });
        ids
    }

    /// The WAF phases of the events about a request.
    fn waf_phases(&self, request_id: &str) -> Vec<u64> {
        let mut phases = Vec::new();
        eventually(Duration::from_secs(3), || {
            phases = self
                .up
                .events()
                .iter()
                .filter(|e| e["request_id"] == request_id)
                .filter_map(|e| e["waf"]["phase"].as_u64())
                .collect();
            !phases.is_empty()
        });
        phases
    }

    fn seen_since(&self, before: usize) -> Vec<echo::Seen> {
        self.echo
            .seen()
            .split_off(before.min(self.echo.seen().len()))
    }
}

/// How many requests a raw HTTP/1.1 vector holds (pipelining).
fn requests_in(v: &Vector, b: &Built) -> usize {
    if v.kind == Kind::Path {
        return 1;
    }
    let all: Vec<u8> = b.writes.concat();
    let text = String::from_utf8_lossy(&all);
    text.matches(" HTTP/1.").count().max(1)
}

#[test]
fn no_vector_gets_past_the_checks() {
    let crs = crs_dir();
    let v4 = crs_is_v4(&crs);
    let on = side(Some(&on_policy(&crs)));
    let off = side(None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vectors = parse_vectors();
    assert!(vectors.len() >= 40, "only {} vectors", vectors.len());
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut not_run = Vec::new();
    for v in &vectors {
        if v.crs4 && !v4 {
            not_run.push(format!("vectors.txt:{} {}", v.line, v.name));
            continue;
        }
        let b = build(v);
        for &proto in &v.protos {
            ran += 1;
            let what = format!("vectors.txt:{} {:?} {:?} {}", v.line, v.kind, proto, v.name);
            let expect = if proto == Proto::H1 {
                requests_in(v, &b)
            } else {
                1
            };
            let (on_before, off_before) = (on.echo.seen().len(), off.echo.seen().len());
            let got_on = on.send(&rt, proto, &b, expect);
            let got_off = off.send(&rt, proto, &b, expect);
            // Give the origins a moment to record what reached them.
            std::thread::sleep(Duration::from_millis(30));
            let seen_on = on.seen_since(on_before);
            let seen_off = off.seen_since(off_before);
            if let Err(why) = judge(v, proto, &on, &got_on, &got_off, &seen_on, &seen_off) {
                failures.push(format!(
                    "{what}: {why}\n    on:  {}\n    off: {}",
                    summary(&got_on),
                    summary(&got_off)
                ));
            }
        }
    }
    eprintln!(
        "bypass suite: {ran} runs of {} vectors, {} failed; the protected origin saw {} request headers whose body never came (aborted by the edge)",
        vectors.len(),
        failures.len(),
        on.echo.partial()
    );
    if !not_run.is_empty() {
        eprintln!(
            "bypass suite: {} vectors need CRS v4 and were NOT run with {} (put CRS v4 in ../shared/crs or PALISADE_CRS_DIR): {}",
            not_run.len(),
            crs.display(),
            not_run.join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} bypass runs failed:\n{}\n--- on log ---\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&on.up.log(), 40)
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn summary(a: &[Answer]) -> String {
    a.iter()
        .map(|a| {
            format!(
                "{}{}{} {:?}",
                a.status,
                if a.cut { " cut" } else { "" },
                if a.reset { " reset" } else { "" },
                String::from_utf8_lossy(&a.body[..a.body.len().min(120)])
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr_find(hay, needle.as_bytes()).is_some()
}

fn judge(
    v: &Vector,
    proto: Proto,
    on: &Side,
    got_on: &[Answer],
    got_off: &[Answer],
    seen_on: &[echo::Seen],
    seen_off: &[echo::Seen],
) -> Result<(), String> {
    let marker = v.marker.as_str();
    let origin_saw = |seen: &[echo::Seen]| {
        seen.iter()
            .any(|s| s.text().contains(marker) || s.body.contains(marker))
    };
    match v.kind {
        Kind::Attack | Kind::Refuse(_) => {
            let want = match v.kind {
                Kind::Refuse(s) => s,
                _ => 403,
            };
            if !origin_saw(seen_off) {
                return Err(format!("with the checks off the origin never saw {marker:?}: the vector proves nothing"));
            }
            if origin_saw(seen_on) {
                return Err(format!(
                    "the origin's handler saw {marker:?} with the checks on"
                ));
            }
            if !got_on.iter().any(|a| a.status == want) {
                return Err(format!("no {want} with the checks on"));
            }
            Ok(())
        }
        Kind::Path => {
            let resolved = seen_off
                .first()
                .map(|s| s.resolved.clone())
                .ok_or("the origin saw nothing with the checks off")?;
            // The rule's own test, on the path the origin serves.
            let admin = resolved.starts_with("/admin");
            let a = got_on.first().ok_or("no answer with the checks on")?;
            let by_rule = a.status == 403
                && on
                    .rules_of(&a.request_id)
                    .iter()
                    .any(|r| r == "block-admin");
            match (admin, by_rule) {
                (true, false) => Err(format!(
                    "the origin serves {resolved} but block-admin did not block"
                )),
                (false, true) => Err(format!(
                    "block-admin blocked, yet the origin serves {resolved}"
                )),
                _ => Ok(()),
            }
        }
        Kind::Framing => {
            for (side, got, seen) in [("on", got_on, seen_on), ("off", got_off, seen_off)] {
                let refused = match proto {
                    Proto::H1 => got.first().is_some_and(|a| a.status == 400),
                    Proto::H2 => got.first().is_some_and(|a| a.reset || a.status == 400),
                };
                if !refused {
                    return Err(format!("not refused ({side})"));
                }
                if !seen.is_empty() {
                    return Err(format!(
                        "the origin's handler ran ({side}): {:?}",
                        seen[0].target
                    ));
                }
            }
            Ok(())
        }
        Kind::Addr => {
            for (side, seen) in [("on", seen_on), ("off", seen_off)] {
                let s = seen
                    .first()
                    .ok_or(format!("the origin saw nothing ({side})"))?;
                let h = |n: &str| -> Vec<&str> {
                    s.headers
                        .iter()
                        .filter(|(k, _)| k == n)
                        .map(|(_, v)| v.as_str())
                        .collect()
                };
                let want: [(&str, &[&str]); 4] = [
                    ("x-forwarded-for", &["127.0.0.1"]),
                    ("x-real-ip", &["127.0.0.1"]),
                    ("forwarded", &["for=127.0.0.1;proto=http"]),
                    ("true-client-ip", &[]),
                ];
                for (name, values) in want {
                    if h(name) != values {
                        return Err(format!(
                            "({side}) the origin got {name}: {:?}, want {values:?}",
                            h(name)
                        ));
                    }
                }
            }
            Ok(())
        }
        Kind::Leak => {
            if !got_off.iter().any(|a| contains(&a.decoded(), marker)) {
                return Err(format!("with the checks off the client never got {marker:?}: the vector proves nothing"));
            }
            if got_on
                .iter()
                .any(|a| contains(&a.body, marker) || contains(&a.decoded(), marker))
            {
                return Err(format!("the client got {marker:?} with the checks on"));
            }
            let a = got_on.first().ok_or("no answer with the checks on")?;
            if !(a.status == 403 || a.cut) {
                return Err("the response was neither replaced nor cut off".into());
            }
            // The response phases stopped it, not a request rule.
            let phases = on.waf_phases(&a.request_id);
            if !phases.iter().any(|&p| p >= 3) {
                return Err(format!(
                    "not stopped by a response phase (events' phases: {phases:?})"
                ));
            }
            Ok(())
        }
    }
}

/// By default the origin gets the target as sent; `[url_normalization]
/// forward_normalized = true` sends it the normalized one (the query as sent).
#[test]
fn the_origin_gets_the_target_as_sent_unless_told_otherwise() {
    let as_sent = side(None);
    let normalized = side(Some("[url_normalization]\nforward_normalized = true\n"));
    let target = "/a/./b/%2e%2e/c;x=1//d%2f%41?q=%2e&r=/../";
    let want = [(&as_sent, target), (&normalized, "/a/c/d/A?q=%2e&r=/../")];
    for (side, want) in want {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let got = send_h1(&side.addr, &[raw.into_bytes()], 1);
        assert_eq!(got.first().map(|a| a.status), Some(200), "{got:?}");
        let seen = side.echo.seen();
        assert_eq!(seen.last().map(|s| s.target.as_str()), Some(want));
    }
}

/// A response blocked on its body after its header went out is cut off:
/// HTTP/1.1 sees the connection close before the body's end, HTTP/2 a
/// stream reset; the leaked text never arrives either way.
#[test]
fn a_response_blocked_after_its_header_went_out_is_cut_off() {
    let crs = crs_dir();
    let on = side(Some(&on_policy(&crs)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let leak = "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version";
    let hex: String = format!("<html><body>{leak}</body></html>")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    for chunked in [false, true] {
        let target = format!(
            "/__respond?ct=text/html&delay=300{}&hex={hex}",
            if chunked { "&chunk=16" } else { "" }
        );
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let got = send_h1(&on.addr, &[raw.into_bytes()], 1);
        let a = got.first().expect("an answer");
        assert_eq!(a.status, 200, "the header went out first: {got:?}");
        assert!(a.cut, "HTTP/1.1 not cut off (chunked: {chunked}): {got:?}");
        assert!(!contains(&a.body, "SQL syntax"), "{got:?}");
        let b = Built {
            writes: Vec::new(),
            method: "GET".into(),
            target,
            headers: vec![("host".into(), b"t".to_vec())],
            frames: Vec::new(),
        };
        let a = send_h2(&rt, &on.addr, &b);
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.cut, "HTTP/2 stream not reset (chunked: {chunked}): {a:?}");
        assert!(!contains(&a.body, "SQL syntax"), "{a:?}");
    }
    let m = on.up.metrics();
    assert!(
        m.contains("palisade_waf_response_blocked_total{phase=\"body\"} 4"),
        "{m}"
    );
}
