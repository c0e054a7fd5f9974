//! The request and response as the engine sees them ([`HttpRequest`],
//! [`ResponseData`]) and the request data derived from them once per
//! transaction ([`RequestData`]: decoded path, arguments, cookies, body).

use super::*;

/// The request as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: Vec<u8>,
    /// The request target exactly as sent (`/a/b?x=1`).
    pub uri: Vec<u8>,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub remote_addr: String,
    pub remote_port: u16,
    pub unique_id: String,
}

/// The response as the engine sees it (phases 3 and 4).
#[derive(Debug, Clone, Default)]
pub struct ResponseData {
    /// Response headers were given: response variables exist.
    pub seen: bool,
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `RESPONSE_STATUS`: the status as text.
    pub status_text: Vec<u8>,
    /// `STATUS_LINE`: `HTTP/1.1 200 OK`.
    pub status_line: Vec<u8>,
    /// `RESPONSE_BODY`: what phase 4 inspects (decoded, at most the limit).
    pub body: Vec<u8>,
    /// The body was read for phase 4 (`RESPONSE_CONTENT_LENGTH` falls back
    /// to its length when the response declared none).
    pub body_read: bool,
    /// `OUTBOUND_DATA_ERROR`: the body was longer than the limit.
    pub body_over_limit: bool,
}

impl ResponseData {
    /// The response headers a backend sent, for phase 3.
    pub fn new(status: u16, protocol: &[u8], headers: Vec<(Vec<u8>, Vec<u8>)>) -> ResponseData {
        let status_text = status.to_string().into_bytes();
        let mut status_line = protocol.to_vec();
        status_line.push(b' ');
        status_line.extend_from_slice(&status_text);
        if let Some(reason) = reason_phrase(status) {
            status_line.push(b' ');
            status_line.extend_from_slice(reason.as_bytes());
        }
        ResponseData {
            seen: true,
            status,
            protocol: protocol.to_vec(),
            headers,
            status_text,
            status_line,
            body: Vec::new(),
            body_read: false,
            body_over_limit: false,
        }
    }

    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// The reason phrase of a status code (RFC 9110), for `STATUS_LINE`.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

/// Request data derived once per transaction.
#[derive(Debug, Default)]
pub struct RequestData {
    pub req: HttpRequest,
    /// How much of `req.body` is inspected (`None`: all of it). A body
    /// inspected by its prefix keeps every byte received, to be forwarded.
    pub inspect_len: Option<usize>,
    /// `req.body` (as far as inspected) is only the start of the body.
    pub body_partial: bool,
    /// `INBOUND_DATA_ERROR`: the body was longer than the limit.
    pub body_over_limit: bool,
    /// The response, once its headers are known.
    pub resp: ResponseData,
    pub path_decoded: Vec<u8>,
    pub uri_decoded: Vec<u8>,
    pub basename: Vec<u8>,
    pub query: Vec<u8>,
    pub request_line: Vec<u8>,
    pub args_get: Vec<(Vec<u8>, Vec<u8>)>,
    pub cookies: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Option<ParsedBody>,
    pub processor: Option<Processor>,
    pub server_name: Vec<u8>,
}

/// URL percent-decoding (`%XX` only; `+` kept), ModSecurity-style:
/// invalid escapes are kept as they are.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            let h = hex(input[i + 1]);
            let l = hex(input[i + 2]);
            if let (Some(h), Some(l)) = (h, l) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_cookies(headers: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for piece in value.split(|&b| b == b';') {
            let start = piece
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(piece.len());
            let piece = &piece[start..];
            if piece.is_empty() {
                continue;
            }
            match piece.iter().position(|&b| b == b'=') {
                Some(eq) => out.push((piece[..eq].to_vec(), piece[eq + 1..].to_vec())),
                None => out.push((piece.to_vec(), Vec::new())),
            }
        }
    }
}

impl RequestData {
    pub fn new(req: HttpRequest) -> RequestData {
        let (path, query) = match req.uri.iter().position(|&b| b == b'?') {
            Some(q) => (&req.uri[..q], &req.uri[q + 1..]),
            None => (&req.uri[..], &b""[..]),
        };
        // An absolute-form target (`http://host/path`) names the path after the authority.
        let path = strip_scheme_host(path);
        let path_decoded = percent_decode(path);
        let basename = match path_decoded.iter().rposition(|&b| b == b'/' || b == b'\\') {
            Some(i) => path_decoded[i + 1..].to_vec(),
            None => path_decoded.clone(),
        };
        let mut request_line = req.method.clone();
        request_line.push(b' ');
        request_line.extend_from_slice(&req.uri);
        request_line.push(b' ');
        request_line.extend_from_slice(&req.protocol);
        let mut args_get = Vec::new();
        body::parse_urlencoded(query, &mut args_get);
        let mut cookies = Vec::new();
        parse_cookies(&req.headers, &mut cookies);
        let server_name = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
            .map(|(_, v)| match v.iter().rposition(|&b| b == b':') {
                Some(i) if !v.contains(&b']') || v[i - 1..].starts_with(b"]") => v[..i].to_vec(),
                _ => v.clone(),
            })
            .unwrap_or_default();
        RequestData {
            uri_decoded: percent_decode(&req.uri),
            query: query.to_vec(),
            path_decoded,
            basename,
            request_line,
            args_get,
            cookies,
            body: None,
            processor: None,
            server_name,
            inspect_len: None,
            body_partial: false,
            body_over_limit: false,
            resp: ResponseData::default(),
            req,
        }
    }

    /// The request body as far as it is inspected.
    pub fn inspected_body(&self) -> &[u8] {
        let b = &self.req.body;
        match self.inspect_len {
            Some(n) => &b[..n.min(b.len())],
            None => b,
        }
    }

    pub(super) fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn args_post(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.body.as_ref().map(|b| b.args.as_slice()).unwrap_or(&[])
    }
}

fn strip_scheme_host(path: &[u8]) -> &[u8] {
    if path.starts_with(b"/") {
        return path;
    }
    if let Some(i) = memchr::memmem::find(path, b"://") {
        let rest = &path[i + 3..];
        return match rest.iter().position(|&b| b == b'/') {
            Some(p) => &rest[p..],
            None => b"",
        };
    }
    path
}

/// The default body processor for a Content-Type, as ModSecurity's
/// recommended configuration selects it.
pub fn default_processor(ct: &[u8]) -> Option<Processor> {
    match Processor::for_content_type(ct) {
        Processor::None => None,
        p => Some(p),
    }
}
