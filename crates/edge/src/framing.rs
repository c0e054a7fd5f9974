//! Request framing that smuggles: what the edge refuses before anything
//! reaches an upstream, because two HTTP parsers could read the request
//! differently.
//!
//! Pingora already refuses most of it while parsing (obs-fold, NUL and bare
//! CR in header values, a second `Host`, an absolute-form target whose host
//! differs from `Host`, a `Transfer-Encoding` whose last coding is not
//! `chunked`, conflicting `Content-Length` values, HTTP/1.0 with
//! `Transfer-Encoding`, invalid chunk sizes); the tests keep one case for
//! each. This module adds what Pingora lets through:
//!
//! - `Content-Length` together with `Transfer-Encoding`: Pingora drops the
//!   `Content-Length` silently and reads chunked; a front end that reads the
//!   `Content-Length` would see another request. Refused, as nginx does. The
//!   parsed header no longer holds it, so the raw header bytes are checked.
//! - a `Transfer-Encoding` other than exactly one `chunked` (`gzip, chunked`,
//!   `chunked, chunked`, two header fields): nginx refuses those too.
//! - an HTTP/1.1 request without `Host` (RFC 9112, section 3.2).
//!
//! Pure functions over the parsed header (and its raw bytes); the proxy
//! answers what they return with 400 and closes the connection.

use pingora_http::RequestHeader;

/// Why a request's framing is refused (the metric label), or `None`.
///
/// `raw` gives the request header as received (HTTP/1 only); it is called
/// only for requests with a `Transfer-Encoding`, which are rare.
pub fn check(
    req: &RequestHeader,
    raw: impl FnOnce() -> Option<bytes::Bytes>,
) -> Option<&'static str> {
    if req.version != http::Version::HTTP_11 && req.version != http::Version::HTTP_10 {
        // HTTP/2 frames bodies itself; its `content-length` is checked by h2.
        return None;
    }
    if req.version == http::Version::HTTP_11 && !req.headers.contains_key(http::header::HOST) {
        return Some("missing_host");
    }
    let mut te = req.headers.get_all(http::header::TRANSFER_ENCODING).iter();
    let first = te.next()?;
    if te.next().is_some()
        || !first
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked")
    {
        return Some("transfer_encoding");
    }
    match raw() {
        Some(raw) if has_content_length(&raw) => Some("content_length_and_transfer_encoding"),
        _ => None,
    }
}

/// Whether a raw HTTP/1 header block has a `Content-Length` field.
fn has_content_length(raw: &[u8]) -> bool {
    const NAME: &[u8] = b"content-length";
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        let line = line.trim_ascii_start();
        line.len() > NAME.len()
            && line[..NAME.len()].eq_ignore_ascii_case(NAME)
            && line[NAME.len()..].trim_ascii_start().first() == Some(&b':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: http::Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        r.set_version(version);
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    const V11: http::Version = http::Version::HTTP_11;

    #[test]
    fn content_length_with_chunked_is_refused() {
        let r = req(V11, &[("host", "a"), ("transfer-encoding", "chunked")]);
        let raw = || {
            Some(bytes::Bytes::from_static(
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            ))
        };
        assert_eq!(check(&r, raw), Some("content_length_and_transfer_encoding"));
        let raw = || {
            Some(bytes::Bytes::from_static(
                b"POST / HTTP/1.1\r\nHost: a\r\nX-Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            ))
        };
        assert_eq!(check(&r, raw), None);
    }

    #[test]
    fn only_one_plain_chunked_coding_passes() {
        let raw = || None;
        for te in [
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "chunked;x=1",
        ] {
            let r = req(V11, &[("host", "a"), ("transfer-encoding", te)]);
            assert_eq!(check(&r, raw), Some("transfer_encoding"), "{te}");
        }
        let r = req(
            V11,
            &[
                ("host", "a"),
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        );
        assert_eq!(check(&r, raw), Some("transfer_encoding"));
        let r = req(V11, &[("host", "a"), ("transfer-encoding", " Chunked ")]);
        assert_eq!(check(&r, raw), None);
    }

    #[test]
    fn http11_needs_a_host() {
        let never =
            || -> Option<bytes::Bytes> { panic!("raw header read for a request without TE") };
        assert_eq!(check(&req(V11, &[]), never), Some("missing_host"));
        assert_eq!(check(&req(http::Version::HTTP_10, &[]), never), None);
        assert_eq!(check(&req(V11, &[("host", "a")]), never), None);
        assert_eq!(check(&req(http::Version::HTTP_2, &[]), never), None);
    }
}
