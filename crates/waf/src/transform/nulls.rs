//! `t:removeNulls` and `t:replaceNulls`.

use memchr::memchr;

/// `t:removeNulls`.
pub(super) fn remove_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr(0, input)?;
    Some(input.iter().copied().filter(|&b| b != 0).collect())
}

/// `t:replaceNulls`: NUL → space.
pub(super) fn replace_nulls(input: &[u8]) -> Option<Vec<u8>> {
    memchr(0, input)?;
    Some(
        input
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect(),
    )
}
