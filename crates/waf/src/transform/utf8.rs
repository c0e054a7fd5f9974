//! `t:utf8toUnicode`.

use super::bytes::{at, changed, hex_digit};

/// Appends `%u` and the lowercase hex of `d`, zero-padded to 4 digits.
fn push_percent_u(out: &mut Vec<u8>, d: u32) {
    out.extend_from_slice(b"%u");
    let digits = ((32 - d.leading_zeros()).div_ceil(4)).max(4);
    for k in (0..digits).rev() {
        out.push(hex_digit((d >> (4 * k)) as u8));
    }
}

/// `t:utf8toUnicode`: every well-formed multi-byte UTF-8 sequence becomes
/// `%uHHHH` (lowercase hex, at least 4 digits).
///
/// Reproduces ModSecurity's handling of bad input: a lead byte (0xC0-0xF7)
/// without the right continuation bytes is dropped; stray continuation bytes
/// and 0xF8-0xFF are copied; lead bytes 0xF5-0xF7 are also copied before
/// their escape; surrogates and overlong forms are escaped and then followed
/// by their raw lead byte. v3: a NUL byte is dropped unless it is the last
/// byte of the value (v2 drops every NUL).
pub(super) fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    let interesting = |(i, &b): (usize, &u8)| b >= 0x80 || (b == 0 && i + 1 < n);
    let first = input.iter().enumerate().position(interesting)?;
    let mut out = Vec::with_capacity(n + n / 2);
    out.extend_from_slice(&input[..first]);
    let cont = |k: usize| at(input, k) & 0xc0 == 0x80;
    let mut i = first;
    while i < n {
        let c = input[i];
        let mut d: u32 = 0;
        let mut seq_len = 0usize;
        if c & 0x80 == 0 {
            if !(c == 0 && i + 1 < n) {
                out.push(c);
            }
        } else if c & 0xe0 == 0xc0 {
            if n >= 2 && cont(i + 1) {
                seq_len = 2;
                d = u32::from(c & 0x1f) << 6 | u32::from(at(input, i + 1) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else if c & 0xf0 == 0xe0 {
            if n >= 3 && cont(i + 1) && cont(i + 2) {
                seq_len = 3;
                d = u32::from(c & 0x0f) << 12
                    | u32::from(at(input, i + 1) & 0x3f) << 6
                    | u32::from(at(input, i + 2) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else if c & 0xf8 == 0xf0 {
            if c >= 0xf5 {
                out.push(c);
            }
            if n >= 4 && cont(i + 1) && cont(i + 2) && cont(i + 3) {
                seq_len = 4;
                d = u32::from(c & 0x07) << 18
                    | u32::from(at(input, i + 1) & 0x3f) << 12
                    | u32::from(at(input, i + 2) & 0x3f) << 6
                    | u32::from(at(input, i + 3) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else {
            out.push(c);
        }
        if (0xd800..=0xdfff).contains(&d) {
            out.push(c);
        }
        let overlong = match seq_len {
            4 => d < 0x1_0000,
            3 => d < 0x800,
            2 => d < 0x80,
            _ => false,
        };
        if overlong {
            out.push(c);
        }
        i += seq_len.max(1);
    }
    changed(input, out)
}
