//! The boundary parameter of a `multipart/form-data` `Content-Type` and
//! its checks (`MULTIPART_BOUNDARY_QUOTED`, `..._WHITESPACE`, invalid
//! boundaries).

use super::*;

pub(super) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// Occurrences of `boundary` (case-insensitive) with a `=` somewhere after
/// them (ModSecurity's `count_boundary_params`).
fn count_boundary_params(s: &[u8]) -> usize {
    let Some(last_eq) = memchr::memrchr(b'=', s) else {
        return 0;
    };
    let lower = s.to_ascii_lowercase();
    memchr::memmem::find_iter(&lower, b"boundary")
        .filter(|&i| i + 8 <= last_eq)
        .count()
}

/// RFC 2046 boundary characters; a space may not be the last one.
fn boundary_characters_valid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_alphanumeric() || (c == b' ' && i + 1 < b.len()) || b"'()+_,-./:=?".contains(&c)
    })
}

/// Validates the `Content-Type` header and extracts the boundary
/// (ModSecurity's `Multipart::init`).
pub(super) fn parse_boundary(
    ct: &[u8],
    flags: &mut MultipartFlags,
) -> Result<Vec<u8>, &'static str> {
    let mut ct = trim_ows(ct);
    // C string semantics.
    if let Some(nul) = memchr::memchr(0, ct) {
        ct = &ct[..nul];
    }
    if ct.is_empty() {
        flags.error = true;
        return Err("Multipart: Content-Type header not available.");
    }
    if ct.len() > 1024 {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (length).");
    }
    if ct.len() < 19 || !ct[..19].eq_ignore_ascii_case(b"multipart/form-data") {
        flags.error = true;
        return Err("Multipart: Invalid MIME type.");
    }
    if count_boundary_params(ct) > 1 {
        flags.error = true;
        return Err("Multipart: Multiple boundary parameters in C-T.");
    }
    let Some(pos) = memchr::memmem::find(ct, b"boundary") else {
        flags.error = true;
        if count_boundary_params(ct) > 0 {
            return Err("Multipart: Invalid boundary in C-T (case sensitivity).");
        }
        return Err("Multipart: Boundary not found in C-T.");
    };
    let mut seen_semicolon = false;
    for &c in ct.get(19..pos).unwrap_or(b"") {
        if is_c_space(c) {
            continue;
        }
        if !seen_semicolon && c == b';' {
            seen_semicolon = true;
        } else {
            flags.error = true;
            return Err("Multipart: Invalid boundary in C-T (malformed).");
        }
    }
    if !seen_semicolon {
        flags.missing_semicolon = true;
    }
    let after = pos + 8;
    let Some(eq) = memchr::memchr(b'=', &ct[after..]).map(|i| i + after) else {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (malformed).");
    };
    for &c in &ct[after..eq] {
        if is_c_space(c) {
            flags.boundary_whitespace = true;
        } else {
            flags.error = true;
            return Err("Multipart: Invalid boundary in C-T (parameter name).");
        }
    }
    let b = &ct[eq + 1..];
    if b.first().is_some_and(|&c| is_c_space(c)) {
        flags.boundary_whitespace = true;
    }
    let mut boundary = if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        flags.boundary_quoted = true;
        b[1..b.len() - 1].to_vec()
    } else {
        if b.first() == Some(&b'"') || (b.len() >= 2 && b[b.len() - 1] == b'"') {
            flags.error = true;
            return Err("Multipart: Invalid boundary in C-T (quote).");
        }
        b.to_vec()
    };
    if boundary.is_empty() {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (empty).");
    }
    if count_boundary_params(&boundary) != 0 {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (content).");
    }
    // Tolerate parameters (e.g. charset=) after the boundary.
    if !boundary_characters_valid(&boundary) {
        if let Some(semi) = memchr::memchr(b';', &boundary) {
            boundary.truncate(semi);
        }
    }
    if !boundary_characters_valid(&boundary) {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (characters).");
    }
    if boundary.is_empty() {
        flags.error = true;
        return Err("Multipart: Invalid boundary in C-T (empty).");
    }
    Ok(boundary)
}
