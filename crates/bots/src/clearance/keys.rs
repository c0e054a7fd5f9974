//! The fleet's key ring: the Ed25519 keys that sign challenges and
//! clearances, and the key that hashes usernames.
//!
//! The control plane makes the ring and stores it in the mesh; every edge
//! reads it and can then both mint and verify tokens, so a clearance minted
//! by one edge passes on every other. A rotation adds a new signing key and
//! keeps the previous ones for verification until every token they signed
//! has expired (`verify_until`), so nobody is logged out by a rotation.
//!
//! The ring holds secrets: it travels only between the control plane and
//! the edges (the mesh), is never logged, and its `Debug` prints key ids.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most keys a ring keeps (older ones are dropped first).
pub const MAX_KEYS: usize = 16;

/// One signing key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyEntry {
    /// Names the key in tokens (unique in a ring, grows with each rotation).
    pub id: u32,
    /// The Ed25519 secret key (its 32-byte seed), hex.
    #[serde(with = "hex32")]
    pub seed: [u8; 32],
    /// When the key was made.
    pub created_ms: u64,
    /// The key signs new tokens until then (the newest key signs).
    pub sign_until_ms: u64,
    /// Tokens it signed are accepted until then.
    pub verify_until_ms: u64,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .field("sign_until_ms", &self.sign_until_ms)
            .field("verify_until_ms", &self.verify_until_ms)
            .finish_non_exhaustive()
    }
}

/// The ring as stored in the mesh (JSON).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct KeyRing {
    /// Oldest first.
    pub keys: Vec<KeyEntry>,
    /// The key of the keyed username hashes (account protection). Made
    /// once; never rotated, so that a username's failures keep counting.
    #[serde(with = "hex32")]
    pub username_key: [u8; 32],
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Why a ring read from the mesh is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    /// Not JSON of the expected shape.
    #[error("key ring: {0}")]
    Malformed(String),
    /// No key in it.
    #[error("key ring has no key")]
    Empty,
    /// Two keys with one id.
    #[error("key ring has key id {0} twice")]
    DuplicateId(u32),
    /// More than [`MAX_KEYS`].
    #[error("key ring has {0} keys (at most {MAX_KEYS})")]
    TooMany(usize),
}

impl KeyRing {
    /// A new ring with one key made from `seed`, signing from `now_ms` on,
    /// and the username key `username_key` (both from a secure random
    /// source: the caller's).
    pub fn new(seed: [u8; 32], username_key: [u8; 32], now_ms: u64) -> KeyRing {
        KeyRing {
            keys: vec![KeyEntry {
                id: 1,
                seed,
                created_ms: now_ms,
                sign_until_ms: u64::MAX,
                verify_until_ms: u64::MAX,
            }],
            username_key,
        }
    }

    /// Adds a key made from `seed` that signs from now on. The keys before
    /// it stop signing now and verify until `now_ms + max_token_ttl_ms`
    /// (the longest a token they signed can still be valid). Keys past
    /// their verification time are dropped, and the oldest ones beyond
    /// [`MAX_KEYS`].
    pub fn rotate(&mut self, seed: [u8; 32], now_ms: u64, max_token_ttl_ms: u64) {
        let next = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        let until = now_ms.saturating_add(max_token_ttl_ms);
        for k in &mut self.keys {
            k.sign_until_ms = k.sign_until_ms.min(now_ms);
            k.verify_until_ms = k.verify_until_ms.min(until);
        }
        self.keys.retain(|k| k.verify_until_ms > now_ms);
        self.keys.push(KeyEntry {
            id: next,
            seed,
            created_ms: now_ms,
            sign_until_ms: u64::MAX,
            verify_until_ms: u64::MAX,
        });
        let excess = self.keys.len().saturating_sub(MAX_KEYS);
        self.keys.drain(..excess);
    }

    /// The newest key that may sign at `now_ms`.
    pub fn signing(&self, now_ms: u64) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.created_ms <= now_ms.saturating_add(60_000) && k.sign_until_ms > now_ms)
    }

    /// When the newest key was made (for the control plane's rotation).
    pub fn newest_ms(&self) -> u64 {
        self.keys.iter().map(|k| k.created_ms).max().unwrap_or(0)
    }

    /// The ring as stored.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A ring read from the mesh, checked.
    pub fn from_json(bytes: &[u8]) -> Result<KeyRing, RingError> {
        let ring: KeyRing =
            serde_json::from_slice(bytes).map_err(|e| RingError::Malformed(e.to_string()))?;
        if ring.keys.is_empty() {
            return Err(RingError::Empty);
        }
        if ring.keys.len() > MAX_KEYS {
            return Err(RingError::TooMany(ring.keys.len()));
        }
        let mut ids: Vec<u32> = ring.keys.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(RingError::DuplicateId(w[0]));
        }
        Ok(ring)
    }
}

/// A ring ready for use: the keys expanded once.
pub struct Keys {
    pub(crate) ring: KeyRing,
    pub(crate) signers: Vec<(u32, SigningKey, VerifyingKey, u64, u64)>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ring.fmt(f)
    }
}

impl Keys {
    /// Expands every key of `ring`.
    pub fn new(ring: KeyRing) -> Keys {
        let signers = ring
            .keys
            .iter()
            .map(|k| {
                let sk = SigningKey::from_bytes(&k.seed);
                let vk = sk.verifying_key();
                (k.id, sk, vk, k.sign_until_ms, k.verify_until_ms)
            })
            .collect();
        Keys { ring, signers }
    }

    /// The ring these keys come from.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The username key.
    pub fn username_key(&self) -> &[u8; 32] {
        &self.ring.username_key
    }

    pub(crate) fn signer(&self, now_ms: u64) -> Option<(u32, &SigningKey)> {
        let entry = self.ring.signing(now_ms)?;
        self.signers
            .iter()
            .find(|s| s.0 == entry.id)
            .map(|s| (s.0, &s.1))
    }

    pub(crate) fn verifier(&self, id: u32, now_ms: u64) -> Option<&VerifyingKey> {
        self.signers
            .iter()
            .find(|s| s.0 == id && s.4 > now_ms)
            .map(|s| &s.2)
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(64);
        for b in v {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(serde::de::Error::custom("expected 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
                _ => return Err(serde::de::Error::custom("expected 64 hex digits")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_keys_verifying_until_their_tokens_expire() {
        let mut ring = KeyRing::new([1; 32], [9; 32], 1_000);
        assert_eq!(ring.signing(2_000).map(|k| k.id), Some(1));
        ring.rotate([2; 32], 10_000, 5_000);
        assert_eq!(ring.signing(10_001).map(|k| k.id), Some(2));
        let old = &ring.keys[0];
        assert_eq!((old.sign_until_ms, old.verify_until_ms), (10_000, 15_000));
        // A later rotation drops the first key once it stopped verifying.
        ring.rotate([3; 32], 20_000, 5_000);
        assert_eq!(
            ring.keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        for i in 0..40 {
            ring.rotate([i as u8; 32], 20_001 + i, 1_000_000);
        }
        assert_eq!(ring.keys.len(), MAX_KEYS);
        assert_eq!(ring.signing(30_000).map(|k| k.id), Some(43));
    }

    #[test]
    fn a_ring_round_trips_and_bad_rings_are_refused() {
        let ring = KeyRing::new([7; 32], [8; 32], 5);
        let back = KeyRing::from_json(&ring.to_json()).unwrap();
        assert_eq!(back, ring);
        assert!(!format!("{ring:?}").contains("0707"), "no secret in Debug");
        assert!(matches!(
            KeyRing::from_json(b"{"),
            Err(RingError::Malformed(_))
        ));
        let mut dup = ring.clone();
        dup.keys.push(dup.keys[0].clone());
        assert_eq!(
            KeyRing::from_json(&dup.to_json()),
            Err(RingError::DuplicateId(1))
        );
        let empty = KeyRing {
            keys: vec![],
            username_key: [0; 32],
        };
        assert_eq!(KeyRing::from_json(&empty.to_json()), Err(RingError::Empty));
        let bad_hex = String::from_utf8(ring.to_json())
            .unwrap()
            .replace("0707", "zz07");
        assert!(KeyRing::from_json(bad_hex.as_bytes()).is_err());
    }
}
