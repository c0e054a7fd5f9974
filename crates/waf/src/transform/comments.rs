//! `t:replaceComments`, `t:removeComments` and `t:removeCommentsChar`.

use super::bytes::{at, changed};
use memchr::{memchr, memmem};

/// `t:replaceComments`: each `/* ... */` becomes one space; an unterminated
/// comment runs to the end and also becomes one space. A lone `*/` is kept.
pub(super) fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
    let first = memmem::find(input, b"/*")?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    loop {
        // `i` is at the "/*" that opens a comment.
        match memmem::find(&input[i + 2..], b"*/") {
            Some(p) => {
                out.push(b' ');
                i += 2 + p + 2;
            }
            None => {
                out.push(b' ');
                break;
            }
        }
        match memmem::find(&input[i..], b"/*") {
            Some(p) => {
                out.extend_from_slice(&input[i..i + p]);
                i += p;
            }
            None => {
                out.extend_from_slice(&input[i..]);
                break;
            }
        }
    }
    Some(out)
}

/// `t:removeComments`: removes `/* ... */` and `<!-- ... -->` comments and
/// truncates the value at `--` or `#` (outside a comment). An unterminated
/// comment becomes one space.
///
/// Reproduces a quirk shared by v2, v3 and Coraza (and pinned by their test
/// vectors): the byte right after a comment's end marker is copied without
/// being examined, and when the marker ends the value that byte is the C
/// string terminator, so `/* x */` → `"\0"`.
pub(super) fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
    if memchr(b'#', input).is_none()
        && memmem::find(input, b"/*").is_none()
        && memmem::find(input, b"--").is_none()
    {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut incomment = false;
    let mut i = 0;
    while i < n {
        let c = input[i];
        if !incomment {
            if c == b'/' && at(input, i + 1) == b'*' {
                incomment = true;
                i += 2;
            } else if c == b'<' && input.get(i + 1..i + 4) == Some(b"!--") {
                incomment = true;
                i += 4;
            } else if (c == b'-' && at(input, i + 1) == b'-') || c == b'#' {
                break;
            } else {
                out.push(c);
                i += 1;
            }
        } else if c == b'*' && at(input, i + 1) == b'/' {
            incomment = false;
            out.push(at(input, i + 2));
            i += 3;
        } else if c == b'-' && input.get(i + 1..i + 3) == Some(b"->") {
            incomment = false;
            out.push(at(input, i + 3));
            i += 4;
        } else {
            i += 1;
        }
    }
    if incomment {
        out.push(b' ');
    }
    changed(input, out)
}

/// `t:removeCommentsChar`: deletes the comment markers `/*`, `*/`, `<!--`,
/// `-->`, `--` and `#`, keeping the text between them.
pub(super) fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
    if memchr(b'#', input).is_none()
        && memmem::find(input, b"/*").is_none()
        && memmem::find(input, b"*/").is_none()
        && memmem::find(input, b"--").is_none()
    {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let c = input[i];
        let next = at(input, i + 1);
        let skip = match c {
            b'/' if next == b'*' => 2,
            b'*' if next == b'/' => 2,
            b'<' if input.get(i + 1..i + 4) == Some(b"!--") => 4,
            b'-' if next == b'-' && at(input, i + 2) == b'>' => 3,
            b'-' if next == b'-' => 2,
            b'#' => 1,
            _ => 0,
        };
        if skip == 0 {
            out.push(c);
            i += 1;
        } else {
            i += skip;
        }
    }
    changed(input, out)
}
