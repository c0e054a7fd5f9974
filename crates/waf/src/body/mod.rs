//! Request body processors (`REQBODY_PROCESSOR`), with the semantics of
//! libmodsecurity v3 (and, where v3 is buggy or silent, ModSecurity v2 /
//! Coraza), because the OWASP CRS regression tests depend on the exact
//! variable names and flags they produce.
//!
//! * `URLENCODED` → [`urlencoded`]: `ARGS_POST`, `URLENCODED_ERROR`.
//! * `MULTIPART`  → [`multipart`]: `ARGS_POST`, `FILES*`,
//!   `MULTIPART_PART_HEADERS`, every `MULTIPART_*` flag.
//! * `JSON`       → [`json`]: `ARGS_POST` named like libmodsecurity v3
//!   (`json.a.b`, `json.list.array_0`).
//! * `XML`        → [`xml`]: `XML:/*` and `XML://@*`.
//!
//! Every processor works on untrusted network input: no panics, linear time,
//! memory bounded by a small multiple of the input size.
//!
//! A body longer than the inspection limit may be inspected by its first
//! bytes only ([`parse_with`] with `partial`): truncation is not an attack, so
//! the processors then accept a document that ends inside an element, a
//! string or a part (no `REQBODY_ERROR`, no "final boundary missing"), and
//! [`prefix_len`] leaves out a character or `%` escape cut in two.

pub mod json;
pub mod multipart;
pub mod urlencoded;
pub mod xml;

pub use self::multipart::{MultipartFlags, MultipartValue};
pub use self::urlencoded::{parse_urlencoded, parse_urlencoded_limited, urldecode_nonstrict};
pub use self::xml::XmlDoc;

/// `SecUploadFileLimit` default: files beyond this count set
/// `MULTIPART_FILE_LIMIT_EXCEEDED` and are not extracted.
pub const MAX_FILES: usize = 100;
/// How many bytes of each uploaded file are kept for `FILES_TMP_CONTENT`.
pub const MAX_FILE_CONTENT_BYTES: usize = 1024 * 1024;
/// libxml2's default maximum element nesting depth (without `XML_PARSE_HUGE`).
pub const XML_MAX_DEPTH: usize = 256;

/// Limits applied while parsing a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// `SecRequestBodyLimit`: bytes beyond this are not processed
    /// (ProcessPartial semantics; [`ParsedBody::body_truncated`] is set).
    pub max_body_bytes: usize,
    /// `SecArgumentsLimit`: arguments beyond this are dropped
    /// ([`ParsedBody::args_exceeded`] is set; JSON parsing is aborted with an
    /// error, like libmodsecurity's cancelled yajl parse).
    pub max_args: usize,
    /// `SecRequestBodyJsonDepthLimit`.
    pub max_json_depth: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_body_bytes: 13 * 1024 * 1024,
            max_args: 1000,
            max_json_depth: 512,
        }
    }
}

/// A request body processor, as named by `REQBODY_PROCESSOR` and
/// `ctl:requestBodyProcessor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Processor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
    None,
}

impl Processor {
    /// The processor ModSecurity would use for a `Content-Type` header value
    /// with its recommended configuration: the built-in
    /// `application/x-www-form-urlencoded` and `multipart/form-data`
    /// prefixes, plus rules 200000 (`^(?:application(?:/soap\+|/)|text/)xml`),
    /// 200001 (`^application/json`) and 200006
    /// (`^application/[a-z0-9.-]+[+]json`). Case-insensitive.
    pub fn for_content_type(ct: &[u8]) -> Processor {
        let ct = trim_ows(ct);
        let lower = ct.to_ascii_lowercase();
        let l = lower.as_slice();
        if l.starts_with(b"multipart/form-data") {
            Processor::Multipart
        } else if l.starts_with(b"application/x-www-form-urlencoded") {
            Processor::UrlEncoded
        } else if l.starts_with(b"application/xml")
            || l.starts_with(b"application/soap+xml")
            || l.starts_with(b"text/xml")
        {
            Processor::Xml
        } else if l.starts_with(b"application/json") || is_plus_json(l) {
            Processor::Json
        } else {
            Processor::None
        }
    }

    /// Only the processors libmodsecurity selects by itself (no
    /// `ctl:requestBodyProcessor` rules): URLENCODED and MULTIPART.
    pub fn for_content_type_builtin(ct: &[u8]) -> Processor {
        let lower = trim_ows(ct).to_ascii_lowercase();
        if lower.starts_with(b"multipart/form-data") {
            Processor::Multipart
        } else if lower.starts_with(b"application/x-www-form-urlencoded") {
            Processor::UrlEncoded
        } else {
            Processor::None
        }
    }

    /// Parses a `ctl:requestBodyProcessor=` value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Processor> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("URLENCODED") {
            Some(Processor::UrlEncoded)
        } else if n.eq_ignore_ascii_case("MULTIPART") {
            Some(Processor::Multipart)
        } else if n.eq_ignore_ascii_case("JSON") {
            Some(Processor::Json)
        } else if n.eq_ignore_ascii_case("XML") {
            Some(Processor::Xml)
        } else {
            None
        }
    }

    /// The `REQBODY_PROCESSOR` value (empty for [`Processor::None`]).
    pub fn name(self) -> &'static str {
        match self {
            Processor::UrlEncoded => "URLENCODED",
            Processor::Multipart => "MULTIPART",
            Processor::Json => "JSON",
            Processor::Xml => "XML",
            Processor::None => "",
        }
    }
}

/// `application/<token>+json` (rule 200006 of the recommended configuration).
fn is_plus_json(lower: &[u8]) -> bool {
    let Some(rest) = lower.strip_prefix(b"application/") else {
        return false;
    };
    let mut i = 0;
    while i < rest.len()
        && (rest[i].is_ascii_lowercase()
            || rest[i].is_ascii_digit()
            || rest[i] == b'.'
            || rest[i] == b'-')
    {
        i += 1;
    }
    i > 0 && rest[i..].starts_with(b"+json")
}

pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = v.len();
    while s < e && matches!(v[s], b' ' | b'\t' | b'\r' | b'\n') {
        s += 1;
    }
    while e > s && matches!(v[e - 1], b' ' | b'\t' | b'\r' | b'\n') {
        e -= 1;
    }
    &v[s..e]
}

/// One uploaded file (a multipart part with a non-empty `filename=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePart {
    /// The form field name: key of `FILES`, `FILES_SIZES`,
    /// `FILES_TMP_CONTENT`; value of `FILES_NAMES`.
    pub name: Vec<u8>,
    /// The `filename=` parameter: value of `FILES`.
    pub filename: Vec<u8>,
    /// Size of the file data in bytes: `FILES_SIZES`
    /// (their sum is `FILES_COMBINED_SIZE`).
    pub size: usize,
    /// `FILES_TMP_CONTENT`: where the first [`MAX_FILE_CONTENT_BYTES`] bytes
    /// of the file are in the body that was parsed (an empty range for files
    /// over [`MAX_FILES`]). A range, not a copy: an upload is not held twice.
    pub content: std::ops::Range<usize>,
    /// The part's `Content-Type` header value, when present.
    pub content_type: Option<Vec<u8>>,
}

impl FilePart {
    /// `FILES_TMP_CONTENT` in `body`, the body that was parsed.
    pub fn content_in<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        body.get(self.content.clone()).unwrap_or_default()
    }
}

/// The result of running a body processor.
#[derive(Debug, Clone, Default)]
pub struct ParsedBody {
    /// `ARGS_POST` names and values, in order.
    pub args: Vec<(Vec<u8>, Vec<u8>)>,
    /// `FILES`, `FILES_NAMES`, `FILES_SIZES`, `FILES_TMP_CONTENT`.
    pub files: Vec<FilePart>,
    /// `MULTIPART_PART_HEADERS`: (part name, raw header line `Name: value`,
    /// folded lines joined with one space).
    pub multipart_part_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Set by the multipart processor (even when the Content-Type is bad).
    pub multipart: Option<MultipartFlags>,
    /// Set by the XML processor whenever a root element was started (also on
    /// malformed documents: libxml2 keeps the partial tree).
    pub xml: Option<XmlDoc>,
    /// `REQBODY_ERROR_MSG` (`REQBODY_ERROR` / `REQBODY_PROCESSOR_ERROR` are 1
    /// iff this is set), e.g. `"JSON parsing error: ..."`,
    /// `"XML parsing error: XML: Failed parsing document."`,
    /// `"Multipart parsing error: Multipart: Final boundary missing."`.
    pub error: Option<String>,
    /// More than [`BodyLimits::max_args`] arguments were found.
    pub args_exceeded: bool,
    /// `URLENCODED_ERROR`: an invalid `%` encoding was seen (URLENCODED only).
    pub urlencoded_error: bool,
    /// The body was longer than [`BodyLimits::max_body_bytes`]; only the
    /// first `max_body_bytes` bytes were processed.
    pub body_truncated: bool,
}

impl ParsedBody {
    /// `REQBODY_ERROR` / `REQBODY_PROCESSOR_ERROR`.
    pub fn reqbody_error(&self) -> i64 {
        i64::from(self.error.is_some())
    }

    /// `FILES_COMBINED_SIZE`.
    pub fn files_combined_size(&self) -> usize {
        self.files
            .iter()
            .fold(0usize, |a, f| a.saturating_add(f.size))
    }
}

/// Runs `processor` on `body`. `content_type` is the raw `Content-Type`
/// request header value (needed for the multipart boundary).
pub fn parse(
    processor: Processor,
    content_type: &[u8],
    body: &[u8],
    limits: &BodyLimits,
) -> ParsedBody {
    parse_with(processor, content_type, body, limits, false)
}

/// [`parse`]; `partial`: `body` is only the first part of the request body
/// (cut at a limit), so ending before the document does is not an error.
pub fn parse_with(
    processor: Processor,
    content_type: &[u8],
    body: &[u8],
    limits: &BodyLimits,
    partial: bool,
) -> ParsedBody {
    let mut out = ParsedBody::default();
    // Cut here too: what is not processed must not look complete.
    let partial = partial || body.len() > limits.max_body_bytes;
    let body = if body.len() > limits.max_body_bytes {
        out.body_truncated = true;
        &body[..limits.max_body_bytes]
    } else {
        body
    };
    match processor {
        Processor::UrlEncoded => {
            let r = urlencoded::parse_urlencoded_limited(body, &mut out.args, limits.max_args);
            out.urlencoded_error = r.invalid_encoding;
            out.args_exceeded = r.exceeded;
        }
        Processor::Multipart => multipart::parse(content_type, body, limits, &mut out, partial),
        Processor::Json => json::parse(body, limits, &mut out, partial),
        Processor::Xml => xml::parse(body, &mut out, partial),
        Processor::None => {}
    }
    out
}

/// The name of the one argument a text body becomes (see [`parse_text`]).
pub const TEXT_BODY_ARG: &[u8] = b"text";

/// The media type of a `Content-Type` value, lowercase, without parameters
/// (`None` when it is not `type/subtype` made of RFC 9110 token characters).
pub fn media_type(ct: &[u8]) -> Option<Vec<u8>> {
    let t = trim_ows(ct);
    let end = t.iter().position(|&b| b == b';').unwrap_or(t.len());
    let essence = trim_ows(&t[..end]);
    let slash = essence.iter().position(|&b| b == b'/')?;
    let (ty, sub) = (&essence[..slash], &essence[slash + 1..]);
    let token = |p: &[u8]| !p.is_empty() && p.iter().all(|&b| is_tchar(b));
    (token(ty) && token(sub)).then(|| essence.to_ascii_lowercase())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether a `Content-Type` names a text format that no body processor
/// claims and that an origin reads as text: `text/plain` (browsers' `fetch`
/// and `sendBeacon` strings), YAML (`application/yaml`, `application/x-yaml`,
/// `text/yaml`, `application/…+yaml`, e.g. Kubernetes'
/// `application/apply-patch+yaml`), GraphQL and newline-delimited JSON.
pub fn is_text_like(ct: &[u8]) -> bool {
    let Some(t) = media_type(ct) else {
        return false;
    };
    matches!(
        t.as_slice(),
        b"text/plain"
            | b"text/yaml"
            | b"text/x-yaml"
            | b"application/yaml"
            | b"application/x-yaml"
            | b"application/graphql"
            | b"application/x-ndjson"
    ) || (t.starts_with(b"application/") && t.ends_with(b"+yaml") && t.len() > 17)
}

/// A text body (see [`is_text_like`]), which no body processor claims: so
/// that what the origin may read is inspected, a body that parses as JSON
/// gives its arguments as JSON would (many origins parse `text/plain` as
/// JSON whatever the type says); any other body is one argument,
/// `ARGS_POST:text`. Never an error (`REQBODY_ERROR` stays 0: a text is not
/// malformed).
pub fn parse_text(body: &[u8], limits: &BodyLimits, partial: bool) -> ParsedBody {
    if let Some(json) = sniff_json(body, limits, partial) {
        return json;
    }
    let mut out = ParsedBody::default();
    let end = body.len().min(limits.max_body_bytes);
    out.body_truncated = end < body.len();
    out.args
        .push((TEXT_BODY_ARG.to_vec(), body[..end].to_vec()));
    out
}

/// A body of any other type (or none) that no processor claims: its
/// arguments when it is a JSON document or a one-line form (`a=1&b=2`:
/// an origin that parses either whatever the type says must not receive
/// an uninspected one), else nothing (binary uploads are not arguments;
/// `REQUEST_BODY` still holds the raw body for the rules that read it).
pub fn parse_other(body: &[u8], limits: &BodyLimits, partial: bool) -> ParsedBody {
    if let Some(json) = sniff_json(body, limits, partial) {
        return json;
    }
    if looks_like_form(body) {
        return parse_with(Processor::UrlEncoded, b"", body, limits, partial);
    }
    ParsedBody::default()
}

/// Text with a `=` and no control character or whitespace (a form body
/// encodes spaces): what a form parser would read as arguments, and what a
/// binary upload or a multi-line text file is not.
fn looks_like_form(body: &[u8]) -> bool {
    body.contains(&b'=')
        && std::str::from_utf8(body).is_ok()
        && !body.iter().any(|b| b.is_ascii_control() || *b == b' ')
}

/// `body` parsed as JSON when it starts like a JSON object or array and
/// parses without error.
fn sniff_json(body: &[u8], limits: &BodyLimits, partial: bool) -> Option<ParsedBody> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return None;
    }
    let json = parse_with(Processor::Json, b"application/json", body, limits, partial);
    json.error.is_none().then_some(json)
}

/// How many bytes of a body prefix to inspect: all but a UTF-8 character
/// cut by its end, and for URLENCODED bodies a `%` escape cut by it (either
/// would look malformed only because of the cut).
pub fn prefix_len(processor: Option<Processor>, prefix: &[u8]) -> usize {
    let mut n = utf8_complete_len(prefix);
    if processor == Some(Processor::UrlEncoded) {
        let p = &prefix[..n];
        if p.ends_with(b"%") {
            n -= 1;
        } else if p.len() >= 2 && p[p.len() - 2] == b'%' && p[p.len() - 1].is_ascii_hexdigit() {
            n -= 2;
        }
    }
    n
}

/// `b` without a UTF-8 sequence that its end cuts short.
fn utf8_complete_len(b: &[u8]) -> usize {
    let n = b.len();
    for back in 1..=n.min(3) {
        let c = b[n - back];
        if c & 0xC0 == 0x80 {
            continue;
        }
        let need = match c {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return n,
        };
        return if need > back { n - back } else { n };
    }
    n
}

#[cfg(test)]
mod tests {

    #[test]
    fn text_plain_bodies_are_json_or_one_argument() {
        for ct in [
            &b"text/plain"[..],
            b" Text/Plain; charset=UTF-8",
            b"application/apply-patch+yaml",
            b"application/x-yaml",
            b"application/graphql",
        ] {
            assert!(is_text_like(ct), "{}", String::from_utf8_lossy(ct));
        }
        for ct in [
            &b"text/plainx"[..],
            b"text/html",
            b"application/+yaml",
            b"application/octet-stream",
            b"text/plain/x",
            b"",
        ] {
            assert!(!is_text_like(ct), "{}", String::from_utf8_lossy(ct));
        }
        assert_eq!(
            media_type(b" Application/Octet-Stream ; x=1").as_deref(),
            Some(&b"application/octet-stream"[..])
        );
        for bad in [&b"text"[..], b"/x", b"a b/c", b"text/", b"a/b/c", b";"] {
            assert_eq!(media_type(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let limits = BodyLimits {
            max_body_bytes: 64,
            max_args: 100,
            max_json_depth: 16,
        };
        let json = parse_text(b"\n {\"a\":\"b\"}", &limits, false);
        assert_eq!(json.args, vec![(b"json.a".to_vec(), b"b".to_vec())]);
        assert!(json.error.is_none());
        for text in [&b"hello world"[..], b"{broken", b"[1,"] {
            let t = parse_text(text, &limits, false);
            assert_eq!(t.args, vec![(TEXT_BODY_ARG.to_vec(), text.to_vec())]);
            assert!(t.error.is_none(), "a text is not malformed");
        }
        let long = vec![b'x'; 100];
        let t = parse_text(&long, &limits, false);
        assert_eq!((t.args[0].1.len(), t.body_truncated), (64, true));
        // Other types: JSON documents are inspected, anything else is not
        // an argument.
        let j = parse_other(b"{\"q\":\"x\"}", &limits, false);
        assert_eq!(j.args, vec![(b"json.q".to_vec(), b"x".to_vec())]);
        for other in [
            &b"\x89PNG\r\n"[..],
            b"{broken",
            b"plain words",
            b"KEY=value\nOTHER=2",
            b"a = b",
        ] {
            let o = parse_other(other, &limits, false);
            assert!(o.args.is_empty() && o.error.is_none());
        }
        // A one-line form is read as the form it is.
        let f = parse_other(b"id=1%27+or+1=1&x=2", &limits, false);
        assert_eq!(f.args[0], (b"id".to_vec(), b"1' or 1=1".to_vec()));
    }

    use super::*;

    #[test]
    fn content_type_selection() {
        assert_eq!(
            Processor::for_content_type(b"application/x-www-form-urlencoded; charset=UTF-8"),
            Processor::UrlEncoded
        );
        assert_eq!(
            Processor::for_content_type(b"Multipart/Form-Data; boundary=x"),
            Processor::Multipart
        );
        assert_eq!(
            Processor::for_content_type(b"application/json"),
            Processor::Json
        );
        assert_eq!(
            Processor::for_content_type(b"application/cloudevents+json"),
            Processor::Json
        );
        assert_eq!(
            Processor::for_content_type(b"application/+json"),
            Processor::None
        );
        assert_eq!(
            Processor::for_content_type(b"text/xml; charset=utf-8"),
            Processor::Xml
        );
        assert_eq!(
            Processor::for_content_type(b"application/soap+xml"),
            Processor::Xml
        );
        assert_eq!(Processor::for_content_type(b"text/plain"), Processor::None);
        assert_eq!(
            Processor::for_content_type(b"multipart/related"),
            Processor::None
        );
        assert_eq!(
            Processor::for_content_type_builtin(b"application/json"),
            Processor::None
        );
        assert_eq!(
            Processor::for_content_type_builtin(b"multipart/form-data"),
            Processor::Multipart
        );
    }

    #[test]
    fn names() {
        for p in [
            Processor::UrlEncoded,
            Processor::Multipart,
            Processor::Json,
            Processor::Xml,
        ] {
            assert_eq!(Processor::from_name(p.name()), Some(p));
            assert_eq!(
                Processor::from_name(&p.name().to_ascii_lowercase()),
                Some(p)
            );
        }
        assert_eq!(Processor::from_name("FOO"), None);
        assert_eq!(Processor::None.name(), "");
    }

    #[test]
    fn prefixes_end_on_whole_characters_and_escapes() {
        let ue = Some(Processor::UrlEncoded);
        assert_eq!(prefix_len(None, b"abc"), 3);
        assert_eq!(prefix_len(None, "aé".as_bytes()), 3);
        assert_eq!(prefix_len(None, &"aé".as_bytes()[..2]), 1);
        assert_eq!(prefix_len(None, &"a€".as_bytes()[..3]), 1);
        assert_eq!(prefix_len(None, &"a😀".as_bytes()[..4]), 1);
        assert_eq!(prefix_len(None, "a😀".as_bytes()), 5);
        assert_eq!(prefix_len(None, b"a\xff"), 2);
        assert_eq!(prefix_len(None, b"a\x80\x80\x80"), 4);
        assert_eq!(prefix_len(None, b"a%"), 2);
        assert_eq!(prefix_len(ue, b"a=b%"), 3);
        assert_eq!(prefix_len(ue, b"a=b%4"), 3);
        assert_eq!(prefix_len(ue, b"a=b%41"), 6);
        assert_eq!(prefix_len(ue, b"a=b%zz"), 6);
        assert_eq!(prefix_len(ue, b""), 0);
    }

    #[test]
    fn partial_bodies_are_not_malformed() {
        let l = BodyLimits::default();
        let json = br#"{"a":"x","b":[1,2,{"c":"<script>alert(1)"#;
        let whole = parse(Processor::Json, b"application/json", json, &l);
        assert!(whole.error.is_some());
        let p = parse_with(Processor::Json, b"application/json", json, &l, true);
        assert!(p.error.is_none(), "{:?}", p.error);
        assert_eq!(
            p.args.last(),
            Some(&(b"json.b.array_2.c".to_vec(), b"<script>alert(1)".to_vec()))
        );
        // Cut in an escape, a number, a literal, between tokens: not errors.
        for cut in [
            &br#"{"a":"x\u00"#[..],
            br#"{"a":1."#,
            br#"{"a":tr"#,
            br#"{"a""#,
            br#"["#,
        ] {
            let p = parse_with(Processor::Json, b"application/json", cut, &l, true);
            assert!(p.error.is_none(), "{}", String::from_utf8_lossy(cut));
        }
        // Real errors stay errors.
        let p = parse_with(Processor::Json, b"application/json", br#"{"a":x"#, &l, true);
        assert!(p.error.is_some());

        let xml = b"<?xml version='1.0'?><root><a x='1'>hello</a><b y='2'>wor";
        assert!(parse(Processor::Xml, b"text/xml", xml, &l).error.is_some());
        let p = parse_with(Processor::Xml, b"text/xml", xml, &l, true);
        assert!(p.error.is_none());
        let x = p.xml.unwrap();
        assert_eq!(x.text, vec![b"hellowor".to_vec()]);
        assert_eq!(x.attributes, vec![b"1".to_vec(), b"2".to_vec()]);
        for cut in [
            &b"<root><a"[..],
            b"<root a='",
            b"<root a",
            b"<root></ro",
            b"<root><!-",
            b"<root><!-- x",
            b"<root><![CDATA[x",
            b"<root>&am",
            b"<root><?pi x",
            b"<!DOCTYPE",
            b"<root>\xc3",
            b"<",
        ] {
            let p = parse_with(Processor::Xml, b"text/xml", cut, &l, true);
            assert!(p.error.is_none(), "{}", String::from_utf8_lossy(cut));
        }
        for bad in [&b"<root><a></b>"[..], b"<root x='1' x='2'>", b"<root>\x01"] {
            let p = parse_with(Processor::Xml, b"text/xml", bad, &l, true);
            assert!(p.error.is_some(), "{}", String::from_utf8_lossy(bad));
        }

        let ct = b"multipart/form-data; boundary=XX";
        let mp: &[u8] = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue-a\r\n--XX\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n<script>al";
        let whole = parse(Processor::Multipart, ct, mp, &l);
        assert!(whole
            .error
            .as_deref()
            .unwrap()
            .contains("Final boundary missing"));
        let p = parse_with(Processor::Multipart, ct, mp, &l, true);
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(!p.multipart.as_ref().unwrap().strict_error());
        assert_eq!(
            p.args,
            vec![
                (b"a".to_vec(), b"value-a".to_vec()),
                (b"b".to_vec(), b"<script>al".to_vec())
            ]
        );
        // Cut inside a part's headers, or before the first line ends.
        for cut in [&mp[..40], &mp[..3]] {
            let p = parse_with(Processor::Multipart, ct, cut, &l, true);
            assert!(p.error.is_none(), "{:?}", p.error);
        }
        // Lines without any boundary are still not multipart.
        let p = parse_with(Processor::Multipart, ct, b"junk\r\nmore junk", &l, true);
        assert!(p.error.is_some());
    }

    #[test]
    fn dispatch_and_limits() {
        let l = BodyLimits::default();
        let p = parse(Processor::UrlEncoded, b"", b"a=1&b=%zz", &l);
        assert_eq!(
            p.args,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"%zz".to_vec())
            ]
        );
        assert!(p.urlencoded_error);
        assert!(p.error.is_none());

        let small = BodyLimits {
            max_body_bytes: 3,
            ..l
        };
        let p = parse(Processor::UrlEncoded, b"", b"a=12345", &small);
        assert!(p.body_truncated);
        assert_eq!(p.args, vec![(b"a".to_vec(), b"1".to_vec())]);

        let few = BodyLimits { max_args: 2, ..l };
        let p = parse(Processor::UrlEncoded, b"", b"a=1&b=2&c=3", &few);
        assert!(p.args_exceeded);
        assert_eq!(p.args.len(), 2);

        let p = parse(Processor::None, b"", b"whatever", &l);
        assert!(p.args.is_empty() && p.error.is_none());

        let p = parse(
            Processor::Json,
            b"application/json",
            br#"{"a":[1,{"b":null}]}"#,
            &l,
        );
        assert_eq!(
            p.args,
            vec![
                (b"json.a.array_0".to_vec(), b"1".to_vec()),
                (b"json.a.array_1.b".to_vec(), b"".to_vec())
            ]
        );
        assert_eq!(p.reqbody_error(), 0);

        let p = parse(Processor::Xml, b"text/xml", b"<a x='1'>t<b>u</b></a>", &l);
        let x = p.xml.unwrap();
        assert_eq!(x.text, vec![b"tu".to_vec()]);
        assert_eq!(x.attributes, vec![b"1".to_vec()]);
    }
}
