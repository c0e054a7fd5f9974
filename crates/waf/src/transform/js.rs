//! `t:jsDecode`.

use super::bytes::{
    at, copy_until_backslash, full_width, is_hex, is_odigit, octal_run, strtol_low_byte, x2c,
};
use memchr::memchr;

/// `t:jsDecode`: `\uHHHH` (low byte, full-width ASCII folded), `\xHH`,
/// `\OOO` (at most one byte: a 3-digit escape starting above `3` uses only
/// two digits), `\a \b \f \n \r \t \v`, and `\C` → `C` for anything else.
/// A lone trailing backslash is kept.
pub(super) fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'\\', input)?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut changed = false;
    let mut i = first;
    while i < n {
        if input[i] != b'\\' {
            i = copy_until_backslash(input, i, &mut out);
            continue;
        }
        let next = at(input, i + 1);
        if i + 5 < n && next == b'u' && input[i + 2..i + 6].iter().all(|&b| is_hex(b)) {
            out.push(full_width(
                x2c(input[i + 4], input[i + 5]),
                input[i + 2],
                input[i + 3],
            ));
            i += 6;
        } else if i + 3 < n && next == b'x' && is_hex(input[i + 2]) && is_hex(input[i + 3]) {
            out.push(x2c(input[i + 2], input[i + 3]));
            i += 4;
        } else if i + 1 < n && is_odigit(next) {
            let mut j = octal_run(input, i + 1);
            if j == 3 && next > b'3' {
                j = 2;
            }
            out.push(strtol_low_byte(&input[i + 1..i + 1 + j], 8));
            i += 1 + j;
        } else if i + 1 < n {
            out.push(match next {
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                c => c,
            });
            i += 2;
        } else {
            // Lone trailing backslash: kept.
            out.push(b'\\');
            i += 1;
            continue;
        }
        changed = true;
    }
    changed.then_some(out)
}
