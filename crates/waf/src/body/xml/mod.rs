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

mod encoding;
mod parser;
#[cfg(test)]
mod tests;
mod xpath;

use encoding::{decode, first_invalid_char, normalize};
use parser::Parser;

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
