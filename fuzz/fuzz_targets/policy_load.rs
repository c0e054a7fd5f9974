//! Fuzzes the policy loader: any input either compiles into a policy or yields
//! errors whose positions lie inside the input; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_toml(src, "fuzz.toml") {
        Ok(p) => {
            // Every compiled expression must evaluate without panicking.
            let headers = http::HeaderMap::new();
            let req = palisade_policy::Request {
                client_ip: "192.0.2.1".parse().expect("literal"),
                host: "example.com",
                method: "GET",
                uri: "/a?b=c",
                raw_uri: "/a?b=c",
                headers: &headers,
                geo: Default::default(),
            };
            for r in &p.rules {
                let _ = r.expression.eval(&req);
            }
        }
        Err(errors) => {
            let lines = src.lines().count().max(1) + 1;
            for e in &errors.0 {
                assert!(e.line >= 1 && e.line <= lines, "{e}");
                assert!(e.column >= 1, "{e}");
            }
        }
    }
});
