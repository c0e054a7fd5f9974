//! Expected values come from outside this code: the JA4 specification's own
//! worked example (`t13d1516h2_8daaf6152771_e5627efa2ab1`, and
//! `6d807ffa2a79` without signature algorithms), and for the captured
//! fixtures the `ja4plus` package from PyPI (see tests/fixtures/README.md).

use super::*;
use crate::fingerprint::headers::tests::hex;

const OPENSSL: &str = include_str!("../../../tests/fixtures/openssl_tls.hex");
const CURL_SNI: &str = include_str!("../../../tests/fixtures/curl_tls_sni.hex");
const CURL_IP: &str = include_str!("../../../tests/fixtures/curl_tls_ip.hex");

/// The captured fixtures and the JA4 that `ja4plus` computed for each.
fn captured() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "openssl",
            hex(OPENSSL),
            "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",
        ),
        (
            "curl sni",
            hex(CURL_SNI),
            "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
        ),
        (
            "curl ip",
            hex(CURL_IP),
            "t13i3111h1_e8f1e7e78f70_b26ce05bbdd6",
        ),
    ]
}

/// One extension: type and body.
type Ext = (u16, Vec<u8>);

fn vec16(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn list16(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// A ClientHello handshake message (with its 4-byte header).
fn hello(version: u16, ciphers: &[u16], exts: Option<&[Ext]>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[7; 32]);
    body.push(32);
    body.extend_from_slice(&[9; 32]);
    body.extend(vec16(&list16(ciphers)));
    body.extend_from_slice(&[1, 0]);
    if let Some(exts) = exts {
        let mut all = Vec::new();
        for (kind, data) in exts {
            all.extend_from_slice(&kind.to_be_bytes());
            all.extend(vec16(data));
        }
        body.extend(vec16(&all));
    }
    let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    msg.extend(body);
    msg
}

/// Wraps a handshake message into records of at most `size` bytes.
fn records(msg: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(size) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn alpn_body(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for n in names {
        list.push(n.len() as u8);
        list.extend_from_slice(n);
    }
    vec16(&list)
}

/// The JA4 specification's example hello, with GREASE values added to the
/// ciphers, the extensions, supported_versions, the signature algorithms
/// and the ALPN list (where JA4 ignores them).
fn spec_hello(sig_algs: &[u16]) -> Vec<u8> {
    let ciphers = [
        0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let mut sigs = vec![0x3a3a];
    sigs.extend_from_slice(sig_algs);
    let mut versions = vec![6u8];
    versions.extend(list16(&[0xdada, 0x0304, 0x0303]));
    let exts: Vec<Ext> = vec![
        (0x2a2a, vec![]),
        (0x001b, vec![2, 0, 2]),
        (
            0x0000,
            vec16(
                &[
                    0, 0, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o', b'm',
                ][..],
            ),
        ),
        (0x0033, vec16(&[0x0a, 0x0a, 0, 1, 0])),
        (0x0010, alpn_body(&[b"h2", b"http/1.1"])),
        (0x4469, vec![0, 3, 2, b'h', b'2']),
        (0x0017, vec![]),
        (0x002d, vec![1, 1]),
        (0x000d, vec16(&list16(&sigs))),
        (0x0005, vec![1, 0, 0, 0, 0]),
        (0x0023, vec![]),
        (0x0012, vec![]),
        (0x002b, versions),
        (0xff01, vec![0]),
        (0x000b, vec![1, 0]),
        (0x000a, vec16(&list16(&[0x4a4a, 0x001d, 0x0017]))),
        (0x0015, vec![0; 20]),
        (0xfafa, vec![0]),
    ];
    hello(0x0303, &ciphers, Some(&exts))
}

#[test]
fn spec_example_with_grease() {
    let msg = spec_hello(&[
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]);
    let ja4 = ja4_from_client_hello(&msg).unwrap();
    assert_eq!(ja4.as_str(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert_eq!(ja4.prefix(), "t13d1516h2");
    assert_eq!(ja4.to_string(), ja4.as_str());
}

#[test]
fn spec_example_without_signature_algorithms() {
    // The spec: with no signature algorithms the extension list is hashed
    // alone, without a trailing `_`.
    let ja4 = ja4_from_client_hello(&spec_hello(&[])).unwrap();
    assert_eq!(ja4.as_str(), "t13d1516h2_8daaf6152771_6d807ffa2a79");
}

#[test]
fn captured_clients_match_ja4plus() {
    for (name, raw, want) in captured() {
        let mut c = ClientHelloCollector::new();
        assert_eq!(
            c.push(&raw),
            Collect::Done(ja4_from_client_hello(&raw[5..]).unwrap()),
            "{name}"
        );
        match c.result() {
            Some(Collect::Done(ja4)) => assert_eq!(ja4.as_str(), want, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn every_split_point_of_two_pushes() {
    for (name, raw, want) in captured() {
        for at in 0..=raw.len() {
            let mut c = ClientHelloCollector::new();
            let first = c.push(&raw[..at]);
            if at < raw.len() {
                assert_eq!(first, Collect::NeedMore, "{name} at {at}");
            }
            match c.push(&raw[at..]) {
                Collect::Done(ja4) => assert_eq!(ja4.as_str(), want, "{name} at {at}"),
                other => panic!("{name} at {at}: {other:?}"),
            }
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for (name, raw, want) in captured() {
        let mut c = ClientHelloCollector::new();
        let mut last = Collect::NeedMore;
        for (i, b) in raw.iter().enumerate() {
            last = c.push(std::slice::from_ref(b));
            if i + 1 < raw.len() {
                assert_eq!(last, Collect::NeedMore, "{name} at {i}");
            }
        }
        assert!(
            matches!(last, Collect::Done(j) if j.as_str() == want),
            "{name}"
        );
    }
}

#[test]
fn hello_split_across_records() {
    let msg = spec_hello(&[0x0403, 0x0804]);
    let want = ja4_from_client_hello(&msg).unwrap();
    for size in [1, 2, 3, 4, 5, 17, 100, msg.len() - 1, msg.len()] {
        let raw = records(&msg, size);
        for at in [0, 1, 4, 5, 6, raw.len() / 2, raw.len()] {
            let mut c = ClientHelloCollector::new();
            c.push(&raw[..at]);
            assert_eq!(
                c.push(&raw[at..]),
                Collect::Done(want),
                "records of {size}, split at {at}"
            );
        }
    }
}

#[test]
fn data_after_the_hello_is_ignored_and_final_state_sticks() {
    let (_, mut raw, want) = captured().remove(0);
    raw.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]); // a ChangeCipherSpec after it
    raw.extend_from_slice(&[0xff; 40_000]);
    let mut c = ClientHelloCollector::new();
    let done = c.push(&raw);
    assert!(matches!(done, Collect::Done(j) if j.as_str() == want));
    assert_eq!(c.push(b"GET / HTTP/1.1\r\n"), done);
    assert_eq!(c.push(&[]), done);
    assert_eq!(c.result(), Some(done));

    let mut n = ClientHelloCollector::new();
    assert_eq!(n.push(b"G"), Collect::NotTls);
    assert_eq!(n.push(&raw), Collect::NotTls);
}

#[test]
fn not_tls() {
    for first in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x80\x2e\x01\x00\x02",                 // SSLv2-compatible hello
        b"\x17\x03\x03\x00\x10",                 // application data first
        b"\x16\x02\x00",                         // wrong major version
        b"\x16\x03\x09",                         // unknown minor version
        b"\x16\x03\x01\x00\x00",                 // empty record
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", // ServerHello, not ClientHello
        b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", // empty ClientHello body
        b"\x16\x03\x01\x40\x01",                 // record over 16 KiB
        b"\x16\x03\x01\x00\x04\x01\x01\x00\x00", // hello over 16 KiB
    ] {
        let mut c = ClientHelloCollector::new();
        assert_eq!(c.push(first), Collect::NotTls, "{first:?}");
    }
    // A hello whose records never end before the cap.
    let mut c = ClientHelloCollector::new();
    let mut raw = vec![0x16, 3, 1, 0, 4, 1, 0, 0x3f, 0xf0]; // hello of 16 368 bytes
    for _ in 0..4096 {
        raw.extend_from_slice(&[0x16, 3, 1, 0, 1, 0]); // in one-byte records
    }
    assert_eq!(c.push(&raw), Collect::NotTls);
}

#[test]
fn truncated_hellos_never_finish_and_never_panic() {
    for (name, raw, _) in captured() {
        for end in 0..raw.len() {
            let mut c = ClientHelloCollector::new();
            assert_eq!(
                c.push(&raw[..end]),
                Collect::NeedMore,
                "{name} cut at {end}"
            );
            assert_eq!(
                ja4_from_client_hello(&raw[5..end.max(5)]),
                None,
                "{name} cut at {end}"
            );
        }
    }
}

#[test]
fn corrupted_hellos_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (_, raw, _) in captured() {
        for _ in 0..3000 {
            let mut bad = raw.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % bad.len();
                bad[i] = (seed >> 32) as u8;
            }
            let mut c = ClientHelloCollector::new();
            let _ = c.push(&bad);
            let _ = ja4_from_client_hello(&bad[5..]);
            let _ = ja4_from_client_hello(&bad);
        }
    }
}

#[test]
fn version_sni_and_counts() {
    // No extensions at all: the hello's version, no SNI, no ALPN, and the
    // empty extension list gives zeros.
    let ja4 = ja4_from_client_hello(&hello(0x0303, &[0x002f, 0x0a0a, 0x0035], None)).unwrap();
    assert_eq!(&ja4.as_str()[..11], "t12i020000_");
    assert!(ja4.as_str().ends_with("_000000000000"));
    // No cipher suites.
    let ja4 = ja4_from_client_hello(&hello(0x0301, &[], Some(&[(0x0017, vec![])]))).unwrap();
    assert_eq!(&ja4.as_str()[..24], "t10i000100_000000000000_");
    // Unknown version, SSL 3.0, DTLS code; supported_versions wins over the
    // hello's version even when lower.
    for (v, code) in [
        (0x0305u16, "00"),
        (0x0300, "s3"),
        (0xfefd, "d2"),
        (0x0302, "11"),
    ] {
        let mut sv = vec![2u8];
        sv.extend(v.to_be_bytes());
        let ja4 = ja4_from_client_hello(&hello(0x0303, &[0x1301], Some(&[(0x002b, sv)]))).unwrap();
        assert_eq!(&ja4.as_str()[1..3], code);
    }
    // Counts cap at 99.
    let many: Vec<u16> = (0x0100..0x0100 + 150).collect();
    let exts: Vec<Ext> = (0x0100..0x0100 + 120).map(|k| (k, vec![])).collect();
    let ja4 = ja4_from_client_hello(&hello(0x0303, &many, Some(&exts))).unwrap();
    assert_eq!(&ja4.as_str()[..10], "t12i999900");
}

#[test]
fn alpn_characters_follow_the_spec() {
    let code = |names: &[&[u8]]| {
        let msg = hello(0x0303, &[0x1301], Some(&[(0x0010, alpn_body(names))]));
        ja4_from_client_hello(&msg).unwrap().as_str()[8..10].to_string()
    };
    assert_eq!(code(&[b"h2", b"http/1.1"]), "h2");
    assert_eq!(code(&[b"http/1.1"]), "h1");
    assert_eq!(code(&[b"h"]), "hh");
    assert_eq!(code(&[b""]), "00");
    assert_eq!(code(&[]), "00");
    assert_eq!(code(&[b"\x1a\x1a", b"h2"]), "00"); // GREASE value first
                                                   // The specification's examples for non-alphanumeric bytes.
    assert_eq!(code(&[b"\xab"]), "ab");
    assert_eq!(code(&[b"\xab\xcd"]), "ad");
    assert_eq!(code(&[b"\x30\xab"]), "3b");
    assert_eq!(code(&[b"\x30\x31\xab\xcd"]), "3d");
    assert_eq!(code(&[b"\x30\xab\xcd\x31"]), "01");
    // A malformed ALPN body is read as no ALPN.
    let msg = hello(0x0303, &[0x1301], Some(&[(0x0010, vec![0, 9, 1])]));
    assert_eq!(&ja4_from_client_hello(&msg).unwrap().as_str()[8..10], "00");
}

#[test]
fn grease_detection() {
    for hi in 0..16u16 {
        let v = hi << 12 | 0x0a00 | hi << 4 | 0x0a;
        assert!(is_grease(v), "{v:04x}");
    }
    for v in [0x0a0b, 0x1a0a, 0x0000, 0x1301, 0xfafb] {
        assert!(!is_grease(v), "{v:04x}");
    }
}
