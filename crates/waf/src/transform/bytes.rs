//! Byte helpers shared by the transformations (C `ctype` and ModSecurity
//! `x2c`-style conversions, full-width folding, C string emulation).

use memchr::memchr;

/// `Some(out)` unless `out` equals `input`.
#[inline]
pub(super) fn changed(input: &[u8], out: Vec<u8>) -> Option<Vec<u8>> {
    if out.as_slice() == input {
        None
    } else {
        Some(out)
    }
}

/// C `isspace()` in the "C" locale.
#[inline]
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
pub(super) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

#[inline]
pub(super) fn is_odigit(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

/// Value of a hex digit, `None` if `b` is not one.
#[inline]
pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// ModSecurity's `xsingle2c`: no validation, wrapping arithmetic. Only
/// `hexDecode` ever feeds it non-hex bytes (and its test vectors depend on
/// the resulting garbage values).
#[inline]
pub(super) fn xsingle2c(c: u8) -> u8 {
    if c >= b'A' {
        (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
    } else {
        c.wrapping_sub(b'0')
    }
}

/// ModSecurity's `x2c`: two (unvalidated) hex digits to one byte.
#[inline]
pub(super) fn x2c(hi: u8, lo: u8) -> u8 {
    xsingle2c(hi).wrapping_mul(16).wrapping_add(xsingle2c(lo))
}

/// `true` for 'f' or 'F' (full-width check of `%uFFxx` style escapes).
#[inline]
fn is_f(b: u8) -> bool {
    b == b'f' || b == b'F'
}

/// Full-width ASCII (U+FF01..U+FF5E) folding used by urlDecodeUni, jsDecode
/// and cssDecode: when the high byte is `ff`, the low byte gets 0x20 added.
#[inline]
pub(super) fn full_width(low: u8, hi1: u8, hi2: u8) -> u8 {
    if low > 0x00 && low < 0x5f && is_f(hi1) && is_f(hi2) {
        low + 0x20
    } else {
        low
    }
}

/// Byte at `i`, or 0 past the end (emulates reading the NUL terminator of a
/// C string, which several ModSecurity functions rely on).
#[inline]
pub(super) fn at(input: &[u8], i: usize) -> u8 {
    input.get(i).copied().unwrap_or(0)
}

/// Lowercase hex digit.
#[inline]
pub(super) fn hex_digit(v: u8) -> u8 {
    b"0123456789abcdef"[usize::from(v & 0x0f)]
}

/// C `strtol()` on a run of valid digits, truncated to a byte as ModSecurity
/// does (`(unsigned char)strtol(...)`). On overflow strtol saturates at
/// `LONG_MAX`, whose low byte is 0xff.
pub(super) fn strtol_low_byte(digits: &[u8], radix: u32) -> u8 {
    let mut v: u64 = 0;
    for &d in digits {
        let dv = u64::from(char::from(d).to_digit(radix).unwrap_or(0));
        v = v.saturating_mul(u64::from(radix)).saturating_add(dv);
        if v > i64::MAX as u64 {
            return 0xff;
        }
    }
    v as u8
}

/// Reads the octal escape digits that start at `start` (the first one is
/// known to be an octal digit): at most three, as ModSecurity's loop does.
#[inline]
pub(super) fn octal_run(input: &[u8], start: usize) -> usize {
    let mut j = 1;
    while j < 3 && is_odigit(at(input, start + j)) {
        j += 1;
    }
    j
}

/// Copies from `i` up to the next backslash, returns the new index.
#[inline]
pub(super) fn copy_until_backslash(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = input.get(i..).unwrap_or_default();
    let len = memchr(b'\\', rest).unwrap_or(rest.len());
    out.extend_from_slice(&rest[..len]);
    i + len
}
