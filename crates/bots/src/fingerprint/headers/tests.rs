//! Expected texts were computed independently with a few lines of Python
//! (`hashlib.sha256(",".join(names).encode()).hexdigest()[:12]`).

use super::*;

#[test]
fn curl_head_captured() {
    // tests/fixtures/curl_h1.hex: see tests/fixtures/README.md.
    let raw = hex(include_str!("../../../tests/fixtures/curl_h1.hex"));
    let fp = http1(&raw).unwrap();
    assert_eq!(fp.as_str(), "h1n03c_fe444ad14866");
    assert_eq!(fp.header_count(), 3);
    assert_eq!(fp.version(), HttpVersion::H1);
    assert!(!fp.has_accept_language() && !fp.has_cookie() && !fp.has_sec_fetch());
}

#[test]
fn browser_like_head_sets_flags() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\n\
Accept-Language: en\r\nAccept-Encoding: gzip\r\nReferer: http://a/\r\nCookie: a=b\r\n\
Sec-Fetch-Dest: document\r\n\r\n";
    let fp = http1(raw).unwrap();
    assert_eq!(fp.as_str(), "h1n08c_4c12d0f2278d");
    assert_eq!(fp.header_count(), 8);
    assert!(fp.has_accept_language());
    assert!(fp.has_accept_encoding());
    assert!(fp.has_referer());
    assert!(fp.has_cookie());
    assert!(fp.has_sec_fetch());
    assert!(!fp.has_sec_ch_ua());
}

#[test]
fn case_patterns() {
    let mixed = http1(b"GET / HTTP/1.1\r\nhost: a\r\nuser-agent: b\r\nAccept: c\r\n\r\n").unwrap();
    assert_eq!(mixed.as_str(), "h1n03m_4277ae0d8f2f");
    let lower = http1(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
    assert_eq!(&lower.as_str()[..7], "h1n01l_");
    let caps = http1(b"GET / HTTP/1.1\r\nX-Forwarded-For: a\r\nDnt: 1\r\n\r\n").unwrap();
    assert_eq!(&caps.as_str()[..7], "h1n02c_");
    let shout = http1(b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n").unwrap();
    assert_eq!(&shout.as_str()[..7], "h1n01m_");
    // Case is part of the hash on HTTP/1.
    let a = http1(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let b = http1(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n").unwrap();
    assert_ne!(a.as_str()[7..], b.as_str()[7..]);
}

#[test]
fn order_matters() {
    let a = http1(b"GET / HTTP/1.1\r\nHost: a\r\nAccept: b\r\n\r\n").unwrap();
    let b = http1(b"GET / HTTP/1.1\r\nAccept: b\r\nHost: a\r\n\r\n").unwrap();
    assert_ne!(a, b);
    assert_eq!(a.header_count(), b.header_count());
}

#[test]
fn bare_lf_and_missing_final_crlf_are_tolerated() {
    let crlf = http1(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: b\r\nAccept: c\r\n\r\n").unwrap();
    let lf = http1(b"GET / HTTP/1.1\nHost: a\nUser-Agent: b\nAccept: c\n\n").unwrap();
    let no_end = http1(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: b\r\nAccept: c").unwrap();
    let no_blank = http1(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: b\r\nAccept: c\r\n").unwrap();
    assert_eq!(crlf.as_str(), "h1n03c_fe444ad14866");
    assert_eq!(lf, crlf);
    assert_eq!(no_end, crlf);
    assert_eq!(no_blank, crlf);
}

#[test]
fn body_after_blank_line_and_obs_fold_are_not_headers() {
    let fp = http1(b"POST / HTTP/1.1\r\nHost: a\r\nUser-Agent: b\r\n  folded\r\nAccept: c\r\n\r\nCookie: x\r\n").unwrap();
    assert_eq!(fp.as_str(), "h1n03c_fe444ad14866");
    assert!(!fp.has_cookie());
}

#[test]
fn no_headers() {
    let fp = http1(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(fp.as_str(), "h1n00l_000000000000");
    assert_eq!(fp.header_count(), 0);
}

#[test]
fn rejects_what_it_cannot_read() {
    for bad in [
        &b""[..],
        b"\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
    ] {
        assert_eq!(http1(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn caps_work_at_256_headers() {
    let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..300 {
        raw.extend_from_slice(format!("X{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"Cookie: late\r\n\r\n");
    let fp = http1(&raw).unwrap();
    assert_eq!(fp.header_count(), MAX_HEADERS);
    assert_eq!(fp.as_str(), "h1n99c_631686695aea");
    assert!(!fp.has_cookie(), "headers past the cap are ignored");
}

#[test]
fn h2_names() {
    let names = [
        ":method",
        ":authority",
        "user-agent",
        "accept",
        "accept-language",
        "sec-ch-ua",
        "sec-fetch-site",
    ];
    let fp = from_names(HttpVersion::H2, names.iter().copied());
    assert_eq!(fp.as_str(), "h2n05l_5d9efc4e2ca9");
    assert_eq!(fp.version(), HttpVersion::H2);
    assert!(fp.has_sec_ch_ua() && fp.has_sec_fetch() && fp.has_accept_language());
    assert!(!fp.has_referer() && !fp.has_accept_encoding());
    let empty = from_names(HttpVersion::H2, std::iter::empty());
    assert_eq!(empty.as_str(), "h2n00l_000000000000");
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..400 {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            raw.push(b"Ab:-\r\n \x00\xff"[(seed % 9) as usize]);
        }
        let _ = http1(&raw);
        let _ = http1(&raw[16..]);
    }
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert!(
        !s.is_empty() && s.chunks_exact(2).remainder().is_empty(),
        "fixture is empty or odd"
    );
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}
