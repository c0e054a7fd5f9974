//! `t:cssDecode`.

use super::bytes::{copy_until_backslash, full_width, is_hex, is_space, x2c, xsingle2c};
use memchr::memchr;

/// `t:cssDecode` (CSS 2 escapes): a backslash followed by 1-6 hex digits
/// decodes to one byte (the last two digits; full-width ASCII folded when
/// the escape is `ffXX`, `0ffXX` or `00ffXX`), and one whitespace after such
/// an escape is swallowed. Backslash-newline is removed, a backslash before
/// any other byte is dropped, a trailing backslash is dropped.
///
/// Coraza recently switched to emitting the code point as UTF-8; this keeps
/// ModSecurity's single-byte behaviour, which the CRS tests were written for.
pub(super) fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'\\', input)?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < n {
        if input[i] != b'\\' {
            i = copy_until_backslash(input, i, &mut out);
            continue;
        }
        if i + 1 >= n {
            // Backslash at the end: continuation to nothing, dropped.
            break;
        }
        i += 1; // skip the backslash
        let mut j = 0;
        while j < 6 && i + j < n && is_hex(input[i + j]) {
            j += 1;
        }
        if j > 0 {
            let d = &input[i..i + j];
            let last_two = || x2c(d[j - 2], d[j - 1]);
            let byte = match j {
                1 => xsingle2c(d[0]),
                2 | 3 => last_two(),
                4 => full_width(last_two(), d[1], d[0]),
                5 if d[0] == b'0' => full_width(last_two(), d[2], d[1]),
                6 if d[0] == b'0' && d[1] == b'0' => full_width(last_two(), d[3], d[2]),
                _ => last_two(),
            };
            out.push(byte);
            if i + j < n && is_space(input[i + j]) {
                j += 1;
            }
            i += j;
        } else if input[i] == b'\n' {
            i += 1;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    // Every backslash seen was removed, so the output always differs.
    Some(out)
}
