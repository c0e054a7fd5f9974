//! The facts about one HTTP request that checks look at.
//!
//! [`Request`] borrows everything from the data plane's parsed request: building
//! one allocates nothing. Helpers here find a header, a cookie or a query
//! argument without allocating (decoding allocates only when the raw value
//! actually contains escapes).

use std::borrow::Cow;
use std::net::IpAddr;

/// Geolocation of the client address, when GeoIP databases are configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code, upper case (e.g. `*b"US"`).
    pub country: Option<[u8; 2]>,
    /// Autonomous system number.
    pub asn: Option<u32>,
}

impl Geo {
    /// The country code as a string slice.
    pub fn country_str(&self) -> Option<&str> {
        self.country
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }
}

/// One request as the security pipeline sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The client address (socket peer, or from `X-Forwarded-For` when the peer is trusted).
    pub client_ip: IpAddr,
    /// The `Host` header (or the authority of the request target), without port stripping.
    pub host: &'a str,
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target as received: path and optional query (`/a/b?x=1`).
    pub uri: &'a str,
    /// All request headers.
    pub headers: &'a http::HeaderMap,
    /// Geolocation of `client_ip`.
    pub geo: Geo,
}

impl<'a> Request<'a> {
    /// The path part of the request target (before `?`).
    pub fn path(&self) -> &'a str {
        match memchr::memchr(b'?', self.uri.as_bytes()) {
            Some(i) => &self.uri[..i],
            None => self.uri,
        }
    }

    /// The query part of the request target (after `?`, empty when absent).
    pub fn query(&self) -> &'a str {
        match memchr::memchr(b'?', self.uri.as_bytes()) {
            Some(i) => &self.uri[i + 1..],
            None => "",
        }
    }

    /// The first value of a header, if present and valid visible ASCII/UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All `Cookie` headers joined as sent (first header only; HTTP/2 splits are joined by the proxy).
    pub fn cookie_header(&self) -> &'a str {
        self.header("cookie").unwrap_or("")
    }

    /// The value of cookie `name` (first occurrence), undecoded.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        for h in self.headers.get_all(http::header::COOKIE) {
            let Ok(s) = h.to_str() else { continue };
            for pair in s.split(';') {
                let pair = pair.trim_start();
                if let Some((k, v)) = pair.split_once('=') {
                    if k.trim_end() == name {
                        return Some(v.trim());
                    }
                }
            }
        }
        None
    }

    /// The raw (still percent-encoded) value of query argument `name` (first occurrence).
    pub fn query_arg_raw(&self, name: &str) -> Option<&'a str> {
        query_arg_raw(self.query(), name)
    }

    /// The decoded value of query argument `name` (first occurrence).
    pub fn query_arg(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_arg_raw(name).map(form_decode)
    }
}

/// Finds the raw value of argument `name` in a query string. Names are compared
/// after decoding only when the raw name contains an escape.
pub fn query_arg_raw<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name || ((k.contains('%') || k.contains('+')) && form_decode(k) == name) {
            return Some(v);
        }
    }
    None
}

/// Decodes `%XX` escapes and `+` (as a space), as in `application/x-www-form-urlencoded`.
/// Invalid escapes are kept literally; invalid UTF-8 is replaced.
pub fn form_decode(s: &str) -> Cow<'_, str> {
    decode(s, true)
}

/// Decodes `%XX` escapes (a `+` stays a `+`). Invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || (plus_is_space && c == b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a request for tests: `headers` as `name: value` pairs.
    pub fn with_request<R>(
        ip: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        f: impl FnOnce(&Request<'_>) -> R,
    ) -> R {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let host = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| *v)
            .unwrap_or("");
        let req = Request {
            client_ip: ip.parse().unwrap(),
            host,
            method,
            uri,
            headers: &map,
            geo: Geo::default(),
        };
        f(&req)
    }

    #[test]
    fn path_query_and_args() {
        with_request("1.2.3.4", "GET", "/a/b?x=1&y=h%C3%A9+llo&z", &[], |r| {
            assert_eq!(r.path(), "/a/b");
            assert_eq!(r.query(), "x=1&y=h%C3%A9+llo&z");
            assert_eq!(r.query_arg("x").as_deref(), Some("1"));
            assert_eq!(r.query_arg("y").as_deref(), Some("hé llo"));
            assert_eq!(r.query_arg("z").as_deref(), Some(""));
            assert_eq!(r.query_arg("w"), None);
        });
    }

    #[test]
    fn cookies() {
        with_request(
            "::1",
            "GET",
            "/",
            &[("cookie", "a=1; session=abc ;b=2")],
            |r| {
                assert_eq!(r.cookie("session"), Some("abc"));
                assert_eq!(r.cookie("b"), Some("2"));
                assert_eq!(r.cookie("c"), None);
            },
        );
    }

    #[test]
    fn decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41+"), "A+");
        assert_eq!(form_decode("%41+"), "A ");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
