//! Fuzzes the SecLang front end and compiler: any configuration text either
//! compiles into a rule set or yields errors; compiled rules then evaluate a
//! request and a response (phases 1 to 5) without panicking. Never panics,
//! never hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::{parser, rules, HttpRequest, ResponseData, Transaction};
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // No includes or data files: the fuzzer must not read the disk.
    if src.to_ascii_lowercase().contains("include") || src.contains("FromFile") || src.contains("@pmf") {
        return;
    }
    let Ok(directives) = parser::parse_str(src, &Arc::from("fuzz.conf"), &Arc::from(Path::new("/nonexistent"))) else {
        return;
    };
    let Ok(rs) = rules::compile_with(&directives, true) else {
        return;
    };
    let req = HttpRequest {
        method: b"POST".to_vec(),
        uri: b"/a/b.php?x=1&y=%27or%201=1".to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: vec![
            (b"Host".to_vec(), b"example.com".to_vec()),
            (b"Content-Type".to_vec(), b"application/x-www-form-urlencoded".to_vec()),
            (b"Cookie".to_vec(), b"a=b; c=<script>".to_vec()),
        ],
        body: b"q=select+*+from+t&z=%3Csvg%3E".to_vec(),
        remote_addr: "192.0.2.1".into(),
        remote_port: 1234,
        unique_id: "fuzz".into(),
    };
    let mut tx = Transaction::new(Arc::new(rs), req);
    let _ = tx.process_request();
    // The response phases and logging, with every response variable set.
    tx.set_response(ResponseData::new(
        200,
        b"HTTP/1.1",
        vec![
            (b"Content-Type".to_vec(), b"text/html".to_vec()),
            (b"Set-Cookie".to_vec(), b"s=1; HttpOnly".to_vec()),
        ],
    ));
    let _ = tx.process_response_headers();
    tx.set_response_body(b"<html><title>Index of /</title><?php echo 1; ?></html>".to_vec(), false);
    let _ = tx.process_response_body();
    tx.process_logging();
});
