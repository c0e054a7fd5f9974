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

/// The header line being built (recorded when the next line starts).
#[derive(Default, Clone, Copy)]
enum PendingLine {
    #[default]
    None,
    /// The raw line (without its line ending) is `lines[start..]`.
    Raw(usize),
    /// A folded header: rebuilt as `Name: value` from entry `i`.
    Folded(usize),
}

/// One header: ranges into `Part::buf`.
#[derive(Clone, Copy)]
struct HeaderEntry {
    name: (usize, usize),
    value: (usize, usize),
}

/// A part being built. Header names, values and raw lines live in two
/// flat buffers so that a part with very many headers stays cheap.
#[derive(Default)]
struct Part {
    name: Vec<u8>,
    filename: Vec<u8>,
    is_file: bool,
    /// Header names and values.
    buf: Vec<u8>,
    headers: Vec<HeaderEntry>,
    /// Hash of the lower-cased name → first entry with that hash;
    /// `chain[i]` is the next entry with the same hash.
    index: HashMap<u64, usize>,
    chain: Vec<usize>,
    hasher: RandomState,
    /// Completed raw header lines (`MULTIPART_PART_HEADERS`).
    lines: Vec<u8>,
    line_ranges: Vec<(usize, usize)>,
    pending: PendingLine,
    last_header: Option<usize>,
    value: Vec<u8>,
    size: usize,
    /// For a file: where its data starts in the body (data chunks are
    /// consecutive slices of it, so the content is one range).
    data_start: Option<usize>,
    /// Counted against the file limit (first data chunk seen).
    file_counted: bool,
    file_extract: bool,
}

const NO_ENTRY: usize = usize::MAX;

impl Part {
    fn key(&self, name: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        let mut tmp = [0u8; 64];
        for chunk in name.chunks(64) {
            let t = &mut tmp[..chunk.len()];
            t.copy_from_slice(chunk);
            t.make_ascii_lowercase();
            h.write(t);
        }
        h.finish()
    }

    fn slice(&self, r: (usize, usize)) -> &[u8] {
        self.buf.get(r.0..r.1).unwrap_or(b"")
    }

    /// Index of the header named `name` (case-insensitive).
    fn find(&self, name: &[u8]) -> Option<usize> {
        self.find_keyed(name, self.key(name))
    }

    fn find_keyed(&self, name: &[u8], key: u64) -> Option<usize> {
        let mut i = *self.index.get(&key)?;
        while i != NO_ENTRY {
            let e = self.headers.get(i)?;
            if self.slice(e.name).eq_ignore_ascii_case(name) {
                return Some(i);
            }
            i = self.chain.get(i).copied().unwrap_or(NO_ENTRY);
        }
        None
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let i = self.find(name)?;
        Some(self.slice(self.headers[i].value))
    }

    fn add_header(&mut self, name: &[u8], value: &[u8], key: u64) -> usize {
        let ns = self.buf.len();
        self.buf.extend_from_slice(name);
        let vs = self.buf.len();
        self.buf.extend_from_slice(value);
        let idx = self.headers.len();
        self.headers.push(HeaderEntry {
            name: (ns, vs),
            value: (vs, self.buf.len()),
        });
        let prev = self.index.insert(key, idx).unwrap_or(NO_ENTRY);
        self.chain.push(prev);
        idx
    }

    /// Appends a folded continuation to the last header (whose value is at
    /// the end of `buf`).
    fn fold(&mut self, idx: usize, cont: &[u8]) -> bool {
        let Some(e) = self.headers.get(idx).copied() else {
            return false;
        };
        if e.value.1 != self.buf.len() {
            return false;
        }
        if e.value.1 - e.value.0 + 1 + cont.len() > BUF_SIZE {
            return false;
        }
        self.buf.push(b' ');
        self.buf.extend_from_slice(cont);
        self.headers[idx].value.1 = self.buf.len();
        if let PendingLine::Raw(start) = self.pending {
            self.lines.truncate(start);
        }
        self.pending = PendingLine::Folded(idx);
        true
    }

    fn set_raw_pending(&mut self, line: &[u8]) {
        let start = self.lines.len();
        self.lines.extend_from_slice(line);
        self.pending = PendingLine::Raw(start);
    }

    /// Records the pending header line.
    fn flush_line(&mut self) {
        match std::mem::take(&mut self.pending) {
            PendingLine::None => {}
            PendingLine::Raw(start) => {
                if self.lines.len() > start {
                    self.line_ranges.push((start, self.lines.len()));
                }
            }
            PendingLine::Folded(i) => {
                if let Some(e) = self.headers.get(i).copied() {
                    let start = self.lines.len();
                    self.lines.extend_from_slice(&self.buf[e.name.0..e.name.1]);
                    self.lines.extend_from_slice(b": ");
                    self.lines
                        .extend_from_slice(&self.buf[e.value.0..e.value.1]);
                    self.line_ranges.push((start, self.lines.len()));
                }
            }
        }
    }
}

struct Parser<'o> {
    boundary: Vec<u8>,
    /// `--` + boundary, for substring searches.
    dash_boundary: Vec<u8>,
    flags: MultipartFlags,
    error: Option<String>,
    out: &'o mut ParsedBody,
    max_args: usize,
    part: Option<Part>,
    /// `m_mpp_state`: false while reading part headers.
    in_data: bool,
    /// `m_mpp_substate_part_data_read`.
    data_read: bool,
    /// Line ending held back from the previous data chunk.
    reserve: &'static [u8],
    boundary_count: usize,
    is_complete: bool,
    nfiles: usize,
    /// Bytes left for `MULTIPART_PART_HEADERS` (each line repeats the part
    /// name, so cap the total to keep memory linear in the input).
    header_budget: usize,
    /// The body is a prefix of the real one.
    partial: bool,
    /// Address of the body: file contents are kept as ranges of it.
    base: usize,
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

fn is_c_space(c: u8) -> bool {
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
fn parse_boundary(ct: &[u8], flags: &mut MultipartFlags) -> Result<Vec<u8>, &'static str> {
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

/// Error codes of ModSecurity's `parse_content_disposition`.
type CdResult = Result<(), i32>;

fn is_token_char(c: u8) -> bool {
    c > 32 && c < 127 && !b"()<>@,;:\\\"/[]?=".contains(&c)
}

impl Parser<'_> {
    fn set_error(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    fn run(&mut self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let mut pos = 0usize;
        let mut contains_line = true;
        // The previous chunk ended with a bare LF (`m_crlf_state_buf_end == 2`).
        let mut prev_lf_only = false;
        let mut leftover: &[u8] = b"";
        while pos < body.len() {
            let window = &body[pos..body.len().min(pos + BUF_SIZE)];
            let (end, ends_nl) = match memchr::memchr(b'\n', window) {
                Some(i) => (pos + i + 1, true),
                None if window.len() == BUF_SIZE => {
                    if window[BUF_SIZE - 1] == b'\r' {
                        (pos + BUF_SIZE - 1, false)
                    } else {
                        (pos + BUF_SIZE, false)
                    }
                }
                None => {
                    // An incomplete last line stays in ModSecurity's buffer.
                    leftover = window;
                    break;
                }
            };
            let chunk = &body[pos..end];
            if !self.chunk(chunk, contains_line, ends_nl, prev_lf_only) {
                self.flags.error = true;
                self.finish_in_progress(b"");
                return;
            }
            prev_lf_only = ends_nl && (end < 2 || body[end - 2] != b'\r');
            contains_line = ends_nl;
            pos = end;
            if self.is_complete {
                if pos < body.len() {
                    self.flags.data_after = true;
                }
                return;
            }
        }
        self.complete(leftover, contains_line, prev_lf_only, pos > 0);
    }

    /// End of input without the final boundary having been processed.
    /// `lines_seen`: at least one whole line was processed.
    fn complete(
        &mut self,
        leftover: &[u8],
        contains_line: bool,
        prev_lf_only: bool,
        lines_seen: bool,
    ) {
        if self.partial {
            // Cut before its end: the part in progress is all there is.
            // (A prefix that is one unfinished line may be a boundary's start.)
            if self.boundary_count == 0 && lines_seen {
                self.set_error("Multipart: No boundaries found in payload.".into());
            }
            self.finish_in_progress(leftover);
            return;
        }
        if self.boundary_count == 0 {
            self.set_error("Multipart: No boundaries found in payload.".into());
            self.finish_in_progress(leftover);
            return;
        }
        let is_final = contains_line
            && leftover.len() == self.boundary.len() + 4
            && leftover.starts_with(&self.dash_boundary)
            && leftover.ends_with(b"--");
        if is_final {
            if prev_lf_only {
                self.flags.lf_line = true;
            }
            if !self.data_read {
                self.flags.invalid_part = true;
            }
            self.process_boundary(true);
            self.is_complete = true;
            return;
        }
        self.set_error("Multipart: Final boundary missing.".into());
        self.finish_in_progress(leftover);
    }

    /// Reports the part being read when parsing stopped early.
    fn finish_in_progress(&mut self, leftover: &[u8]) {
        if self.in_data && self.part.as_ref().is_some_and(|p| !p.name.is_empty()) {
            if !leftover.is_empty() {
                self.part_data(leftover, false);
            }
            self.process_boundary(true);
        } else {
            self.part = None;
        }
    }

    /// Processes one buffered chunk; false on a fatal error.
    fn chunk(
        &mut self,
        chunk: &[u8],
        contains_line: bool,
        ends_nl: bool,
        prev_lf_only: bool,
    ) -> bool {
        let clen = memchr::memchr(0, chunk).unwrap_or(chunk.len());
        let cstr = &chunk[..clen];
        let blen = self.boundary.len();
        let mut processed_as_boundary = false;
        if contains_line && clen > 3 && cstr.starts_with(b"--") {
            if clen >= blen + 2 && cstr[2..2 + blen] == self.boundary[..] {
                if prev_lf_only {
                    self.flags.lf_line = true;
                }
                if !self.data_read && self.boundary_count > 0 {
                    // A boundary where part data should begin.
                    self.flags.invalid_part = true;
                } else {
                    if self.boundary_count > 0 && self.flags.unmatched_boundary == 1 {
                        self.flags.unmatched_boundary = 2;
                    }
                    let mut rest = &cstr[2 + blen..];
                    let mut is_final = false;
                    if rest.starts_with(b"--") {
                        is_final = true;
                        rest = &rest[2..];
                        if self.is_complete {
                            self.set_error("Multipart: Invalid boundary (final duplicate).".into());
                            return false;
                        }
                    }
                    if rest == b"\r\n" || rest == b"\n" {
                        if rest == b"\n" {
                            self.flags.lf_line = true;
                        } else {
                            self.flags.crlf_line = true;
                        }
                        self.process_boundary(is_final);
                        if is_final {
                            self.is_complete = true;
                        }
                        processed_as_boundary = true;
                        self.boundary_count += 1;
                    } else {
                        self.set_error(format!(
                            "Multipart: Invalid boundary: {}",
                            String::from_utf8_lossy(cstr)
                        ));
                        return false;
                    }
                }
            } else {
                if self.flags.boundary_quoted
                    && clen >= blen + 3
                    && cstr[2] == b'"'
                    && cstr[3..3 + blen] == self.boundary[..]
                {
                    self.set_error("Multipart: Invalid boundary (quotes).".into());
                    return false;
                }
                let mut p = 2;
                while p < clen && is_c_space(cstr[p]) {
                    p += 1;
                }
                if p != 2 && cstr[p..].starts_with(&self.boundary) {
                    self.set_error("Multipart: Invalid boundary (whitespace).".into());
                    return false;
                }
                self.flags.unmatched_boundary = 1;
            }
        } else if contains_line && memchr::memmem::find(chunk, &self.dash_boundary).is_some() {
            self.flags.unmatched_boundary = 1;
        }

        if !processed_as_boundary {
            if self.part.is_none() {
                self.flags.data_before = true;
            } else if !self.in_data {
                if !ends_nl {
                    self.set_error(format!(
                        "Multipart: Part header line over {BUF_SIZE} bytes long"
                    ));
                    return false;
                }
                self.part_header(chunk);
            } else {
                self.part_data(chunk, ends_nl);
            }
        }
        true
    }

    fn process_boundary(&mut self, last: bool) {
        if let Some(part) = self.part.take() {
            for &(ls, le) in &part.line_ranges {
                let line = &part.lines[ls..le];
                let cost = part.name.len() + line.len();
                if cost > self.header_budget {
                    self.flags.error = true;
                    self.set_error("Multipart: Too many part headers.".into());
                    break;
                }
                self.header_budget -= cost;
                self.out
                    .multipart_part_headers
                    .push((part.name.clone(), line.to_vec()));
            }
            if part.name.is_empty() {
                self.flags.invalid_part = true;
            } else if part.is_file {
                let content_type = part.header(b"Content-Type").map(|v| v.to_vec());
                let start = part.data_start.unwrap_or(0);
                let len = if part.file_extract {
                    part.size.min(MAX_FILE_CONTENT_BYTES)
                } else {
                    0
                };
                self.out.files.push(FilePart {
                    name: part.name,
                    filename: part.filename,
                    size: part.size,
                    content: start..start + len,
                    content_type,
                });
            } else if self.out.args.len() >= self.max_args {
                self.out.args_exceeded = true;
            } else {
                self.out.args.push((part.name, part.value));
            }
        }
        if !last {
            self.part = Some(Part::default());
            self.in_data = false;
            self.data_read = false;
            self.reserve = b"";
        }
    }

    fn part_data(&mut self, chunk: &[u8], ends_nl: bool) {
        self.data_read = true;
        let (data, reserve): (&[u8], &'static [u8]) = if ends_nl && chunk.ends_with(b"\r\n") {
            (&chunk[..chunk.len() - 2], b"\r\n")
        } else if ends_nl {
            (&chunk[..chunk.len() - 1], b"\n")
        } else {
            (chunk, b"")
        };
        let prev = std::mem::replace(&mut self.reserve, reserve);
        let Some(part) = self.part.as_mut() else {
            return;
        };
        if part.is_file {
            if !part.file_counted {
                part.file_counted = true;
                if self.nfiles >= MAX_FILES {
                    if !self.flags.file_limit_exceeded {
                        self.flags.file_limit_exceeded = true;
                        if self.error.is_none() {
                            self.error = Some(format!(
                                "Multipart: Upload file limit exceeded {MAX_FILES}. Use SecUploadFileLimit to change the limit."
                            ));
                        }
                    }
                } else {
                    self.nfiles += 1;
                    part.file_extract = true;
                }
            }
            // `prev` (the line end held back) is in the body right before
            // `chunk`: the file is the bytes from its first chunk on.
            if part.data_start.is_none() {
                let at = (chunk.as_ptr() as usize).saturating_sub(self.base);
                part.data_start = Some(at.saturating_sub(prev.len()));
            }
            part.size = part.size.saturating_add(prev.len() + data.len());
        } else {
            part.value.extend_from_slice(prev);
            part.value.extend_from_slice(data);
            part.size = part.value.len();
        }
    }

    fn part_header(&mut self, line: &[u8]) {
        if memchr::memchr(0, line).is_some() {
            self.flags.error = true;
            self.set_error("Multipart: Nul byte in part headers.".into());
            return;
        }
        let len = line.len();
        let mut body_len = len.saturating_sub(1);
        if len > 1 && line[len - 2] == b'\r' {
            self.flags.crlf_line = true;
            body_len -= 1;
        } else {
            self.flags.lf_line = true;
        }
        let Some(part) = self.part.as_mut() else {
            return;
        };
        if line == b"\r\n" || line == b"\n" {
            part.flush_line();
            self.end_of_headers();
            return;
        }
        if is_c_space(line[0]) {
            // Header folding.
            self.flags.header_folding = true;
            let mut i = 0;
            while i < len && is_c_space(line[i]) {
                if line[i] != b' ' && line[i] != b'\t' {
                    self.flags.invalid_header_folding = true;
                }
                i += 1;
            }
            let Some(idx) = part.last_header else {
                self.flags.error = true;
                self.set_error("Multipart: Invalid part header (folding error).".into());
                return;
            };
            if !part.fold(idx, chomp(&line[i..])) {
                self.flags.error = true;
                self.set_error("Multipart: Part header too long.".into());
            }
            return;
        }
        // A new header.
        part.flush_line();
        let Some(colon) = memchr::memchr(b':', line) else {
            self.flags.error = true;
            self.set_error(format!(
                "Multipart: Invalid part header (colon missing): {}",
                String::from_utf8_lossy(line)
            ));
            return;
        };
        let name = &line[..colon];
        if name.is_empty() {
            self.flags.error = true;
            self.set_error("Multipart: Invalid part header (header name missing).".into());
            return;
        }
        if name.iter().any(|&c| !(33..=126).contains(&c)) {
            self.flags.error = true;
            self.set_error("Multipart: Invalid part header (contains invalid character).".into());
            return;
        }
        let mut v = colon + 1;
        while v < len && (line[v] == b' ' || line[v] == b'\t') {
            v += 1;
        }
        let value = chomp(&line[v..]);
        let key = part.key(name);
        if part.find_keyed(name, key).is_some() {
            let n = String::from_utf8_lossy(name).into_owned();
            self.flags.error = true;
            self.set_error(format!("Multipart: Duplicate part header: {n}."));
            return;
        }
        let idx = part.add_header(name, value, key);
        part.last_header = Some(idx);
        part.set_raw_pending(&line[..body_len]);
    }

    /// The empty line after the part headers.
    fn end_of_headers(&mut self) {
        self.in_data = true;
        self.data_read = false;
        let Some(mut part) = self.part.take() else {
            return;
        };
        part.last_header = None;
        match part.header(b"Content-Disposition").map(|v| v.to_vec()) {
            None => {
                self.flags.error = true;
                self.set_error("Multipart: Part missing Content-Disposition header.".into());
            }
            Some(cd) => {
                if let Err(rc) = self.parse_content_disposition(&cd, &mut part) {
                    self.flags.error = true;
                    self.set_error(format!(
                        "Multipart: Invalid Content-Disposition header ({rc}): {}",
                        String::from_utf8_lossy(&cd)
                    ));
                } else if part.name.is_empty() {
                    self.flags.error = true;
                    self.set_error(
                        "Multipart: Content-Disposition header missing name field.".into(),
                    );
                } else if !part.filename.is_empty()
                    && memchr::memmem::find(&cd, b"filename=").is_none()
                {
                    self.flags.error = true;
                    self.set_error(
                        "Multipart: Invalid Content-Disposition header (filename).".into(),
                    );
                }
            }
        }
        part.is_file = !part.filename.is_empty();
        self.part = Some(part);
    }

    /// ModSecurity's `parse_content_disposition`; `Err` carries its
    /// (negative) return code.
    fn parse_content_disposition(&mut self, v: &[u8], part: &mut Part) -> CdResult {
        const MIME_CHARSET_SPECIAL: &[u8] = b"!#$%&+-^_`{}~";
        const ATTR_CHAR_SPECIAL: &[u8] = b"!#$&+-.^_`~";
        let len = v.len();
        let ws = |p: &mut usize| {
            while *p < len && (v[*p] == b' ' || v[*p] == b'\t') {
                *p += 1;
            }
        };
        if !v.starts_with(b"form-data") {
            return Err(-1);
        }
        let mut p = 9;
        ws(&mut p);
        if p == len {
            return Ok(());
        }
        if v[p] != b';' {
            return Err(-2);
        }
        p += 1;
        let mut filename_star: Vec<u8> = Vec::new();
        while p < len {
            ws(&mut p);
            if p == len {
                return Err(-3);
            }
            let start = p;
            while p < len && v[p] != b'=' && v[p] != b'\t' && v[p] != b' ' {
                p += 1;
            }
            if p == len {
                return Err(-4);
            }
            let name = &v[start..p];
            ws(&mut p);
            if p == len {
                return Err(-5);
            }
            if v[p] != b'=' {
                return Err(-13);
            }
            p += 1;
            ws(&mut p);
            if p == len {
                return Err(-6);
            }
            let mut quote = 0u8;
            let value: Vec<u8>;
            if name == b"filename*" {
                // filename*=charset'[language]'filename
                let cs = p;
                while p < len
                    && (v[p].is_ascii_alphanumeric() || MIME_CHARSET_SPECIAL.contains(&v[p]))
                {
                    p += 1;
                }
                if p == len || v[p] != b'\'' || p == cs {
                    return Err(-16);
                }
                p += 1;
                while p < len && v[p] != b'\'' {
                    p += 1;
                }
                if p == len {
                    return Err(-17);
                }
                p += 1;
                let fs = p;
                while p < len && v[p] != b';' {
                    if v[p] == b'%' {
                        if p + 2 >= len
                            || !v[p + 1].is_ascii_hexdigit()
                            || !v[p + 2].is_ascii_hexdigit()
                        {
                            return Err(-18);
                        }
                        p += 3;
                    } else if v[p].is_ascii_alphanumeric() || ATTR_CHAR_SPECIAL.contains(&v[p]) {
                        p += 1;
                    } else {
                        return Err(-19);
                    }
                }
                value = v[fs..p].to_vec();
            } else if v[p] == b'"' || v[p] == b'\'' {
                quote = v[p];
                if quote == b'\'' {
                    self.flags.invalid_quoting = true;
                }
                p += 1;
                if p == len {
                    return Err(-7);
                }
                let mut val = Vec::new();
                while p < len {
                    if v[p] == b'\\' {
                        if p + 1 == len {
                            return Err(-8);
                        }
                        // Only the quote and the backslash can be escaped;
                        // other backslashes are kept (IE sends them).
                        if v[p + 1] == quote || v[p + 1] == b'\\' {
                            p += 1;
                        }
                    } else if v[p] == quote {
                        break;
                    }
                    val.push(v[p]);
                    p += 1;
                }
                if p == len {
                    // Unterminated quoted value.
                    return Err(-7);
                }
                p += 1;
                value = val;
            } else {
                let s = p;
                while p < len && is_token_char(v[p]) {
                    p += 1;
                }
                value = v[s..p].to_vec();
            }

            match name {
                b"name" => {
                    self.validate_quotes(&value, quote);
                    self.flags.names.push(value.clone());
                    if !part.name.is_empty() {
                        return Err(-14);
                    }
                    part.name = value;
                }
                b"filename" => {
                    self.validate_quotes(&value, quote);
                    self.flags.filenames.push(value.clone());
                    if !part.filename.is_empty() {
                        return Err(-15);
                    }
                    part.filename = value;
                }
                b"filename*" => {
                    if !filename_star.is_empty() {
                        return Err(-20);
                    }
                    filename_star = value;
                }
                _ => return Err(-11),
            }

            if p < len {
                ws(&mut p);
                if p < len {
                    if v[p] != b';' {
                        if p > 0 && (v[p - 1] == b'\'' || v[p - 1] == b'"') {
                            self.flags.invalid_quoting = true;
                        }
                        return Err(-12);
                    }
                    p += 1;
                }
            }
        }
        if !filename_star.is_empty() && part.filename.is_empty() {
            return Err(-21);
        }
        Ok(())
    }

    fn validate_quotes(&mut self, value: &[u8], quote: u8) {
        if quote != b'"' && value.contains(&b'\'') {
            self.flags.invalid_quoting = true;
        }
    }
}

/// Removes every trailing `\r` and `\n`.
fn chomp(v: &[u8]) -> &[u8] {
    let mut e = v.len();
    while e > 0 && (v[e - 1] == b'\r' || v[e - 1] == b'\n') {
        e -= 1;
    }
    &v[..e]
}

#[cfg(test)]
mod tests {
    use super::super::{parse as parse_body, BodyLimits, ParsedBody, Processor};
    use super::*;

    fn mp(ct: &str, body: &[u8]) -> ParsedBody {
        parse_body(
            Processor::Multipart,
            ct.as_bytes(),
            body,
            &BodyLimits::default(),
        )
    }

    fn flags(p: &ParsedBody) -> &MultipartFlags {
        p.multipart.as_ref().unwrap()
    }

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    const CT: &str = "multipart/form-data; boundary=----WebKitFormBoundary";

    #[test]
    fn simple_form_and_file() {
        let body = b"------WebKitFormBoundary\r\n\
Content-Disposition: form-data; name=\"a\"\r\n\
\r\n\
hello\r\n\
world\r\n\
------WebKitFormBoundary\r\n\
Content-Disposition: form-data; name=\"up\"; filename=\"x.php\"\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
<?php system($_GET['c']); ?>\n\r\n\
------WebKitFormBoundary--\r\n";
        let p = mp(CT, body);
        assert_eq!(p.error, None);
        assert_eq!(p.args, vec![(b"a".to_vec(), b"hello\r\nworld".to_vec())]);
        assert_eq!(p.files.len(), 1);
        let f = &p.files[0];
        assert_eq!(f.name, b"up");
        assert_eq!(f.filename, b"x.php");
        assert_eq!(f.content_in(body), b"<?php system($_GET['c']); ?>\n");
        assert_eq!(f.size, f.content.len());
        assert_eq!(
            f.content_type.as_deref(),
            Some(&b"application/octet-stream"[..])
        );
        assert_eq!(
            p.multipart_part_headers
                .iter()
                .map(|(a, b)| (s(a), s(b)))
                .collect::<Vec<_>>(),
            vec![
                (
                    "a".into(),
                    "Content-Disposition: form-data; name=\"a\"".into()
                ),
                (
                    "up".into(),
                    "Content-Disposition: form-data; name=\"up\"; filename=\"x.php\"".into()
                ),
                ("up".into(), "Content-Type: application/octet-stream".into()),
            ]
        );
        let fl = flags(&p);
        assert!(!fl.strict_error(), "{fl:?}");
        assert_eq!(fl.get_i64("MULTIPART_STRICT_ERROR"), 0);
        assert_eq!(fl.get_i64("MULTIPART_UNMATCHED_BOUNDARY"), 0);
        assert_eq!(
            fl.get("MULTIPART_FILENAME"),
            Some(MultipartValue::Bytes(b"x.php"))
        );
        assert_eq!(fl.get("multipart_name"), Some(MultipartValue::Bytes(b"up")));
        assert_eq!(fl.get("NOPE"), None);
        assert_eq!(p.files_combined_size(), f.size);
    }

    #[test]
    fn empty_field_value_and_empty_filename() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--b\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert_eq!(p.error, None);
        // v3 treats an empty filename as a plain field.
        assert_eq!(
            p.args,
            vec![(b"e".to_vec(), vec![]), (b"f".to_vec(), vec![])]
        );
        assert!(p.files.is_empty());
        assert!(!flags(&p).strict_error());
    }

    #[test]
    fn lf_lines_and_mixed() {
        let body = b"--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert_eq!(p.error, None);
        assert_eq!(p.args, vec![(b"a".to_vec(), b"v".to_vec())]);
        let f = flags(&p);
        assert!(f.lf_line && !f.crlf_line && f.strict_error());
        assert_eq!(f.get_i64("MULTIPART_CRLF_LF_LINES"), 0);
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        let f = flags(&p);
        assert!(f.lf_line && f.crlf_line);
        assert_eq!(f.get_i64("MULTIPART_CRLF_LF_LINES"), 1);
    }

    #[test]
    fn final_boundary_without_newline() {
        // 922130-3 style body, without the trailing CRLF.
        let body = b"--boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"1.php\"\r\n\r\n<?php ?>\r\n--boundary--";
        let p = mp("multipart/form-data; boundary=boundary", body);
        assert_eq!(p.error, None);
        assert_eq!(p.files[0].content_in(body), b"<?php ?>");
        assert!(!flags(&p).strict_error());
    }

    #[test]
    fn invalid_header_character_922130() {
        let body = b"--boundary\r\n\x0eContent-Disposition: form-data; name=\"file\"; filename=\"1.php\"\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\n<?php var_dump(file_get_contents(\"/etc/passwd\"));\r\n--boundary--";
        let p = mp("multipart/form-data; boundary=boundary", body);
        assert_eq!(
            p.error.as_deref(),
            Some("Multipart parsing error: Multipart: Invalid part header (contains invalid character).")
        );
        assert!(flags(&p).strict_error());
        // Parsing continued with the valid header, like libmodsecurity.
        assert_eq!(p.args[0].0, b"post");
        assert_eq!(p.multipart_part_headers.len(), 1);
        for bad in [
            &b"Content- Disposition"[..],
            b"Content\x7f-Disposition",
            b"Content-Disposition\x0e",
        ] {
            let mut body = b"--boundary\r\n".to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(b": form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\nv\r\n--boundary--\r\n");
            let p = mp("multipart/form-data; boundary=boundary", &body);
            assert!(p
                .error
                .clone()
                .unwrap()
                .contains("contains invalid character"));
        }
        // '!' and '~' are fine.
        let body = b"--boundary\r\nContent~Disposition: x\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\nv\r\n--boundary--\r\n";
        let p = mp("multipart/form-data; boundary=boundary", body);
        assert_eq!(p.error, None);
        assert_eq!(p.multipart_part_headers.len(), 2);
    }

    #[test]
    fn no_headers_922130_8() {
        let body =
            b"--boundary123\r\ntest\r\n--boundary123\r\nyet another test\r\n--boundary123--\r\n";
        let p = mp("multipart/form-data; boundary=boundary123", body);
        assert!(p.multipart_part_headers.is_empty());
        assert!(p.error.is_some());
        assert!(flags(&p).invalid_part);
    }

    #[test]
    fn charset_part_922100() {
        let body = b"--boundary\r\nContent-disposition: form-data; name=\"_charset_\"\r\n\r\nutf-7\r\n--boundary\r\nContent-disposition: form-data; name=\"positive\"\r\nContent-Type: text/plain\r\n\r\nLet me see if I can use utf-7.\r\n--boundary--\r\n";
        let p = mp("multipart/form-data; boundary=boundary", body);
        assert_eq!(p.error, None);
        assert_eq!(
            p.multipart_part_headers
                .iter()
                .filter(|(n, _)| n == b"_charset_")
                .count(),
            1
        );
        assert_eq!(p.args[0], (b"_charset_".to_vec(), b"utf-7".to_vec()));
        assert_eq!(p.multipart_part_headers[2].1, b"Content-Type: text/plain");
    }

    #[test]
    fn content_type_checks() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=\"b\"", body);
        assert_eq!(p.error, None);
        assert!(flags(&p).boundary_quoted && flags(&p).strict_error());
        let p = mp("multipart/form-data boundary=b", body);
        assert_eq!(p.error, None);
        assert!(flags(&p).missing_semicolon);
        let p = mp("multipart/form-data; boundary =b", body);
        assert!(flags(&p).boundary_whitespace && p.error.is_none());
        let p = mp("multipart/form-data; boundary=b; charset=utf-8", body);
        assert_eq!(p.error, None);
        assert_eq!(p.args.len(), 1);
        for (ct, msg) in [
            ("", "not available"),
            ("multipart/mixed; boundary=b", "Invalid MIME type"),
            ("multipart/form-data", "Boundary not found"),
            ("multipart/form-data; Boundary=b", "case sensitivity"),
            (
                "multipart/form-data; boundary=a; boundary=b",
                "Multiple boundary",
            ),
            ("multipart/form-data; x; boundary=b", "malformed"),
            ("multipart/form-data; boundaryx=b", "parameter name"),
            ("multipart/form-data; boundary=\"b", "quote"),
            ("multipart/form-data; boundary=", "empty"),
            ("multipart/form-data; boundary=\"\"", "empty"),
            ("multipart/form-data; boundary=a{b", "characters"),
        ] {
            let p = mp(ct, body);
            let e = p.error.clone().unwrap_or_default();
            assert!(e.contains(msg), "{ct:?}: {e}");
            assert!(flags(&p).error && flags(&p).strict_error());
            assert!(p.args.is_empty());
        }
        let long = format!("multipart/form-data; boundary={}", "a".repeat(1100));
        assert!(mp(&long, body).error.unwrap().contains("length"));
    }

    #[test]
    fn data_before_and_after() {
        let body =
            b"junk\r\n--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\nmore";
        let p = mp("multipart/form-data; boundary=b", body);
        let f = flags(&p);
        assert!(f.data_before && f.data_after && f.strict_error());
        assert_eq!(p.error, None);
        assert_eq!(p.args.len(), 1);
    }

    #[test]
    fn header_folding() {
        let body = b"--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert_eq!(p.error, None);
        let f = flags(&p);
        assert!(f.header_folding && !f.invalid_header_folding && f.strict_error());
        assert_eq!(p.args[0].0, b"a");
        assert_eq!(
            p.multipart_part_headers[0].1,
            b"Content-Disposition: form-data; name=\"a\""
        );
        let body = b"--b\r\n\x0bContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        let f = flags(&p);
        assert!(f.header_folding && f.invalid_header_folding);
        assert!(p.error.clone().unwrap().contains("folding error"));
    }

    #[test]
    fn invalid_quoting() {
        let body = b"--b\r\nContent-Disposition: form-data; name='a'\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(flags(&p).invalid_quoting);
        assert_eq!(p.args[0].0, b"a");
        let body = b"--b\r\nContent-Disposition: form-data; name=a'b\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(flags(&p).invalid_quoting);
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"x\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(flags(&p).invalid_quoting);
        assert!(p.error.clone().unwrap().contains("(-12)"));
        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\\\"b\\c\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert_eq!(p.error, None);
        assert_eq!(p.args[0].0, b"a\"b\\c");
    }

    #[test]
    fn content_disposition_errors() {
        for (cd, code) in [
            ("Form-Data; name=\"a\"", "(-1)"),
            ("form-data name=\"a\"", "(-2)"),
            ("form-data; name=\"a\"; ", "(-3)"),
            ("form-data; name", "(-4)"),
            ("form-data; name x", "(-13)"),
            ("form-data; name=\"a\"; foo=bar", "(-11)"),
            ("form-data; name=\"a\"; name=\"b\"", "(-14)"),
            (
                "form-data; name=\"a\"; filename=\"x\"; filename=\"y\"",
                "(-15)",
            ),
            ("form-data; name=\"a\"; filename*=x", "(-16)"),
            ("form-data; name=\"a\"; filename*=utf-8'en", "(-17)"),
            ("form-data; name=\"a\"; filename*=utf-8''%4", "(-18)"),
            ("form-data; name=\"a\"; filename*=utf-8''a b", "(-19)"),
            ("form-data; name=\"a\"; filename*=utf-8''x", "(-21)"),
            ("form-data; name=\"abc", "(-7)"),
        ] {
            let body = format!("--b\r\nContent-Disposition: {cd}\r\n\r\nv\r\n--b--\r\n");
            let p = mp("multipart/form-data; boundary=b", body.as_bytes());
            let e = p.error.clone().unwrap_or_default();
            assert!(e.contains(code), "{cd:?}: {e}");
            assert!(flags(&p).strict_error());
        }
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x.txt\"; filename*=utf-8''x%41.php\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert_eq!(p.error, None);
        assert_eq!(p.files[0].filename, b"x.txt");
        let body = b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(p
            .error
            .clone()
            .unwrap()
            .contains("missing Content-Disposition"));
        assert!(flags(&p).invalid_part);
        let body = b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(p.error.clone().unwrap().contains("missing name"));
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\ncontent-disposition: form-data; name=\"b\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(p.error.clone().unwrap().contains("Duplicate part header"));
        assert_eq!(p.args[0].0, b"a");
    }

    #[test]
    fn boundary_errors_and_unmatched() {
        let ct = "multipart/form-data; boundary=b";
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--bx\r\n";
        let p = mp(ct, body);
        assert!(p.error.clone().unwrap().contains("Invalid boundary: --bx"));
        assert!(flags(&p).error);
        assert_eq!(p.args, vec![(b"a".to_vec(), b"v".to_vec())]);

        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n-- b\r\n--b--\r\n";
        assert!(mp(ct, body).error.unwrap().contains("(whitespace)"));
        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--\"b\"\r\n--b--\r\n";
        assert!(mp("multipart/form-data; boundary=\"b\"", body)
            .error
            .unwrap()
            .contains("(quotes)"));

        // A boundary-looking line that does not match, then a real boundary.
        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--c\r\nv\r\n--b--\r\n";
        let p = mp(ct, body);
        assert_eq!(p.error, None);
        assert_eq!(flags(&p).unmatched_boundary, 2);
        assert_eq!(p.args[0].1, b"--c\r\nv");
        // Boundary text inside a data line.
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx--b\r\n";
        let p = mp(ct, body);
        assert_eq!(flags(&p).unmatched_boundary, 1);
        assert!(p.error.clone().unwrap().contains("Final boundary missing"));
        // The in-progress part is still reported.
        assert_eq!(p.args, vec![(b"a".to_vec(), b"x--b".to_vec())]);

        let p = mp(ct, b"no boundaries at all\r\n");
        assert!(p.error.clone().unwrap().contains("No boundaries found"));
        assert!(flags(&p).data_before);
        let p = mp(ct, b"");
        assert_eq!(p.error, None);
    }

    #[test]
    fn invalid_part_boundary_instead_of_data() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(flags(&p).invalid_part);
        assert!(flags(&p).strict_error());
    }

    #[test]
    fn long_lines_and_binary() {
        let mut body =
            b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n"
                .to_vec();
        let mut data = Vec::new();
        for i in 0..20000u32 {
            data.push((i % 251) as u8);
        }
        data.extend_from_slice(&[b'\r'; 5000]);
        data.extend_from_slice(b"\r\n\r\nend\n");
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n--b--\r\n");
        let p = mp("multipart/form-data; boundary=b", &body);
        assert_eq!(p.error, None, "{:?}", p.multipart);
        assert_eq!(p.files[0].content_in(&body), data);
        assert_eq!(p.files[0].size, data.len());

        let mut body = b"--b\r\nContent-Disposition: form-data; name=\"a\"; x=\"".to_vec();
        body.extend_from_slice(&[b'y'; 5000]);
        body.extend_from_slice(b"\"\r\n\r\nv\r\n--b--\r\n");
        let p = mp("multipart/form-data; boundary=b", &body);
        assert!(p.error.clone().unwrap().contains("over 4096"));

        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX: \x00\r\n\r\nv\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(p.error.clone().unwrap().contains("Nul byte"));
    }

    #[test]
    fn file_limit() {
        let mut body = Vec::new();
        for i in 0..(MAX_FILES + 2) {
            body.extend_from_slice(format!("--b\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"{i}.txt\"\r\n\r\ndata\r\n").as_bytes());
        }
        body.extend_from_slice(b"--b--\r\n");
        let p = mp("multipart/form-data; boundary=b", &body);
        let f = flags(&p);
        assert!(f.file_limit_exceeded && f.strict_error());
        assert!(p
            .error
            .clone()
            .unwrap()
            .contains("Upload file limit exceeded"));
        assert_eq!(p.files.len(), MAX_FILES + 2);
        assert!(p.files[MAX_FILES + 1].content.is_empty());
        assert_eq!(p.files[MAX_FILES + 1].size, 4);
    }

    #[test]
    fn final_duplicate_and_args_limit() {
        let body =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n--b--\r\n";
        let p = mp("multipart/form-data; boundary=b", body);
        assert!(flags(&p).data_after);
        let mut body = Vec::new();
        for i in 0..5 {
            body.extend_from_slice(
                format!("--b\r\nContent-Disposition: form-data; name=\"a{i}\"\r\n\r\nv\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--b--\r\n");
        let l = BodyLimits {
            max_args: 3,
            ..BodyLimits::default()
        };
        let p = parse_body(
            Processor::Multipart,
            b"multipart/form-data; boundary=b",
            &body,
            &l,
        );
        assert_eq!(p.args.len(), 3);
        assert!(p.args_exceeded);
    }

    /// Every multipart body of the CRS regression cases parses without a
    /// panic, and the ones CRS expects to be well-formed without an error.
    /// `#[ignore]`d because it reads ../shared (scripts/test.sh runs it);
    /// it fails when asked to run without its file.
    #[test]
    #[ignore = "needs ../shared/crs/cases/crs_cases.jsonl; scripts/test.sh runs it"]
    fn shared_crs_case_multipart_bodies() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/crs/cases/crs_cases.jsonl");
        let data = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (this test needs ../shared)", path.display()));
        let mut n = 0;
        for line in data.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(hl) = v["header_list"].as_array() else {
                continue;
            };
            let ct = hl
                .iter()
                .filter_map(|h| h.as_array())
                .find(|h| {
                    h[0].as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("content-type"))
                })
                .and_then(|h| h[1].as_str())
                .unwrap_or("");
            let body = match v["body"].as_str() {
                Some(b) => b.as_bytes().to_vec(),
                None => continue,
            };
            if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
                continue;
            }
            let p = mp(ct, &body);
            n += 1;
            let id = v["id"].as_str().unwrap_or("");
            if id.starts_with("944120") || id.starts_with("933111") || id.starts_with("920120-1") {
                assert!(p.error.is_none(), "{id}: {:?}", p.error);
            }
        }
        assert!(n > 0);
    }
}
