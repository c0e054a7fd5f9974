//! Fuzzes the normalization rules see (`palisade_policy::normalize`):
//! arbitrary bytes as a request target and as a host never panic, and the
//! results have the shape rules rely on — a path starts with `/` (unless it
//! is `*`), holds no empty, `.` or `..` segment and no `;` parameter, every
//! `%` starts an escape, and normalizing a second time changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_policy::{normalize_host, normalize_path, normalize_uri};

fuzz_target!(|data: &[u8]| {
    let path_end = data.iter().position(|&b| b == b'?').unwrap_or(data.len());
    let path = normalize_path(&data[..path_end]);
    if &*path != "*" {
        assert!(path.starts_with('/'), "{path:?}");
        let segments: Vec<&str> = path[1..].split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            assert!(!seg.is_empty() || last, "empty segment in {path:?}");
            assert!(*seg != "." && *seg != "..", "dot segment in {path:?}");
            assert!(!seg.contains(';'), "path parameter in {path:?}");
        }
        let b = path.as_bytes();
        for (i, _) in path.match_indices('%') {
            assert!(
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(),
                "bare % in {path:?}"
            );
        }
    }
    assert_eq!(normalize_path(path.as_bytes()), path, "not idempotent");

    let uri = normalize_uri(data);
    assert!(uri.starts_with(&*path) || (&*path == "*" && uri.starts_with('*')), "{uri:?} vs {path:?}");
    assert_eq!(normalize_uri(uri.as_bytes()), uri, "uri not idempotent");

    let host = normalize_host(data);
    assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{host:?}");
    assert_eq!(normalize_host(host.as_bytes()), host, "host not idempotent");
});
