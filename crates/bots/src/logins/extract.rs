//! The username of a login attempt: found in the body, then hashed at once.
//!
//! Extraction returns the value trimmed and cut to [`MAX_USERNAME`] bytes
//! (at a character boundary); [`username_key_hash`] normalizes it (trim,
//! lower case) and keeps only the keyed hash. Bodies over [`MAX_BODY`] bytes
//! are not read (`None`): the edge only buffers that much of a login body.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// Largest body looked at.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest username kept (bytes); longer ones are cut.
pub const MAX_USERNAME: usize = 256;

/// The keyed hash of a normalized username (HMAC-SHA256, first 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct UserHash(pub [u8; 16]);

impl UserHash {
    /// The first 8 bytes as a number (the hash is uniform: a fine table key).
    pub fn short(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }
}

impl fmt::Display for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for UserHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserHash({self})")
    }
}

/// The username as it is hashed: trimmed, lower-cased.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// HMAC-SHA256 of the normalized username under the fleet key, truncated to
/// 16 bytes.
pub fn username_key_hash(key: &[u8; 32], username: &str) -> UserHash {
    // A 32-byte key is always accepted by HMAC; the fallback is unreachable
    // but keeps this free of panics.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return UserHash::default();
    };
    mac.update(normalize_username(username).as_bytes());
    let out = mac.finalize().into_bytes();
    let mut h = [0u8; 16];
    h.copy_from_slice(&out[..16]);
    UserHash(h)
}

/// Trims, cuts to [`MAX_USERNAME`] bytes at a character boundary; `None` when
/// nothing is left.
fn finish(s: &str) -> Option<String> {
    let s = s.trim();
    let mut end = s.len().min(MAX_USERNAME);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = s[..end].trim_end();
    (!s.is_empty()).then(|| s.to_owned())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte; a `%` not followed by two hex digits stays as it is.
fn form_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The first value of `field` in a form body. Invalid UTF-8 is replaced
/// (the attempt still counts).
pub fn username_from_form(body: &[u8], field: &str) -> Option<String> {
    if body.len() > MAX_BODY || field.is_empty() {
        return None;
    }
    for pair in body.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if form_decode(name) == field.as_bytes() {
            return finish(&String::from_utf8_lossy(&form_decode(value)));
        }
    }
    None
}

/// Every distinct value of `field` in a form body, in order (at most
/// `max`): a form that repeats the field is counted under each value, so
/// that no reading of it (first or last, as frameworks differ) escapes.
pub fn usernames_from_form(body: &[u8], field: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if field.is_empty() {
        return out;
    }
    let body = &body[..body.len().min(MAX_BODY)];
    for pair in body.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if form_decode(name) == field.as_bytes() {
            if let Some(v) = finish(&String::from_utf8_lossy(&form_decode(value))) {
                if !out.contains(&v) {
                    out.push(v);
                    if out.len() >= max {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// The string at `path` (keys separated by dots, as in `username_field`) in
/// a JSON body. Only strings count: a number, object or missing key is
/// `None`.
pub fn username_from_json(body: &[u8], path: &str) -> Option<String> {
    if body.len() > MAX_BODY || path.is_empty() {
        return None;
    }
    // serde_json limits nesting (128 levels), so a deep body cannot
    // overflow the stack.
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut at = &value;
    for (depth, key) in path.split('.').enumerate() {
        if depth >= palisade_policy::bots::logins::MAX_JSON_DEPTH {
            return None;
        }
        at = at.as_object()?.get(key)?;
    }
    finish(at.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decodes_plus_and_escapes_and_takes_the_first() {
        let b = b"a=1&user%6eame=J%C3%B6rg+Smith%40ex.com&username=second";
        assert_eq!(
            username_from_form(b, "username").as_deref(),
            Some("Jörg Smith@ex.com")
        );
        assert_eq!(
            username_from_form(b"u=%zz%4", "u").as_deref(),
            Some("%zz%4")
        );
        assert_eq!(
            username_from_form(b"u=%FF", "u").as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(
            username_from_form(b"username", "username"),
            None,
            "no value"
        );
        assert_eq!(
            username_from_form(b"username=++", "username"),
            None,
            "blank"
        );
        assert_eq!(username_from_form(b"user=x", "username"), None, "absent");
        assert_eq!(username_from_form(b"", "username"), None);
    }

    #[test]
    fn json_follows_the_path_and_takes_strings_only() {
        let b = br#"{"user":{"email":" Alice@Example.com ","id":7},"n":null}"#;
        assert_eq!(
            username_from_json(b, "user.email").as_deref(),
            Some("Alice@Example.com")
        );
        assert_eq!(username_from_json(b, "user.id"), None, "a number");
        assert_eq!(username_from_json(b, "user"), None, "an object");
        assert_eq!(username_from_json(b, "n"), None, "null");
        assert_eq!(username_from_json(b, "user.email.x"), None, "past a string");
        assert_eq!(username_from_json(b"[\"a\"]", "0"), None, "not an object");
        assert_eq!(username_from_json(b"{\"a\":", "a"), None, "truncated");
        assert_eq!(
            username_from_json(br#"{"username":"a\u00e9"}"#, "username").as_deref(),
            Some("aé")
        );
        let deep = br#"{"a":{"b":{"c":{"d":{"e":"x"}}}}}"#;
        assert_eq!(
            username_from_json(deep, "a.b.c.d"),
            None,
            "depth 4 is an object"
        );
        assert_eq!(
            username_from_json(deep, "a.b.c.d.e"),
            None,
            "depth 5 refused"
        );
        let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(username_from_json(nested.as_bytes(), "a"), None);
    }

    #[test]
    fn oversized_bodies_and_usernames_are_bounded() {
        let mut big = b"username=bob&pad=".to_vec();
        big.resize(MAX_BODY + 1, b'x');
        assert_eq!(username_from_form(&big, "username"), None);
        let json = format!("{{\"u\":\"{}\"}}", "x".repeat(MAX_BODY));
        assert_eq!(username_from_json(json.as_bytes(), "u"), None);
        let long = format!("u={}", "é".repeat(300));
        let got = username_from_form(long.as_bytes(), "u").unwrap();
        assert!(got.len() <= MAX_USERNAME && got.len() >= MAX_USERNAME - 1);
        assert!(got.chars().all(|c| c == 'é'));
    }

    #[test]
    fn hash_is_keyed_and_normalized() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let a = username_key_hash(&k1, "  Alice@Example.COM ");
        assert_eq!(a, username_key_hash(&k1, "alice@example.com"));
        assert_ne!(a, username_key_hash(&k2, "alice@example.com"));
        assert_ne!(a, username_key_hash(&k1, "bob@example.com"));
        let hex = a.to_string();
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{a:?}").contains("alice"));
    }
}
