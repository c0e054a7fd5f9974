//! `t:base64Decode`, `t:base64DecodeExt` and `t:base64Encode`.

use super::bytes::changed;

/// Value of a character of the standard base64 alphabet.
#[inline]
fn b64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Accumulates base64 sextets into bytes; a trailing partial group yields
/// the bytes its bits complete (`QQ` → `A`), a single sextet yields nothing.
#[derive(Default)]
struct B64Acc {
    out: Vec<u8>,
    pending: u8,
    count: usize,
}

impl B64Acc {
    #[inline]
    fn push(&mut self, v: u8) {
        match self.count % 4 {
            0 => self.pending = v << 2,
            1 => {
                self.out.push(self.pending | v >> 4);
                self.pending = (v & 0x0f) << 4;
            }
            2 => {
                self.out.push(self.pending | v >> 2);
                self.pending = (v & 0x03) << 6;
            }
            _ => self.out.push(self.pending | v),
        }
        self.count += 1;
    }
}

/// `t:base64Decode`: decodes until the first byte outside the base64
/// alphabet (padding included) and returns what was decoded so far; CR and
/// LF are skipped.
///
/// v3 (mbedTLS) returns an empty string for any input that is not strictly
/// valid base64 and v2 (APR) stops at the first invalid byte; this follows
/// v2 and Coraza ("decode what you can"), which never hides a payload behind
/// one stray character.
pub(super) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut acc = B64Acc {
        out: Vec::with_capacity(input.len() / 4 * 3 + 3),
        ..B64Acc::default()
    };
    for &c in input {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        match b64_val(c) {
            Some(v) => acc.push(v),
            None => break,
        }
    }
    changed(input, acc.out)
}

/// `t:base64DecodeExt`: forgiving decoder (ModSecurity's
/// `decode_forgiven`): bytes outside the alphabet, whitespace and `=` are
/// skipped, except that a `=` arriving right after the first sextet of a
/// group, and not followed by another `=`, makes the whole result empty.
///
/// Deviation: ModSecurity compares an already-translated sextet against
/// '=' after the loop, so a value ending in `9` right after a complete group
/// (e.g. `QUJD9`) decodes to nothing there; that bug is not reproduced.
pub(super) fn base64_decode_ext(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut acc = B64Acc {
        out: Vec::with_capacity(input.len() / 4 * 3 + 3),
        ..B64Acc::default()
    };
    for (idx, &c) in input.iter().enumerate() {
        if c == b'=' {
            if input.get(idx + 1) != Some(&b'=') && acc.count % 4 == 1 {
                return changed(input, Vec::new());
            }
            continue;
        }
        if let Some(v) = b64_val(c) {
            acc.push(v);
        }
    }
    changed(input, acc.out)
}

/// `t:base64Encode` (standard alphabet, padded).
pub(super) fn base64_encode(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if input.is_empty() {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .encode(input)
            .into_bytes(),
    )
}
