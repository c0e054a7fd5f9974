//! Fuzzes the libinjection port behind `@detectSQLi` and `@detectXSS`:
//! arbitrary bytes never panic, and a SQLi verdict comes with a
//! fingerprint of libinjection's shape (1 to 8 token types).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_detect::libinjection::{detect_sqli, detect_xss};

fuzz_target!(|data: &[u8]| {
    if let Some(fp) = detect_sqli(data) {
        let s = fp.as_bytes();
        assert!(!s.is_empty() && s.len() <= 8, "fingerprint {:?}", fp.as_str());
        assert_eq!(fp.as_str().as_bytes(), s);
    }
    let _ = detect_xss(data);
});
