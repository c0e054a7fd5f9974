//! Active decisions: bans and dynamic allow entries keyed by scope and value.
//!
//! A [`Decision`] (CrowdSec's lexicon) applies to one IP address, one CIDR
//! range, one country or one autonomous system. [`DecisionSet`] stores them
//! with one index per scope so that [`DecisionSet::lookup`] answers "what
//! applies to this client?" without allocating: one hash probe for the exact
//! address, one per CIDR prefix length actually in use (longest first), then
//! one for the ASN and one for the country.
//!
//! What it owns: normalization of decision values, precedence between scopes
//! and expiry. What it must not do: read the clock (`now` is passed in) or
//! decide the HTTP answer (the caller maps a [`DecisionAction`] to a verdict).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ahash::AHashMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::request::Geo;
use crate::UnixMillis;

/// What a decision's value designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One address (`203.0.113.7`, `2001:db8::1`).
    Ip,
    /// A network (`10.0.0.0/8`).
    Cidr,
    /// An ISO 3166-1 alpha-2 country code (`FR`).
    Country,
    /// An autonomous system number (`15169`).
    Asn,
    /// A host name (`shop.example.com`), for host-wide modes such as
    /// under-attack mode (action `attack_mode`). Never matches a client.
    Host,
}

impl Scope {
    /// Every client scope, in lookup precedence order.
    pub const ALL: [Scope; 4] = [Scope::Ip, Scope::Cidr, Scope::Asn, Scope::Country];

    /// The name used in the API, events and policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Cidr => "cidr",
            Scope::Country => "country",
            Scope::Asn => "asn",
            Scope::Host => "host",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = DecisionError;

    /// Case-insensitive; also accepts CrowdSec's spellings `range` and `as`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let scope = if t.eq_ignore_ascii_case("ip") {
            Scope::Ip
        } else if t.eq_ignore_ascii_case("cidr") || t.eq_ignore_ascii_case("range") {
            Scope::Cidr
        } else if t.eq_ignore_ascii_case("country") {
            Scope::Country
        } else if t.eq_ignore_ascii_case("asn") || t.eq_ignore_ascii_case("as") {
            Scope::Asn
        } else if t.eq_ignore_ascii_case("host") {
            Scope::Host
        } else {
            return Err(DecisionError::UnknownScope {
                scope: clip(s).to_owned(),
            });
        };
        Ok(scope)
    }
}

/// What a decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionAction {
    /// Deny the client (403), unless the decision is simulated.
    Ban,
    /// A dynamic allowlist entry: let the client through.
    Allow,
    /// Under-attack mode for a host (scope `host` only): the policy's
    /// `[attack_mode]` tightens its limits.
    #[serde(rename = "attack_mode")]
    AttackMode,
}

impl DecisionAction {
    /// The name used in the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Ban => "ban",
            DecisionAction::Allow => "allow",
            DecisionAction::AttackMode => "attack_mode",
        }
    }
}

impl fmt::Display for DecisionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DecisionAction {
    type Err = DecisionError;

    /// Case-insensitive `ban` or `allow`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("ban") {
            Ok(DecisionAction::Ban)
        } else if t.eq_ignore_ascii_case("allow") {
            Ok(DecisionAction::Allow)
        } else if t.eq_ignore_ascii_case("attack_mode") {
            Ok(DecisionAction::AttackMode)
        } else {
            Err(DecisionError::UnknownAction {
                action: clip(s).to_owned(),
            })
        }
    }
}

/// One active decision about a scope + value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id, assigned by whoever created the decision.
    pub id: u64,
    /// What `value` designates.
    pub scope: Scope,
    /// The designated ip, network, country or ASN, in the form given by [`DecisionSet::normalize`].
    pub value: String,
    /// Ban or allow.
    pub action: DecisionAction,
    /// Why (free text, shown in events and the API).
    pub reason: String,
    /// Who created it: `operator`, `api`, a node id…
    pub origin: String,
    /// Shadow mode: matches are logged, not enforced.
    pub simulated: bool,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Expiry time; `None` means until deleted.
    pub expires_at: Option<UnixMillis>,
}

impl Decision {
    /// Whether the decision no longer applies at `now` (`expires_at <= now`).
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// Why a decision or one of its parts was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecisionError {
    /// The value is not a valid ip, cidr, country or ASN.
    #[error("invalid {scope} value `{value}`: {reason}")]
    InvalidValue {
        /// The scope the value was read for.
        scope: Scope,
        /// The value as given (clipped to 100 characters).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scope name is not one of `ip`, `cidr`, `country`, `asn`, `host`.
    #[error("unknown scope `{scope}` (expected ip, cidr, country, asn or host)")]
    UnknownScope {
        /// The name as given.
        scope: String,
    },
    /// The action name is not `ban`, `allow` or `attack_mode`.
    #[error("unknown decision action `{action}` (expected ban, allow or attack_mode)")]
    UnknownAction {
        /// The name as given.
        action: String,
    },
    /// The id is already used by a decision about another scope + value.
    #[error("decision id {id} is already used by {scope} `{value}`")]
    DuplicateId {
        /// The id.
        id: u64,
        /// The scope of the decision that holds the id.
        scope: Scope,
        /// The value of the decision that holds the id.
        value: String,
    },
    /// `attack_mode` is for scope `host` only, and scope `host` only takes `attack_mode`.
    #[error("action {action} does not apply to scope {scope} (scope host takes action attack_mode, and only it)")]
    ActionScope {
        /// The action.
        action: DecisionAction,
        /// The scope.
        scope: Scope,
    },
    /// The set holds as many decisions as it can index (2^32 - 1).
    #[error("too many decisions")]
    Full,
}

/// Refuses `attack_mode` outside scope `host`, and any other action on scope `host`.
pub fn check_action_scope(action: DecisionAction, scope: Scope) -> Result<(), DecisionError> {
    if (action == DecisionAction::AttackMode) == (scope == Scope::Host) {
        Ok(())
    } else {
        Err(DecisionError::ActionScope { action, scope })
    }
}

/// Keeps error messages bounded when a caller sends a huge value.
fn clip(s: &str) -> &str {
    const MAX: usize = 100;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn invalid(scope: Scope, value: &str, reason: impl Into<String>) -> DecisionError {
    DecisionError::InvalidValue {
        scope,
        value: clip(value).to_owned(),
        reason: reason.into(),
    }
}

/// The index key of a normalized value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Ip4(u32),
    Ip6(u128),
    /// Network address (host bits zero) and prefix length.
    Net4(u32, u8),
    Net6(u128, u8),
    Country([u8; 2]),
    Asn(u32),
    /// A keyed hash of the host name (per process: not chosen by a client).
    Host(u64),
}

fn host_key(host: &str) -> u64 {
    static SEED: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(ahash::RandomState::new).hash_one(host)
}

/// The canonical form of a host: lower case, without port or trailing dot.
fn normalize_host_value(scope: Scope, value: &str) -> Result<String, DecisionError> {
    let v = value.trim();
    let name = if let Some(rest) = v.strip_prefix('[') {
        // An IPv6 literal, with an optional port.
        match rest.split_once(']') {
            Some((inner, tail)) if tail.is_empty() || tail.starts_with(':') => {
                let ip: Ipv6Addr = inner
                    .parse()
                    .map_err(|_| invalid(scope, value, "not a host name"))?;
                return Ok(format!("[{ip}]"));
            }
            _ => return Err(invalid(scope, value, "not a host name")),
        }
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => v,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 253
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(invalid(
            scope,
            value,
            "expected a host name such as shop.example.com (letters, digits, `-`, `_`, `.`)",
        ));
    }
    Ok(name)
}

/// An address in the form the indexes use: IPv4-mapped IPv6 becomes IPv4.
#[derive(Debug, Clone, Copy)]
enum Addr {
    V4(u32),
    V6(u128),
}

fn canonical_addr(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(a) => Addr::V4(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Addr::V4(u32::from(v4)),
            None => Addr::V6(u128::from(a)),
        },
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => a,
        l => a & (u32::MAX << (32 - l)),
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => a,
        l => a & (u128::MAX << (128 - l)),
    }
}

/// Packs an IPv4 network into one word so that the index hashes a single u64.
fn net4_key(net: u32, len: u8) -> u64 {
    (u64::from(net) << 8) | u64::from(len)
}

/// Parses and normalizes `value` for `scope`, returning its index key and canonical text.
fn parse_key(scope: Scope, value: &str) -> Result<(Key, String), DecisionError> {
    let v = value.trim();
    match scope {
        Scope::Ip => {
            let ip: IpAddr = v
                .parse()
                .map_err(|_| invalid(scope, value, "not an IPv4 or IPv6 address"))?;
            Ok(match canonical_addr(ip) {
                Addr::V4(a) => (Key::Ip4(a), Ipv4Addr::from(a).to_string()),
                Addr::V6(a) => (Key::Ip6(a), Ipv6Addr::from(a).to_string()),
            })
        }
        Scope::Cidr => {
            let net: IpNet = match v.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => match v.parse::<IpAddr>() {
                    // A bare address is its own /32 or /128.
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(invalid(
                            scope,
                            value,
                            "not a network such as 10.0.0.0/8 or 2001:db8::/32",
                        ))
                    }
                },
            };
            let (addr, len) = match net {
                IpNet::V4(n) => (Addr::V4(u32::from(n.addr())), n.prefix_len()),
                IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
                    Some(v4) if n.prefix_len() >= 96 => {
                        (Addr::V4(u32::from(v4)), n.prefix_len() - 96)
                    }
                    _ => (Addr::V6(u128::from(n.addr())), n.prefix_len()),
                },
            };
            Ok(match addr {
                Addr::V4(a) => {
                    let m = mask4(a, len);
                    (Key::Net4(m, len), format!("{}/{len}", Ipv4Addr::from(m)))
                }
                Addr::V6(a) => {
                    let m = mask6(a, len);
                    (Key::Net6(m, len), format!("{}/{len}", Ipv6Addr::from(m)))
                }
            })
        }
        Scope::Country => match v.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                let c = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
                let text = String::from_utf8_lossy(&c).into_owned();
                Ok((Key::Country(c), text))
            }
            _ => Err(invalid(
                scope,
                value,
                "expected a two-letter ISO 3166-1 code such as FR",
            )),
        },
        Scope::Asn => {
            let digits = match v.get(..2) {
                Some(p) if p.eq_ignore_ascii_case("as") => &v[2..],
                _ => v,
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    scope,
                    value,
                    "expected an AS number such as 15169 or AS15169",
                ));
            }
            let n: u32 = digits
                .parse()
                .map_err(|_| invalid(scope, value, "AS number out of range (max 4294967295)"))?;
            Ok((Key::Asn(n), n.to_string()))
        }
        Scope::Host => {
            let name = normalize_host_value(scope, value)?;
            Ok((Key::Host(host_key(&name)), name))
        }
    }
}

/// How many networks of each prefix length are indexed, and a bitmask of the
/// lengths present so that lookups probe only those.
#[derive(Clone)]
struct PrefixLens {
    counts: [u32; 129],
    present: [u64; 3],
}

impl Default for PrefixLens {
    fn default() -> Self {
        PrefixLens {
            counts: [0; 129],
            present: [0; 3],
        }
    }
}

impl PrefixLens {
    fn add(&mut self, len: u8) {
        let l = usize::from(len.min(128));
        self.counts[l] += 1;
        self.present[l / 64] |= 1 << (l % 64);
    }

    fn remove(&mut self, len: u8) {
        let l = usize::from(len.min(128));
        self.counts[l] = self.counts[l].saturating_sub(1);
        if self.counts[l] == 0 {
            self.present[l / 64] &= !(1 << (l % 64));
        }
    }

    /// The lengths present, longest first.
    fn longest_first(&self) -> LensDesc {
        LensDesc {
            words: self.present,
            word: 3,
            bits: 0,
        }
    }

    /// The lengths present that are shorter than `limit` (at most 64), longest first.
    fn longest_first_below(&self, limit: u8) -> LensDesc {
        let keep = 1u64
            .checked_shl(u32::from(limit))
            .map_or(u64::MAX, |b| b - 1);
        LensDesc {
            words: [self.present[0] & keep, 0, 0],
            word: 3,
            bits: 0,
        }
    }
}

struct LensDesc {
    words: [u64; 3],
    /// Index of the word `bits` came from (3 before the first).
    word: usize,
    bits: u64,
}

impl Iterator for LensDesc {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        while self.bits == 0 {
            if self.word == 0 {
                return None;
            }
            self.word -= 1;
            self.bits = self.words[self.word];
        }
        let b = 63 - self.bits.leading_zeros();
        self.bits &= !(1u64 << b);
        // At most 2 * 64 + 63 = 191, and only bits up to 128 are ever set.
        Some((self.word * 64 + b as usize) as u8)
    }
}

/// A counting filter over 2^16 buckets of the address space: a lookup reads
/// one bit to learn whether any network may contain the address, so that
/// clients outside every network (the common case) skip the per-length probes.
#[derive(Clone, Default)]
struct BucketFilter {
    /// Networks touching each bucket (allocated with the first network).
    counts: Vec<u32>,
    /// Bit `b` is set when `counts[b] > 0`.
    bits: Vec<u64>,
}

const BUCKETS: usize = 1 << 16;

impl BucketFilter {
    fn add(&mut self, b: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
            self.bits = vec![0; BUCKETS / 64];
        }
        if let (Some(c), Some(w)) = (self.counts.get_mut(b), self.bits.get_mut(b / 64)) {
            *c = c.saturating_add(1);
            *w |= 1 << (b % 64);
        }
    }

    fn remove(&mut self, b: usize) {
        if let (Some(c), Some(w)) = (self.counts.get_mut(b), self.bits.get_mut(b / 64)) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                *w &= !(1 << (b % 64));
            }
        }
    }

    #[inline]
    fn may_contain(&self, b: usize) -> bool {
        self.bits
            .get(b / 64)
            .is_some_and(|w| (w >> (b % 64)) & 1 != 0)
    }
}

/// IPv4 buckets are /16s: a network of length ≥ 16 touches one, a shorter one
/// touches every /16 it covers.
fn buckets4(net: u32, len: u8) -> std::ops::Range<usize> {
    let first = (net >> 16) as usize;
    let n = if len >= 16 { 1 } else { 1usize << (16 - len) };
    first..first + n
}

#[inline]
fn bucket4(a: u32) -> usize {
    (a >> 16) as usize
}

/// IPv6 networks of length ≥ 32 are filtered by a hash of their first 32
/// bits; shorter ones (rare) are always probed.
const GATE6: u8 = 32;

#[inline]
fn bucket6(a: u128) -> usize {
    let top = (a >> 96) as u32;
    (top.wrapping_mul(0x9e37_79b1) >> 16) as usize
}

#[derive(Clone)]
struct Slot {
    decision: Decision,
    key: Key,
}

/// Active decisions, indexed for [`DecisionSet::lookup`].
///
/// Decisions live in a slab (a `Vec` with a free list); the id index and the
/// per-scope indexes map to slab positions.
#[derive(Clone, Default)]
pub struct DecisionSet {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_id: AHashMap<u64, u32>,
    ip4: AHashMap<u32, u32>,
    ip6: AHashMap<u128, u32>,
    net4: AHashMap<u64, u32>,
    net6: AHashMap<(u128, u8), u32>,
    net4_lens: PrefixLens,
    net6_lens: PrefixLens,
    net4_filter: BucketFilter,
    net6_filter: BucketFilter,
    country: AHashMap<[u8; 2], u32>,
    asn: AHashMap<u32, u32>,
    host: AHashMap<u64, u32>,
}

impl fmt::Debug for DecisionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionSet")
            .field("len", &self.len())
            .field("ip", &(self.ip4.len() + self.ip6.len()))
            .field("cidr", &(self.net4.len() + self.net6.len()))
            .field("country", &self.country.len())
            .field("asn", &self.asn.len())
            .field("host", &self.host.len())
            .finish()
    }
}

impl DecisionSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The canonical form of `value` for `scope`:
    /// - ip: parsed and printed back, IPv4-mapped IPv6 as IPv4 (`::ffff:1.2.3.4` → `1.2.3.4`);
    /// - cidr: the network address with host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`); a
    ///   bare address becomes a /32 or /128, an IPv4-mapped network (prefix ≥ 96) becomes IPv4;
    /// - country: two ASCII letters, upper-cased;
    /// - asn: the number alone (`AS15169`, `as15169` and `15169` → `15169`).
    ///
    /// Surrounding whitespace is ignored.
    pub fn normalize(scope: Scope, value: &str) -> Result<String, DecisionError> {
        parse_key(scope, value).map(|(_, text)| text)
    }

    /// Inserts `d` (with its value normalized), replacing the decision with the
    /// same scope + value, which is returned.
    ///
    /// Fails when the value is invalid, or when `d.id` is already used by a
    /// decision about another scope + value (remove that one first).
    pub fn insert(&mut self, mut d: Decision) -> Result<Option<Decision>, DecisionError> {
        check_action_scope(d.action, d.scope)?;
        let (key, text) = parse_key(d.scope, &d.value)?;
        d.value = text;
        let existing = self.index_get(key);
        if let Some(&idx) = self.by_id.get(&d.id) {
            if Some(idx) != existing {
                if let Some(Some(other)) = self.slots.get(idx as usize) {
                    return Err(DecisionError::DuplicateId {
                        id: d.id,
                        scope: other.decision.scope,
                        value: other.decision.value.clone(),
                    });
                }
            }
        }
        if let Some(idx) = existing {
            if let Some(Some(slot)) = self.slots.get_mut(idx as usize) {
                let new_id = d.id;
                let old = std::mem::replace(&mut slot.decision, d);
                if old.id != new_id {
                    self.by_id.remove(&old.id);
                    self.by_id.insert(new_id, idx);
                }
                return Ok(Some(old));
            }
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| DecisionError::Full)?;
                if i == u32::MAX {
                    return Err(DecisionError::Full);
                }
                self.slots.push(None);
                i
            }
        };
        self.by_id.insert(d.id, idx);
        self.index_insert(key, idx);
        if let Some(s) = self.slots.get_mut(idx as usize) {
            *s = Some(Slot { decision: d, key });
        }
        Ok(None)
    }

    /// Removes the decision with this id.
    pub fn remove(&mut self, id: u64) -> Option<Decision> {
        let idx = *self.by_id.get(&id)?;
        self.remove_slot(idx)
    }

    /// Removes the decision about `scope` + `value` (normalized first; an invalid value matches nothing).
    pub fn remove_key(&mut self, scope: Scope, value: &str) -> Option<Decision> {
        let (key, _) = parse_key(scope, value).ok()?;
        let idx = self.index_get(key)?;
        self.remove_slot(idx)
    }

    /// The decision with this id.
    pub fn get(&self, id: u64) -> Option<&Decision> {
        let idx = *self.by_id.get(&id)?;
        self.slot(idx).map(|s| &s.decision)
    }

    /// The decision about `scope` + `value` (normalized first), expired or not.
    pub fn get_key(&self, scope: Scope, value: &str) -> Option<&Decision> {
        let (key, _) = parse_key(scope, value).ok()?;
        let idx = self.index_get(key)?;
        self.slot(idx).map(|s| &s.decision)
    }

    /// How many decisions are stored (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no decision is stored.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every stored decision, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Decision> {
        self.slots.iter().flatten().map(|s| &s.decision)
    }

    /// The decision that applies to a client at `now`, ignoring expired ones.
    ///
    /// Precedence: the exact ip, then cidr (longest prefix first), then asn,
    /// then country. When the most specific match has expired, less specific
    /// ones are tried. `Allow` and `Ban` decisions are both returned; the
    /// caller decides. Allocates nothing.
    pub fn lookup(&self, ip: IpAddr, geo: Geo, now: UnixMillis) -> Option<&Decision> {
        match canonical_addr(ip) {
            Addr::V4(a) => {
                if let Some(d) = self.live(self.ip4.get(&a), now) {
                    return Some(d);
                }
                if !self.net4.is_empty() && self.net4_filter.may_contain(bucket4(a)) {
                    for len in self.net4_lens.longest_first() {
                        let k = net4_key(mask4(a, len), len);
                        if let Some(d) = self.live(self.net4.get(&k), now) {
                            return Some(d);
                        }
                    }
                }
            }
            Addr::V6(a) => {
                if let Some(d) = self.live(self.ip6.get(&a), now) {
                    return Some(d);
                }
                if !self.net6.is_empty() {
                    let lens = if self.net6_filter.may_contain(bucket6(a)) {
                        self.net6_lens.longest_first()
                    } else {
                        self.net6_lens.longest_first_below(GATE6)
                    };
                    for len in lens {
                        let k = (mask6(a, len), len);
                        if let Some(d) = self.live(self.net6.get(&k), now) {
                            return Some(d);
                        }
                    }
                }
            }
        }
        if let Some(asn) = geo.asn {
            if let Some(d) = self.live(self.asn.get(&asn), now) {
                return Some(d);
            }
        }
        if let Some([a, b]) = geo.country {
            let c = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
            if let Some(d) = self.live(self.country.get(&c), now) {
                return Some(d);
            }
        }
        None
    }

    /// Whether some host decision (under-attack mode) is held.
    #[inline]
    pub fn has_hosts(&self) -> bool {
        !self.host.is_empty()
    }

    /// Every host decision (under-attack mode), live or not.
    pub fn host_decisions(&self) -> impl Iterator<Item = &Decision> {
        self.host
            .values()
            .filter_map(|&i| self.slot(i).map(|s| &s.decision))
    }

    /// The live decision about `host` (as a request gives it: port and case
    /// do not matter), if any. Allocates only when `host` is not already
    /// lower case without port.
    pub fn host_decision(&self, host: &str, now: UnixMillis) -> Option<&Decision> {
        if self.host.is_empty() {
            return None;
        }
        let plain = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
            })
            && !host.ends_with('.');
        let key = if plain {
            host_key(host)
        } else {
            host_key(&normalize_host_value(Scope::Host, host).ok()?)
        };
        self.live(self.host.get(&key), now)
    }

    /// Removes the decisions expired at `now` and returns them.
    pub fn purge_expired(&mut self, now: UnixMillis) -> Vec<Decision> {
        let expired: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Some(s) if s.decision.is_expired(now) => u32::try_from(i).ok(),
                _ => None,
            })
            .collect();
        expired
            .into_iter()
            .filter_map(|i| self.remove_slot(i))
            .collect()
    }

    #[inline]
    fn slot(&self, idx: u32) -> Option<&Slot> {
        self.slots.get(idx as usize)?.as_ref()
    }

    #[inline]
    fn live(&self, idx: Option<&u32>, now: UnixMillis) -> Option<&Decision> {
        let s = self.slot(*idx?)?;
        (!s.decision.is_expired(now)).then_some(&s.decision)
    }

    fn remove_slot(&mut self, idx: u32) -> Option<Decision> {
        let slot = self.slots.get_mut(idx as usize)?.take()?;
        self.index_remove(slot.key);
        if self.by_id.get(&slot.decision.id) == Some(&idx) {
            self.by_id.remove(&slot.decision.id);
        }
        if self.by_id.is_empty() {
            // Give the slab and the filters back when the set empties.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.net4_filter = BucketFilter::default();
            self.net6_filter = BucketFilter::default();
        } else {
            self.free.push(idx);
        }
        Some(slot.decision)
    }

    fn index_get(&self, key: Key) -> Option<u32> {
        match key {
            Key::Ip4(a) => self.ip4.get(&a),
            Key::Ip6(a) => self.ip6.get(&a),
            Key::Net4(n, l) => self.net4.get(&net4_key(n, l)),
            Key::Net6(n, l) => self.net6.get(&(n, l)),
            Key::Country(c) => self.country.get(&c),
            Key::Asn(n) => self.asn.get(&n),
            Key::Host(h) => self.host.get(&h),
        }
        .copied()
    }

    fn index_insert(&mut self, key: Key, idx: u32) {
        match key {
            Key::Ip4(a) => {
                self.ip4.insert(a, idx);
            }
            Key::Ip6(a) => {
                self.ip6.insert(a, idx);
            }
            Key::Net4(n, l) => {
                if self.net4.insert(net4_key(n, l), idx).is_none() {
                    self.net4_lens.add(l);
                    for b in buckets4(n, l) {
                        self.net4_filter.add(b);
                    }
                }
            }
            Key::Net6(n, l) => {
                if self.net6.insert((n, l), idx).is_none() {
                    self.net6_lens.add(l);
                    if l >= GATE6 {
                        self.net6_filter.add(bucket6(n));
                    }
                }
            }
            Key::Country(c) => {
                self.country.insert(c, idx);
            }
            Key::Asn(n) => {
                self.asn.insert(n, idx);
            }
            Key::Host(h) => {
                self.host.insert(h, idx);
            }
        }
    }

    fn index_remove(&mut self, key: Key) {
        match key {
            Key::Ip4(a) => {
                self.ip4.remove(&a);
            }
            Key::Ip6(a) => {
                self.ip6.remove(&a);
            }
            Key::Net4(n, l) => {
                if self.net4.remove(&net4_key(n, l)).is_some() {
                    self.net4_lens.remove(l);
                    for b in buckets4(n, l) {
                        self.net4_filter.remove(b);
                    }
                }
            }
            Key::Net6(n, l) => {
                if self.net6.remove(&(n, l)).is_some() {
                    self.net6_lens.remove(l);
                    if l >= GATE6 {
                        self.net6_filter.remove(bucket6(n));
                    }
                }
            }
            Key::Country(c) => {
                self.country.remove(&c);
            }
            Key::Asn(n) => {
                self.asn.remove(&n);
            }
            Key::Host(h) => {
                self.host.remove(&h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(id: u64, scope: Scope, value: &str, action: DecisionAction) -> Decision {
        Decision {
            id,
            scope,
            value: value.to_owned(),
            action,
            reason: "test".into(),
            origin: "operator".into(),
            simulated: false,
            created_at: 1_000,
            expires_at: None,
        }
    }

    fn ban(id: u64, scope: Scope, value: &str) -> Decision {
        dec(id, scope, value, DecisionAction::Ban)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn geo(country: Option<&str>, asn: Option<u32>) -> Geo {
        Geo {
            country: country.map(|c| {
                let b = c.as_bytes();
                [b[0], b[1]]
            }),
            asn,
        }
    }

    fn id_of(set: &DecisionSet, addr: &str, g: Geo, now: UnixMillis) -> Option<u64> {
        set.lookup(ip(addr), g, now).map(|d| d.id)
    }

    /// Checks that every index agrees with the slab.
    fn assert_consistent(set: &DecisionSet) {
        let live = set.slots.iter().flatten().count();
        assert_eq!(live, set.len());
        let indexed = set.ip4.len()
            + set.ip6.len()
            + set.net4.len()
            + set.net6.len()
            + set.country.len()
            + set.asn.len();
        assert_eq!(indexed, set.len());
        for d in set.iter() {
            assert_eq!(set.get(d.id), Some(d));
            assert_eq!(set.get_key(d.scope, &d.value), Some(d));
        }
        let n4: u32 = set.net4_lens.counts.iter().sum();
        let n6: u32 = set.net6_lens.counts.iter().sum();
        assert_eq!(n4 as usize, set.net4.len());
        assert_eq!(n6 as usize, set.net6.len());
        // The filters count exactly the indexed networks.
        let mut f4 = BucketFilter::default();
        for &k in set.net4.keys() {
            let (n, l) = ((k >> 8) as u32, (k & 0xff) as u8);
            buckets4(n, l).for_each(|b| f4.add(b));
        }
        let mut f6 = BucketFilter::default();
        for &(n, _) in set.net6.keys().filter(|(_, l)| *l >= GATE6) {
            f6.add(bucket6(n));
        }
        for (want, got) in [(f4, &set.net4_filter), (f6, &set.net6_filter)] {
            let nonzero = |f: &BucketFilter| f.counts.iter().any(|&c| c > 0);
            if nonzero(&want) || nonzero(got) {
                assert!(want.counts == got.counts && want.bits == got.bits);
            }
        }
    }

    #[test]
    fn scope_and_action_names() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!("Range".parse::<Scope>(), Ok(Scope::Cidr));
        assert_eq!("AS".parse::<Scope>(), Ok(Scope::Asn));
        assert_eq!(" IP ".parse::<Scope>(), Ok(Scope::Ip));
        assert!(matches!(
            "user".parse::<Scope>(),
            Err(DecisionError::UnknownScope { .. })
        ));
        assert_eq!("BAN".parse::<DecisionAction>(), Ok(DecisionAction::Ban));
        assert_eq!(DecisionAction::Allow.as_str(), "allow");
        assert!("captcha".parse::<DecisionAction>().is_err());
    }

    #[test]
    fn normalizes_ips() {
        let n = |v| DecisionSet::normalize(Scope::Ip, v);
        assert_eq!(n("1.2.3.4").unwrap(), "1.2.3.4");
        assert_eq!(n(" 1.2.3.4\n").unwrap(), "1.2.3.4");
        assert_eq!(n("::ffff:1.2.3.4").unwrap(), "1.2.3.4");
        assert_eq!(n("2001:DB8:0:0::1").unwrap(), "2001:db8::1");
        assert_eq!(n("::1").unwrap(), "::1");
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/32",
            "256.1.1.1",
            "fe80::1%eth0",
            "example.com",
        ] {
            let e = n(bad).unwrap_err();
            assert!(
                matches!(
                    &e,
                    DecisionError::InvalidValue {
                        scope: Scope::Ip,
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn normalizes_cidrs() {
        let n = |v| DecisionSet::normalize(Scope::Cidr, v);
        assert_eq!(n("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(n("10.1.2.3/32").unwrap(), "10.1.2.3/32");
        assert_eq!(n("10.1.2.3").unwrap(), "10.1.2.3/32");
        assert_eq!(n("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert_eq!(n("192.168.77.1/0").unwrap(), "0.0.0.0/0");
        assert_eq!(n("2001:db8:ffff::1/32").unwrap(), "2001:db8::/32");
        assert_eq!(n("2001:db8::1/128").unwrap(), "2001:db8::1/128");
        assert_eq!(n("::ffff:10.9.8.7/104").unwrap(), "10.0.0.0/8");
        assert_eq!(n("::ffff:10.9.8.7/128").unwrap(), "10.9.8.7/32");
        assert_eq!(n("::ffff:0.0.0.0/80").unwrap(), "::/80");
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "2001:db8::/129",
            "10.0.0.0/8/8",
            "x/8",
        ] {
            let e = n(bad).unwrap_err();
            assert!(
                matches!(
                    &e,
                    DecisionError::InvalidValue {
                        scope: Scope::Cidr,
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn normalizes_countries_and_asns() {
        let c = |v| DecisionSet::normalize(Scope::Country, v);
        assert_eq!(c("fr").unwrap(), "FR");
        assert_eq!(c(" Us ").unwrap(), "US");
        for bad in ["", "F", "FRA", "F1", "é", "ÉÉ"] {
            assert!(c(bad).is_err(), "{bad}");
        }
        let a = |v| DecisionSet::normalize(Scope::Asn, v);
        assert_eq!(a("AS15169").unwrap(), "15169");
        assert_eq!(a("as15169").unwrap(), "15169");
        assert_eq!(a("15169").unwrap(), "15169");
        assert_eq!(a("As007").unwrap(), "7");
        assert_eq!(a("4294967295").unwrap(), "4294967295");
        for bad in [
            "",
            "AS",
            "ASN15169",
            "4294967296",
            "-1",
            "15 169",
            "+5",
            "é",
        ] {
            assert!(a(bad).is_err(), "{bad}");
        }
        let e = a("AS99999999999").unwrap_err();
        assert!(
            e.to_string().contains("invalid asn value `AS99999999999`"),
            "{e}"
        );
    }

    #[test]
    fn error_values_are_clipped() {
        let long = "é".repeat(200);
        match DecisionSet::normalize(Scope::Ip, &long).unwrap_err() {
            DecisionError::InvalidValue { value, .. } => assert!(value.len() <= 100),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn insert_normalizes_and_replaces_by_key() {
        let mut set = DecisionSet::new();
        assert_eq!(set.insert(ban(1, Scope::Ip, "::ffff:9.9.9.9")), Ok(None));
        assert_eq!(set.get(1).unwrap().value, "9.9.9.9");
        let old = set
            .insert(dec(2, Scope::Ip, "9.9.9.9", DecisionAction::Allow))
            .unwrap()
            .unwrap();
        assert_eq!(old.id, 1);
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(1), None);
        assert_eq!(set.get(2).unwrap().action, DecisionAction::Allow);
        // Same id, same key: a plain update.
        let mut upd = ban(2, Scope::Ip, "9.9.9.9");
        upd.expires_at = Some(5_000);
        assert_eq!(
            set.insert(upd).unwrap().unwrap().action,
            DecisionAction::Allow
        );
        assert_eq!(set.get(2).unwrap().expires_at, Some(5_000));
        // Same id, other key: refused, nothing changes.
        let e = set.insert(ban(2, Scope::Country, "fr")).unwrap_err();
        assert!(matches!(
            e,
            DecisionError::DuplicateId {
                id: 2,
                scope: Scope::Ip,
                ..
            }
        ));
        assert_eq!(set.len(), 1);
        // Invalid value: refused.
        assert!(set.insert(ban(3, Scope::Cidr, "10.0.0.0/40")).is_err());
        assert_eq!(set.len(), 1);
        // Cidr replacement goes through normalization too.
        set.insert(ban(4, Scope::Cidr, "10.1.2.3/8")).unwrap();
        assert_eq!(
            set.insert(ban(5, Scope::Cidr, "10.200.0.0/8"))
                .unwrap()
                .unwrap()
                .id,
            4
        );
        assert_eq!(set.net4_lens.counts[8], 1);
        assert_consistent(&set);
    }

    #[test]
    fn lookup_precedence() {
        let mut set = DecisionSet::new();
        set.insert(ban(1, Scope::Country, "FR")).unwrap();
        set.insert(ban(2, Scope::Asn, "AS64500")).unwrap();
        set.insert(ban(3, Scope::Cidr, "10.0.0.0/8")).unwrap();
        set.insert(ban(4, Scope::Cidr, "10.1.0.0/16")).unwrap();
        set.insert(dec(5, Scope::Cidr, "10.1.2.0/24", DecisionAction::Allow))
            .unwrap();
        set.insert(ban(6, Scope::Ip, "10.1.2.3")).unwrap();
        set.insert(ban(7, Scope::Cidr, "0.0.0.0/0")).unwrap();
        let g = geo(Some("FR"), Some(64500));
        assert_eq!(id_of(&set, "10.1.2.3", g, 0), Some(6));
        assert_eq!(id_of(&set, "10.1.2.4", g, 0), Some(5));
        assert_eq!(id_of(&set, "10.1.3.4", g, 0), Some(4));
        assert_eq!(id_of(&set, "10.2.3.4", g, 0), Some(3));
        assert_eq!(id_of(&set, "11.2.3.4", g, 0), Some(7));
        set.remove(7).unwrap();
        assert_eq!(id_of(&set, "11.2.3.4", g, 0), Some(2));
        assert_eq!(id_of(&set, "11.2.3.4", geo(Some("FR"), None), 0), Some(1));
        // Country codes from GeoIP are compared upper-cased.
        assert_eq!(id_of(&set, "11.2.3.4", geo(Some("fr"), None), 0), Some(1));
        assert_eq!(id_of(&set, "11.2.3.4", geo(Some("DE"), Some(1)), 0), None);
        assert_eq!(id_of(&set, "11.2.3.4", Geo::default(), 0), None);
        // IPv6 client: no v4 networks apply, geo still does.
        assert_eq!(id_of(&set, "2001:db8::1", g, 0), Some(2));
        assert_eq!(
            set.lookup(ip("10.1.2.4"), g, 0).unwrap().action,
            DecisionAction::Allow
        );
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let mut set = DecisionSet::new();
        set.insert(ban(1, Scope::Ip, "1.2.3.4")).unwrap();
        set.insert(ban(2, Scope::Cidr, "::ffff:5.6.0.0/112"))
            .unwrap();
        set.insert(ban(3, Scope::Cidr, "2001:db8::/32")).unwrap();
        set.insert(ban(4, Scope::Cidr, "2001:db8:1::/48")).unwrap();
        set.insert(ban(5, Scope::Ip, "2001:db8:1::9")).unwrap();
        set.insert(ban(6, Scope::Cidr, "2001:db8:1::7/128"))
            .unwrap();
        let g = Geo::default();
        assert_eq!(id_of(&set, "::ffff:1.2.3.4", g, 0), Some(1));
        assert_eq!(id_of(&set, "1.2.3.4", g, 0), Some(1));
        assert_eq!(id_of(&set, "5.6.7.8", g, 0), Some(2));
        assert_eq!(id_of(&set, "::ffff:5.6.7.8", g, 0), Some(2));
        assert_eq!(id_of(&set, "2001:db8:1::9", g, 0), Some(5));
        assert_eq!(id_of(&set, "2001:db8:1::7", g, 0), Some(6));
        assert_eq!(id_of(&set, "2001:db8:1::8", g, 0), Some(4));
        assert_eq!(id_of(&set, "2001:db8:2::8", g, 0), Some(3));
        assert_eq!(id_of(&set, "2001:db9::1", g, 0), None);
        // `::1.2.3.4` (IPv4-compatible, deprecated) is not an IPv4 address.
        assert_eq!(id_of(&set, "::1.2.3.4", g, 0), None);
        assert_eq!(set.get(2).unwrap().value, "5.6.0.0/16");
        // Networks shorter than the filter's /32 gate are always probed.
        set.insert(ban(7, Scope::Cidr, "2001::/16")).unwrap();
        set.insert(ban(8, Scope::Cidr, "::/0")).unwrap();
        assert_eq!(id_of(&set, "2001:db9::1", g, 0), Some(7));
        assert_eq!(id_of(&set, "2002::1", g, 0), Some(8));
        assert_eq!(id_of(&set, "2001:db8:2::8", g, 0), Some(3));
        assert_eq!(id_of(&set, "9.9.9.9", g, 0), None);
        assert_consistent(&set);
        for id in [3, 4, 6, 7, 8] {
            set.remove(id).unwrap();
            assert_consistent(&set);
        }
        assert_eq!(id_of(&set, "2001:db8:1::8", g, 0), None);
        assert_eq!(id_of(&set, "2001:db8:1::9", g, 0), Some(5));
    }

    #[test]
    fn short_ipv4_networks_cover_their_whole_range() {
        let mut set = DecisionSet::new();
        let g = Geo::default();
        set.insert(ban(1, Scope::Cidr, "128.0.0.0/1")).unwrap();
        set.insert(ban(2, Scope::Cidr, "10.0.0.0/7")).unwrap();
        set.insert(ban(3, Scope::Cidr, "10.1.2.0/24")).unwrap();
        assert_consistent(&set);
        assert_eq!(id_of(&set, "255.255.255.255", g, 0), Some(1));
        assert_eq!(id_of(&set, "128.0.0.0", g, 0), Some(1));
        assert_eq!(id_of(&set, "127.255.255.255", g, 0), None);
        assert_eq!(id_of(&set, "11.255.0.1", g, 0), Some(2));
        assert_eq!(id_of(&set, "10.1.2.255", g, 0), Some(3));
        assert_eq!(id_of(&set, "12.0.0.0", g, 0), None);
        set.insert(ban(4, Scope::Cidr, "0.0.0.0/0")).unwrap();
        assert_eq!(id_of(&set, "12.0.0.0", g, 0), Some(4));
        assert_consistent(&set);
        set.remove(2).unwrap();
        set.remove(4).unwrap();
        assert_consistent(&set);
        assert_eq!(id_of(&set, "11.255.0.1", g, 0), None);
        assert_eq!(id_of(&set, "10.1.2.255", g, 0), Some(3));
        assert!(!set.net4_filter.may_contain(bucket4(0x0b00_0000)));
        assert!(set.net4_filter.may_contain(bucket4(0x0a01_0000)));
    }

    #[test]
    fn expired_decisions_are_skipped_then_purged() {
        let mut set = DecisionSet::new();
        let mut d = ban(1, Scope::Ip, "1.2.3.4");
        d.expires_at = Some(10_000);
        set.insert(d).unwrap();
        let mut d = ban(2, Scope::Cidr, "1.2.3.0/24");
        d.expires_at = Some(20_000);
        set.insert(d).unwrap();
        let mut d = ban(3, Scope::Cidr, "1.2.0.0/16");
        d.expires_at = Some(20_000);
        set.insert(d).unwrap();
        set.insert(ban(4, Scope::Country, "NL")).unwrap();
        let g = geo(Some("NL"), None);
        assert_eq!(id_of(&set, "1.2.3.4", g, 9_999), Some(1));
        assert_eq!(id_of(&set, "1.2.3.4", g, 10_000), Some(2));
        assert_eq!(id_of(&set, "1.2.3.4", g, 20_000), Some(4));
        assert_eq!(set.len(), 4);
        let mut purged: Vec<u64> = set.purge_expired(10_000).iter().map(|d| d.id).collect();
        assert_eq!(purged, vec![1]);
        assert_eq!(set.len(), 3);
        purged = set.purge_expired(30_000).iter().map(|d| d.id).collect();
        purged.sort_unstable();
        assert_eq!(purged, vec![2, 3]);
        assert!(set.purge_expired(u64::MAX).is_empty());
        assert_eq!(set.len(), 1);
        assert_eq!(set.net4_lens.present, [0; 3]);
        assert_eq!(id_of(&set, "1.2.3.4", g, 0), Some(4));
        assert_consistent(&set);
    }

    #[test]
    fn remove_by_id_and_key_keeps_indexes_consistent() {
        let mut set = DecisionSet::new();
        set.insert(ban(1, Scope::Ip, "1.1.1.1")).unwrap();
        set.insert(ban(2, Scope::Cidr, "1.1.0.0/16")).unwrap();
        set.insert(ban(3, Scope::Country, "de")).unwrap();
        set.insert(ban(4, Scope::Asn, "as3320")).unwrap();
        set.insert(ban(5, Scope::Cidr, "2001:db8::/32")).unwrap();
        assert_consistent(&set);
        assert_eq!(set.remove_key(Scope::Ip, "::ffff:1.1.1.1").unwrap().id, 1);
        assert_eq!(set.remove_key(Scope::Ip, "1.1.1.1"), None);
        assert_eq!(set.remove_key(Scope::Ip, "not an ip"), None);
        assert_eq!(set.remove_key(Scope::Country, "DE").unwrap().id, 3);
        assert_eq!(set.remove_key(Scope::Asn, "3320").unwrap().id, 4);
        assert_eq!(set.remove(2).unwrap().value, "1.1.0.0/16");
        assert_eq!(set.remove(2), None);
        assert_consistent(&set);
        assert_eq!(set.len(), 1);
        assert_eq!(id_of(&set, "1.1.1.1", geo(Some("DE"), Some(3320)), 0), None);
        // The freed slots are reused.
        set.insert(ban(6, Scope::Ip, "8.8.8.8")).unwrap();
        assert!(set.slots.len() <= 5);
        assert_consistent(&set);
        assert_eq!(
            set.remove_key(Scope::Cidr, "2001:db8:1::/32").unwrap().id,
            5
        );
        assert_eq!(set.remove(6).unwrap().id, 6);
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
        assert_consistent(&set);
        // Usable again after emptying.
        set.insert(ban(7, Scope::Ip, "8.8.8.8")).unwrap();
        assert_eq!(id_of(&set, "8.8.8.8", Geo::default(), 0), Some(7));
    }

    #[test]
    fn serde_round_trip() {
        let mut d = ban(9, Scope::Asn, "AS1");
        d.expires_at = Some(3);
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"scope\":\"asn\"") && json.contains("\"action\":\"ban\""));
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn many_inserts_and_lookups() {
        let mut set = DecisionSet::new();
        let n: u32 = 100_000;
        for i in 0..n {
            let a = Ipv4Addr::from(0x0a00_0000 + i * 3);
            let mut d = ban(u64::from(i), Scope::Ip, &a.to_string());
            d.expires_at = Some(if i % 2 == 0 { 1_000 } else { 2_000 });
            set.insert(d).unwrap();
        }
        for l in [12u8, 20, 28] {
            set.insert(ban(
                1_000_000 + u64::from(l),
                Scope::Cidr,
                &format!("10.0.0.0/{l}"),
            ))
            .unwrap();
        }
        assert_eq!(set.len(), n as usize + 3);
        let g = Geo::default();
        for i in 0..n {
            let hit = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 3));
            assert_eq!(set.lookup(hit, g, 500).map(|d| d.id), Some(u64::from(i)));
            let miss = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 3 + 1));
            let expect = match 0x0a00_0000 + i * 3 + 1 {
                a if a < 0x0a00_0010 => Some(1_000_028),
                a if a < 0x0a00_1000 => Some(1_000_020),
                a if a < 0x0a10_0000 => Some(1_000_012),
                _ => None,
            };
            assert_eq!(set.lookup(miss, g, 500).map(|d| d.id), expect, "{miss}");
        }
        assert_eq!(set.purge_expired(1_500).len(), n as usize / 2);
        assert_eq!(
            set.lookup(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 6)), g, 1_500)
                .map(|d| d.id),
            Some(1_000_028)
        );
        assert_consistent(&set);
    }

    #[test]
    fn debug_is_short() {
        let mut set = DecisionSet::new();
        set.insert(ban(1, Scope::Ip, "1.1.1.1")).unwrap();
        let s = format!("{set:?}");
        assert!(s.contains("len: 1"), "{s}");
    }
}
