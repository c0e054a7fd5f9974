//! `t:htmlEntityDecode`.

use super::bytes::{is_hex, strtol_low_byte};
use memchr::memchr;

/// Index after an optional `;` at `j`.
#[inline]
fn skip_semicolon(input: &[u8], j: usize) -> usize {
    if input.get(j) == Some(&b';') {
        j + 1
    } else {
        j
    }
}

/// `t:htmlEntityDecode`: `&#DDD;`, `&#xHH;` (the `;` is optional, any
/// number of digits, value truncated to one byte) and the named entities
/// `&quot;` `&amp;` `&lt;` `&gt;` `&nbsp;` (case-insensitive; `&nbsp;` → 0xA0).
/// Anything else (including `&apos;`) is left alone.
///
/// v3: libmodsecurity 3.0.13 briefly capped numeric entities at 2 hex / 3
/// decimal digits and matched entity names as prefixes of the alphanumeric
/// run; the digit cap was a bypass (CVE-2025-27110, fixed in 3.0.14). This
/// follows ModSecurity 2.9 / libmodsecurity 3.0.12 and 3.0.14: unlimited
/// digits and exact (case-insensitive) names.
pub(super) fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'&', input)?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut changed = false;
    let mut i = first;
    while i < n {
        if input[i] != b'&' {
            let len = memchr(b'&', &input[i..]).unwrap_or(n - i);
            out.extend_from_slice(&input[i..i + len]);
            i += len;
            continue;
        }
        // Number of raw bytes to copy when this is not a decodable entity.
        let mut copy = 1;
        if i + 1 < n {
            let mut j = i + 1;
            if input[j] == b'#' {
                copy = 2;
                if j + 1 < n {
                    j += 1;
                    let radix = if input[j] == b'x' || input[j] == b'X' {
                        copy = 3;
                        j += 1;
                        16
                    } else {
                        10
                    };
                    let k = j;
                    while j < n
                        && (if radix == 16 {
                            is_hex(input[j])
                        } else {
                            input[j].is_ascii_digit()
                        })
                    {
                        j += 1;
                    }
                    if j > k {
                        out.push(strtol_low_byte(&input[k..j], radix));
                        i = skip_semicolon(input, j);
                        changed = true;
                        continue;
                    }
                }
            } else {
                let k = j;
                while j < n && input[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                if j > k {
                    let name = &input[k..j];
                    let decoded = [
                        (&b"quot"[..], b'"'),
                        (b"amp", b'&'),
                        (b"lt", b'<'),
                        (b"gt", b'>'),
                        (b"nbsp", 0xa0),
                    ]
                    .iter()
                    .find(|(entity, _)| name.eq_ignore_ascii_case(entity))
                    .map(|&(_, c)| c);
                    if let Some(c) = decoded {
                        out.push(c);
                        i = skip_semicolon(input, j);
                        changed = true;
                        continue;
                    }
                    copy = j - k + 1;
                }
            }
        }
        let end = (i + copy).min(n);
        out.extend_from_slice(&input[i..end]);
        i = end;
    }
    changed.then_some(out)
}
