//! Fuzzes the request body processors (urlencoded, multipart, JSON, XML):
//! arbitrary bodies and content types never panic and stay within limits,
//! whole or as a prefix cut at a limit (partial).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::body::{self, BodyLimits, Processor};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the processor; for multipart, the content type
    // (with its boundary) is taken from the input up to the first newline.
    let (processor, content_type, body): (Processor, &[u8], &[u8]) = match selector % 4 {
        0 => (Processor::UrlEncoded, b"application/x-www-form-urlencoded", rest),
        1 => {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let body = rest.get(nl + 1..).unwrap_or(&[]);
            (Processor::Multipart, &rest[..nl], body)
        }
        2 => (Processor::Json, b"application/json", rest),
        _ => (Processor::Xml, b"application/xml", rest),
    };
    let limits = BodyLimits {
        max_body_bytes: 1 << 20,
        max_args: 1000,
        max_json_depth: 64,
    };
    let partial = selector & 4 != 0;
    let body = if partial { &body[..body::prefix_len(Some(processor), body)] } else { body };
    let parsed = body::parse_with(processor, content_type, body, &limits, partial);
    assert!(parsed.args.len() <= limits.max_args + 1, "{} args", parsed.args.len());
    let mut args = Vec::new();
    body::parse_urlencoded(rest, &mut args);
});
