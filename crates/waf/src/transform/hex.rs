//! `t:hexDecode`, `t:hexEncode` and `t:sqlHexDecode`.

use super::bytes::{changed, hex_digit, is_hex, x2c};

/// `t:hexDecode`: every pair of bytes becomes one byte; a trailing odd byte
/// is dropped. As in ModSecurity (v2 and v3) pairs are not validated, so a
/// non-hex digit yields an arbitrary (but deterministic) byte: `0z` → `#`.
/// Coraza returns an empty string for invalid input instead.
pub(super) fn hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let out = input
        .chunks_exact(2)
        .map(|pair| x2c(pair[0], pair[1]))
        .collect();
    changed(input, out)
}

/// `t:hexEncode`: lowercase hex.
pub(super) fn hex_encode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    for &b in input {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b));
    }
    Some(out)
}

/// `t:sqlHexDecode`: each `0x` followed by at least one pair of hex digits
/// is replaced by the decoded pairs (`0x414243` → `ABC`); an odd trailing
/// digit is kept. Everything else is copied.
pub(super) fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    let starts_hex = |i: usize| {
        i + 3 < n
            && input[i] == b'0'
            && (input[i + 1] == b'x' || input[i + 1] == b'X')
            && is_hex(input[i + 2])
            && is_hex(input[i + 3])
    };
    let first = memchr::memchr_iter(b'0', input).find(|&i| starts_hex(i))?;
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < n {
        if starts_hex(i) {
            i += 2;
            while i + 1 < n && is_hex(input[i]) && is_hex(input[i + 1]) {
                out.push(x2c(input[i], input[i + 1]));
                i += 2;
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}
