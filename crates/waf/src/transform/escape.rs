//! `t:escapeSeqDecode`.

use super::bytes::{copy_until_backslash, is_hex, is_odigit, octal_run, strtol_low_byte, x2c};
use memchr::memchr;

/// `t:escapeSeqDecode`: ANSI C escapes `\a \b \f \n \r \t \v \\ \? \' \"`,
/// `\xHH` / `\XHH`, and 1-3 octal digits (`\OOO`, value truncated to a
/// byte). For anything else, including an invalid `\x`, the backslash is
/// dropped and the next byte kept. A lone trailing backslash is kept.
pub(super) fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'\\', input)?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut changed = false;
    let mut i = first;
    while i < n {
        if input[i] != b'\\' || i + 1 >= n {
            if input[i] == b'\\' {
                out.push(b'\\');
                i += 1;
            } else {
                i = copy_until_backslash(input, i, &mut out);
            }
            continue;
        }
        let next = input[i + 1];
        let simple = match next {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'?' | b'\'' | b'"' => Some(next),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if (next == b'x' || next == b'X')
            && i + 3 < n
            && is_hex(input[i + 2])
            && is_hex(input[i + 3])
        {
            out.push(x2c(input[i + 2], input[i + 3]));
            i += 4;
        } else if is_odigit(next) {
            let j = octal_run(input, i + 1);
            out.push(strtol_low_byte(&input[i + 1..i + 1 + j], 8));
            i += 1 + j;
        } else {
            out.push(next);
            i += 2;
        }
        changed = true;
    }
    changed.then_some(out)
}
