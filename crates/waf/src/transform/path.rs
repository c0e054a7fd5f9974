//! `t:normalizePath` and `t:normalizePathWin`.

use super::bytes::changed;
use memchr::memchr2;

/// `t:normalizePath` / `t:normalizePathWin`: collapses repeated slashes and
/// resolves `./` and `../` segments. A relative path keeps the `..` segments
/// that have nothing left to remove (`../../x`); an absolute path cannot go
/// above `/`. A trailing slash is kept only if the input had one. The Windows
/// variant first turns every backslash into a slash.
///
/// This is ModSecurity's algorithm (identical in v2 and v3) step by step,
/// not a generic path cleaner: Coraza's `filepath.Clean` differs on inputs
/// such as `/..` (ModSecurity gives an empty string).
pub(super) fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let quick = if win {
        memchr::memchr3(b'/', b'.', b'\\', input)
    } else {
        memchr2(b'/', b'.', input)
    };
    quick?;
    let mut buf = input.to_vec();
    if win {
        for b in buf.iter_mut().filter(|b| **b == b'\\') {
            *b = b'/';
        }
    }
    let end = buf.len() - 1;
    let relative = buf[0] != b'/';
    let trailing = buf[end] == b'/';
    let mut hitroot = false;
    let mut done = false;
    // `dst <= src` always holds, so the output is built in place in `buf`.
    let mut src = 0usize;
    let mut dst = 0usize;
    while !done && src <= end {
        let mut normalize = true;
        if src == end {
            done = true;
        } else if buf[src + 1] != b'/' {
            normalize = false; // not the end of a path segment
        }
        if normalize {
            if src != end && buf[src] == b'/' {
                // Empty segment: the copy below skips repeated slashes.
            } else if buf[src] == b'.' {
                if dst > 0 && buf[dst - 1] == b'.' {
                    // Back-reference.
                    if relative && (hitroot || dst <= 2) {
                        // Nothing to go back to in a relative path: keep "..".
                        hitroot = true;
                    } else {
                        // Remove the back-reference and the previous segment.
                        let mut d = dst as isize - 3;
                        while d > 0 && buf[d as usize] != b'/' {
                            d -= 1;
                        }
                        if d <= 0 {
                            // Do not go above the root.
                            hitroot = true;
                            d = 0;
                            if !relative && src == end {
                                d = 1; // keep the root slash
                            }
                        }
                        dst = d as usize;
                        if done {
                            continue;
                        }
                        src += 1;
                    }
                } else if dst == 0 {
                    // Relative self-reference: ignore.
                    if done {
                        continue;
                    }
                    src += 1;
                } else if buf[dst - 1] == b'/' {
                    // Self-reference: ignore.
                    if done {
                        continue;
                    }
                    dst -= 1;
                    src += 1;
                }
            } else if dst > 0 {
                // A regular path segment.
                hitroot = false;
            }
        }
        // Copy the byte, skipping to the last of several slashes.
        if buf[src] == b'/' {
            while src < end && buf[src + 1] == b'/' {
                src += 1;
            }
            // Do not copy a leading slash into a relative path.
            if relative && dst == 0 {
                src += 1;
                continue;
            }
        }
        buf[dst] = buf[src];
        dst += 1;
        src += 1;
    }
    if !trailing && dst > 0 && buf[dst - 1] == b'/' {
        dst -= 1;
    }
    buf.truncate(dst);
    changed(input, buf)
}
