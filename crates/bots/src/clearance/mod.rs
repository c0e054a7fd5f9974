//! The challenge and the clearance: a proof of work a person's browser
//! solves in a second, and the signed cookie it earns.
//!
//! Flow (the edge drives it; this module decides):
//! 1. A request the policy challenges, without a valid clearance, gets a
//!    page holding a *challenge token* ([`Clearances::challenge`]): signed,
//!    bound to the client (address prefix, User-Agent), valid for a few
//!    minutes, asking for `bits` of proof of work.
//! 2. The page's Web Worker finds the counter; the page posts token and
//!    counter back. [`Clearances::redeem`] checks the signature, the
//!    expiry, the binding, the work, and that this challenge was not
//!    redeemed on this node before, then mints a *clearance token*.
//! 3. The clearance comes back as a cookie on every request.
//!    [`Clearances::check`] verifies it — any edge verifies what any other
//!    minted, since they share the key ring ([`keys`]) — and caches the
//!    verification, so a cleared client costs a hash lookup, a comparison
//!    and (when the address or User-Agent changed) one SHA-256.
//!
//! What a clearance is bound to is the policy's [`Binding`]; it expires
//! after the policy's `ttl`. A key rotation does not log anyone out: the
//! previous keys keep verifying until every token they signed expired.
//!
//! Caps: the verification cache and the redeemed-challenge memory hold at
//! most [`CACHE_CAP`] entries each (expired ones go first, then a shard is
//! cleared); both are per node.

pub mod keys;
pub mod token;

pub use keys::{KeyEntry, KeyRing, Keys, RingError};
pub use token::{solve, work_ok, Binding, Kind, Refusal, Token, MAX_BITS};

use ahash::RandomState;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Entries the verification cache (and the redeemed-challenge memory) holds.
pub const CACHE_CAP: usize = 65_536;
const SHARDS: usize = 16;

/// The policy's settings of the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a clearance is valid.
    pub ttl_ms: u64,
    /// How long a challenge may take to solve.
    pub challenge_ttl_ms: u64,
    /// What a clearance is bound to.
    pub binding: Binding,
    /// The least work a solved challenge must carry (the policy's `bits`):
    /// a token asking for less is refused before its signature is checked.
    pub min_bits: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ttl_ms: 3_600_000,
            challenge_ttl_ms: 300_000,
            binding: Binding::default(),
            min_bits: 0,
        }
    }
}

struct Cached {
    text: Box<str>,
    token: Token,
    /// The last (address, User-Agent hash) the binding matched for.
    last_ok: Option<(IpAddr, u64)>,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub cache_entries: usize,
    pub redeemed_entries: usize,
}

/// Mints and verifies tokens with the fleet's keys. Thread-safe.
pub struct Clearances {
    keys: RwLock<Option<Arc<Keys>>>,
    cache: Vec<Mutex<HashMap<u64, Cached>>>,
    redeemed: Vec<Mutex<HashMap<[u8; 12], u64>>>,
    hasher: RandomState,
    /// Entries per shard.
    shard_cap: usize,
}

impl Default for Clearances {
    fn default() -> Self {
        Clearances::new()
    }
}

impl std::fmt::Debug for Clearances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clearances").finish_non_exhaustive()
    }
}

impl Clearances {
    /// No keys yet: nothing can be minted or verified until [`Clearances::set_keys`].
    pub fn new() -> Clearances {
        Clearances::with_cap(CACHE_CAP)
    }

    /// [`Clearances::new`] with caches of about `cap` entries.
    pub fn with_cap(cap: usize) -> Clearances {
        Clearances {
            shard_cap: (cap / SHARDS).max(1),
            keys: RwLock::new(None),
            cache: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            redeemed: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Installs a (new) key ring. Cached verifications by keys the new ring
    /// no longer has are forgotten.
    pub fn set_keys(&self, ring: KeyRing) {
        let keys = Arc::new(Keys::new(ring));
        let ids: Vec<u32> = keys.ring().keys.iter().map(|k| k.id).collect();
        *self.keys.write() = Some(keys);
        for shard in &self.cache {
            shard.lock().retain(|_, c| ids.contains(&c.token.key_id));
        }
    }

    /// The installed ring, if any.
    pub fn keys(&self) -> Option<Arc<Keys>> {
        self.keys.read().clone()
    }

    /// Whether a key ring is installed.
    pub fn ready(&self) -> bool {
        self.keys.read().is_some()
    }

    /// A challenge token for this client asking for `bits` of work (capped
    /// at [`MAX_BITS`]); `nonce` from a random source. None without keys.
    #[allow(clippy::too_many_arguments)]
    pub fn challenge(
        &self,
        settings: &Settings,
        ip: IpAddr,
        user_agent: &[u8],
        bits: u8,
        score: u8,
        nonce: [u8; 12],
        now_ms: u64,
    ) -> Option<String> {
        let keys = self.keys()?;
        Token {
            kind: Kind::Challenge,
            key_id: 0,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(settings.challenge_ttl_ms),
            binding: settings.binding.digest(ip, user_agent),
            id: nonce,
            bits: bits.min(MAX_BITS),
            score,
        }
        .sign(&keys, now_ms)
    }

    /// Checks a solved challenge and mints the clearance (with identity
    /// `id`, from a random source). Returns the clearance and its lifetime.
    #[allow(clippy::too_many_arguments)]
    pub fn redeem(
        &self,
        settings: &Settings,
        challenge: &str,
        counter: u64,
        ip: IpAddr,
        user_agent: &[u8],
        id: [u8; 12],
        now_ms: u64,
    ) -> Result<(String, u64), Refusal> {
        let keys = self.keys().ok_or(Refusal::UnknownKey)?;
        // The cheap checks first: a forged token costs no signature check.
        let t = Token::decode_unverified(challenge)?;
        if t.kind != Kind::Challenge {
            return Err(Refusal::WrongKind);
        }
        if t.expires_ms <= now_ms || t.issued_ms > now_ms.saturating_add(60_000) {
            return Err(Refusal::Expired);
        }
        if t.binding != settings.binding.digest(ip, user_agent) {
            return Err(Refusal::Rebound);
        }
        if t.bits < settings.min_bits || !work_ok(challenge, counter, t.bits) {
            return Err(Refusal::BadWork);
        }
        let t = Token::verify(challenge, &keys, now_ms)?;
        // One clearance per challenge (on this node).
        {
            let mut shard = self.redeemed[self.shard(&t.id)].lock();
            if shard.get(&t.id).is_some_and(|&until| until > now_ms) {
                return Err(Refusal::Replayed);
            }
            make_room(&mut shard, self.shard_cap, |&until| until > now_ms);
            shard.insert(t.id, t.expires_ms);
        }
        let clearance = Token {
            kind: Kind::Clearance,
            key_id: 0,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(settings.ttl_ms),
            binding: t.binding,
            id,
            bits: t.bits,
            score: t.score,
        }
        .sign(&keys, now_ms)
        .ok_or(Refusal::UnknownKey)?;
        Ok((clearance, settings.ttl_ms))
    }

    /// Verifies a clearance cookie for this request: signature (cached),
    /// expiry, binding.
    pub fn check(
        &self,
        settings: &Settings,
        cookie: &str,
        ip: IpAddr,
        user_agent: &[u8],
        now_ms: u64,
    ) -> Result<Token, Refusal> {
        let h = self.hasher.hash_one(cookie.as_bytes());
        let ua_h = self.hasher.hash_one(user_agent);
        let shard = &self.cache[(h as usize) % SHARDS];
        {
            let mut map = shard.lock();
            if let Some(c) = map.get_mut(&h) {
                if &*c.text == cookie {
                    if c.token.expires_ms <= now_ms {
                        return Err(Refusal::Expired);
                    }
                    if c.last_ok == Some((ip, ua_h)) {
                        return Ok(c.token);
                    }
                    if c.token.binding != settings.binding.digest(ip, user_agent) {
                        return Err(Refusal::Rebound);
                    }
                    c.last_ok = Some((ip, ua_h));
                    return Ok(c.token);
                }
            }
        }
        let keys = self.keys().ok_or(Refusal::UnknownKey)?;
        // The cheap checks first: a forged cookie costs a signature check
        // only when it is a clearance, unexpired, bound to this client.
        let claimed = Token::decode_unverified(cookie)?;
        if claimed.kind != Kind::Clearance {
            return Err(Refusal::WrongKind);
        }
        if claimed.expires_ms <= now_ms {
            return Err(Refusal::Expired);
        }
        if claimed.binding != settings.binding.digest(ip, user_agent) {
            return Err(Refusal::Rebound);
        }
        let t = Token::verify(cookie, &keys, now_ms)?;
        let bound = true;
        let mut map = shard.lock();
        make_room(&mut map, self.shard_cap, |c| c.token.expires_ms > now_ms);
        map.insert(
            h,
            Cached {
                text: cookie.into(),
                token: t,
                last_ok: bound.then_some((ip, ua_h)),
            },
        );
        if bound {
            Ok(t)
        } else {
            Err(Refusal::Rebound)
        }
    }

    /// Sizes for metrics.
    pub fn stats(&self) -> Stats {
        Stats {
            cache_entries: self.cache.iter().map(|s| s.lock().len()).sum(),
            redeemed_entries: self.redeemed.iter().map(|s| s.lock().len()).sum(),
        }
    }

    fn shard(&self, id: &[u8; 12]) -> usize {
        (self.hasher.hash_one(id) as usize) % SHARDS
    }
}

/// Makes room for one entry in a shard of at most `cap`: drops what is no
/// longer `live`, then everything if still full.
fn make_room<K, V>(map: &mut HashMap<K, V>, cap: usize, live: impl Fn(&V) -> bool) {
    if map.len() < cap {
        return;
    }
    map.retain(|_, v| live(v));
    if map.len() >= cap {
        map.clear();
    }
}

#[cfg(test)]
mod tests;
