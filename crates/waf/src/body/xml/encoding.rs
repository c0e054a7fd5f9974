//! Decoding of an XML body to UTF-8 (BOM, declared encoding, UTF-16,
//! Latin-9, CP1252), line-end normalization and the first invalid character.

use super::parser::is_ws;

/// Decodes the input to UTF-8. Returns `None` for an unsupported encoding;
/// the flag is false when decoding stopped at an invalid sequence.
/// With `partial`, a character cut by the end of the input is left out
/// without making the decoding fail.
pub(super) fn decode(b: &[u8], partial: bool) -> Option<(Vec<u8>, bool)> {
    if b.starts_with(&[0xFF, 0xFE]) || b.starts_with(&[b'<', 0, b'?', 0]) {
        let start = if b[0] == 0xFF { 2 } else { 0 };
        return Some(decode_utf16(&b[start..], false, partial));
    }
    if b.starts_with(&[0xFE, 0xFF]) || b.starts_with(&[0, b'<', 0, b'?']) {
        let start = if b[0] == 0xFE { 2 } else { 0 };
        return Some(decode_utf16(&b[start..], true, partial));
    }
    let b = b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b);
    let enc = declared_encoding(b).map(|e| e.to_ascii_lowercase());
    match enc.as_deref() {
        None | Some(b"utf-8") | Some(b"utf8") => match std::str::from_utf8(b) {
            Ok(_) => Some((b.to_vec(), true)),
            // `error_len() == None`: a sequence cut by the end of the input.
            Err(e) => Some((
                b[..e.valid_up_to()].to_vec(),
                partial && e.error_len().is_none(),
            )),
        },
        Some(b"iso-8859-1") | Some(b"iso8859-1") | Some(b"iso_8859-1") | Some(b"latin1")
        | Some(b"latin-1") | Some(b"l1") => Some((from_single_byte(b, |c| c as u32), true)),
        Some(b"iso-8859-15") | Some(b"iso8859-15") | Some(b"latin-9") | Some(b"latin9") => {
            Some((from_single_byte(b, latin9), true))
        }
        Some(b"windows-1252") | Some(b"cp1252") => Some((from_single_byte(b, cp1252), true)),
        Some(b"us-ascii") | Some(b"ascii") => match b.iter().position(|&c| c >= 0x80) {
            None => Some((b.to_vec(), true)),
            Some(i) => Some((b[..i].to_vec(), false)),
        },
        // UTF-16 declared without a BOM in an 8-bit looking stream, or an
        // encoding we cannot decode: libxml2 fails (or decodes something we
        // cannot inspect); report the document as malformed.
        _ => None,
    }
}

fn decode_utf16(b: &[u8], be: bool, partial: bool) -> (Vec<u8>, bool) {
    let units = b.chunks_exact(2).map(|c| {
        if be {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    let n_units = b.len() / 2;
    let mut out = String::with_capacity(n_units);
    let mut seen = 0usize;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                seen += c.len_utf16();
                out.push(c);
            }
            Err(e) => {
                // A high surrogate in the last unit was cut from its pair.
                let cut = partial
                    && seen + 1 == n_units
                    && (0xD800..0xDC00).contains(&e.unpaired_surrogate());
                return (out.into_bytes(), cut);
            }
        }
    }
    (out.into_bytes(), b.len() & 1 == 0 || partial)
}

fn from_single_byte(b: &[u8], map: fn(u8) -> u32) -> Vec<u8> {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        s.push(char::from_u32(map(c)).unwrap_or('\u{FFFD}'));
    }
    s.into_bytes()
}

fn latin9(c: u8) -> u32 {
    match c {
        0xA4 => 0x20AC,
        0xA6 => 0x160,
        0xA8 => 0x161,
        0xB4 => 0x17D,
        0xB8 => 0x17E,
        0xBC => 0x152,
        0xBD => 0x153,
        0xBE => 0x178,
        _ => c as u32,
    }
}

fn cp1252(c: u8) -> u32 {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039,
        0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178,
    ];
    if (0x80..0xA0).contains(&c) {
        HIGH[(c - 0x80) as usize] as u32
    } else {
        c as u32
    }
}

/// The `encoding` pseudo-attribute of a leading XML declaration.
fn declared_encoding(b: &[u8]) -> Option<&[u8]> {
    if !b.starts_with(b"<?xml") || !b.get(5).is_some_and(|&c| is_ws(c) || c == b'\r') {
        return None;
    }
    let head = &b[..b.len().min(1024)];
    let end = memchr::memmem::find(head, b"?>")?;
    let decl = &head[..end];
    let pos = memchr::memmem::find(decl, b"encoding")?;
    let mut i = pos + 8;
    while i < decl.len() && (is_ws(decl[i]) || decl[i] == b'\r') {
        i += 1;
    }
    if decl.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while i < decl.len() && (is_ws(decl[i]) || decl[i] == b'\r') {
        i += 1;
    }
    let q = *decl.get(i)?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    let rest = &decl[i + 1..];
    let e = memchr::memchr(q, rest)?;
    Some(&rest[..e])
}

/// `\r\n` and lone `\r` → `\n`.
pub(super) fn normalize(b: &[u8]) -> Vec<u8> {
    if memchr::memchr(b'\r', b).is_none() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' {
            out.push(b'\n');
            if b.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// Length of the prefix made of XML Chars (the input is valid UTF-8).
pub(super) fn first_invalid_char(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r' {
            return i;
        }
        // U+FFFE / U+FFFF
        if c == 0xEF
            && b.get(i + 1) == Some(&0xBF)
            && matches!(b.get(i + 2), Some(0xBE) | Some(0xBF))
        {
            return i;
        }
        i += 1;
    }
    b.len()
}
