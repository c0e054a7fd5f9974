//! `application/x-www-form-urlencoded` (also used for `QUERY_STRING` →
//! `ARGS_GET`).
//!
//! Splitting follows ModSecurity: pieces separated by `&`, each split at its
//! first `=`; a piece without `=` is a name with an empty value; empty pieces
//! (`a&&b`, trailing `&`) are skipped, as ModSecurity v2 and Coraza do.
//! Names and values are decoded like libmodsecurity's
//! `urldecode_nonstrict`: `+` → space, `%XX` → byte, and an invalid `%`
//! sequence is kept verbatim (and reported as `URLENCODED_ERROR`).

/// Outcome of [`parse_urlencoded_limited`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlEncodedResult {
    /// An invalid `%` encoding was seen (`URLENCODED_ERROR`).
    pub invalid_encoding: bool,
    /// More than `max_args` arguments were present; the rest were dropped.
    pub exceeded: bool,
}

/// Parses `input` and appends the decoded (name, value) pairs to `out`.
pub fn parse_urlencoded(input: &[u8], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    parse_urlencoded_limited(input, out, usize::MAX);
}

/// Like [`parse_urlencoded`], appending at most `max_args` pairs.
pub fn parse_urlencoded_limited(
    input: &[u8],
    out: &mut Vec<(Vec<u8>, Vec<u8>)>,
    max_args: usize,
) -> UrlEncodedResult {
    let mut res = UrlEncodedResult::default();
    let mut added = 0usize;
    for piece in input.split(|&c| c == b'&') {
        if piece.is_empty() {
            continue;
        }
        if added >= max_args {
            res.exceeded = true;
            break;
        }
        let (name, value) = match memchr::memchr(b'=', piece) {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        let mut n = Vec::with_capacity(name.len());
        let mut v = Vec::with_capacity(value.len());
        res.invalid_encoding |= urldecode_nonstrict(name, &mut n);
        res.invalid_encoding |= urldecode_nonstrict(value, &mut v);
        out.push((n, v));
        added += 1;
    }
    res
}

/// Decodes `input` into `out` (`+` → space, `%XX` → byte, anything else
/// verbatim). Returns true when an invalid `%` sequence was seen.
pub fn urldecode_nonstrict(input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut invalid = false;
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' {
            match (
                input.get(i + 1).and_then(|&h| hex(h)),
                input.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                _ => {
                    invalid = true;
                    out.push(b'%');
                }
            }
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    invalid
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Vec<(String, String)> {
        let mut v = Vec::new();
        parse_urlencoded(s, &mut v);
        v.into_iter()
            .map(|(a, b)| {
                (
                    String::from_utf8_lossy(&a).into_owned(),
                    String::from_utf8_lossy(&b).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(x: &[(&str, &str)]) -> Vec<(String, String)> {
        x.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn basic() {
        assert_eq!(p(b"a=1&b=2"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(p(b"a&b"), pairs(&[("a", ""), ("b", "")]));
        assert_eq!(p(b"a&&b&"), pairs(&[("a", ""), ("b", "")]));
        assert_eq!(p(b"=v"), pairs(&[("", "v")]));
        assert_eq!(p(b"a=b=c"), pairs(&[("a", "b=c")]));
        assert_eq!(p(b""), pairs(&[]));
        assert_eq!(p(b"&&&"), pairs(&[]));
    }

    #[test]
    fn decoding() {
        assert_eq!(p(b"a+b=c+d%20e"), pairs(&[("a b", "c d e")]));
        assert_eq!(p(b"x=%3Cscript%3e"), pairs(&[("x", "<script>")]));
        assert_eq!(p(b"x=%"), pairs(&[("x", "%")]));
        assert_eq!(p(b"x=%4"), pairs(&[("x", "%4")]));
        assert_eq!(p(b"x=%zz1"), pairs(&[("x", "%zz1")]));
        assert_eq!(p(b"x=%41"), pairs(&[("x", "A")]));
        assert_eq!(p(b"%26=%3D"), pairs(&[("&", "=")]));
        let mut out = Vec::new();
        assert!(!urldecode_nonstrict(b"%00%ff", &mut out));
        assert_eq!(out, vec![0, 255]);
        out.clear();
        assert!(urldecode_nonstrict(b"100%", &mut out));
        assert_eq!(out, b"100%");
    }

    #[test]
    fn limits() {
        let mut v = Vec::new();
        let r = parse_urlencoded_limited(b"a&b&c&d", &mut v, 3);
        assert!(r.exceeded);
        assert_eq!(v.len(), 3);
        v.clear();
        let r = parse_urlencoded_limited(b"a&b&c&", &mut v, 3);
        assert!(!r.exceeded);
        assert!(!r.invalid_encoding);
    }
}
