//! Signed tokens: the challenge a client must solve, and the clearance it
//! gets for solving it. Both are the same format:
//!
//! ```text
//! base64url(payload) "." base64url(Ed25519 signature of payload)
//! payload = version(1) kind(1) key_id(4) issued_ms(8) expires_ms(8)
//!           binding(16) id(12) bits(1) score(1)            (52 bytes)
//! ```
//!
//! - `binding` is the first 16 bytes of SHA-256 over what the policy binds
//!   a clearance to: the client's address prefix (`/24` and `/64` by
//!   default) and, when asked, its User-Agent. A token presented from
//!   another network, or with another User-Agent, does not match.
//! - `id` is random: the clearance's identity (behaviour is scored per
//!   clearance too), or the challenge's nonce.
//! - `bits` is the proof of work a challenge asks for: a counter `n` such
//!   that SHA-256(`challenge token` ":" `n` in decimal) starts with `bits`
//!   zero bits.

use super::keys::Keys;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, Verifier};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

const VERSION: u8 = 1;
/// Length of the signed payload.
pub const PAYLOAD_LEN: usize = 52;
/// Length of an encoded token (payload and signature in base64url, a dot).
pub const TOKEN_LEN: usize = 70 + 1 + 86;
/// The most leading zero bits a challenge may ask for.
pub const MAX_BITS: u8 = 28;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A challenge to solve.
    Challenge = 1,
    /// A clearance: the challenge was solved.
    Clearance = 2,
}

/// What a clearance is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The IPv4 prefix length bound (0: not bound to the address).
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length bound (0: not bound to the address).
    pub ipv6_prefix: u8,
    /// The User-Agent is bound.
    pub user_agent: bool,
}

impl Default for Binding {
    fn default() -> Self {
        Binding {
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            user_agent: true,
        }
    }
}

impl Binding {
    /// The 16-byte digest of what this binding keeps of a request.
    pub fn digest(&self, ip: IpAddr, user_agent: &[u8]) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"palisade-binding-1");
        match ip.to_canonical() {
            // Not bound to the address: the same for every address.
            IpAddr::V4(_) if self.ipv4_prefix == 0 => h.update([0, 0]),
            IpAddr::V6(_) if self.ipv6_prefix == 0 => h.update([0, 0]),
            IpAddr::V4(v4) => {
                let bits = self.ipv4_prefix.min(32);
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(bits))
                };
                h.update([4, bits]);
                h.update((u32::from(v4) & mask).to_be_bytes());
            }
            IpAddr::V6(v6) => {
                let bits = self.ipv6_prefix.min(128);
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(bits))
                };
                h.update([6, bits]);
                h.update((u128::from(v6) & mask).to_be_bytes());
            }
        }
        if self.user_agent {
            h.update([1]);
            h.update(user_agent);
        } else {
            h.update([0]);
        }
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }
}

/// A token's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub key_id: u32,
    pub issued_ms: u64,
    pub expires_ms: u64,
    pub binding: [u8; 16],
    pub id: [u8; 12],
    /// The proof of work asked (challenges) or solved (clearances).
    pub bits: u8,
    /// The bot score of the client when the token was made.
    pub score: u8,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token: wrong length, encoding or version.
    Malformed,
    /// A token of the other kind.
    WrongKind,
    /// Signed by a key the ring does not have (or no longer verifies).
    UnknownKey,
    /// The signature does not match.
    BadSignature,
    /// Past its expiry (or issued in the future).
    Expired,
    /// Presented from another network or User-Agent than it was made for.
    Rebound,
    /// The proof of work is wrong.
    BadWork,
    /// The challenge was already redeemed (on this node).
    Replayed,
}

impl Refusal {
    /// The label used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::WrongKind => "wrong_kind",
            Refusal::UnknownKey => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired => "expired",
            Refusal::Rebound => "rebound",
            Refusal::BadWork => "bad_work",
            Refusal::Replayed => "replayed",
        }
    }
}

impl Token {
    fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = VERSION;
        p[1] = self.kind as u8;
        p[2..6].copy_from_slice(&self.key_id.to_be_bytes());
        p[6..14].copy_from_slice(&self.issued_ms.to_be_bytes());
        p[14..22].copy_from_slice(&self.expires_ms.to_be_bytes());
        p[22..38].copy_from_slice(&self.binding);
        p[38..50].copy_from_slice(&self.id);
        p[50] = self.bits;
        p[51] = self.score;
        p
    }

    fn from_payload(p: &[u8]) -> Option<Token> {
        if p.len() != PAYLOAD_LEN || p[0] != VERSION {
            return None;
        }
        let kind = match p[1] {
            1 => Kind::Challenge,
            2 => Kind::Clearance,
            _ => return None,
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut key = [0u8; 4];
        key.copy_from_slice(&p[2..6]);
        let mut binding = [0u8; 16];
        binding.copy_from_slice(&p[22..38]);
        let mut id = [0u8; 12];
        id.copy_from_slice(&p[38..50]);
        Some(Token {
            kind,
            key_id: u32::from_be_bytes(key),
            issued_ms: u64_at(6),
            expires_ms: u64_at(14),
            binding,
            id,
            bits: p[50],
            score: p[51],
        })
    }

    /// Signs the token with the ring's current signing key (its `key_id` is
    /// set to that key's). None when the ring has no key signing at `now_ms`.
    pub fn sign(mut self, keys: &Keys, now_ms: u64) -> Option<String> {
        let (id, sk) = keys.signer(now_ms)?;
        self.key_id = id;
        let payload = self.payload();
        let sig = sk.sign(&payload);
        let mut out = String::with_capacity(TOKEN_LEN);
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.to_bytes(), &mut out);
        Some(out)
    }

    /// Decodes `text` and checks its signature and expiry (not its binding).
    pub fn verify(text: &str, keys: &Keys, now_ms: u64) -> Result<Token, Refusal> {
        let t = Token::decode_unverified(text)?;
        let (payload, sig) = split(text).ok_or(Refusal::Malformed)?;
        let vk = keys.verifier(t.key_id, now_ms).ok_or(Refusal::UnknownKey)?;
        vk.verify(&payload, &sig)
            .map_err(|_| Refusal::BadSignature)?;
        if t.expires_ms <= now_ms || t.issued_ms > now_ms.saturating_add(60_000) {
            return Err(Refusal::Expired);
        }
        Ok(t)
    }

    /// The content of `text`, without checking anything but its format.
    pub fn decode_unverified(text: &str) -> Result<Token, Refusal> {
        let (payload, _) = split(text).ok_or(Refusal::Malformed)?;
        Token::from_payload(&payload).ok_or(Refusal::Malformed)
    }

    /// Milliseconds left before expiry.
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.expires_ms.saturating_sub(now_ms)
    }
}

fn split(text: &str) -> Option<([u8; PAYLOAD_LEN], Signature)> {
    if text.len() != TOKEN_LEN {
        return None;
    }
    let (p, s) = text.split_once('.')?;
    let mut payload = [0u8; PAYLOAD_LEN];
    let n = URL_SAFE_NO_PAD.decode_slice(p, &mut payload).ok()?;
    if n != PAYLOAD_LEN {
        return None;
    }
    let mut sig = [0u8; 64];
    let n = URL_SAFE_NO_PAD.decode_slice(s, &mut sig).ok()?;
    if n != 64 {
        return None;
    }
    Some((payload, Signature::from_bytes(&sig)))
}

/// Whether `counter` solves the challenge `token` at `bits` leading zero
/// bits: SHA-256(`token` ":" `counter`).
pub fn work_ok(token: &str, counter: u64, bits: u8) -> bool {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(b":");
    h.update(counter.to_string().as_bytes());
    leading_zero_bits(&h.finalize()) >= u32::from(bits)
}

/// Solves a challenge by brute force (tests and benchmarks; the browser
/// does the same in a Web Worker).
pub fn solve(token: &str, bits: u8) -> u64 {
    (0u64..).find(|&n| work_ok(token, n, bits)).unwrap_or(0)
}

fn leading_zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for &b in d {
        if b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}
