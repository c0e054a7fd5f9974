//! `multipart/form-data` request bodies, following the checks of
//! libmodsecurity v3's `request_body_processor/multipart.cc` (itself a port
//! of ModSecurity v2's `msc_multipart.c`).
//!
//! The body is cut into "lines" exactly like ModSecurity's 4096-byte line
//! buffer: a chunk ends after `\n`, or when 4096 bytes are buffered (a `\r`
//! is never the last byte of a full buffer). Boundaries are only recognised
//! at the start of a line. Part data keeps its line endings, except the one
//! in front of the next boundary.
//!
//! Deliberate differences from libmodsecurity v3, where v3 is buggy:
//! * v3 drops line endings inside multi-line *field* values (a
//!   `std::string::assign` overwrite); we keep them, as v2 and Coraza do.
//! * v3 ignores the failure of part-header checks (it tests `< 0` on a
//!   `false` return), so those errors set `REQBODY_ERROR` but not
//!   `MULTIPART_STRICT_ERROR`; we also set the internal error flag (strict
//!   error), as v2 does. Like v3, the offending header line is skipped and
//!   parsing continues.
//! * A duplicate part header is an error (v3 only logs it).
//! * After an invalid `Content-Disposition` the part's data is still
//!   collected (v3 keeps reading the data as headers).
//! * `MULTIPART_UNMATCHED_BOUNDARY` takes the documented values: 0 when
//!   every boundary-like line matched, 1 when a boundary-like line did not
//!   match and no real boundary followed it, 2 when a later real boundary
//!   did (v3's code sets 2 on every second boundary).
//! * The part in progress when the body ends without a final boundary is
//!   still reported (with the "Final boundary missing" error), so its data
//!   can be inspected.
//!
//! The first error wins for `REQBODY_ERROR_MSG`
//! (`Multipart parsing error: Multipart: ...`).
//!
//! A *partial* body (the first bytes of a longer one, cut at a limit) lacks
//! its final boundary by construction: that is not reported as an error, and
//! the part it ends in is reported with the data it holds.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::{trim_ows, BodyLimits, FilePart, ParsedBody, MAX_FILES, MAX_FILE_CONTENT_BYTES};

mod boundary;
mod parser;
mod part;
#[cfg(test)]
mod tests;

use boundary::parse_boundary;
use parser::Parser;

/// ModSecurity's `MULTIPART_BUF_SIZE`.
const BUF_SIZE: usize = 4096;

/// The `MULTIPART_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartFlags {
    /// Internal parse error (`m_flag_error`), part of `MULTIPART_STRICT_ERROR`.
    pub error: bool,
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub data_before: bool,
    pub data_after: bool,
    pub header_folding: bool,
    pub lf_line: bool,
    pub crlf_line: bool,
    pub missing_semicolon: bool,
    pub invalid_quoting: bool,
    pub invalid_part: bool,
    pub invalid_header_folding: bool,
    pub file_limit_exceeded: bool,
    /// 0, 1 or 2 (see the module documentation).
    pub unmatched_boundary: u8,
    /// Every `name=` value seen in a `Content-Disposition` (`MULTIPART_NAME`).
    pub names: Vec<Vec<u8>>,
    /// Every `filename=` value seen (`MULTIPART_FILENAME`).
    pub filenames: Vec<Vec<u8>>,
}

/// A `MULTIPART_*` variable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipartValue<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl MultipartValue<'_> {
    /// The value as rule operators see it.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            MultipartValue::Int(i) => i.to_string().into_bytes(),
            MultipartValue::Bytes(b) => b.to_vec(),
        }
    }
}

impl MultipartFlags {
    /// `MULTIPART_STRICT_ERROR`: any error or anomaly flag.
    pub fn strict_error(&self) -> bool {
        self.error
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
    }

    /// `MULTIPART_CRLF_LF_LINES`: both CRLF and bare LF line endings seen.
    pub fn crlf_lf_lines(&self) -> bool {
        self.crlf_line && self.lf_line
    }

    /// Resolves a `MULTIPART_*` variable by name (case-insensitive).
    /// `MULTIPART_NAME` / `MULTIPART_FILENAME` give the last value seen
    /// (see [`MultipartFlags::names`] / [`MultipartFlags::filenames`] for all).
    pub fn get(&self, var_name: &str) -> Option<MultipartValue<'_>> {
        let b = |v: bool| Some(MultipartValue::Int(i64::from(v)));
        let up = var_name.to_ascii_uppercase();
        match up.as_str() {
            "MULTIPART_STRICT_ERROR" => b(self.strict_error()),
            "MULTIPART_BOUNDARY_QUOTED" => b(self.boundary_quoted),
            "MULTIPART_BOUNDARY_WHITESPACE" => b(self.boundary_whitespace),
            "MULTIPART_DATA_BEFORE" => b(self.data_before),
            "MULTIPART_DATA_AFTER" => b(self.data_after),
            "MULTIPART_HEADER_FOLDING" => b(self.header_folding),
            "MULTIPART_LF_LINE" => b(self.lf_line),
            "MULTIPART_CRLF_LF_LINES" => b(self.crlf_lf_lines()),
            "MULTIPART_MISSING_SEMICOLON" => b(self.missing_semicolon),
            "MULTIPART_INVALID_QUOTING" => b(self.invalid_quoting),
            "MULTIPART_INVALID_PART" => b(self.invalid_part),
            "MULTIPART_INVALID_HEADER_FOLDING" => b(self.invalid_header_folding),
            "MULTIPART_FILE_LIMIT_EXCEEDED" => b(self.file_limit_exceeded),
            "MULTIPART_UNMATCHED_BOUNDARY" => {
                Some(MultipartValue::Int(i64::from(self.unmatched_boundary)))
            }
            "MULTIPART_NAME" => Some(MultipartValue::Bytes(
                self.names.last().map(|v| v.as_slice()).unwrap_or(b""),
            )),
            "MULTIPART_FILENAME" => Some(MultipartValue::Bytes(
                self.filenames.last().map(|v| v.as_slice()).unwrap_or(b""),
            )),
            _ => None,
        }
    }

    /// Numeric value of a `MULTIPART_*` flag (0 when unknown or not numeric).
    pub fn get_i64(&self, var_name: &str) -> i64 {
        match self.get(var_name) {
            Some(MultipartValue::Int(i)) => i,
            _ => 0,
        }
    }
}

/// Runs the multipart processor; `partial`: `body` is a prefix of the real body.
pub(crate) fn parse(
    content_type: &[u8],
    body: &[u8],
    limits: &BodyLimits,
    out: &mut ParsedBody,
    partial: bool,
) {
    let mut flags = MultipartFlags::default();
    let boundary = match parse_boundary(content_type, &mut flags) {
        Ok(b) => b,
        Err(msg) => {
            out.error = Some(format!("Multipart parsing error: {msg}"));
            out.multipart = Some(flags);
            return;
        }
    };
    let mut dash_boundary = b"--".to_vec();
    dash_boundary.extend_from_slice(&boundary);
    let mut p = Parser {
        boundary,
        dash_boundary,
        flags,
        error: None,
        out,
        max_args: limits.max_args,
        part: None,
        in_data: false,
        data_read: false,
        reserve: b"",
        boundary_count: 0,
        is_complete: false,
        nfiles: 0,
        header_budget: body.len().saturating_mul(4).max(1 << 20),
        partial,
        base: body.as_ptr() as usize,
    };
    p.run(body);
    let Parser {
        flags, error, out, ..
    } = p;
    if out.error.is_none() {
        out.error = error.map(|e| format!("Multipart parsing error: {e}"));
    }
    out.multipart = Some(flags);
}
