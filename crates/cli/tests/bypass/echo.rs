#![allow(dead_code)]
//! The bypass suite's origin: an HTTP/1.1 server that answers every request
//! with what it received — method, target, the path it resolves, headers and
//! body (de-chunked, and decompressed when it has a `Content-Encoding`) — as
//! JSON, and records every request whose body it read completely. A request
//! whose body never arrived (the edge aborted it) is only counted as partial:
//! its handler never ran.
//!
//! `GET /__respond?ct=TYPE&hex=HEX` answers `200` with that content type and
//! the hex-decoded body instead (to test response inspection).
//!
//! The resolved path is what common origins would serve: percent-decoded
//! once (nginx), backslashes as slashes (IIS), path parameters dropped (Java
//! servlet containers), slashes merged and dot segments removed (all of them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the origin handled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub resolved: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// Everything the origin saw, as one searchable text.
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub struct Echo {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    partial: Arc<AtomicUsize>,
}

impl Echo {
    pub fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let partial = Arc::new(AtomicUsize::new(0));
        let (log, part) = (seen.clone(), partial.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, part) = (log.clone(), part.clone());
                std::thread::spawn(move || serve(conn, &log, &part));
            }
        });
        Echo { url, seen, partial }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose header arrived but whose body did not.
    pub fn partial(&self) -> usize {
        self.partial.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Seen>>, partial: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    // Keep-alive: the edge reuses upstream connections.
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = Vec::new();
            if reader.read_until(b'\n', &mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = String::from_utf8_lossy(&h).trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            let _ = conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let body = if header("transfer-encoding").is_some() {
            dechunk(&mut reader)
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            read_len(&mut reader, n)
        } else {
            Some(Vec::new())
        };
        let Some(body) = body else {
            // The edge closed the connection before the body was complete.
            partial.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let body = decode(header("content-encoding").as_deref(), body);
        let seen = Seen {
            resolved: resolve(&target),
            method,
            target,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let reply = match seen.target.strip_prefix("/__respond?") {
            Some(q) => respond_with(q),
            None => Reply {
                content_type: "application/json".into(),
                body: seen.text().into_bytes(),
                gzip: false,
                chunk: 0,
                delay_ms: 0,
            },
        };
        log.lock().unwrap().push(seen);
        if write_reply(&mut conn, reply).is_err() {
            return;
        }
    }
}

/// Bodies longer than this are read whole but kept as their first
/// [`KEEP`] bytes and a note of their length (uploads in load tests).
pub const KEEP: usize = 1 << 20;

fn keep(body: &mut Vec<u8>, total: usize) {
    if total > KEEP {
        body.truncate(KEEP);
        body.extend_from_slice(format!("...<{total} bytes>").as_bytes());
    }
}

fn read_len(r: &mut impl Read, n: usize) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(n.min(KEEP));
    let mut buf = [0u8; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let want = left.min(buf.len());
        r.read_exact(&mut buf[..want]).ok()?;
        if body.len() < KEEP {
            body.extend_from_slice(&buf[..want.min(KEEP - body.len())]);
        }
        left -= want;
    }
    keep(&mut body, n);
    Some(body)
}

fn dechunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut total = 0;
    loop {
        let mut size = Vec::new();
        if r.read_until(b'\n', &mut size).ok()? == 0 {
            return None;
        }
        let size = String::from_utf8_lossy(&size);
        let size = size.trim().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(size, 16).ok()?;
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l).ok()? == 0 || l.trim_ascii().is_empty() {
                    keep(&mut body, total);
                    return Some(body);
                }
            }
        }
        let chunk = read_len(r, n)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).ok()?;
        total += n;
        if body.len() < KEEP {
            body.extend_from_slice(&chunk[..chunk.len().min(KEEP - body.len())]);
        }
    }
}

/// The body with its content codings undone (last applied first), as an
/// application behind a decompressing server would read it.
pub fn decode(encoding: Option<&str>, body: Vec<u8>) -> Vec<u8> {
    let Some(encoding) = encoding else {
        return body;
    };
    let mut body = body;
    for coding in encoding.rsplit(',') {
        let mut out = Vec::new();
        let ok = match coding.trim().to_ascii_lowercase().as_str() {
            "gzip" => flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_ok(),
            "deflate" => flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_ok(),
            _ => false,
        };
        if !ok {
            return body;
        }
        body = out;
    }
    body
}

fn query_value(q: &str, key: &str) -> String {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| String::from_utf8_lossy(&percent_decode(&v.replace('+', " "))).into_owned())
        .unwrap_or_default()
}

/// A response to write.
struct Reply {
    content_type: String,
    body: Vec<u8>,
    /// Send it `Content-Encoding: gzip`.
    gzip: bool,
    /// Send it chunked, in chunks of this size (0: with a Content-Length).
    chunk: usize,
    /// Wait this long between the header and the body.
    delay_ms: u64,
}

/// `/__respond?ct=TYPE&hex=HEX[&enc=gzip][&chunk=N][&delay=MS]`.
fn respond_with(q: &str) -> Reply {
    let hex = query_value(q, "hex");
    let body: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    Reply {
        content_type: query_value(q, "ct"),
        body,
        gzip: query_value(q, "enc") == "gzip",
        chunk: query_value(q, "chunk").parse().unwrap_or(0),
        delay_ms: query_value(q, "delay").parse().unwrap_or(0),
    }
}

fn write_reply(conn: &mut TcpStream, r: Reply) -> std::io::Result<()> {
    let mut body = r.body;
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: {}\r\n", r.content_type);
    if r.gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&body)?;
        body = e.finish()?;
        head.push_str("Content-Encoding: gzip\r\n");
    }
    let pause = |conn: &mut TcpStream| -> std::io::Result<()> {
        if r.delay_ms > 0 {
            conn.flush()?;
            std::thread::sleep(Duration::from_millis(r.delay_ms));
        }
        Ok(())
    };
    if r.chunk == 0 {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        conn.write_all(head.as_bytes())?;
        pause(conn)?;
        conn.write_all(&body)?;
    } else {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        conn.write_all(head.as_bytes())?;
        pause(conn)?;
        for c in body.chunks(r.chunk) {
            conn.write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
            conn.write_all(c)?;
            conn.write_all(b"\r\n")?;
            conn.flush()?;
        }
        conn.write_all(b"0\r\n\r\n")?;
    }
    conn.flush()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The path common origins would serve for a request target.
pub fn resolve(target: &str) -> String {
    let path = target.split('?').next().unwrap_or("");
    // Absolute form: the path after the authority.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    let decoded = String::from_utf8_lossy(&percent_decode(path)).replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut resolved = format!("/{}", out.join("/"));
    if (decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/.."))
        && resolved.len() > 1
    {
        resolved.push('/');
    }
    resolved
}

#[test]
fn the_echo_resolves_like_common_origins() {
    for (target, want) in [
        ("/admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("//admin", "/admin"),
        ("/./admin", "/admin"),
        ("/%2fadmin", "/admin"),
        ("/x/%2e%2e/admin", "/admin"),
        ("/admin;a=1", "/admin"),
        ("/x/..;/admin", "/admin"),
        ("/\\admin", "/admin"),
        ("/%2561dmin", "/%61dmin"),
        ("http://t/admin?x", "/admin"),
        ("/a/b/", "/a/b/"),
    ] {
        assert_eq!(resolve(target), want, "{target}");
    }
}
