//! Normalization of the request facts that rules compare: the host and the
//! path of the request target.
//!
//! Origins do not serve the bytes a client sent: nginx decodes `%2F` and
//! merges slashes, IIS treats `\` as `/`, Java servers drop `;parameters`
//! and resolve `..;`. A rule on `http.request.uri.path starts_with "/admin"`
//! must see the path the origin will serve, or `/%61dmin`, `//admin`,
//! `/./admin`, `/admin;a=1` and `/x/../admin` walk past it. This module owns
//! that one canonical form ([`normalize_path`], [`normalize_uri`]) and the
//! canonical host ([`normalize_host`]). The edge calls these once per request
//! and puts the results in [`crate::Request`]; the raw target stays available
//! to rules as `raw.http.request.uri`.
//!
//! # The path
//!
//! One pass over the bytes of the path (never a second decoding):
//!
//! 1. bytes that are not UTF-8 become U+FFFD;
//! 2. `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!    decoded, `%2F` and `%5C` become the separator `/`, every other escape
//!    keeps its meaning with upper-case hex (`%2a` → `%2A`), and a `%` that
//!    does not start a valid escape is written `%25` (so every `%` of a
//!    normalized path starts an escape, and normalizing twice changes nothing);
//! 3. `\` is a separator, like `/`;
//! 4. in each segment, a literal `;` and what follows it up to the next
//!    separator is a path parameter and is dropped (`%3B` is not a separator
//!    and stays);
//! 5. empty segments are dropped (successive slashes merge; a trailing slash
//!    is kept);
//! 6. `.` and `..` segments are removed as in RFC 3986 section 5.2.4, never
//!    going above the root (`/../../etc` → `/etc`).
//!
//! Decoding comes first so that `%2e%2e` is a dot segment and `%2F` splits
//! segments; parameters are dropped before dot segments are resolved so that
//! `/..;/` climbs as it does on Tomcat. The result starts with `/`, except
//! for the asterisk-form target `*`, which stays as it is. Non-ASCII
//! characters stay literal. The query is never touched.
//!
//! # What it must not do
//!
//! I/O, or allocate when the input is already normal: every function returns
//! the input borrowed when nothing changes. No input makes it panic.

use std::borrow::Cow;

use crate::request::lossy;

/// The host as rules see it: ASCII lower case, trailing dots of the name
/// dropped, also before a `:port` (`Admin.Example.COM.:8080` →
/// `admin.example.com:8080`). Bytes that are not UTF-8 become U+FFFD.
/// Borrowed when nothing changes.
pub fn normalize_host(host: &[u8]) -> Cow<'_, str> {
    let host = lossy(host);
    match host_once(&host) {
        None => host,
        Some(mut out) => {
            // Dropping dots can expose a `:port` that then has dots before it
            // (`a.:.` → `a.:` → `a:`): repeat until nothing changes, so that
            // normalizing twice changes nothing. Each round only shortens.
            while let Some(next) = host_once(&out) {
                out = next;
            }
            Cow::Owned(out)
        }
    }
}

/// One round of [`normalize_host`]: `None` when nothing changes.
fn host_once(s: &str) -> Option<String> {
    // `name` is the part before the port; an IPv6 literal keeps its brackets.
    let name_end = if s.starts_with('[') {
        s.find(']').map_or(s.len(), |i| i + 1)
    } else {
        match s.rfind(':') {
            Some(i) if s[i + 1..].bytes().all(|b| b.is_ascii_digit()) => i,
            _ => s.len(),
        }
    };
    let (name, port) = s.split_at(name_end);
    let trimmed = name.trim_end_matches('.');
    // The whole value is lower-cased: what follows the name is a port in a
    // valid Host, but a rule must not see upper case in an invalid one either.
    let has_upper = s.bytes().any(|b| b.is_ascii_uppercase());
    if trimmed.len() == name.len() && !has_upper {
        return None;
    }
    let mut out = String::with_capacity(trimmed.len() + port.len());
    out.push_str(trimmed);
    out.push_str(port);
    out.make_ascii_lowercase();
    Some(out)
}

/// The normalized path of a request target's path (see the module doc).
/// `path` must not include the query; [`normalize_uri`] splits it off.
/// Borrowed when the path is already normal.
pub fn normalize_path(path: &[u8]) -> Cow<'_, str> {
    match lossy(path) {
        Cow::Borrowed(s) => normalize_path_str(s),
        Cow::Owned(s) => match normalize_path_str(&s) {
            Cow::Borrowed(_) => Cow::Owned(s),
            Cow::Owned(n) => Cow::Owned(n),
        },
    }
}

/// A request target (origin form: path and optional `?query`) with its path
/// normalized by [`normalize_path`] and the query kept as sent (only bytes
/// that are not UTF-8 become U+FFFD). Borrowed when nothing changes.
pub fn normalize_uri(target: &[u8]) -> Cow<'_, str> {
    let raw = lossy(target);
    let (path, query) = match memchr::memchr(b'?', raw.as_bytes()) {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (&raw[..], None),
    };
    let norm = normalize_path_str(path);
    if let Cow::Borrowed(_) = norm {
        return raw;
    }
    let mut out = norm.into_owned();
    if let Some(q) = query {
        out.push_str(q);
    }
    Cow::Owned(out)
}

fn normalize_path_str(s: &str) -> Cow<'_, str> {
    if s == "*" || is_normal(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    // Owned even for the empty path: a borrowed result means "unchanged".
    Cow::Owned(normalize_slow(s.as_bytes()))
}

/// The value of a hex digit.
fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// The byte an escape at `b[i]` (a `%`) stands for, if it is a valid escape.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    let h = hex(*b.get(i + 1)?)?;
    let l = hex(*b.get(i + 2)?)?;
    Some(h << 4 | l)
}

/// Whether normalizing `b` would leave it unchanged.
fn is_normal(b: &[u8]) -> bool {
    if b.first() != Some(&b'/') {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'\\' | b';' => return false,
            b'%' => match escape_at(b, i) {
                Some(d) if is_unreserved(d) || d == b'/' || d == b'\\' => return false,
                Some(_) if b[i + 1..i + 3].iter().any(u8::is_ascii_lowercase) => return false,
                Some(_) => {}
                None => return false,
            },
            // The segment after a slash must not be empty (but at the very
            // end: a trailing slash), `.` or `..`.
            b'/' => match b.get(i + 1) {
                Some(b'/') => return false,
                Some(b'.') => {
                    let end = if b.get(i + 2) == Some(&b'.') {
                        i + 3
                    } else {
                        i + 2
                    };
                    if matches!(b.get(end), None | Some(b'/')) {
                        return false;
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    true
}

/// Pushes the normalized form of the escape `%XX` at `b[i]`, or `%25` for a
/// `%` that starts no valid escape; returns how many input bytes it used and
/// whether it was a separator.
fn push_escape(out: &mut Vec<u8>, b: &[u8], i: usize) -> (usize, bool) {
    match escape_at(b, i) {
        Some(b'/' | b'\\') => (3, true),
        Some(c) if is_unreserved(c) => {
            out.push(c);
            (3, false)
        }
        Some(_) => {
            out.push(b'%');
            out.push(b[i + 1].to_ascii_uppercase());
            out.push(b[i + 2].to_ascii_uppercase());
            (3, false)
        }
        None => {
            out.extend_from_slice(b"%25");
            (1, false)
        }
    }
}

fn normalize_slow(b: &[u8]) -> String {
    // `out` holds `/seg/seg...` without a trailing slash.
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 1);
    let mut trailing;
    let mut i = 0;
    // A leading separator starts the path; anything else is relative to the root.
    if let Some(&c) = b.first() {
        if c == b'/' || c == b'\\' {
            i = 1;
        } else if c == b'%' && matches!(escape_at(b, 0), Some(b'/' | b'\\')) {
            i = 3;
        }
    }
    loop {
        // One segment: from `i` to the next separator.
        let start = out.len();
        out.push(b'/');
        let mut in_params = false;
        let mut ended_by_separator = false;
        while i < b.len() {
            let c = b[i];
            if c == b'/' || c == b'\\' {
                i += 1;
                ended_by_separator = true;
                break;
            }
            if c == b'%' {
                if matches!(escape_at(b, i), Some(b'/' | b'\\')) {
                    i += 3;
                    ended_by_separator = true;
                    break;
                }
                if in_params {
                    i += 1;
                } else {
                    let (used, _) = push_escape(&mut out, b, i);
                    i += used;
                }
                continue;
            }
            if c == b';' {
                in_params = true;
            }
            if !in_params {
                out.push(c);
            }
            i += 1;
        }
        let seg = &out[start + 1..];
        if seg.is_empty() || seg == b"." {
            out.truncate(start);
            trailing = true;
        } else if seg == b".." {
            out.truncate(start);
            let parent = memchr::memrchr(b'/', &out).unwrap_or(0);
            out.truncate(parent);
            trailing = true;
        } else {
            trailing = false;
        }
        if !ended_by_separator {
            break;
        }
    }
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    // Only ASCII bytes were added, removed or replaced in valid UTF-8, at
    // ASCII boundaries: the result is UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, normalized path).
    const PATHS: &[(&[u8], &str)] = &[
        // The bypasses: every one is `/admin` to the origin.
        (b"/admin", "/admin"),
        (b"/%61dmin", "/admin"),
        (b"/%41dmin", "/Admin"),
        (b"//admin", "/admin"),
        (b"/./admin", "/admin"),
        (b"/%2fadmin", "/admin"),
        (b"/%2Fadmin", "/admin"),
        (b"/%5cadmin", "/admin"),
        (b"/%5Cadmin", "/admin"),
        (b"/admin;a=1", "/admin"),
        (b"/admin;a=1/x", "/admin/x"),
        (b"/x/../admin", "/admin"),
        (b"\\admin", "/admin"),
        (b"/\\admin", "/admin"),
        (b"/foo/..;/admin", "/admin"),
        (b"/foo/.;x/..;y/admin", "/admin"),
        (b"/%2e%2e/admin", "/admin"),
        (b"/.%2e/admin", "/admin"),
        (b"/%2E/admin", "/admin"),
        (b"/%2e/admin", "/admin"),
        (b"/;x/admin", "/admin"),
        (b"/x%2f..%2fadmin", "/admin"),
        (b"/x%5c..%5cadmin", "/admin"),
        (b"/foo;%2f..%2f..%2fadmin", "/admin"),
        (b"/x/y/../../admin", "/admin"),
        (b"/../../admin", "/admin"),
        (b"/%2fadmin;a/b", "/admin/b"),
        // Trailing slashes and dot segments at the end.
        (b"/admin/.", "/admin/"),
        (b"/admin/..", "/"),
        (b"/admin/x/..", "/admin/"),
        (b"/admin%2f", "/admin/"),
        (b"//admin//", "/admin/"),
        (b"/admin/", "/admin/"),
        (b"/", "/"),
        (b"//", "/"),
        (b"/.", "/"),
        (b"/..", "/"),
        (b"/../../etc", "/etc"),
        (b"/../../etc/passwd", "/etc/passwd"),
        // Escapes that are not unreserved keep their meaning, hex upper-cased.
        (b"/admin%3Bx", "/admin%3Bx"),
        (b"/admin%3bx", "/admin%3Bx"),
        (b"/a%2ab", "/a%2Ab"),
        (b"/caf%c3%a9", "/caf%C3%A9"),
        (b"/%252e%252e/admin", "/%252e%252e/admin"),
        (b"/%25", "/%25"),
        (b"/a%20b", "/a%20b"),
        (b"/%7e%2d%5f%2e", "/~-_."),
        (b"/%3f", "/%3F"),
        // Invalid escapes: the `%` is escaped itself.
        (b"/%zz", "/%25zz"),
        (b"/%4", "/%254"),
        (b"/%", "/%25"),
        (b"/%%32%65", "/%252e"),
        (b"/100%", "/100%25"),
        // Bytes that are not UTF-8; other characters stay literal.
        (b"/adm\x80in", "/adm\u{fffd}in"),
        (b"/\xff/../admin", "/admin"),
        (b"/caf\xc3\xa9", "/caf\u{e9}"),
        (b"/caf\xe9", "/caf\u{fffd}"),
        (b"/admin;jsessionid=1", "/admin"),
        (b"/\xc3", "/\u{fffd}"),
        // The empty path, the asterisk form, relative paths.
        (b"", "/"),
        (b"*", "*"),
        (b"admin", "/admin"),
        (b"%2Fadmin", "/admin"),
        (b"./admin", "/admin"),
        (b"../admin", "/admin"),
        // Already normal.
        (b"/a/b.c/d-e_f~g", "/a/b.c/d-e_f~g"),
        (b"/.git/config", "/.git/config"),
        (b"/...", "/..."),
        (b"/a..b/.c", "/a..b/.c"),
        (b"/a%2A", "/a%2A"),
    ];

    #[test]
    fn paths() {
        assert!(PATHS.len() >= 40);
        for (input, want) in PATHS {
            let got = normalize_path(input);
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(input));
            // Normalizing twice changes nothing, and a normal path is borrowed.
            let again = normalize_path(got.as_bytes());
            assert_eq!(again, *want, "not idempotent: {want:?}");
            assert!(
                matches!(again, Cow::Borrowed(_)),
                "normal path {want:?} was copied"
            );
        }
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/a/b", "/a/b/", "/a%20b", "/*", "*", "/%C3%A9"] {
            assert!(
                matches!(normalize_path(p.as_bytes()), Cow::Borrowed(_)),
                "{p}"
            );
        }
        assert!(matches!(
            normalize_uri(b"/products/view?id=42&ref=home"),
            Cow::Borrowed("/products/view?id=42&ref=home")
        ));
    }

    #[test]
    fn uris_keep_the_query_as_sent() {
        let cases: &[(&[u8], &str)] = &[
            (b"/a?x=1", "/a?x=1"),
            (b"/%61dmin?x=%2e%2e/..//", "/admin?x=%2e%2e/..//"),
            (b"//admin?", "/admin?"),
            (b"?a=1", "/?a=1"),
            (b"/x/../admin?q=\x80", "/admin?q=\u{fffd}"),
            (b"/adm\x80?q", "/adm\u{fffd}?q"),
            (b"/a?\x80", "/a?\u{fffd}"),
            (b"/admin%3F?x", "/admin%3F?x"),
            (b"", "/"),
            (b"*", "*"),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_uri(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn hosts() {
        let cases: &[(&[u8], &str)] = &[
            (b"admin.example.com", "admin.example.com"),
            (b"admin.example.com.", "admin.example.com"),
            (b"ADMIN.example.com", "admin.example.com"),
            (b"Admin.Example.COM.:8080", "admin.example.com:8080"),
            (b"admin.example.com..", "admin.example.com"),
            (b"admin.example.com:443", "admin.example.com:443"),
            (b"[2001:DB8::1]:8080", "[2001:db8::1]:8080"),
            (b"[::1]", "[::1]"),
            (b"example.com.:", "example.com:"),
            (b"10.0.0.1:80", "10.0.0.1:80"),
            (b"", ""),
            (b".", ""),
            (b"h\x80st", "h\u{fffd}st"),
            (b"a:b", "a:b"),
            // Found by fuzzing: dropping the last dot exposes an empty port.
            (b"\xef.:.", "\u{fffd}:"),
            (b"A.:.:.", "a.::"),
            (b"[g]G]\x80[#", "[g]g]\u{fffd}[#"),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_host(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(matches!(
            normalize_host(b"shop.example.com:8080"),
            Cow::Borrowed(_)
        ));
        for (input, _) in cases {
            let once = normalize_host(input);
            assert_eq!(normalize_host(once.as_bytes()), once, "{once:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_normalize_once() {
        // A small exhaustive walk over short strings of interesting bytes.
        let alphabet: &[u8] = b"/\\.;%2fFeE5cCa\x80?*";
        let mut buf = Vec::new();
        for n in 0..=4u32 {
            for mut k in 0..alphabet.len().pow(n) {
                buf.clear();
                for _ in 0..n {
                    buf.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let once = normalize_uri(&buf).into_owned();
                let twice = normalize_uri(once.as_bytes());
                assert_eq!(twice, once, "{:?}", String::from_utf8_lossy(&buf));
                let _ = normalize_host(&buf);
                // The fast check agrees with the full normalization both ways.
                let path = &buf[..memchr::memchr(b'?', &buf).unwrap_or(buf.len())];
                if let Ok(p) = std::str::from_utf8(path) {
                    let slow = normalize_slow(p.as_bytes());
                    if is_normal(p.as_bytes()) {
                        assert_eq!(slow, p, "fast check says normal: {p:?}");
                    }
                    assert!(
                        is_normal(slow.as_bytes()) || slow == "*",
                        "{p:?} -> {slow:?}"
                    );
                }
            }
        }
    }
}
