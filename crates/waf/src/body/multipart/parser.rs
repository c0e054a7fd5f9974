//! The line-by-line multipart parser (ModSecurity's 4096-byte line buffer,
//! boundaries, part headers, `Content-Disposition`, part data).

use super::boundary::is_c_space;
use super::part::Part;
use super::*;

pub(super) struct Parser<'o> {
    pub(super) boundary: Vec<u8>,
    /// `--` + boundary, for substring searches.
    pub(super) dash_boundary: Vec<u8>,
    pub(super) flags: MultipartFlags,
    pub(super) error: Option<String>,
    pub(super) out: &'o mut ParsedBody,
    pub(super) max_args: usize,
    pub(super) part: Option<Part>,
    /// `m_mpp_state`: false while reading part headers.
    pub(super) in_data: bool,
    /// `m_mpp_substate_part_data_read`.
    pub(super) data_read: bool,
    /// Line ending held back from the previous data chunk.
    pub(super) reserve: &'static [u8],
    pub(super) boundary_count: usize,
    pub(super) is_complete: bool,
    pub(super) nfiles: usize,
    /// Bytes left for `MULTIPART_PART_HEADERS` (each line repeats the part
    /// name, so cap the total to keep memory linear in the input).
    pub(super) header_budget: usize,
    /// The body is a prefix of the real one.
    pub(super) partial: bool,
    /// Address of the body: file contents are kept as ranges of it.
    pub(super) base: usize,
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

    pub(super) fn run(&mut self, body: &[u8]) {
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
    pub(super) fn chunk(
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
