//! Path traversal after full decoding and segment resolution.
//!
//! A value is decoded until it stops changing (at most [`MAX_LAYERS`]
//! times): percent-encoding (so `%252e` is two layers), IIS `%uHHHH`,
//! overlong UTF-8 (`%c0%af` is `/`), and the Unicode look-alikes servers
//! fold to ASCII (fullwidth `．` `／` `＼`, `∕`). Then `\` is a separator, a
//! NUL ends the path (what a C file API sees), `;params` are dropped from a
//! segment (`..;/`, Tomcat), a segment of dots (and trailing spaces, as
//! Windows reads it) is a parent step, and the path is resolved segment by
//! segment.
//!
//! It is an attack when the resolved path
//! - climbs out of its root by two levels or more (`../../x`), or by one
//!   when the climb was hidden (decoded twice or more, `%u`, overlong, a
//!   look-alike, `..;`, a NUL, `....`);
//! - hides a parent step behind path parameters (`/app/..;/admin`: a proxy
//!   sees a name, Tomcat a `..`);
//! - or reaches a well-known sensitive file ([`SENSITIVE`]: `/etc/passwd`,
//!   `/proc/self/`, `win.ini`, `WEB-INF/web.xml`, ...) through a `..` or
//!   through encoding.
//!
//! Gives up, by design: a single plain `../` (a relative link one level up:
//! CRS' 930110 already scores it), a plain absolute path to a sensitive file
//! without `..` (CRS' 930120 scores those by name), `..` inside a path that
//! stays within its root (`/a/b/../c`), version strings (`1..2`), file names
//! with dots, URLs whose path stays inside the site.

use crate::text::{capped, hex, push_char};
use crate::{stats, Detector, Finding};

/// Most decoding passes (a triple-encoded `%25252e` needs three).
const MAX_LAYERS: usize = 5;

/// Most segments of one path that are resolved.
const MAX_SEGMENTS: usize = 256;

/// Files and places whose name in a resolved path means the request wants
/// them (lower case, matched at a segment boundary; a trailing `/` is a
/// directory prefix).
pub const SENSITIVE: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/sudoers",
    "etc/crontab",
    "etc/security/",
    "proc/self/",
    "proc/version",
    "proc/cmdline",
    ".ssh/",
    ".bash_history",
    ".htpasswd",
    ".htaccess",
    ".aws/credentials",
    ".git/config",
    ".env",
    "var/log/",
    "win.ini",
    "boot.ini",
    "system.ini",
    "windows/system32/",
    "windows/repair/",
    "winnt/",
    "inetpub/",
    "web-inf/web.xml",
    "web-inf/",
    "meta-inf/",
    "wp-config.php",
    "localsettings.php",
    "config/database.yml",
];

/// Finds a path traversal in `input` (see the module documentation).
pub fn detect(input: impl AsRef<[u8]>) -> Option<Finding> {
    let found = find(capped(input.as_ref()));
    stats::record(Detector::Traversal, found.is_some());
    found
}

/// How a value was hidden on its way to the path.
#[derive(Debug, Default, Clone, Copy)]
struct Hidden {
    /// Decoding passes that changed the value.
    layers: usize,
    /// `%uHHHH`, overlong UTF-8 or a Unicode look-alike.
    exotic: bool,
}

fn find(input: &[u8]) -> Option<Finding> {
    // Cheap exit: nothing that decodes, no dot, nothing non-ASCII.
    if !input.iter().any(|&b| b == b'.' || b == b'%' || b >= 0x80) {
        return None;
    }
    let (decoded, hidden) = decode(input);
    for candidate in decoded.split(|&b| is_delimiter(b)) {
        if let Some(f) = judge(candidate, hidden) {
            return Some(f);
        }
    }
    None
}

/// Bytes that separate paths within a value (a sentence, a query string,
/// a JSON document); `;` is not one (`..;/`), nor is a space (`.. /`).
fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'\t'
            | b'\n'
            | b'\r'
            | b'"'
            | b'\''
            | b'<'
            | b'>'
            | b'|'
            | b','
            | b'('
            | b')'
            | b'='
            | b'&'
            | b'`'
            | b'['
            | b']'
            | b'{'
            | b'}'
    )
}

/// Decodes `input` until it stops changing.
fn decode(input: &[u8]) -> (Vec<u8>, Hidden) {
    let mut hidden = Hidden::default();
    let mut cur = input.to_vec();
    let mut next = Vec::with_capacity(cur.len());
    for _ in 0..MAX_LAYERS {
        next.clear();
        let changed = percent_decode(&cur, &mut next, &mut hidden);
        std::mem::swap(&mut cur, &mut next);
        next.clear();
        let folded = fold(&cur, &mut next);
        if folded {
            hidden.exotic = true;
            std::mem::swap(&mut cur, &mut next);
        }
        if !changed && !folded {
            break;
        }
        hidden.layers += 1;
    }
    (cur, hidden)
}

/// One pass of `%hh` and `%uHHHH` decoding; whether anything changed.
fn percent_decode(s: &[u8], out: &mut Vec<u8>, hidden: &mut Hidden) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&b| hex(b)),
                s.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                changed = true;
                continue;
            }
            if matches!(s.get(i + 1), Some(b'u' | b'U')) && i + 6 <= s.len() {
                let digits = &s[i + 2..i + 6];
                if let Some(cp) = digits
                    .iter()
                    .try_fold(0u32, |acc, &b| hex(b).map(|v| acc * 16 + v))
                {
                    push_char(out, char::from_u32(cp).unwrap_or('\u{fffd}'));
                    hidden.exotic = true;
                    i += 6;
                    changed = true;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    changed
}

/// Folds overlong UTF-8 encodings of ASCII and the Unicode look-alikes of
/// `.`, `/` and `\` to ASCII; whether anything was folded.
fn fold(s: &[u8], out: &mut Vec<u8>) -> bool {
    let cont = |b: Option<&u8>| b.is_some_and(|&b| (0x80..0xC0).contains(&b));
    let mut folded = false;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        // Overlong two-byte: C0 xx / C1 xx.
        if (b == 0xC0 || b == 0xC1) && cont(s.get(i + 1)) {
            out.push((((b & 0x1F) as u32) << 6 | (s[i + 1] & 0x3F) as u32) as u8);
            i += 2;
            folded = true;
            continue;
        }
        // Overlong three-byte: E0 80..9F xx.
        if b == 0xE0
            && s.get(i + 1).is_some_and(|&c| (0x80..0xA0).contains(&c))
            && cont(s.get(i + 2))
        {
            let cp = ((s[i + 1] & 0x3F) as u32) << 6 | (s[i + 2] & 0x3F) as u32;
            if cp < 0x80 {
                out.push(cp as u8);
                i += 3;
                folded = true;
                continue;
            }
        }
        if b >= 0xE0 {
            // Three-byte look-alikes.
            let alike = match s.get(i..i + 3) {
                Some([0xEF, 0xBC, 0x8E]) => Some(b'.'), // U+FF0E fullwidth full stop
                Some([0xE2, 0x80, 0xA4]) => Some(b'.'), // U+2024 one dot leader
                Some([0xEF, 0xBC, 0x8F]) => Some(b'/'), // U+FF0F fullwidth solidus
                Some([0xE2, 0x88, 0x95]) => Some(b'/'), // U+2215 division slash
                Some([0xEF, 0xBC, 0xBC]) => Some(b'\\'), // U+FF3C fullwidth reverse solidus
                Some([0xE2, 0x88, 0x96]) => Some(b'\\'), // U+2216 set minus
                _ => None,
            };
            if let Some(c) = alike {
                out.push(c);
                i += 3;
                folded = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    folded
}

/// One step of a path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Up,
    Down(&'a [u8]),
}

/// A resolved path: how far it climbed out of its root, whether it used
/// `..` at all, how the climb was hidden, and where it ended.
struct Resolved<'a> {
    escape: usize,
    climbed: bool,
    odd_parent: bool,
    /// A parent step with path parameters (`..;/`): read as `..` by
    /// Tomcat and as a name by a proxy in front of it.
    param_parent: bool,
    end: Vec<&'a [u8]>,
}

/// Judges one path candidate of the decoded value.
fn judge(candidate: &[u8], hidden: Hidden) -> Option<Finding> {
    // A NUL ends the path the file system sees.
    let (path, nul) = match candidate.iter().position(|&b| b == 0) {
        Some(n) => (&candidate[..n], true),
        None => (candidate, false),
    };
    let path = url_path(path);
    if path.len() < 2 {
        return None;
    }
    let r = resolve(path);
    let hidden_climb = hidden.layers >= 2 || hidden.exotic || r.odd_parent || nul;
    let evidence = || String::from_utf8_lossy(candidate).replace('\\', "/");
    if r.escape >= 2 {
        return Some(Finding::new(
            Detector::Traversal,
            "path climbs out of its root",
            &evidence(),
        ));
    }
    if r.escape >= 1 && hidden_climb {
        return Some(Finding::new(
            Detector::Traversal,
            "encoded path climbs out of its root",
            &evidence(),
        ));
    }
    if r.param_parent {
        return Some(Finding::new(
            Detector::Traversal,
            "path parameter hides a parent step",
            &evidence(),
        ));
    }
    if (r.climbed || hidden.layers >= 2 || hidden.exotic) && reaches_sensitive(&r.end) {
        return Some(Finding::new(
            Detector::Traversal,
            "path reaches a sensitive file",
            &evidence(),
        ));
    }
    None
}

/// The path of a URL (`scheme://host/path?query` → `/path`), else `s`.
fn url_path(s: &[u8]) -> &[u8] {
    let Some(at) = s.windows(3).position(|w| w == b"://") else {
        return s;
    };
    let scheme = &s[..at];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return s;
    }
    let rest = &s[at + 3..];
    let path = match rest.iter().position(|&b| b == b'/' || b == b'\\') {
        Some(p) if !scheme.eq_ignore_ascii_case(b"file") => &rest[p..],
        Some(_) => rest,
        None => return b"",
    };
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    &path[..end]
}

/// Resolves `path` segment by segment (`/` and `\` separate).
fn resolve(path: &[u8]) -> Resolved<'_> {
    let mut depth: usize = 0;
    let mut r = Resolved {
        escape: 0,
        climbed: false,
        odd_parent: false,
        param_parent: false,
        end: Vec::new(),
    };
    for seg in path.split(|&b| b == b'/' || b == b'\\').take(MAX_SEGMENTS) {
        match step(seg, &mut r.odd_parent, &mut r.param_parent) {
            None => {}
            Some(Step::Up) => {
                r.climbed = true;
                if depth == 0 {
                    r.escape += 1;
                    r.end.clear();
                } else {
                    depth -= 1;
                    r.end.pop();
                }
            }
            Some(Step::Down(name)) => {
                depth += 1;
                r.end.push(name);
            }
        }
    }
    r
}

/// What one segment does; `odd` is set for a parent step spelled other
/// than `..` (`..;x`, `....`, `.. `).
fn step<'a>(seg: &'a [u8], odd: &mut bool, param: &mut bool) -> Option<Step<'a>> {
    // Path parameters (`..;jsessionid=x`) are not part of the name.
    let (name, params) = match seg.iter().position(|&b| b == b';') {
        Some(p) => (&seg[..p], true),
        None => (seg, false),
    };
    // A drive (`c:`) is a root, not a step.
    if name.len() == 2 && name[1] == b':' && name[0].is_ascii_alphabetic() {
        return None;
    }
    // Windows ignores trailing spaces and dots.
    let trimmed = {
        let end = name.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        &name[..end]
    };
    if trimmed.is_empty() || trimmed == b"." {
        return None;
    }
    if trimmed.iter().all(|&b| b == b'.') {
        if trimmed.len() > 2 || params || trimmed.len() != name.len() {
            *odd = true;
        }
        *param |= params;
        return Some(Step::Up);
    }
    Some(Step::Down(trimmed))
}

/// Whether the resolved path names a sensitive file or place.
fn reaches_sensitive(end: &[&[u8]]) -> bool {
    let mut path = Vec::with_capacity(64);
    for seg in end {
        path.push(b'/');
        path.extend(seg.iter().map(u8::to_ascii_lowercase));
    }
    path.push(b'/');
    SENSITIVE.iter().any(|s| {
        let target = s.trim_end_matches('/').as_bytes();
        // `/target/` anywhere: a file (followed by the final `/`) or a
        // directory prefix.
        path.windows(target.len() + 2)
            .any(|w| w[0] == b'/' && w[w.len() - 1] == b'/' && &w[1..w.len() - 1] == target)
    })
}

#[cfg(test)]
mod tests;
