//! Small text helpers the detectors share.

use crate::MAX_INPUT;

/// The first [`MAX_INPUT`] bytes of `input`.
pub(crate) fn capped(input: &[u8]) -> &[u8] {
    &input[..input.len().min(MAX_INPUT)]
}

/// The value of an ASCII hex digit.
pub(crate) fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// Appends `c` to `out` as UTF-8.
pub(crate) fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Whether `hay` contains `needle` (ASCII, `needle` lower case),
/// case-insensitively.
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
