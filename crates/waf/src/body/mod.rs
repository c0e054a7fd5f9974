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
    /// `FILES_TMP_CONTENT`: the first [`MAX_FILE_CONTENT_BYTES`] bytes of the
    /// file (empty for files over [`MAX_FILES`]).
    pub content: Vec<u8>,
    /// The part's `Content-Type` header value, when present.
    pub content_type: Option<Vec<u8>>,
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
    let mut out = ParsedBody::default();
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
        Processor::Multipart => multipart::parse(content_type, body, limits, &mut out),
        Processor::Json => json::parse(body, limits, &mut out),
        Processor::Xml => xml::parse(body, &mut out),
        Processor::None => {}
    }
    out
}

#[cfg(test)]
mod tests {
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
