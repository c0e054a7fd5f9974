//! Fuzzes content decoding (gzip, deflate, br, stacked): arbitrary bytes and
//! `Content-Encoding` values with a small limit never panic, never give more
//! than the limit, and never allocate past it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::decompress::{decode, decompress, parse_codings, DecompressError};

const HEADERS: &[&str] = &[
    "gzip",
    "x-gzip",
    "deflate",
    "br",
    "identity",
    "gzip, br",
    "br, gzip",
    "deflate, gzip",
    "gzip, deflate",
    "br, br",
    "zstd",
];

fuzz_target!(|data: &[u8]| {
    let [sel, lim, rest @ ..] = data else {
        return;
    };
    // Arbitrary header values parse or are refused, nothing else.
    let _ = parse_codings(rest);
    let Ok(codings) = parse_codings(HEADERS[*sel as usize % HEADERS.len()].as_bytes()) else {
        return;
    };
    let limit = usize::from(*lim) * 37;
    let complete = sel & 0x80 == 0;
    match decode(rest, &codings, limit, complete) {
        Ok(d) => {
            assert!(d.data.len() <= limit);
            assert!(d.data.capacity() <= limit.max(1));
            assert!(complete.then_some(!d.unfinished).unwrap_or(true));
            assert!(!(d.over_limit && d.unfinished));
        }
        Err(e) => assert_eq!(e, DecompressError::Corrupt),
    }
    match decompress(rest, &codings, limit) {
        Ok(v) => assert!(v.len() <= limit),
        Err(e) => assert!(matches!(e, DecompressError::Corrupt | DecompressError::TooLarge)),
    }
});
