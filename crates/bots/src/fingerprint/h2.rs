//! HTTP/2 connection preface fingerprint: SETTINGS, connection
//! WINDOW_UPDATE, PRIORITY frames and pseudo-header order (in the style of
//! Akamai's HTTP/2 fingerprint; our own reading of it).
//!
//! **Reads** the bytes a client sends on a fresh HTTP/2 connection
//! ([`H2PrefaceCollector`]): the preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
//! then frames, up to the end of the first HEADERS frame's header block
//! (END_HEADERS, on the HEADERS frame or a CONTINUATION frame after it).
//!
//! **Output** ([`H2Fingerprint::as_str`]), four parts joined by `|`:
//!
//! 1. SETTINGS entries (every non-ACK SETTINGS frame before the HEADERS) as
//!    `id:value` in arrival order joined by `;`, or `0` when there are none;
//! 2. the first connection-level (stream 0) WINDOW_UPDATE increment, or `00`;
//! 3. PRIORITY frames as `stream:exclusive:depends_on:weight` joined by `,`,
//!    or `0`; `exclusive` is `0`/`1` and `weight` is the RFC 9113 weight,
//!    i.e. the byte on the wire plus one (1–256);
//! 4. the pseudo-header order of the first HEADERS block, one letter each
//!    (`m` `:method`, `a` `:authority`, `s` `:scheme`, `p` `:path`) joined
//!    by `,`, or `0` when none could be read.
//!
//! For example Chrome: `1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p`.
//! [`H2Fingerprint::hash_str`] is the first 12 hex digits of SHA-256 of the
//! text.
//!
//! The pseudo-header order decodes just enough HPACK: indexed fields and
//! literal fields whose name is a static-table index (`:authority` 1,
//! `:method` 2–3, `:path` 4–5, `:scheme` 6–7) or a plain (not Huffman-coded)
//! literal name. It stops at the first field that is not a request
//! pseudo-header, at a dynamic-table index, at an unknown pseudo-header
//! (e.g. `:protocol`), and at a Huffman-coded literal name: there is no
//! Huffman decoder here, and clients index pseudo-header names in practice.
//! HEADERS padding and priority fields are skipped per the frame's flags.
//!
//! **Caps**: [`MAX_PREFACE_BYTES`] (16 KiB) of input before the first header
//! block is complete (else [`H2Collect::NotH2`]); at most [`MAX_SETTINGS`]
//! settings, [`MAX_PRIORITIES`] PRIORITY frames and [`MAX_PSEUDO`]
//! pseudo-headers recorded (later ones are read and dropped).
//!
//! **Must not**: panic on any input, keep anything but the current frame
//! and the first header block, or do any work once the collector has
//! decided.

use super::headers::write_hex;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::Arc;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes read at most before the first header block must be complete.
pub const MAX_PREFACE_BYTES: usize = 16 * 1024;
/// SETTINGS entries recorded at most.
pub const MAX_SETTINGS: usize = 32;
/// PRIORITY frames recorded at most.
pub const MAX_PRIORITIES: usize = 16;
/// Pseudo-headers recorded at most.
pub const MAX_PSEUDO: usize = 8;

const DATA_HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// An HTTP/2 preface fingerprint (see the module documentation). Cloning
/// is cheap (the text is shared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct H2Fingerprint {
    text: Arc<str>,
    hash: [u8; 12],
}

impl H2Fingerprint {
    /// The text form, e.g. `1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first 12 hex digits of SHA-256 of [`as_str`](Self::as_str).
    pub fn hash_str(&self) -> &str {
        std::str::from_utf8(&self.hash).unwrap_or("")
    }

    fn new(text: String) -> Self {
        let mut hash = [b'0'; 12];
        write_hex(&Sha256::digest(text.as_bytes())[..6], &mut hash);
        H2Fingerprint {
            text: text.into(),
            hash,
        }
    }
}

impl std::fmt::Debug for H2Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "H2Fingerprint({})", self.as_str())
    }
}

/// What [`H2PrefaceCollector::push`] has found so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum H2Collect {
    /// The first header block is not complete yet.
    NeedMore,
    /// The first header block was read; the fingerprint.
    Done(H2Fingerprint),
    /// Not HTTP/2: the preface does not match, a frame before the header
    /// block is malformed, or the cap was reached first.
    NotH2,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// Reads the first bytes of a cleartext-or-decrypted HTTP/2 connection
/// until the first header block is complete (see the module documentation).
#[derive(Debug, Default)]
pub struct H2PrefaceCollector {
    done: Option<H2Collect>,
    preface_seen: usize,
    header: [u8; 9],
    header_len: usize,
    frame: Option<Frame>,
    payload: Vec<u8>,
    consumed: usize,
    settings: Vec<(u16, u32)>,
    window: Option<u32>,
    priorities: Vec<(u32, bool, u32, u16)>,
    /// The first HEADERS frame's stream while CONTINUATION frames follow.
    continuing: Option<u32>,
    block: Vec<u8>,
}

impl H2PrefaceCollector {
    /// A collector for a fresh connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes the client sent. [`H2Collect::NeedMore`] until
    /// the first header block is complete or the input is known not to be
    /// HTTP/2; after that, the same final answer without reading `bytes`.
    /// Bytes after the first header block are ignored.
    pub fn push(&mut self, bytes: &[u8]) -> H2Collect {
        if let Some(done) = &self.done {
            return done.clone();
        }
        let result = self.read(bytes);
        if result != H2Collect::NeedMore {
            self.done = Some(result.clone());
            // Free what was kept.
            *self = H2PrefaceCollector {
                done: self.done.take(),
                ..Self::default()
            };
        }
        result
    }

    /// The final answer if there is one yet.
    pub fn result(&self) -> Option<&H2Collect> {
        self.done.as_ref()
    }

    fn read(&mut self, mut input: &[u8]) -> H2Collect {
        if self.preface_seen < PREFACE.len() {
            let n = (PREFACE.len() - self.preface_seen).min(input.len());
            if input[..n] != PREFACE[self.preface_seen..self.preface_seen + n] {
                return H2Collect::NotH2;
            }
            self.preface_seen += n;
            self.consumed += n;
            input = &input[n..];
        }
        while !input.is_empty() {
            let frame = match self.frame {
                Some(f) => f,
                None => {
                    let n = (9 - self.header_len).min(input.len());
                    self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
                    self.header_len += n;
                    self.consumed += n;
                    input = &input[n..];
                    if self.header_len < 9 {
                        break;
                    }
                    self.header_len = 0;
                    let h = self.header;
                    let f = Frame {
                        len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                    };
                    if self.consumed + f.len > MAX_PREFACE_BYTES {
                        return H2Collect::NotH2;
                    }
                    self.frame = Some(f);
                    self.payload.clear();
                    f
                }
            };
            let n = (frame.len - self.payload.len()).min(input.len());
            self.payload.extend_from_slice(&input[..n]);
            self.consumed += n;
            input = &input[n..];
            if self.payload.len() == frame.len {
                self.frame = None;
                match self.frame_done(frame) {
                    Ok(false) => {}
                    Ok(true) => return H2Collect::Done(self.fingerprint()),
                    Err(()) => return H2Collect::NotH2,
                }
            }
        }
        if self.consumed >= MAX_PREFACE_BYTES {
            H2Collect::NotH2
        } else {
            H2Collect::NeedMore
        }
    }

    /// Takes in one whole frame; true once the first header block is
    /// complete.
    fn frame_done(&mut self, f: Frame) -> Result<bool, ()> {
        let p = &self.payload;
        if let Some(stream) = self.continuing {
            if f.kind != CONTINUATION || f.stream != stream {
                return Err(());
            }
            self.block.extend_from_slice(p);
            return Ok(f.flags & FLAG_END_HEADERS != 0);
        }
        match f.kind {
            SETTINGS => {
                if f.stream != 0
                    || !p.chunks_exact(6).remainder().is_empty()
                    || (f.flags & FLAG_ACK != 0 && !p.is_empty())
                {
                    return Err(());
                }
                if f.flags & FLAG_ACK == 0 {
                    for e in p.chunks_exact(6) {
                        if self.settings.len() < MAX_SETTINGS {
                            let id = u16::from_be_bytes([e[0], e[1]]);
                            self.settings
                                .push((id, u32::from_be_bytes([e[2], e[3], e[4], e[5]])));
                        }
                    }
                }
            }
            WINDOW_UPDATE => {
                if p.len() != 4 {
                    return Err(());
                }
                if f.stream == 0 && self.window.is_none() {
                    self.window = Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
                }
            }
            PRIORITY => {
                if p.len() != 5 || f.stream == 0 {
                    return Err(());
                }
                if self.priorities.len() < MAX_PRIORITIES {
                    let dep = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    self.priorities.push((
                        f.stream,
                        dep & 0x8000_0000 != 0,
                        dep & 0x7fff_ffff,
                        u16::from(p[4]) + 1,
                    ));
                }
            }
            DATA_HEADERS => {
                if f.stream == 0 {
                    return Err(());
                }
                let mut block: &[u8] = p;
                if f.flags & FLAG_PADDED != 0 {
                    let (&pad, rest) = block.split_first().ok_or(())?;
                    let keep = rest.len().checked_sub(usize::from(pad)).ok_or(())?;
                    block = &rest[..keep];
                }
                if f.flags & FLAG_PRIORITY != 0 {
                    block = block.get(5..).ok_or(())?;
                }
                self.block = block.to_vec();
                if f.flags & FLAG_END_HEADERS != 0 {
                    return Ok(true);
                }
                self.continuing = Some(f.stream);
            }
            CONTINUATION => return Err(()),
            _ => {} // DATA (0x0) here is a client error, but not ours to judge
        }
        Ok(false)
    }

    fn fingerprint(&self) -> H2Fingerprint {
        let mut text = String::with_capacity(128);
        if self.settings.is_empty() {
            text.push('0');
        }
        for (i, (id, value)) in self.settings.iter().enumerate() {
            let sep = if i > 0 { ";" } else { "" };
            let _ = write!(text, "{sep}{id}:{value}");
        }
        match self.window {
            Some(w) => {
                let _ = write!(text, "|{w}|");
            }
            None => text.push_str("|00|"),
        }
        if self.priorities.is_empty() {
            text.push('0');
        }
        for (i, (stream, excl, dep, weight)) in self.priorities.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(text, "{sep}{stream}:{}:{dep}:{weight}", u8::from(*excl));
        }
        text.push('|');
        let order = pseudo_order(&self.block);
        if order.is_empty() {
            text.push('0');
        }
        for (i, letter) in order.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push(char::from(*letter));
        }
        H2Fingerprint::new(text)
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), from `pos`;
/// `None` when truncated or over `u32`.
fn hpack_int(block: &[u8], pos: &mut usize, n: u32) -> Option<u32> {
    let max = (1u32 << n) - 1;
    let mut value = u32::from(*block.get(*pos)?) & max;
    *pos += 1;
    if value < max {
        return Some(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos)?;
        *pos += 1;
        if shift > 28 {
            return None;
        }
        value = value.checked_add(u32::from(b & 0x7f).checked_shl(shift)?)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
    }
}

/// An HPACK string literal from `pos`: (Huffman-coded, bytes).
fn hpack_str<'a>(block: &'a [u8], pos: &mut usize) -> Option<(bool, &'a [u8])> {
    let huffman = block.get(*pos)? & 0x80 != 0;
    let len = usize::try_from(hpack_int(block, pos, 7)?).ok()?;
    let s = block.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some((huffman, s))
}

fn static_letter(index: u32) -> Option<u8> {
    match index {
        1 => Some(b'a'),
        2 | 3 => Some(b'm'),
        4 | 5 => Some(b'p'),
        6 | 7 => Some(b's'),
        _ => None,
    }
}

fn name_letter(name: &[u8]) -> Option<u8> {
    match name {
        b":authority" => Some(b'a'),
        b":method" => Some(b'm'),
        b":path" => Some(b'p'),
        b":scheme" => Some(b's'),
        _ => None,
    }
}

/// The request pseudo-headers at the start of an HPACK header block, as
/// letters, up to [`MAX_PSEUDO`] (see the module documentation for where
/// it stops).
fn pseudo_order(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while out.len() < MAX_PSEUDO {
        let Some(&b) = block.get(pos) else { break };
        let letter = if b & 0x80 != 0 {
            match hpack_int(block, &mut pos, 7).and_then(static_letter) {
                Some(l) => {
                    out.push(l);
                    continue;
                }
                None => break,
            }
        } else if b & 0xe0 == 0x20 {
            // Dynamic table size update.
            if hpack_int(block, &mut pos, 5).is_none() {
                break;
            }
            continue;
        } else {
            let prefix = if b & 0x40 != 0 { 6 } else { 4 };
            match hpack_int(block, &mut pos, prefix) {
                Some(0) => match hpack_str(block, &mut pos) {
                    Some((false, name)) => name_letter(name),
                    _ => None,
                },
                Some(i) => static_letter(i),
                None => None,
            }
        };
        let Some(letter) = letter else { break };
        out.push(letter);
        if hpack_str(block, &mut pos).is_none() {
            break; // the value is cut short: nothing more to read
        }
    }
    out
}

#[cfg(test)]
mod tests;
