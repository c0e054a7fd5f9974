//! The Chrome-like and Firefox-like texts are the browsers' published
//! Akamai-style fingerprints; the captured fixtures' texts were computed by
//! an independent Python reading with the `hpack` package (see
//! tests/fixtures/README.md).

use super::*;
use crate::fingerprint::headers::tests::hex;

const CURL: &str = include_str!("../../../tests/fixtures/curl_h2c.hex");
const PYTHON_H2: &str = include_str!("../../../tests/fixtures/python_h2.hex");

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let p: Vec<u8> = entries
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    frame(SETTINGS, 0, 0, &p)
}

fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

fn priority(stream: u32, exclusive: bool, dep: u32, wire_weight: u8) -> Vec<u8> {
    let d = dep | if exclusive { 0x8000_0000 } else { 0 };
    let mut p = d.to_be_bytes().to_vec();
    p.push(wire_weight);
    frame(PRIORITY, 0, stream, &p)
}

/// HPACK: `:authority` as a literal with incremental indexing (static name
/// index 1), plain value.
fn authority() -> Vec<u8> {
    let mut b = vec![0x41, 11];
    b.extend_from_slice(b"example.com");
    b
}

/// HPACK: `user-agent: x` as a literal with indexing, static name index 58.
const USER_AGENT: [u8; 3] = [0x40 | 58, 1, b'x'];

fn chrome_like() -> Vec<u8> {
    let mut raw = PREFACE.to_vec();
    raw.extend(settings(&[
        (1, 65536),
        (2, 0),
        (4, 6_291_456),
        (6, 262_144),
    ]));
    raw.extend(window_update(0, 15_663_105));
    // m (0x82 :method GET), a, s (0x87 :scheme https), p (0x84 :path /).
    let mut block = vec![0x82];
    block.extend(authority());
    block.extend_from_slice(&[0x87, 0x84]);
    block.extend_from_slice(&USER_AGENT);
    // Chrome sends HEADERS with the PRIORITY flag: skipped here.
    let mut p = vec![0x80, 0, 0, 0, 255];
    p.extend(block);
    raw.extend(frame(
        DATA_HEADERS,
        0x01 | FLAG_END_HEADERS | FLAG_PRIORITY,
        1,
        &p,
    ));
    raw
}

const CHROME: &str = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";

fn firefox_like() -> Vec<u8> {
    let mut raw = PREFACE.to_vec();
    raw.extend(settings(&[(1, 65536), (4, 131_072), (5, 16384)]));
    raw.extend(window_update(0, 12_517_377));
    for (stream, dep, weight) in [
        (3, 0, 200),
        (5, 0, 100),
        (7, 0, 0),
        (9, 7, 0),
        (11, 3, 0),
        (13, 0, 240),
    ] {
        raw.extend(priority(stream, false, dep, weight));
    }
    // m, p, a, s — in a padded HEADERS frame split by a CONTINUATION.
    let mut block = vec![0x82, 0x84];
    block.extend(authority());
    block.extend_from_slice(&[0x87]);
    block.extend_from_slice(&USER_AGENT);
    let (first, rest) = block.split_at(5);
    let mut p = vec![3];
    p.extend_from_slice(first);
    p.extend_from_slice(&[0, 0, 0]);
    raw.extend(frame(DATA_HEADERS, 0x01 | FLAG_PADDED, 15, &p));
    raw.extend(frame(CONTINUATION, FLAG_END_HEADERS, 15, rest));
    raw
}

const FIREFOX: &str = "1:65536;4:131072;5:16384|12517377|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1,13:0:0:241|m,p,a,s";

fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("chrome", chrome_like(), CHROME),
        ("firefox", firefox_like(), FIREFOX),
        ("curl", hex(CURL), "3:100;4:33554432;2:0|33488897|0|m,p,s,a"),
        (
            "python h2",
            hex(PYTHON_H2),
            "1:4096;2:1;4:65535;5:16384;8:0;3:100;6:65536|1048576|0|m,p,s,a",
        ),
    ]
}

fn collect(raw: &[u8]) -> H2Collect {
    H2PrefaceCollector::new().push(raw)
}

fn text(c: H2Collect) -> String {
    match c {
        H2Collect::Done(fp) => fp.as_str().to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn known_clients() {
    for (name, raw, want) in cases() {
        assert_eq!(text(collect(&raw)), want, "{name}");
    }
}

#[test]
fn hash_form() {
    // Hashes from Python's hashlib over the same texts.
    let H2Collect::Done(curl) = collect(&hex(CURL)) else {
        panic!()
    };
    assert_eq!(curl.hash_str(), "8b2bc507ed73");
    let H2Collect::Done(py) = collect(&hex(PYTHON_H2)) else {
        panic!()
    };
    assert_eq!(py.hash_str(), "36bede059228");
}

#[test]
fn every_split_point_of_two_pushes() {
    for (name, raw, want) in cases() {
        for at in 0..=raw.len() {
            let mut c = H2PrefaceCollector::new();
            let first = c.push(&raw[..at]);
            if at < raw.len() {
                assert_eq!(first, H2Collect::NeedMore, "{name} at {at}");
            }
            assert_eq!(text(c.push(&raw[at..])), want, "{name} at {at}");
        }
    }
}

#[test]
fn one_byte_at_a_time() {
    for (name, raw, want) in cases() {
        let mut c = H2PrefaceCollector::new();
        let mut last = H2Collect::NeedMore;
        for (i, b) in raw.iter().enumerate() {
            last = c.push(std::slice::from_ref(b));
            if i + 1 < raw.len() {
                assert_eq!(last, H2Collect::NeedMore, "{name} at {i}");
            }
        }
        assert_eq!(text(last), want, "{name}");
    }
}

#[test]
fn data_after_headers_is_ignored_and_final_state_sticks() {
    let mut raw = chrome_like();
    raw.extend(frame(0x0, 0, 1, &[0; 100]));
    raw.extend(frame(SETTINGS, 0, 0, &[0, 9, 0, 0, 0, 1]));
    raw.extend_from_slice(&[0xff; 20_000]);
    let mut c = H2PrefaceCollector::new();
    let done = c.push(&raw);
    assert_eq!(text(done.clone()), CHROME);
    assert_eq!(c.push(b"garbage"), done);
    assert_eq!(c.result(), Some(&done));
}

#[test]
fn not_h2() {
    assert_eq!(collect(b"GET / HTTP/1.1\r\n"), H2Collect::NotH2);
    assert_eq!(collect(b"P"), H2Collect::NeedMore);
    assert_eq!(collect(b"PRI * HTTP/1.1"), H2Collect::NotH2);
    assert_eq!(collect(&[0x16, 3, 1, 2, 0]), H2Collect::NotH2);
    let after = |frames: &[u8]| {
        let mut raw = PREFACE.to_vec();
        raw.extend_from_slice(frames);
        collect(&raw)
    };
    assert_eq!(
        after(&frame(SETTINGS, 0, 1, &[])),
        H2Collect::NotH2,
        "SETTINGS on a stream"
    );
    assert_eq!(
        after(&frame(SETTINGS, 0, 0, &[0; 5])),
        H2Collect::NotH2,
        "SETTINGS not /6"
    );
    assert_eq!(
        after(&frame(SETTINGS, FLAG_ACK, 0, &[0; 6])),
        H2Collect::NotH2,
        "ACK with data"
    );
    assert_eq!(
        after(&frame(WINDOW_UPDATE, 0, 0, &[0; 3])),
        H2Collect::NotH2
    );
    assert_eq!(after(&frame(PRIORITY, 0, 0, &[0; 5])), H2Collect::NotH2);
    assert_eq!(after(&frame(PRIORITY, 0, 3, &[0; 4])), H2Collect::NotH2);
    assert_eq!(
        after(&frame(DATA_HEADERS, FLAG_END_HEADERS, 0, &[0x82])),
        H2Collect::NotH2
    );
    assert_eq!(
        after(&frame(
            DATA_HEADERS,
            FLAG_END_HEADERS | FLAG_PADDED,
            1,
            &[5, 0x82]
        )),
        H2Collect::NotH2
    );
    assert_eq!(
        after(&frame(
            DATA_HEADERS,
            FLAG_END_HEADERS | FLAG_PRIORITY,
            1,
            &[0; 4]
        )),
        H2Collect::NotH2
    );
    assert_eq!(
        after(&frame(CONTINUATION, FLAG_END_HEADERS, 1, &[0x82])),
        H2Collect::NotH2
    );
    // A CONTINUATION on another stream, or another frame in between.
    let mut f = frame(DATA_HEADERS, 0, 1, &[0x82]);
    f.extend(frame(CONTINUATION, FLAG_END_HEADERS, 3, &[0x84]));
    assert_eq!(after(&f), H2Collect::NotH2);
    let mut f = frame(DATA_HEADERS, 0, 1, &[0x82]);
    f.extend(settings(&[]));
    assert_eq!(after(&f), H2Collect::NotH2);
}

#[test]
fn cap_on_bytes() {
    // A frame that would end past the cap is refused from its header.
    let mut raw = PREFACE.to_vec();
    raw.extend_from_slice(&[0, 0x40, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(collect(&raw), H2Collect::NotH2);
    // Unknown frames until the cap, in small pushes.
    let mut c = H2PrefaceCollector::new();
    let mut last = c.push(PREFACE);
    let unknown = frame(0xfa, 0, 0, &[0; 100]);
    for _ in 0..200 {
        last = c.push(&unknown);
        if last != H2Collect::NeedMore {
            break;
        }
    }
    assert_eq!(last, H2Collect::NotH2);
}

#[test]
fn caps_on_entries() {
    let mut raw = PREFACE.to_vec();
    let many: Vec<(u16, u32)> = (0..100).map(|i| (i, 1)).collect();
    raw.extend(settings(&many));
    for s in 0..40 {
        raw.extend(priority(2 * s + 3, true, 0, 15));
    }
    raw.extend(window_update(0, 5));
    raw.extend(window_update(0, 7));
    raw.extend(window_update(1, 9));
    let block = [0x82; 20];
    raw.extend(frame(DATA_HEADERS, FLAG_END_HEADERS, 1, &block));
    let t = text(collect(&raw));
    let parts: Vec<&str> = t.split('|').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0].split(';').count(), MAX_SETTINGS);
    assert_eq!(parts[1], "5", "the first connection WINDOW_UPDATE");
    assert_eq!(parts[2].split(',').count(), MAX_PRIORITIES);
    assert!(parts[2].starts_with("3:1:0:16,5:1:0:16"));
    assert_eq!(parts[3], "m,m,m,m,m,m,m,m");
}

#[test]
fn minimal_preface() {
    let mut raw = PREFACE.to_vec();
    raw.extend(settings(&[]));
    raw.extend(frame(DATA_HEADERS, FLAG_END_HEADERS, 1, &[]));
    assert_eq!(text(collect(&raw)), "0|00|0|0");
}

#[test]
fn hpack_reading() {
    let order = |block: &[u8]| -> String {
        pseudo_order(block)
            .iter()
            .map(|&b| char::from(b).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    // Literal plain names, without indexing and never indexed, after a
    // dynamic table size update.
    let mut b = vec![0x3f, 0xe1, 0x1f]; // size update to 4096
    b.extend_from_slice(&[0x00, 7]);
    b.extend_from_slice(b":method");
    b.extend_from_slice(&[3]);
    b.extend_from_slice(b"GET");
    b.extend_from_slice(&[0x10, 7]);
    b.extend_from_slice(b":scheme");
    b.extend_from_slice(&[0x80]); // empty Huffman value
    b.extend_from_slice(&[0x05, 1, b'/']); // :path index 5 without indexing
    b.push(0x81); // :authority
    b.extend_from_slice(&USER_AGENT);
    b.push(0x82); // after a regular header: not read
    assert_eq!(order(&b), "m,s,p,a");
    // A Huffman-coded literal name ends the reading (no Huffman decoder).
    assert_eq!(
        order(&[0x82, 0x00, 0x85, 0xb9, 0x49, 0x53, 0x39, 0xe4, 0x01, b'x', 0x84]),
        "m"
    );
    // Unknown pseudo-header, :status, dynamic index, regular static index.
    let mut p = vec![0x82, 0x00, 9];
    p.extend_from_slice(b":protocol");
    p.extend_from_slice(&[1, b'x', 0x84]);
    assert_eq!(order(&p), "m");
    assert_eq!(order(&[0x88, 0x82]), "");
    assert_eq!(order(&[0x82, 0xbe, 0x84]), "m");
    assert_eq!(order(&[0x82, 0x90]), "m");
    // Cut short: a letter whose value is truncated still counts.
    assert_eq!(order(&[0x82, 0x41, 5, b'a']), "m,a");
    assert_eq!(order(&[0x82, 0x7f]), "m");
    // Integers: multi-byte, over u32, truncated.
    assert_eq!(order(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), "");
    assert_eq!(order(&[0xff]), "");
    let mut pos = 0;
    assert_eq!(hpack_int(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Some(1337)); // RFC 7541 C.1.2
    assert_eq!(pos, 3);
}

#[test]
fn garbage_and_truncation_never_panic() {
    let mut seed = 0xd1b5_4a32_d192_ed03u64;
    for (_, raw, _) in cases() {
        for end in 0..raw.len() {
            assert_eq!(collect(&raw[..end]), H2Collect::NeedMore);
        }
        for _ in 0..3000 {
            let mut bad = raw.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = PREFACE.len() + (seed as usize) % (bad.len() - PREFACE.len());
                bad[i] = (seed >> 40) as u8;
            }
            let _ = collect(&bad);
            let _ = pseudo_order(&bad[PREFACE.len()..]);
        }
    }
}
