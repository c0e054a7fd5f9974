//! `t:cmdLine`.

use super::bytes::changed;

/// `t:cmdLine`: deletes `\ " ' ^`, turns each run of `space , ; \t \r \n`
/// into one space, deletes a space before `/` or `(`, and lowercases ASCII.
///
/// v2 stopped at the first NUL byte; this follows v3 and processes the
/// whole value.
pub(super) fn cmd_line(input: &[u8]) -> Option<Vec<u8>> {
    let trigger = |c: u8| {
        c.is_ascii_uppercase()
            || matches!(
                c,
                b'"' | b'\'' | b'\\' | b'^' | b' ' | b',' | b';' | b'\t' | b'\r' | b'\n'
            )
    };
    let first = input.iter().position(|&c| trigger(c))?;
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut space = false;
    for &c in &input[first..] {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                space = false;
            }
        }
    }
    changed(input, out)
}
