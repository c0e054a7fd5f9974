//! The XML 1.0 tokenizer: prolog, internal DTD subset and entity
//! declarations, elements, attributes and references, with bounded entity
//! expansion; it rejects what libxml2 reports as not well-formed.

use super::*;

pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n')
}

pub(super) fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80
}

pub(super) fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == b'-' || c == b'.'
}

fn is_xml_char(cp: u32) -> bool {
    matches!(cp, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

#[derive(Clone)]
pub(super) enum Entity {
    /// Replacement text (character references already substituted).
    Internal(Rc<[u8]>),
    External,
}

/// A fatal (well-formedness) error.
pub(super) struct Fatal;

type R<T> = Result<T, Fatal>;

pub(super) struct Parser<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    pub(super) doc: XmlDoc,
    pub(super) content: Vec<u8>,
    pub(super) entities: HashMap<Vec<u8>, Entity>,
    pub(super) has_external_subset: bool,
    pub(super) has_pe_refs: bool,
    pub(super) standalone: bool,
    /// Bytes that entity expansion may still produce.
    pub(super) budget: usize,
    /// Start of the text node being built, and its parent element.
    pub(super) open_text: Option<(usize, usize)>,
    /// Entities being expanded (loop detection).
    pub(super) expanding: Vec<Vec<u8>>,
    /// The parser needed input past the end (a cut document fails so).
    pub(super) eof: Cell<bool>,
}

impl<'a> Parser<'a> {
    pub(super) fn finish(mut self) -> (XmlDoc, bool) {
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

    pub(super) fn starts_with(&self, p: &[u8]) -> bool {
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

    pub(super) fn name(&mut self) -> R<&'a [u8]> {
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

    pub(super) fn document(&mut self) -> R<()> {
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

    pub(super) fn pi(&mut self) -> R<()> {
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

    pub(super) fn open_text(&mut self, parent: usize) {
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
    pub(super) fn attributes(&mut self, idx: usize) -> R<bool> {
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
