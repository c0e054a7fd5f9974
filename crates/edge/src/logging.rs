//! Bridges Pingora's `log` records into `tracing`, and surfaces what Pingora
//! only logs at debug level: a malformed request (answered 400 by Pingora
//! before any of our phases run) becomes a warning and a count in
//! `palisade_bad_requests_total{reason="malformed"}`.
//!
//! Pingora's messages about a refused request quote the raw request bytes.
//! Every message from Pingora is passed through [`redact`] first: the values
//! of `Authorization`, `Proxy-Authorization` and `Cookie` are replaced, and
//! the message is cut to [`MAX_EXCERPT`] bytes, so a log never holds a
//! client's credentials or an unbounded excerpt of its request.

use std::sync::atomic::{AtomicU64, Ordering};

/// Malformed requests Pingora rejected with 400 (read into the metric on render).
pub static MALFORMED_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The longest Pingora message written to the log, in bytes.
pub const MAX_EXCERPT: usize = 512;

/// Header names whose values never reach a log.
const CREDENTIALS: [&[u8]; 3] = [b"proxy-authorization", b"authorization", b"cookie"];

/// A log-safe form of a message that may quote raw request bytes: credential
/// header values are replaced by `[redacted]` (in raw, escaped `\r\n` or
/// debug-quoted form alike) and the result is cut to [`MAX_EXCERPT`] bytes.
pub fn redact(msg: &str) -> String {
    let b = msg.as_bytes();
    let mut out = String::with_capacity(msg.len().min(MAX_EXCERPT + 32));
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let at_line_start = i == 0
            || matches!(b[i - 1], b'\n' | b'\r')
            || (i >= 2 && (&b[i - 2..i] == b"\\n" || &b[i - 2..i] == b"\\r"));
        let name = at_line_start
            .then(|| {
                CREDENTIALS.iter().find(|n| {
                    b.len() > i + n.len()
                        && b[i..i + n.len()].eq_ignore_ascii_case(n)
                        && b[i + n.len()] == b':'
                })
            })
            .flatten();
        if let Some(n) = name {
            let value_start = i + n.len() + 1;
            let mut end = value_start;
            while end < b.len()
                && !matches!(b[end], b'\r' | b'\n' | b'"')
                && !(b[end] == b'\\' && matches!(b.get(end + 1), Some(b'r' | b'n')))
            {
                end += 1;
            }
            out.push_str(&msg[copied..value_start]);
            out.push_str(" [redacted]");
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    out.push_str(&msg[copied..]);
    if out.len() > MAX_EXCERPT {
        let mut cut = MAX_EXCERPT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = out.len() - cut;
        out.truncate(cut);
        out.push_str(&format!("… ({dropped} more bytes not logged)"));
    }
    out
}

struct Bridge {
    inner: tracing_log::LogTracer,
}

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
            || (m.level() == log::Level::Debug && m.target() == "pingora_proxy")
    }

    fn log(&self, record: &log::Record<'_>) {
        let from_pingora = record
            .module_path()
            .is_some_and(|m| m.starts_with("pingora"));
        if record.level() == log::Level::Debug {
            // Only the top module's formatted debug messages can be the one we want;
            // static messages (`as_str()` is Some) are skipped without formatting.
            if record.module_path() == Some("pingora_proxy") && record.args().as_str().is_none() {
                let msg = record.args().to_string();
                if msg.starts_with("Fail to proxy") && msg.contains("InvalidHTTPHeader") {
                    MALFORMED_REQUESTS.fetch_add(1, Ordering::Relaxed);
                    let msg = redact(&msg);
                    tracing::warn!(target: "palisade::edge", reason = "malformed", status = 400, "rejected request: {msg}");
                }
            }
            return;
        }
        if from_pingora {
            // May quote request bytes: redacted and bounded before it is written.
            let msg = redact(&record.args().to_string());
            let module = record.module_path().unwrap_or("pingora");
            match record.level() {
                log::Level::Error => tracing::error!(target: "pingora", module, "{msg}"),
                log::Level::Warn => tracing::warn!(target: "pingora", module, "{msg}"),
                _ => tracing::info!(target: "pingora", module, "{msg}"),
            }
            return;
        }
        self.inner.log(record);
    }

    fn flush(&self) {}
}

/// Installs the bridge as the `log` logger. Call once, before the tracing subscriber is set.
pub fn install_log_bridge() -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(Bridge {
        inner: tracing_log::LogTracer::new(),
    }))?;
    log::set_max_level(log::LevelFilter::Debug);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_log() {
        let msg = r#"Fail to proxy: Downstream InvalidHTTPHeader context: buf: "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic dXNlcjpwYXNz\r\nCOOKIE: session=s3cret; b=2\r\nProxy-Authorization: Bearer tok\r\nX-A: b\r\n c\r\n\r\n" cause: invalid header name"#;
        let r = redact(msg);
        for secret in ["dXNlcjpwYXNz", "s3cret", "Bearer tok"] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(
            r.contains("Authorization: [redacted]\\r\\nCOOKIE: [redacted]"),
            "{r}"
        );
        assert!(r.contains("Host: a"), "{r}");
        // Raw (unescaped) line breaks too.
        let r = redact("buf: GET / HTTP/1.1\r\ncookie:a=1\r\n\r\n");
        assert_eq!(r, "buf: GET / HTTP/1.1\r\ncookie: [redacted]\r\n\r\n");
        // A name inside another header's value is not a header.
        assert_eq!(redact("X-Note: my-cookie:x"), "X-Note: my-cookie:x");
        assert_eq!(redact("X-Note: cookie:x"), "X-Note: cookie:x");
    }

    #[test]
    fn excerpts_are_bounded() {
        let long = "é".repeat(2000);
        let r = redact(&long);
        assert!(r.len() < MAX_EXCERPT + 64, "{}", r.len());
        assert!(r.ends_with("more bytes not logged)"), "{r}");
    }
}
