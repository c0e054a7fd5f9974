//! TLS ClientHello fingerprint in the JA4 style.
//!
//! **Reads** the raw bytes a client sends on a fresh TCP connection, before
//! any TLS library sees them ([`ClientHelloCollector`]): TLS records of type
//! handshake (0x16), reassembled across records and across pushes, until the
//! whole ClientHello message is there. [`ja4_from_client_hello`] reads the
//! handshake message itself (4-byte header included).
//!
//! **Output** ([`Ja4::as_str`]): the JA4 TLS-client fingerprint, written from
//! FoxIO's public JA4 specification (the TLS-client part is BSD-3 licensed),
//! e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`, always 36 characters:
//!
//! - `t`: TLS over TCP (QUIC and DTLS are not read here);
//! - TLS version: the highest non-GREASE value of `supported_versions`
//!   (0x002b) when present, else the hello's version — `13`, `12`, `11`,
//!   `10`, `s3`, `s2`, `d1`, `d2`, `d3`, or `00` when unknown;
//! - `d` when the SNI extension (0x0000) is present, else `i`;
//! - two-digit counts of cipher suites and of extensions, GREASE excluded,
//!   capped at 99 (SNI and ALPN are counted);
//! - first and last character of the first ALPN value; when either byte is
//!   not ASCII alphanumeric, the first and last hex digit of the value
//!   instead (`0xAB 0xCD` → `ad`); `00` when there is no ALPN, no value, an
//!   empty value, or a first value that is a GREASE code;
//! - `_` and the first 12 hex digits of SHA-256 over the cipher suites
//!   (GREASE excluded) as 4-digit lower-case hex, sorted, joined by `,`;
//! - `_` and the first 12 hex digits of SHA-256 over the extensions (GREASE,
//!   SNI and ALPN excluded) the same way, followed — when the hello has
//!   signature algorithms (0x000d) — by `_` and the signature algorithms in
//!   their original order (GREASE excluded), joined by `,`.
//!
//! A list with nothing in it gives `000000000000` instead of a hash.
//!
//! **Caps**: [`MAX_HELLO_BYTES`] (16 KiB) of raw input before the hello is
//! complete, and the same for the ClientHello message; past that the
//! connection is [`Collect::NotTls`]. Lists are bounded by the message size.
//!
//! **Must not**: panic on any input, look at anything past the ClientHello,
//! or do any work once the collector has decided.

use super::headers::write_hex;
use sha2::{Digest, Sha256};

/// Raw bytes read at most before the ClientHello must be complete; also the
/// largest ClientHello message accepted.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// Length of [`Ja4::as_str`].
pub const JA4_LEN: usize = 36;

/// A JA4 TLS-client fingerprint (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ja4 {
    text: [u8; JA4_LEN],
}

impl Ja4 {
    /// The text form, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII (ALPN characters are checked alphanumeric).
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The first part (`t13d1516h2`): version, SNI, counts and ALPN.
    pub fn prefix(&self) -> &str {
        self.as_str().get(..10).unwrap_or("")
    }
}

impl std::fmt::Debug for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ja4({})", self.as_str())
    }
}

impl std::fmt::Display for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`ClientHelloCollector::push`] has found so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// The ClientHello is not complete yet.
    NeedMore,
    /// The ClientHello was read; its fingerprint.
    Done(Ja4),
    /// Not TLS: the first byte is not a handshake record, the records or the
    /// hello are malformed, or the cap was reached first.
    NotTls,
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, …, 0xfafa.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// A vector with a one-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Big-endian u16 values of a slice (a trailing odd byte is ignored).
fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]))
}

fn version_code(v: u16) -> [u8; 2] {
    match v {
        0x0304 => *b"13",
        0x0303 => *b"12",
        0x0302 => *b"11",
        0x0301 => *b"10",
        0x0300 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

/// The ALPN characters of the first protocol name in an ALPN extension body.
fn alpn_code(ext: &[u8]) -> [u8; 2] {
    let mut r = Reader { buf: ext };
    let Some(list) = r.vec16() else {
        return *b"00";
    };
    let Some(first) = (Reader { buf: list }).vec8() else {
        return *b"00";
    };
    let (Some(&a), Some(&z)) = (first.first(), first.last()) else {
        return *b"00";
    };
    if first.len() == 2 && is_grease(u16::from_be_bytes([a, z])) {
        return *b"00";
    }
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        [a, z]
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        [HEX[usize::from(a >> 4)], HEX[usize::from(z & 0x0f)]]
    }
}

/// Feeds `values` as 4-digit lower-case hex joined by `,` into `h`.
fn hash_list(h: &mut Sha256, values: &[u16]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        let mut out = [0u8; 4];
        write_hex(&v.to_be_bytes(), &mut out);
        h.update(out);
    }
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// The JA4 fingerprint of a ClientHello handshake message (type 1, with its
/// 4-byte header; bytes after the declared length are ignored). `None` when
/// it is not a well-formed ClientHello.
pub fn ja4_from_client_hello(handshake_msg: &[u8]) -> Option<Ja4> {
    let mut r = Reader { buf: handshake_msg };
    if r.u8()? != 1 {
        return None;
    }
    let len = r.take(3)?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    let mut r = Reader { buf: r.take(len)? };

    let legacy_version = r.u16()?;
    r.take(32)?; // random
    if r.vec8()?.len() > 32 {
        return None; // session id
    }
    let suites = r.vec16()?;
    if !suites.chunks_exact(2).remainder().is_empty() {
        return None;
    }
    r.vec8()?; // compression methods
    let mut ciphers: Vec<u16> = u16s(suites).filter(|&v| !is_grease(v)).collect();

    let mut ext_count = 0usize;
    let mut extensions: Vec<u16> = Vec::new();
    let mut sni = false;
    let mut alpn = *b"00";
    let mut supported_version: Option<u16> = None;
    let mut sig_algs: Vec<u16> = Vec::new();
    if !r.buf.is_empty() {
        let mut exts = Reader { buf: r.vec16()? };
        while !exts.buf.is_empty() {
            let kind = exts.u16()?;
            let body = exts.vec16()?;
            if is_grease(kind) {
                continue;
            }
            ext_count += 1;
            match kind {
                0x0000 => sni = true,
                0x0010 => alpn = alpn_code(body),
                0x002b => {
                    let list = (Reader { buf: body }).vec8().unwrap_or(&[]);
                    supported_version = u16s(list).filter(|&v| !is_grease(v)).max();
                }
                0x000d => {
                    let list = (Reader { buf: body }).vec16().unwrap_or(&[]);
                    sig_algs = u16s(list).filter(|&v| !is_grease(v)).collect();
                }
                _ => {}
            }
            if kind != 0x0000 && kind != 0x0010 {
                extensions.push(kind);
            }
        }
    }

    let mut text = [0u8; JA4_LEN];
    text[0] = b't';
    text[1..3].copy_from_slice(&version_code(supported_version.unwrap_or(legacy_version)));
    text[3] = if sni { b'd' } else { b'i' };
    text[4..6].copy_from_slice(&two_digits(ciphers.len()));
    text[6..8].copy_from_slice(&two_digits(ext_count));
    text[8..10].copy_from_slice(&alpn);
    text[10] = b'_';
    text[23] = b'_';

    if ciphers.is_empty() {
        text[11..23].fill(b'0');
    } else {
        ciphers.sort_unstable();
        let mut h = Sha256::new();
        hash_list(&mut h, &ciphers);
        write_hex(&h.finalize()[..6], &mut text[11..23]);
    }
    if extensions.is_empty() {
        text[24..36].fill(b'0');
    } else {
        extensions.sort_unstable();
        let mut h = Sha256::new();
        hash_list(&mut h, &extensions);
        if !sig_algs.is_empty() {
            h.update(b"_");
            hash_list(&mut h, &sig_algs);
        }
        write_hex(&h.finalize()[..6], &mut text[24..36]);
    }
    Some(Ja4 { text })
}

/// Reads the first bytes of a TCP connection until the ClientHello is
/// complete (see the module documentation).
///
/// Memory: a 5-byte record header and the handshake bytes read so far, at
/// most [`MAX_HELLO_BYTES`].
#[derive(Debug)]
pub struct ClientHelloCollector {
    state: State,
    /// The current record's header, while incomplete.
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current record's body still to come.
    record_left: usize,
    /// Handshake bytes reassembled from the records so far.
    handshake: Vec<u8>,
    /// Raw bytes consumed so far.
    consumed: usize,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Collecting,
    Final(Collect),
}

impl Default for ClientHelloCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientHelloCollector {
    /// A collector for a fresh connection.
    pub fn new() -> Self {
        ClientHelloCollector {
            state: State::Collecting,
            header: [0; 5],
            header_len: 0,
            record_left: 0,
            handshake: Vec::new(),
            consumed: 0,
        }
    }

    /// Feeds the next bytes the client sent. Returns [`Collect::NeedMore`]
    /// until the ClientHello is complete or the input is known not to be
    /// TLS; after that, the same final answer, without reading `bytes`.
    /// Bytes after the ClientHello are ignored.
    pub fn push(&mut self, bytes: &[u8]) -> Collect {
        if let State::Final(c) = self.state {
            return c;
        }
        let result = self.read(bytes);
        if result != Collect::NeedMore {
            self.state = State::Final(result);
            self.handshake = Vec::new();
        }
        result
    }

    /// The final answer if there is one yet.
    pub fn result(&self) -> Option<Collect> {
        match self.state {
            State::Collecting => None,
            State::Final(c) => Some(c),
        }
    }

    fn read(&mut self, mut input: &[u8]) -> Collect {
        while !input.is_empty() {
            if self.record_left == 0 {
                let n = (5 - self.header_len).min(input.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
                self.header_len += n;
                self.consumed += n;
                input = &input[n..];
                // Reject as early as the bytes allow: `GET `, an HTTP/2
                // preface or garbage is refused on its first byte.
                let h = &self.header[..self.header_len];
                if h[0] != 0x16
                    || h.get(1).is_some_and(|&b| b != 3)
                    || h.get(2).is_some_and(|&b| b > 4)
                {
                    return Collect::NotTls;
                }
                if self.header_len < 5 {
                    return Collect::NeedMore;
                }
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if len == 0 || len > MAX_HELLO_BYTES {
                    return Collect::NotTls;
                }
                self.record_left = len;
                self.header_len = 0;
            }
            let n = self.record_left.min(input.len());
            self.consumed += n;
            if self.consumed > MAX_HELLO_BYTES {
                return Collect::NotTls;
            }
            self.handshake.extend_from_slice(&input[..n]);
            self.record_left -= n;
            input = &input[n..];
            match self.hello_len() {
                Err(()) => return Collect::NotTls,
                Ok(Some(total)) if self.handshake.len() >= total => {
                    return match ja4_from_client_hello(&self.handshake[..total]) {
                        Some(ja4) => Collect::Done(ja4),
                        None => Collect::NotTls,
                    };
                }
                Ok(_) => {}
            }
        }
        if self.consumed > MAX_HELLO_BYTES {
            Collect::NotTls
        } else {
            Collect::NeedMore
        }
    }

    /// The whole ClientHello message's length (header included) once its
    /// header is in; an error when the first message is not a ClientHello
    /// or is over the cap.
    fn hello_len(&self) -> Result<Option<usize>, ()> {
        let h = &self.handshake;
        if h.is_empty() {
            return Ok(None);
        }
        if h[0] != 1 {
            return Err(());
        }
        if h.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        if len + 4 > MAX_HELLO_BYTES {
            return Err(());
        }
        Ok(Some(len + 4))
    }
}

#[cfg(test)]
mod tests;
