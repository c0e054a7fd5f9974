//! `t:length`.

use super::bytes::changed;

/// `t:length`: decimal byte length.
pub(super) fn length(input: &[u8]) -> Option<Vec<u8>> {
    changed(input, input.len().to_string().into_bytes())
}
