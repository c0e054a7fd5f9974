//! The facts about one HTTP request that checks look at.
//!
//! [`Request`] borrows everything from the data plane's parsed request: building
//! one allocates nothing (the edge normalizes the host and the target first,
//! with [`crate::normalize`], which allocates only when something changes).
//! Helpers here find headers, cookies and query arguments without allocating
//! in the common case: a value is text with bytes that are not UTF-8 replaced
//! by U+FFFD (never dropped), and decoding allocates only when the raw value
//! actually contains escapes or such bytes.
//!
//! A header, a cookie or a query argument can repeat.
//! [`Request::header_values`], [`Request::cookies`] and
//! [`Request::query_args`] give every value in order; [`Request::header`],
//! [`Request::cookie`] and [`Request::query_arg`] give the first one. Cookies
//! are looked up in every `Cookie` field (HTTP/2 sends one field per cookie).
//!
//! What it must not do: decide anything, or rewrite what the client sent
//! (the canonical host and path are [`crate::normalize`]'s, computed once by
//! the edge).

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::{AsHeaderName, COOKIE};

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

/// What the edge knows of the client beyond its address: the bot
/// defence's signals (`palisade-bots` computes them; `[bots]` in the
/// policy turns them on). [`Client::UNKNOWN`] when they are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Client<'a> {
    /// `palisade.bot.score`: 1 (surely automated) to 99 (surely human);
    /// `None` when not computed (absent: every comparison but `ne` fails).
    pub bot_score: Option<u8>,
    /// `palisade.anomaly.score`: 0 (typical of the route) to 99.
    pub anomaly_score: Option<u8>,
    /// `palisade.bot.verified`: a crawler verified by its published ranges
    /// or by forward-confirmed reverse DNS.
    pub verified_bot: bool,
    /// `palisade.bot.name`: the verified crawler's name (empty otherwise).
    pub bot_name: &'a str,
    /// `palisade.challenge.passed`: the request carries a valid clearance
    /// (a solved challenge) bound to this client. A `challenge` action does
    /// not apply to it.
    pub cleared: bool,
    /// `palisade.fingerprint.headers`: header names, order and case.
    pub header_fp: &'a str,
    /// `palisade.fingerprint.ja4`: the TLS ClientHello (JA4); empty on
    /// plain HTTP.
    pub ja4: &'a str,
    /// `palisade.fingerprint.h2`: the HTTP/2 SETTINGS, window, priority and
    /// pseudo-header order; empty on HTTP/1.
    pub h2_fp: &'a str,
}

impl Client<'static> {
    /// Nothing known (the bot defence is off).
    pub const UNKNOWN: Client<'static> = Client {
        bot_score: None,
        anomaly_score: None,
        verified_bot: false,
        bot_name: "",
        cleared: false,
        header_fp: "",
        ja4: "",
        h2_fp: "",
    };
}

/// One request as the security pipeline sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The client address (socket peer, or from `X-Forwarded-For` when the peer is trusted).
    pub client_ip: IpAddr,
    /// The `Host` header (or the authority of the request target) as
    /// [`crate::normalize::normalize_host`] gives it: lower case, no trailing
    /// dot, port kept.
    pub host: &'a str,
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target with its path normalized
    /// ([`crate::normalize::normalize_uri`]) and the query as sent
    /// (`/a/b?x=1`). What `http.request.uri` and `http.request.uri.path` see.
    pub uri: &'a str,
    /// The request target as the client sent it (bytes that are not UTF-8
    /// become U+FFFD). What `raw.http.request.uri` sees; the query and the
    /// arguments are read from here.
    pub raw_uri: &'a str,
    /// All request headers.
    pub headers: &'a http::HeaderMap,
    /// Geolocation of `client_ip`.
    pub geo: Geo,
    /// The bot defence's signals ([`Client::UNKNOWN`] when off).
    pub client: Client<'a>,
}

/// Text of a header value: bytes that are not UTF-8 become U+FFFD.
/// Borrowed when the value is UTF-8.
#[inline]
pub fn lossy(v: &[u8]) -> Cow<'_, str> {
    // `from_utf8` validates a word at a time; `from_utf8_lossy` byte by byte.
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

impl<'a> Request<'a> {
    /// The normalized path (the part of [`Request::uri`] before `?`).
    pub fn path(&self) -> &'a str {
        split_query(self.uri).0
    }

    /// The path as sent (the part of [`Request::raw_uri`] before `?`).
    pub fn raw_path(&self) -> &'a str {
        split_query(self.raw_uri).0
    }

    /// The query as sent (after the first `?` of [`Request::raw_uri`]; empty
    /// when absent).
    pub fn query(&self) -> &'a str {
        split_query(self.raw_uri).1
    }

    /// Every value of a header, in order (none when absent).
    pub fn header_values<K: AsHeaderName>(
        &self,
        name: K,
    ) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.headers
            .get_all(name)
            .into_iter()
            .map(|v| lossy(v.as_bytes()))
    }

    /// The first value of a header, if present.
    pub fn header<K: AsHeaderName>(&self, name: K) -> Option<Cow<'a, str>> {
        self.headers.get(name).map(|v| lossy(v.as_bytes()))
    }

    /// Every `Cookie` field joined with `"; "` (empty when there is none);
    /// borrowed when there is one valid UTF-8 field.
    pub fn cookie_header(&self) -> Cow<'a, str> {
        let mut fields = self.headers.get_all(COOKIE).into_iter();
        let Some(first) = fields.next() else {
            return Cow::Borrowed("");
        };
        let mut out = lossy(first.as_bytes());
        for f in fields {
            let o = out.to_mut();
            o.push_str("; ");
            o.push_str(&lossy(f.as_bytes()));
        }
        out
    }

    /// Every value of cookie `name`, in order, across every `Cookie` field,
    /// as raw bytes (undecoded).
    pub fn cookies_raw<'n>(&self, name: &'n str) -> CookiesRaw<'a, 'n> {
        CookiesRaw {
            fields: self.headers.get_all(COOKIE).into_iter(),
            field: &[],
            name: name.as_bytes(),
        }
    }

    /// Every value of cookie `name` (undecoded), in order.
    pub fn cookies<'n>(&self, name: &'n str) -> impl Iterator<Item = Cow<'a, str>> + 'n
    where
        'a: 'n,
    {
        self.cookies_raw(name).map(lossy)
    }

    /// The first value of cookie `name`, undecoded.
    pub fn cookie(&self, name: &str) -> Option<Cow<'a, str>> {
        self.cookies(name).next()
    }

    /// Every raw (still percent-encoded) value of query argument `name`, in order.
    pub fn query_args_raw<'n>(&self, name: &'n str) -> QueryArgsRaw<'a, 'n> {
        query_args_raw(self.query(), name)
    }

    /// Every decoded value of query argument `name`, in order.
    pub fn query_args<'n>(&self, name: &'n str) -> impl Iterator<Item = Cow<'a, str>> + 'n
    where
        'a: 'n,
    {
        self.query_args_raw(name).map(form_decode)
    }

    /// The raw (still percent-encoded) value of query argument `name` (first occurrence).
    pub fn query_arg_raw(&self, name: &str) -> Option<&'a str> {
        query_args_raw(self.query(), name).next()
    }

    /// The decoded value of query argument `name` (first occurrence).
    pub fn query_arg(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query_arg_raw(name).map(form_decode)
    }
}

/// Every raw value of cookie `name` in the `Cookie` fields of `headers`
/// (what [`Request::cookies_raw`] reads), for callers without a [`Request`].
pub fn cookies_in<'a, 'n>(headers: &'a http::HeaderMap, name: &'n str) -> CookiesRaw<'a, 'n> {
    CookiesRaw {
        fields: headers.get_all(COOKIE).into_iter(),
        field: &[],
        name: name.as_bytes(),
    }
}

/// The path of a target (before the first `?`).
pub fn split_path(uri: &str) -> &str {
    split_query(uri).0
}

/// `(path, query)` of a target: split at the first `?`.
fn split_query(uri: &str) -> (&str, &str) {
    match memchr::memchr(b'?', uri.as_bytes()) {
        Some(i) => (&uri[..i], &uri[i + 1..]),
        None => (uri, ""),
    }
}

/// The raw values of one cookie across every `Cookie` field: pairs are
/// split at `;`, names compared exactly after trimming spaces and tabs,
/// values trimmed. See [`Request::cookies_raw`].
#[derive(Debug)]
pub struct CookiesRaw<'a, 'n> {
    fields: http::header::ValueIter<'a, http::HeaderValue>,
    /// What is left of the current field.
    field: &'a [u8],
    name: &'n [u8],
}

impl<'a> Iterator for CookiesRaw<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.field.is_empty() {
                self.field = self.fields.next()?.as_bytes();
                continue;
            }
            let (pair, rest) = match memchr::memchr(b';', self.field) {
                Some(i) => (&self.field[..i], &self.field[i + 1..]),
                None => (self.field, &[][..]),
            };
            self.field = rest;
            if let Some(eq) = memchr::memchr(b'=', pair) {
                if trim(&pair[..eq]) == self.name {
                    return Some(trim(&pair[eq + 1..]));
                }
            }
        }
    }
}

/// `b` without leading and trailing spaces and tabs.
fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

/// Every raw value of argument `name` in a query string, in order. Names
/// are compared after decoding only when the raw name contains an escape.
pub fn query_args_raw<'q, 'n>(query: &'q str, name: &'n str) -> QueryArgsRaw<'q, 'n> {
    QueryArgsRaw { rest: query, name }
}

/// The raw values of one query argument; see [`query_args_raw`].
#[derive(Debug, Clone)]
pub struct QueryArgsRaw<'q, 'n> {
    rest: &'q str,
    name: &'n str,
}

impl<'q> Iterator for QueryArgsRaw<'q, '_> {
    type Item = &'q str;

    fn next(&mut self) -> Option<&'q str> {
        while !self.rest.is_empty() {
            let (pair, rest) = match memchr::memchr(b'&', self.rest.as_bytes()) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match memchr::memchr(b'=', pair.as_bytes()) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, ""),
            };
            if k == self.name
                || (memchr::memchr2(b'%', b'+', k.as_bytes()).is_some()
                    && form_decode(k) == self.name)
            {
                return Some(v);
            }
        }
        None
    }
}

/// The first raw value of argument `name` in a query string.
pub fn query_arg_raw<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query_args_raw(query, name).next()
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
    use crate::normalize::{normalize_host, normalize_uri};

    /// Builds a request for tests as the edge does: `uri` is the target as
    /// sent (normalized for [`Request::uri`]), `headers` are `name: value`
    /// pairs (the host is the first `host` header, normalized).
    pub fn with_request<R>(
        ip: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        f: impl FnOnce(&Request<'_>) -> R,
    ) -> R {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        with_raw_request(ip, method, uri.as_bytes(), &headers, f)
    }

    /// [`with_request`] with a raw target and raw header values (any bytes
    /// but CR, LF and NUL).
    pub fn with_raw_request<R>(
        ip: &str,
        method: &str,
        target: &[u8],
        headers: &[(&str, &[u8])],
        f: impl FnOnce(&Request<'_>) -> R,
    ) -> R {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let host = map
            .get(http::header::HOST)
            .map_or(Cow::Borrowed(""), |h| normalize_host(h.as_bytes()));
        let raw_uri = lossy(target);
        let uri = normalize_uri(raw_uri.as_bytes());
        let req = Request {
            client_ip: ip.parse().unwrap(),
            host: &host,
            method,
            uri: &uri,
            raw_uri: &raw_uri,
            headers: &map,
            geo: Geo::default(),
            client: crate::Client::UNKNOWN,
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
    fn normalized_and_raw_targets() {
        with_request(
            "1.2.3.4",
            "GET",
            "//x/../%61dmin;p=1?a=/../&b",
            &[("host", "Admin.Example.COM.")],
            |r| {
                assert_eq!(r.uri, "/admin?a=/../&b");
                assert_eq!(r.path(), "/admin");
                assert_eq!(r.raw_path(), "//x/../%61dmin;p=1");
                assert_eq!(r.query(), "a=/../&b");
                assert_eq!(r.host, "admin.example.com");
            },
        );
    }

    #[test]
    fn repeated_arguments() {
        with_request("::1", "GET", "/?debug=0&x=1&debug=1&%64ebug=2", &[], |r| {
            let all: Vec<_> = r.query_args("debug").collect();
            assert_eq!(all, ["0", "1", "2"]);
            assert_eq!(r.query_arg("debug").as_deref(), Some("0"));
            assert_eq!(r.query_args_raw("nope").count(), 0);
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
                assert_eq!(r.cookie("session").as_deref(), Some("abc"));
                assert_eq!(r.cookie("b").as_deref(), Some("2"));
                assert_eq!(r.cookie("c"), None);
                assert_eq!(r.cookie_header(), "a=1; session=abc ;b=2");
                assert!(matches!(r.cookie_header(), Cow::Borrowed(_)));
            },
        );
    }

    #[test]
    fn split_cookie_fields_are_one_cookie_header() {
        // HTTP/2 sends one `cookie` field per cookie; two HTTP/1 `Cookie` headers
        // are joined the same way.
        with_request(
            "::1",
            "GET",
            "/",
            &[
                ("cookie", "a=1"),
                ("cookie", "session=abc"),
                ("cookie", "a=2; b=3"),
            ],
            |r| {
                assert_eq!(r.cookie_header(), "a=1; session=abc; a=2; b=3");
                assert_eq!(r.cookie("session").as_deref(), Some("abc"));
                assert_eq!(r.cookies("a").collect::<Vec<_>>(), ["1", "2"]);
                assert_eq!(r.cookie("b").as_deref(), Some("3"));
            },
        );
    }

    #[test]
    fn values_with_bytes_that_are_not_utf8_are_lossy_never_empty() {
        let headers: &[(&str, &[u8])] = &[
            ("user-agent", b"sqlmap/1.7\x80"),
            ("cookie", b"s=\xffabc; t=1"),
            ("x-a", b"first"),
            ("x-a", b"caf\xe9"),
        ];
        with_raw_request("::1", "GET", b"/p\x80?q=\x81", headers, |r| {
            assert_eq!(
                r.header("user-agent").as_deref(),
                Some("sqlmap/1.7\u{fffd}")
            );
            assert_eq!(r.cookie("s").as_deref(), Some("\u{fffd}abc"));
            assert_eq!(r.cookie("t").as_deref(), Some("1"));
            assert_eq!(r.cookies_raw("s").next(), Some(&b"\xffabc"[..]));
            assert_eq!(
                r.header_values("x-a").collect::<Vec<_>>(),
                ["first", "caf\u{fffd}"]
            );
            assert_eq!(r.raw_uri, "/p\u{fffd}?q=\u{fffd}");
            assert_eq!(r.path(), "/p\u{fffd}");
            assert_eq!(r.query_arg("q").as_deref(), Some("\u{fffd}"));
        });
    }

    #[test]
    fn decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41+"), "A+");
        assert_eq!(form_decode("%41+"), "A ");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
