#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    None,
    Lowercase,
    UrlDecodeUni,
    Other(u8),
}
impl Transform {
    pub fn from_name(n: &str) -> Option<Transform> {
        Some(match n.to_ascii_lowercase().as_str() {
            "none" => Transform::None,
            "lowercase" => Transform::Lowercase,
            "urldecodeuni" => Transform::UrlDecodeUni,
            _ => Transform::Other(0),
        })
    }
    pub fn apply(self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Transform::Lowercase => Some(input.to_ascii_lowercase()),
            Transform::UrlDecodeUni => Some(crate::transaction::percent_decode(input)),
            _ => None,
        }
    }
}
