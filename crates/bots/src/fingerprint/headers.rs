//! HTTP header fingerprint: the names, order and case of a request's headers.
//!
//! **Reads** either the raw HTTP/1.x request head as received ([`http1`]) or
//! the header names of an HTTP/2 request in arrival order ([`from_names`]).
//! Header values are never looked at, only names.
//!
//! **Output** ([`HeaderFingerprint::as_str`]): a fixed 19-character text such
//! as `h1n08c_3f2a9b0c1d4e` — our own format, not FoxIO's JA4H:
//!
//! | part | meaning |
//! | --- | --- |
//! | `h1` / `h2` | HTTP version the head arrived on |
//! | `n08` | number of headers, two digits, capped at 99 |
//! | `c` / `l` / `m` | case pattern: every name Capitalized-Like-This, every name lower-case, or mixed (no headers counts as `l`) |
//! | `_3f2a9b0c1d4e` | first 12 hex digits of SHA-256 over the names joined by `,`, exactly as sent (case kept on HTTP/1); `000000000000` when there are no headers |
//!
//! Alongside the text, the same pass records what a scorer needs: whether
//! `accept-language`, any `sec-fetch-*`, `sec-ch-ua` (or `sec-ch-ua-*`),
//! `cookie`, `referer` and `accept-encoding` were present (names compared
//! case-insensitively), and the header count.
//!
//! **Caps**: at most [`MAX_HEADERS`] header lines are looked at; later ones
//! are ignored (they count neither in the text nor in the booleans). The
//! value is `Copy` and stores its text inline: nothing is allocated.
//!
//! **Must not**: panic or allocate on network input. [`http1`] returns `None`
//! for a head it cannot read (no request line, a header line without `:`, a
//! name that is not an RFC 9110 token).

use sha2::{Digest, Sha256};

/// Header lines looked at, at most; the rest are ignored.
pub const MAX_HEADERS: usize = 256;

/// Length of [`HeaderFingerprint::as_str`]: `h1n08c_` plus 12 hex digits.
pub const HEADER_FP_LEN: usize = 19;

/// The HTTP version a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.0 or HTTP/1.1.
    H1,
    /// HTTP/2.
    H2,
}

/// The header fingerprint of one request (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeaderFingerprint {
    text: [u8; HEADER_FP_LEN],
    count: u16,
    flags: u8,
}

const F_ACCEPT_LANGUAGE: u8 = 1;
const F_SEC_FETCH: u8 = 1 << 1;
const F_SEC_CH_UA: u8 = 1 << 2;
const F_COOKIE: u8 = 1 << 3;
const F_REFERER: u8 = 1 << 4;
const F_ACCEPT_ENCODING: u8 = 1 << 5;

impl HeaderFingerprint {
    /// The text form, e.g. `h1n08c_3f2a9b0c1d4e`.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII letters, digits and `_`.
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The HTTP version recorded in the text.
    pub fn version(&self) -> HttpVersion {
        if self.text[1] == b'2' {
            HttpVersion::H2
        } else {
            HttpVersion::H1
        }
    }

    /// Number of headers looked at (at most [`MAX_HEADERS`]; the text caps
    /// it at 99).
    pub fn header_count(&self) -> usize {
        usize::from(self.count)
    }

    /// An `Accept-Language` header was sent.
    pub fn has_accept_language(&self) -> bool {
        self.flags & F_ACCEPT_LANGUAGE != 0
    }

    /// Any `Sec-Fetch-*` header was sent.
    pub fn has_sec_fetch(&self) -> bool {
        self.flags & F_SEC_FETCH != 0
    }

    /// A `Sec-CH-UA` (or `Sec-CH-UA-*`) client hint was sent.
    pub fn has_sec_ch_ua(&self) -> bool {
        self.flags & F_SEC_CH_UA != 0
    }

    /// A `Cookie` header was sent.
    pub fn has_cookie(&self) -> bool {
        self.flags & F_COOKIE != 0
    }

    /// A `Referer` header was sent.
    pub fn has_referer(&self) -> bool {
        self.flags & F_REFERER != 0
    }

    /// An `Accept-Encoding` header was sent.
    pub fn has_accept_encoding(&self) -> bool {
        self.flags & F_ACCEPT_ENCODING != 0
    }
}

/// Accumulates names one by one: the hash, the count, the case pattern and
/// the flags.
struct Builder {
    hasher: Sha256,
    count: u16,
    all_lower: bool,
    all_capitalized: bool,
    flags: u8,
}

impl Builder {
    fn new() -> Self {
        Builder {
            hasher: Sha256::new(),
            count: 0,
            all_lower: true,
            all_capitalized: true,
            flags: 0,
        }
    }

    /// Adds one name; returns false once the cap is reached (the name is
    /// then ignored).
    fn add(&mut self, name: &[u8]) -> bool {
        if usize::from(self.count) >= MAX_HEADERS {
            return false;
        }
        if self.count > 0 {
            self.hasher.update(b",");
        }
        self.hasher.update(name);
        self.count += 1;
        if name.iter().any(u8::is_ascii_uppercase) {
            self.all_lower = false;
        }
        if !is_capitalized(name) {
            self.all_capitalized = false;
        }
        self.flags |= flag_for(name);
        true
    }

    fn finish(self, version: HttpVersion) -> HeaderFingerprint {
        let mut text = [0u8; HEADER_FP_LEN];
        text[0] = b'h';
        text[1] = match version {
            HttpVersion::H1 => b'1',
            HttpVersion::H2 => b'2',
        };
        text[2] = b'n';
        let shown = self.count.min(99) as u8;
        text[3] = b'0' + shown / 10;
        text[4] = b'0' + shown % 10;
        text[5] = if self.all_lower {
            b'l'
        } else if self.all_capitalized {
            b'c'
        } else {
            b'm'
        };
        text[6] = b'_';
        if self.count == 0 {
            text[7..].fill(b'0');
        } else {
            let digest = self.hasher.finalize();
            write_hex(&digest[..6], &mut text[7..]);
        }
        HeaderFingerprint {
            text,
            count: self.count,
            flags: self.flags,
        }
    }
}

/// Writes `bytes` as lower-case hex into `out` (which must be twice as long;
/// extra room is left untouched, missing room truncates).
pub(crate) fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        if let Some(low) = pair.get_mut(1) {
            *low = HEX[usize::from(b & 0x0f)];
        }
    }
}

/// `Capitalized-Like-This`: each `-`-separated part starts with a
/// non-lower-case byte and has no upper-case letter after it.
fn is_capitalized(name: &[u8]) -> bool {
    name.split(|&b| b == b'-')
        .all(|part| match part.split_first() {
            None => true,
            Some((first, rest)) => {
                !first.is_ascii_lowercase() && !rest.iter().any(u8::is_ascii_uppercase)
            }
        })
}

fn flag_for(name: &[u8]) -> u8 {
    let starts = |prefix: &[u8]| {
        name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if name.eq_ignore_ascii_case(b"accept-language") {
        F_ACCEPT_LANGUAGE
    } else if starts(b"sec-fetch-") {
        F_SEC_FETCH
    } else if name.eq_ignore_ascii_case(b"sec-ch-ua") || starts(b"sec-ch-ua-") {
        F_SEC_CH_UA
    } else if name.eq_ignore_ascii_case(b"cookie") {
        F_COOKIE
    } else if name.eq_ignore_ascii_case(b"referer") {
        F_REFERER
    } else if name.eq_ignore_ascii_case(b"accept-encoding") {
        F_ACCEPT_ENCODING
    } else {
        0
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Lines of a head split on `\n`, each without its `\r`.
fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The fingerprint of an HTTP/1.x request head: the request line, then
/// `Name: value` lines, up to an empty line (which may be missing; bare `\n`
/// line ends are accepted). Obsolete line folding (a line starting with a
/// space or tab) continues the previous value and is not a header. Bytes
/// after the empty line are ignored.
///
/// `None` when the request line is not `METHOD TARGET HTTP/x`, or a header
/// line has no `:` or a name that is not a token.
pub fn http1(raw_head: &[u8]) -> Option<HeaderFingerprint> {
    let mut it = lines(raw_head);
    let request_line = it.next()?;
    let mut parts = request_line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if method.is_empty()
        || !method.iter().copied().all(is_tchar)
        || target.is_empty()
        || !version.starts_with(b"HTTP/1.")
        || parts.next().is_some()
    {
        return None;
    }
    let mut b = Builder::new();
    for line in it {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // obs-fold: part of the previous value
        }
        let colon = line.iter().position(|&c| c == b':')?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return None;
        }
        if !b.add(name) {
            break;
        }
    }
    Some(b.finish(HttpVersion::H1))
}

/// The fingerprint of a request's header names given in arrival order, for
/// HTTP/2 (names already lower-case, as the protocol requires). Names
/// starting with `:` (pseudo-headers) are skipped: their order is part of
/// the HTTP/2 fingerprint instead.
pub fn from_names<'a>(
    version: HttpVersion,
    names: impl Iterator<Item = &'a str>,
) -> HeaderFingerprint {
    let mut b = Builder::new();
    for name in names {
        if name.starts_with(':') {
            continue;
        }
        if !b.add(name.as_bytes()) {
            break;
        }
    }
    b.finish(version)
}

#[cfg(test)]
pub(crate) mod tests;
