//! `t:compressWhitespace`, `t:removeWhitespace` and `t:trim`,
//! `t:trimLeft`, `t:trimRight`.

use super::bytes::{at, changed, is_space};
use memchr::memmem;

/// Classifies the character at `i`: returns its length in bytes and whether
/// it is whitespace. Whitespace is C `isspace()`, U+00A0 (NBSP) and U+0085
/// (NEL) encoded as UTF-8, and a raw 0xA0 byte (Latin-1 NBSP) that is not
/// part of a well-formed UTF-8 character.
#[inline]
pub(crate) fn ws_class(input: &[u8], i: usize) -> (usize, bool) {
    let b = input[i];
    if b < 0x80 {
        return (1, is_space(b));
    }
    if b == 0xa0 {
        // Never the first byte of a UTF-8 character.
        return (1, true);
    }
    if b == 0xc2 && matches!(at(input, i + 1), 0xa0 | 0x85) {
        return (2, true);
    }
    let len = match b {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (1, false),
    };
    match input.get(i..i + len) {
        Some(seq) if std::str::from_utf8(seq).is_ok() => (len, false),
        _ => (1, false),
    }
}

/// Where the run of ASCII bytes that are not whitespace starting at `i` ends.
#[inline]
fn plain_run_end(input: &[u8], i: usize) -> usize {
    input[i..]
        .iter()
        .position(|&b| b >= 0x80 || is_space(b))
        .map_or(input.len(), |p| i + p)
}

/// `t:compressWhitespace`: each run of whitespace becomes one space.
///
/// v3 only knows ASCII `isspace()`; v2 also treats every 0xA0 byte as
/// whitespace, which corrupts UTF-8 characters whose last byte is 0xA0
/// (`à` = C3 A0). This follows Coraza: ASCII whitespace, UTF-8 NBSP and NEL,
/// and a Latin-1 NBSP byte outside any UTF-8 character.
pub(super) fn compress_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    let suspicious = input
        .iter()
        .any(|&b| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x85 | 0xa0));
    if !suspicious && memmem::find(input, b"  ").is_none() {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut in_ws = false;
    let mut i = 0;
    while i < n {
        // Runs of ASCII that is not whitespace are copied whole.
        let end = plain_run_end(input, i);
        if end > i {
            out.extend_from_slice(&input[i..end]);
            in_ws = false;
            i = end;
            continue;
        }
        let (len, ws) = ws_class(input, i);
        if ws {
            if !in_ws {
                out.push(b' ');
                in_ws = true;
            }
        } else {
            out.extend_from_slice(&input[i..i + len]);
            in_ws = false;
        }
        i += len;
    }
    changed(input, out)
}

/// `t:removeWhitespace`: removes all whitespace (same definition as
/// compressWhitespace).
///
/// v3 removes ASCII whitespace plus every 0xA0 and 0xC2 byte, mangling
/// UTF-8 text (`©` = C2 A9 loses its lead byte); v2 removes ASCII whitespace
/// and 0xA0 bytes. This removes UTF-8 NBSP/NEL and stray 0xA0 bytes only.
pub(super) fn remove_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    let suspicious = input.iter().any(|&b| is_space(b) || b == 0x85 || b == 0xa0);
    if !suspicious {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        // Runs of ASCII that is not whitespace are copied whole.
        let end = plain_run_end(input, i);
        if end > i {
            out.extend_from_slice(&input[i..end]);
            i = end;
            continue;
        }
        let (len, ws) = ws_class(input, i);
        if !ws {
            out.extend_from_slice(&input[i..i + len]);
        }
        i += len;
    }
    changed(input, out)
}

/// `t:trim`, `t:trimLeft`, `t:trimRight`: C `isspace()` only.
pub(super) fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut start = 0;
    let mut end = input.len();
    if left {
        start = input.iter().position(|&b| !is_space(b)).unwrap_or(end);
    }
    if right {
        end = input[start..]
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(start, |p| start + p + 1);
    }
    if start == 0 && end == input.len() {
        None
    } else {
        Some(input[start..end].to_vec())
    }
}
