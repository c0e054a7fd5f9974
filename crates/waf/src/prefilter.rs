//! Regex evaluation cache (placeholder: direct evaluation).
use regex::bytes::Regex;

#[derive(Default)]
pub struct PrefilterCache;

impl PrefilterCache {
    pub fn is_match(&mut self, re: &Regex, value: &[u8]) -> bool {
        re.is_match(value)
    }
}
