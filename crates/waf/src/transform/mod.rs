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
//!
//! Layout: this file holds the [`Transform`] enum, its names, its trigger
//! byte classes and the [`Transform::apply`] dispatch; each transformation
//! (or small family) lives in its own file (`url.rs` for `t:urlDecode*`,
//! `js.rs` for `t:jsDecode`, …) with shared byte helpers in `bytes.rs`.
//! The test vectors are data, one file per transformation in
//! `crates/waf/testdata/transforms/<name>.txt`, read by `tests.rs`.

mod base64;
mod bytes;
mod case;
mod cmdline;
mod comments;
mod css;
mod escape;
mod hash;
mod hex;
mod html;
mod js;
mod length;
mod nulls;
mod parity;
mod path;
mod url;
mod utf8;
mod whitespace;

use base64::{base64_decode, base64_decode_ext, base64_encode};
use bytes::changed;
use case::{lowercase, uppercase};
use cmdline::cmd_line;
use comments::{remove_comments, remove_comments_char, replace_comments};
use css::css_decode;
use escape::escape_seq_decode;
use hash::md5;
use hex::{hex_decode, hex_encode, sql_hex_decode};
use html::html_entity_decode;
use js::js_decode;
use length::length;
use nulls::{remove_nulls, replace_nulls};
use parity::{parity, Parity};
use path::normalize_path;
use url::{url_decode, url_encode};
use utf8::utf8_to_unicode;
use whitespace::{compress_whitespace, remove_whitespace, trim};

pub use url::url_decode_uni;
pub(crate) use whitespace::ws_class;

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

#[cfg(test)]
mod tests;
