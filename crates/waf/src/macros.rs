//! `%{VAR.key}` macro expansion in action and operator arguments.

/// A string with `%{...}` references, split at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroText {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// Collection name (upper-case) and optional key (lower-case).
    Ref(String, Option<String>),
    /// `%{TX.key}` with the number the rule set gave the key (see
    /// [`crate::txvars`]).
    Tx(u32, String),
}

/// Resolves a macro reference to its current value.
pub trait Resolve {
    fn resolve(&self, var: &str, key: Option<&str>, out: &mut Vec<u8>);

    /// `%{TX.key}` where `key` has the number `slot`.
    fn resolve_tx(&self, slot: u32, key: &str, out: &mut Vec<u8>) {
        let _ = slot;
        self.resolve("TX", Some(key), out)
    }
}

impl MacroText {
    pub fn parse(text: &str) -> MacroText {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let inner = &rest[start + 2..start + 2 + len];
            let (var, key) = match inner.split_once(['.', ':']) {
                Some((v, k)) => (v, Some(k.to_ascii_lowercase())),
                None => (inner, None),
            };
            parts.push(Part::Ref(var.trim().to_ascii_uppercase(), key));
            rest = &rest[start + 2 + len + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        MacroText { parts }
    }

    /// True when the text has no references (its value is fixed).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Numbers its `%{TX.key}` references with `number` (see [`crate::txvars`]).
    pub fn bind_tx(&mut self, number: &mut impl FnMut(&str) -> u32) {
        for p in &mut self.parts {
            if let Part::Ref(var, Some(key)) = p {
                if var == "TX" {
                    let key = std::mem::take(key);
                    *p = Part::Tx(number(&key), key);
                }
            }
        }
    }

    /// The text when it has no references (borrowed, unlike [`MacroText::literal`]).
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The text without expansion (only meaningful when `is_literal`).
    pub fn literal(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Ref(v, Some(k)) => {
                    s.push_str("%{");
                    s.push_str(v);
                    s.push('.');
                    s.push_str(k);
                    s.push('}');
                }
                Part::Ref(v, None) => {
                    s.push_str("%{");
                    s.push_str(v);
                    s.push('}');
                }
                Part::Tx(_, k) => {
                    s.push_str("%{TX.");
                    s.push_str(k);
                    s.push('}');
                }
            }
        }
        s
    }

    pub fn expand(&self, r: &dyn Resolve) -> Vec<u8> {
        let mut out = Vec::new();
        self.expand_into(r, &mut out);
        out
    }

    pub fn expand_into(&self, r: &dyn Resolve, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l.as_bytes()),
                Part::Ref(v, k) => r.resolve(v, k.as_deref(), out),
                Part::Tx(slot, k) => r.resolve_tx(*slot, k, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R;
    impl Resolve for R {
        fn resolve(&self, var: &str, key: Option<&str>, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("<{var}|{}>", key.unwrap_or("-")).as_bytes());
        }
    }

    #[test]
    fn expands_references() {
        let m = MacroText::parse("score %{TX.Anomaly_Score} for %{MATCHED_VAR_NAME}!");
        assert!(!m.is_literal());
        assert_eq!(
            m.expand(&R),
            b"score <TX|anomaly_score> for <MATCHED_VAR_NAME|->!"
        );
        assert!(MacroText::parse("plain").is_literal());
        assert_eq!(MacroText::parse("50%{").expand(&R), b"50%{");
    }
}
