//! Compiles arbitrary UTF-8 as a rule expression; whatever compiles is
//! evaluated against a fixed request. Neither step may panic, overflow the
//! stack or run away.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_policy::expr::{Expr, Lists};
use palisade_policy::{Geo, Request};

fn lists() -> Lists {
    let mut lists = Lists::new();
    let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let _ = lists.insert(
        "office",
        &list(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]),
    );
    let _ = lists.insert("bots", &list(&["curl", "wget", "sqlmap"]));
    let _ = lists.insert("ports", &list(&["80", "443", "8000..8999"]));
    lists
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::compile(src, &lists()) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("user-agent", http::HeaderValue::from_static("curl/8.0"));
    headers.insert(
        "cookie",
        http::HeaderValue::from_static("session=abc; theme=dark"),
    );
    headers.insert("x-api-key", http::HeaderValue::from_static("K-1"));
    // Repeated fields and a byte that is not UTF-8: rules see every value.
    headers.append("x-api-key", http::HeaderValue::from_static("K-2"));
    headers.append("cookie", http::HeaderValue::from_static("theme=light"));
    if let Ok(v) = http::HeaderValue::from_bytes(b"sqlmap/1.7\x80") {
        headers.append("user-agent", v);
    }
    let req = Request {
        client_ip: "10.1.2.3".parse().expect("valid address"),
        host: "www.example.com",
        method: "GET",
        uri: "/Admin/Login.php?id=42&q=caf%C3%A9+au+lait&id=43",
        raw_uri: "/Admin/./Login.php;x=1?id=42&q=caf%C3%A9+au+lait&id=43",
        headers: &headers,
        geo: Geo {
            country: Some(*b"US"),
            asn: Some(15169),
        },
    };
    let _ = expr.eval(&req);
    let _ = expr.source();
});
