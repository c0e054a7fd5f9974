//! `t:lowercase` and `t:uppercase`.

/// `t:lowercase`: ASCII only ("C" locale `tolower`).
pub(super) fn lowercase(input: &[u8]) -> Option<Vec<u8>> {
    let pos = input.iter().position(u8::is_ascii_uppercase)?;
    let mut out = input.to_vec();
    if let Some(tail) = out.get_mut(pos..) {
        tail.make_ascii_lowercase();
    }
    Some(out)
}

/// `t:uppercase`: ASCII only.
pub(super) fn uppercase(input: &[u8]) -> Option<Vec<u8>> {
    let pos = input.iter().position(u8::is_ascii_lowercase)?;
    let mut out = input.to_vec();
    if let Some(tail) = out.get_mut(pos..) {
        tail.make_ascii_uppercase();
    }
    Some(out)
}
