//! One part of a multipart body while it is parsed: its headers and data.

use super::*;

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
pub(super) struct HeaderEntry {
    pub(super) name: (usize, usize),
    pub(super) value: (usize, usize),
}

/// A part being built. Header names, values and raw lines live in two
/// flat buffers so that a part with very many headers stays cheap.
#[derive(Default)]
pub(super) struct Part {
    pub(super) name: Vec<u8>,
    pub(super) filename: Vec<u8>,
    pub(super) is_file: bool,
    /// Header names and values.
    buf: Vec<u8>,
    pub(super) headers: Vec<HeaderEntry>,
    /// Hash of the lower-cased name → first entry with that hash;
    /// `chain[i]` is the next entry with the same hash.
    index: HashMap<u64, usize>,
    chain: Vec<usize>,
    hasher: RandomState,
    /// Completed raw header lines (`MULTIPART_PART_HEADERS`).
    pub(super) lines: Vec<u8>,
    pub(super) line_ranges: Vec<(usize, usize)>,
    pending: PendingLine,
    pub(super) last_header: Option<usize>,
    pub(super) value: Vec<u8>,
    pub(super) size: usize,
    /// For a file: where its data starts in the body (data chunks are
    /// consecutive slices of it, so the content is one range).
    pub(super) data_start: Option<usize>,
    /// Counted against the file limit (first data chunk seen).
    pub(super) file_counted: bool,
    pub(super) file_extract: bool,
}

const NO_ENTRY: usize = usize::MAX;

impl Part {
    pub(super) fn key(&self, name: &[u8]) -> u64 {
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
    pub(super) fn find(&self, name: &[u8]) -> Option<usize> {
        self.find_keyed(name, self.key(name))
    }

    pub(super) fn find_keyed(&self, name: &[u8], key: u64) -> Option<usize> {
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

    pub(super) fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let i = self.find(name)?;
        Some(self.slice(self.headers[i].value))
    }

    pub(super) fn add_header(&mut self, name: &[u8], value: &[u8], key: u64) -> usize {
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
    pub(super) fn fold(&mut self, idx: usize, cont: &[u8]) -> bool {
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

    pub(super) fn set_raw_pending(&mut self, line: &[u8]) {
        let start = self.lines.len();
        self.lines.extend_from_slice(line);
        self.pending = PendingLine::Raw(start);
    }

    /// Records the pending header line.
    pub(super) fn flush_line(&mut self) {
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
