//! [`DecisionSet`]: the compact store behind [`DecisionSet::lookup`].
//!
//! Sized for blocklists of millions of entries. Each decision is one 48-byte
//! [`Entry`] in a slab: its key is kept as numbers (the canonical text is
//! printed back on demand), its reason and origin as an index into a table of
//! interned, reference-counted pairs (an imported list shares one pair), its
//! expiry as a flag and a number. The per-scope indexes map the key (as a
//! number) to the slab position, as before the slab was made compact, so a
//! lookup reads the same memory: control bytes, key and position, then the
//! entry. The id index, off the request path, is a table of bare 4-byte
//! positions hashed by the entry's id (5 bytes a bucket instead of 17).

use std::net::IpAddr;

use ahash::{AHashMap, RandomState};
use hashbrown::HashTable;

use super::index::{bucket4, bucket6, buckets4, BucketFilter, PrefixLens, GATE6};
use super::{
    canonical_addr, check_action_scope, mask4, mask6, net4_key, normalize_host_value, parse_key,
    Addr, Decision, DecisionAction, DecisionError, Key, Scope,
};
use crate::request::Geo;
use crate::UnixMillis;

const K_FREE: u8 = 0;
const K_IP4: u8 = 1;
const K_IP6: u8 = 2;
const K_NET4: u8 = 3;
const K_NET6: u8 = 4;
const K_COUNTRY: u8 = 5;
const K_ASN: u8 = 6;
const K_HOST: u8 = 7;
const K_PRINT: u8 = 8;

const F_ALLOW: u8 = 1;
const F_SIMULATED: u8 = 2;
const F_EXPIRES: u8 = 4;
const F_ATTACK: u8 = 8;
const F_CHALLENGE: u8 = 16;

/// One decision in the slab (48 bytes). `kind == K_FREE` marks a free slot.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    id: u64,
    created_at: u64,
    /// Meaningful when `flags & F_EXPIRES`.
    expires_at: u64,
    /// The key's number: address, network, ASN or country letters.
    hi: u64,
    lo: u64,
    /// Index of the interned (reason, origin) pair.
    meta: u32,
    kind: u8,
    /// Prefix length of a network.
    len: u8,
    flags: u8,
}

impl Entry {
    const FREE: Entry = Entry {
        id: 0,
        created_at: 0,
        expires_at: 0,
        hi: 0,
        lo: 0,
        meta: 0,
        kind: K_FREE,
        len: 0,
        flags: 0,
    };

    fn pack(key: Key) -> (u8, u128, u8) {
        match key {
            Key::Ip4(a) => (K_IP4, u128::from(a), 0),
            Key::Ip6(a) => (K_IP6, a, 0),
            Key::Net4(n, l) => (K_NET4, u128::from(n), l),
            Key::Net6(n, l) => (K_NET6, n, l),
            Key::Country(c) => (K_COUNTRY, u128::from(u16::from_be_bytes(c)), 0),
            Key::Asn(n) => (K_ASN, u128::from(n), 0),
            Key::Host(h) => (K_HOST, u128::from(h), 0),
            Key::Print(h) => (K_PRINT, u128::from(h), 0),
        }
    }

    #[inline]
    fn num(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }

    /// The key, or `None` for a free slot.
    #[inline(always)]
    fn key(&self) -> Option<Key> {
        let n = self.num();
        // The casts keep the bits the kind stored.
        Some(match self.kind {
            K_IP4 => Key::Ip4(n as u32),
            K_IP6 => Key::Ip6(n),
            K_NET4 => Key::Net4(n as u32, self.len),
            K_NET6 => Key::Net6(n, self.len),
            K_COUNTRY => Key::Country((n as u16).to_be_bytes()),
            K_ASN => Key::Asn(n as u32),
            K_HOST => Key::Host(n as u64),
            K_PRINT => Key::Print(n as u64),
            _ => return None,
        })
    }

    #[inline]
    fn is_expired(&self, now: UnixMillis) -> bool {
        self.flags & F_EXPIRES != 0 && self.expires_at <= now
    }

    fn expires(&self) -> Option<UnixMillis> {
        (self.flags & F_EXPIRES != 0).then_some(self.expires_at)
    }
}

/// What the request path needs of a matching decision
/// ([`DecisionSet::lookup_hit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The decision's id.
    pub id: u64,
    /// Ban, allow (or attack mode, which never matches a client).
    pub action: DecisionAction,
    /// Shadow mode: log, do not enforce.
    pub simulated: bool,
}

impl Hit {
    #[inline(always)]
    fn of(e: &Entry) -> Hit {
        Hit {
            id: e.id,
            action: if e.flags & F_ALLOW != 0 {
                DecisionAction::Allow
            } else if e.flags & F_ATTACK != 0 {
                DecisionAction::AttackMode
            } else if e.flags & F_CHALLENGE != 0 {
                DecisionAction::Challenge
            } else {
                DecisionAction::Ban
            },
            simulated: e.flags & F_SIMULATED != 0,
        }
    }
}

/// A decision as stored, borrowed from a [`DecisionSet`]; the fields read on
/// the request path are plain fields, the value is printed on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionRef<'a> {
    /// Unique id.
    pub id: u64,
    /// What the value designates.
    pub scope: Scope,
    /// Ban or allow.
    pub action: DecisionAction,
    /// Why.
    pub reason: &'a str,
    /// Who created it.
    pub origin: &'a str,
    /// Shadow mode.
    pub simulated: bool,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Expiry time; `None` means until deleted.
    pub expires_at: Option<UnixMillis>,
    key: Key,
    /// The name of a host decision (its key is a hash).
    host: Option<&'a str>,
}

impl DecisionRef<'_> {
    /// The value in canonical form (allocates).
    pub fn value(&self) -> String {
        match self.host {
            Some(h) => h.to_owned(),
            None => self.key.text(),
        }
    }

    /// Whether the decision no longer applies at `now`.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// An owned copy.
    pub fn to_decision(&self) -> Decision {
        Decision {
            id: self.id,
            scope: self.scope,
            value: self.value(),
            action: self.action,
            reason: self.reason.to_owned(),
            origin: self.origin.to_owned(),
            simulated: self.simulated,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

#[derive(Clone)]
struct Meta {
    reason: Box<str>,
    origin: Box<str>,
    refs: u32,
}

/// Interned (reason, origin) pairs, reference-counted by the entries using them.
#[derive(Clone, Default)]
pub(super) struct Metas {
    slots: Vec<Option<Meta>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

fn meta_hash(h: &RandomState, reason: &str, origin: &str) -> u64 {
    h.hash_one((reason, origin))
}

impl Metas {
    fn get(&self, i: u32) -> (&str, &str) {
        match self.slots.get(i as usize) {
            Some(Some(m)) => (&m.reason, &m.origin),
            _ => ("", ""),
        }
    }

    fn intern(
        &mut self,
        h: &RandomState,
        reason: &str,
        origin: &str,
    ) -> Result<u32, DecisionError> {
        let hash = meta_hash(h, reason, origin);
        let slots = &mut self.slots;
        let found = self.index.find(hash, |&i| {
            matches!(slots.get(i as usize), Some(Some(m)) if &*m.reason == reason && &*m.origin == origin)
        });
        if let Some(&i) = found {
            if let Some(Some(m)) = slots.get_mut(i as usize) {
                m.refs = m.refs.saturating_add(1);
            }
            return Ok(i);
        }
        let meta = Meta {
            reason: reason.into(),
            origin: origin.into(),
            refs: 1,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = slots.get_mut(i as usize) {
                    *s = Some(meta);
                }
                i
            }
            None => {
                let i = u32::try_from(slots.len()).map_err(|_| DecisionError::Full)?;
                slots.push(Some(meta));
                i
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| match slots.get(j as usize) {
                Some(Some(m)) => meta_hash(h, &m.reason, &m.origin),
                _ => 0,
            });
        Ok(i)
    }

    fn release(&mut self, h: &RandomState, i: u32) {
        let Some(Some(m)) = self.slots.get_mut(i as usize) else {
            return;
        };
        m.refs = m.refs.saturating_sub(1);
        if m.refs > 0 {
            return;
        }
        let hash = meta_hash(h, &m.reason, &m.origin);
        if let Ok(e) = self.index.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        if let Some(s) = self.slots.get_mut(i as usize) {
            *s = None;
        }
        self.free.push(i);
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }
}

/// Active decisions, indexed for [`DecisionSet::lookup`].
#[derive(Clone, Default)]
pub struct DecisionSet {
    hasher: RandomState,
    pub(super) slots: Vec<Entry>,
    free: Vec<u32>,
    len: usize,
    pub(super) metas: Metas,
    by_id: HashTable<u32>,
    pub(super) ip4: AHashMap<u32, u32>,
    pub(super) ip6: AHashMap<u128, u32>,
    pub(super) net4: AHashMap<u64, u32>,
    pub(super) net6: AHashMap<(u128, u8), u32>,
    pub(super) country: AHashMap<[u8; 2], u32>,
    pub(super) asn: AHashMap<u32, u32>,
    /// Host decisions (under-attack mode) by keyed hash, and their names.
    host: AHashMap<u64, u32>,
    host_names: AHashMap<u64, Box<str>>,
    /// Fingerprint decisions by keyed hash, and their values.
    prints: AHashMap<u64, u32>,
    print_names: AHashMap<u64, Box<str>>,
    pub(super) net4_lens: PrefixLens,
    pub(super) net6_lens: PrefixLens,
    pub(super) net4_filter: BucketFilter,
    pub(super) net6_filter: BucketFilter,
}

impl std::fmt::Debug for DecisionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionSet")
            .field("len", &self.len())
            .field("ip", &(self.ip4.len() + self.ip6.len()))
            .field("cidr", &(self.net4.len() + self.net6.len()))
            .field("country", &self.country.len())
            .field("asn", &self.asn.len())
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
        if scope == Scope::Host {
            return normalize_host_value(scope, value);
        }
        if scope == Scope::Fingerprint {
            return super::normalize_print_value(scope, value);
        }
        parse_key(scope, value).map(Key::text)
    }

    /// Inserts `d` (its value normalized), replacing the decision with the
    /// same scope + value, which is returned.
    ///
    /// Fails when the value is invalid, or when `d.id` is already used by a
    /// decision about another scope + value (remove that one first).
    pub fn insert(&mut self, d: Decision) -> Result<Option<Decision>, DecisionError> {
        check_action_scope(d.action, d.scope)?;
        let key = parse_key(d.scope, &d.value)?;
        let existing = self.index_get(key);
        if let Some(idx) = self.id_get(d.id) {
            if Some(idx) != existing {
                if let Some(other) = self.view_at(idx) {
                    return Err(DecisionError::DuplicateId {
                        id: d.id,
                        scope: other.scope,
                        value: other.value(),
                    });
                }
            }
        }
        let (kind, num, len) = Entry::pack(key);
        let mut flags = 0;
        match d.action {
            DecisionAction::Allow => flags |= F_ALLOW,
            DecisionAction::AttackMode => flags |= F_ATTACK,
            DecisionAction::Challenge => flags |= F_CHALLENGE,
            DecisionAction::Ban => {}
        }
        if d.simulated {
            flags |= F_SIMULATED;
        }
        if d.expires_at.is_some() {
            flags |= F_EXPIRES;
        }
        let idx = match existing {
            Some(i) => i,
            None => match self.free.last() {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.slots.len()).map_err(|_| DecisionError::Full)?;
                    if i == u32::MAX {
                        return Err(DecisionError::Full);
                    }
                    i
                }
            },
        };
        let meta = self.metas.intern(&self.hasher, &d.reason, &d.origin)?;
        let entry = Entry {
            id: d.id,
            created_at: d.created_at,
            expires_at: d.expires_at.unwrap_or(0),
            hi: (num >> 64) as u64,
            lo: num as u64,
            meta,
            kind,
            len,
            flags,
        };
        if existing.is_some() {
            let old = self.view_at(idx).map(|v| v.to_decision());
            let old_entry = self.slots.get(idx as usize).copied();
            if let Some(s) = self.slots.get_mut(idx as usize) {
                *s = entry;
            }
            if let Some(o) = old_entry {
                self.metas.release(&self.hasher, o.meta);
                if o.id != d.id {
                    self.id_remove(o.id, idx);
                    self.id_insert(d.id, idx);
                }
            }
            return Ok(old);
        }
        if self.free.pop().is_none() {
            self.slots.push(Entry::FREE);
        }
        if let Some(s) = self.slots.get_mut(idx as usize) {
            *s = entry;
        }
        self.len += 1;
        self.id_insert(d.id, idx);
        self.index_insert(key, idx);
        if let Key::Host(h) = key {
            self.host_names
                .insert(h, normalize_host_value(d.scope, &d.value)?.into_boxed_str());
        }
        if let Key::Print(h) = key {
            self.print_names.insert(
                h,
                super::normalize_print_value(d.scope, &d.value)?.into_boxed_str(),
            );
        }
        Ok(None)
    }

    /// Removes the decision with this id.
    pub fn remove(&mut self, id: u64) -> Option<Decision> {
        let idx = self.id_get(id)?;
        self.remove_slot(idx)
    }

    /// Removes the decision about `scope` + `value` (normalized first; an invalid value matches nothing).
    pub fn remove_key(&mut self, scope: Scope, value: &str) -> Option<Decision> {
        let key = parse_key(scope, value).ok()?;
        let idx = self.index_get(key)?;
        self.remove_slot(idx)
    }

    /// The decision with this id.
    pub fn get(&self, id: u64) -> Option<DecisionRef<'_>> {
        self.view_at(self.id_get(id)?)
    }

    /// The decision about `scope` + `value` (normalized first), expired or not.
    pub fn get_key(&self, scope: Scope, value: &str) -> Option<DecisionRef<'_>> {
        let key = parse_key(scope, value).ok()?;
        self.view_at(self.index_get(key)?)
    }

    /// How many decisions are stored (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no decision is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every stored decision, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = DecisionRef<'_>> {
        self.slots.iter().filter_map(|e| self.view(e))
    }

    /// The decision that applies to a client at `now`, ignoring expired ones.
    ///
    /// Precedence: the exact ip, then cidr (longest prefix first), then asn,
    /// then country. When the most specific match has expired, less specific
    /// ones are tried. `Allow` and `Ban` decisions are both returned; the
    /// caller decides. Allocates nothing.
    pub fn lookup(&self, ip: IpAddr, geo: Geo, now: UnixMillis) -> Option<DecisionRef<'_>> {
        self.find(ip, geo, now, |e| self.view(e))
    }

    /// What the request path needs of [`DecisionSet::lookup`]'s answer — id,
    /// action, shadow mode — read from the entry alone (its reason and origin,
    /// stored apart, are not touched). Allocates nothing.
    #[inline]
    pub fn lookup_hit(&self, ip: IpAddr, geo: Geo, now: UnixMillis) -> Option<Hit> {
        self.find(ip, geo, now, |e| Some(Hit::of(e)))
    }

    /// The most specific live decision that applies to a client and is not
    /// a challenge: a ban at a broader scope outranks a challenge at a
    /// narrower one (the pipeline asks when [`DecisionSet::lookup_hit`]
    /// found a challenge).
    pub fn lookup_hit_beyond_challenges(
        &self,
        ip: IpAddr,
        geo: Geo,
        now: UnixMillis,
    ) -> Option<Hit> {
        self.find(ip, geo, now, |e| {
            let h = Hit::of(e);
            (h.action != DecisionAction::Challenge).then_some(h)
        })
    }

    /// Whether some fingerprint decision is held.
    #[inline]
    pub fn has_fingerprints(&self) -> bool {
        !self.prints.is_empty()
    }

    /// The live decision about one of `prints` (the client's fingerprints,
    /// as rules see them; empty ones are skipped), the first found.
    pub fn lookup_fingerprints(&self, prints: &[&str], now: UnixMillis) -> Option<Hit> {
        if self.prints.is_empty() {
            return None;
        }
        prints.iter().filter(|p| !p.is_empty()).find_map(|p| {
            let idx = self.prints.get(&super::print_key(p))?;
            let e = self.slots.get(*idx as usize)?;
            (!e.is_expired(now)).then(|| Hit::of(e))
        })
    }

    /// The live entry that applies to a client, mapped by `f`.
    #[inline(always)]
    fn find<'s, T>(
        &'s self,
        ip: IpAddr,
        geo: Geo,
        now: UnixMillis,
        f: impl Fn(&'s Entry) -> Option<T>,
    ) -> Option<T> {
        let live = |idx: Option<&u32>| -> Option<T> {
            let e = self.slots.get(*idx? as usize)?;
            if e.is_expired(now) {
                return None;
            }
            f(e)
        };
        match canonical_addr(ip) {
            Addr::V4(a) => {
                if let Some(d) = live(self.ip4.get(&a)) {
                    return Some(d);
                }
                if !self.net4.is_empty() && self.net4_filter.may_contain(bucket4(a)) {
                    for len in self.net4_lens.longest_first() {
                        let k = net4_key(mask4(a, len), len);
                        if let Some(d) = live(self.net4.get(&k)) {
                            return Some(d);
                        }
                    }
                }
            }
            Addr::V6(a) => {
                if let Some(d) = live(self.ip6.get(&a)) {
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
                        if let Some(d) = live(self.net6.get(&k)) {
                            return Some(d);
                        }
                    }
                }
            }
        }
        if let Some(asn) = geo.asn {
            if let Some(d) = live(self.asn.get(&asn)) {
                return Some(d);
            }
        }
        if let Some([a, b]) = geo.country {
            let c = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
            if let Some(d) = live(self.country.get(&c)) {
                return Some(d);
            }
        }
        None
    }

    /// Whether a decision has expired at `now` (a scan of the slab, no allocation).
    pub fn any_expired(&self, now: UnixMillis) -> bool {
        self.slots
            .iter()
            .any(|e| e.kind != K_FREE && e.is_expired(now))
    }

    /// Removes the decisions expired at `now` and returns them.
    pub fn purge_expired(&mut self, now: UnixMillis) -> Vec<Decision> {
        let expired: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind != K_FREE && e.is_expired(now))
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        expired
            .into_iter()
            .filter_map(|i| self.remove_slot(i))
            .collect()
    }

    /// Whether some host decision (under-attack mode) is held.
    #[inline]
    pub fn has_hosts(&self) -> bool {
        !self.host.is_empty()
    }

    /// The live decision about `host` (as a request gives it: port and case
    /// do not matter), if any. Allocates only when `host` is not already
    /// lower case without port.
    pub fn host_decision(&self, host: &str, now: UnixMillis) -> Option<DecisionRef<'_>> {
        if self.host.is_empty() {
            return None;
        }
        let plain = !host.is_empty()
            && !host.ends_with('.')
            && host.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
            });
        let key = if plain {
            super::host_key(host)
        } else {
            super::host_key(&normalize_host_value(Scope::Host, host).ok()?)
        };
        self.live(self.host.get(&key), now)
    }

    /// Every host decision (under-attack mode), live or not.
    pub fn host_decisions(&self) -> impl Iterator<Item = DecisionRef<'_>> {
        self.host.values().filter_map(|&i| self.view_at(i))
    }

    /// Distinct (reason, origin) pairs stored.
    pub fn distinct_reasons(&self) -> usize {
        self.metas.len()
    }

    #[inline(always)]
    fn view(&self, e: &Entry) -> Option<DecisionRef<'_>> {
        let key = e.key()?;
        let (reason, origin) = self.metas.get(e.meta);
        let host = match key {
            Key::Host(h) => self.host_names.get(&h).map(|n| &**n),
            Key::Print(h) => self.print_names.get(&h).map(|n| &**n),
            _ => None,
        };
        Some(DecisionRef {
            id: e.id,
            scope: key.scope(),
            action: if e.flags & F_ALLOW != 0 {
                DecisionAction::Allow
            } else if e.flags & F_ATTACK != 0 {
                DecisionAction::AttackMode
            } else if e.flags & F_CHALLENGE != 0 {
                DecisionAction::Challenge
            } else {
                DecisionAction::Ban
            },
            reason,
            origin,
            simulated: e.flags & F_SIMULATED != 0,
            created_at: e.created_at,
            expires_at: e.expires(),
            key,
            host,
        })
    }

    fn view_at(&self, idx: u32) -> Option<DecisionRef<'_>> {
        self.view(self.slots.get(idx as usize)?)
    }

    #[inline(always)]
    fn live(&self, idx: Option<&u32>, now: UnixMillis) -> Option<DecisionRef<'_>> {
        let e = self.slots.get(*idx? as usize)?;
        if e.is_expired(now) {
            return None;
        }
        self.view(e)
    }

    fn remove_slot(&mut self, idx: u32) -> Option<Decision> {
        let e = *self.slots.get(idx as usize)?;
        let key = e.key()?;
        let decision = self.view(&e)?.to_decision();
        self.index_remove(key);
        self.id_remove(e.id, idx);
        self.metas.release(&self.hasher, e.meta);
        if let Some(s) = self.slots.get_mut(idx as usize) {
            *s = Entry::FREE;
        }
        self.len -= 1;
        if self.len == 0 {
            // Give the slab, the tables and the filters back when the set empties.
            let hasher = self.hasher.clone();
            *self = DecisionSet {
                hasher,
                ..DecisionSet::default()
            };
        } else {
            self.free.push(idx);
        }
        Some(decision)
    }

    #[inline]
    fn id_get(&self, id: u64) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(self.hasher.hash_one(id), |&i| {
                slots
                    .get(i as usize)
                    .is_some_and(|e| e.id == id && e.kind != K_FREE)
            })
            .copied()
    }

    fn id_insert(&mut self, id: u64, idx: u32) {
        let (slots, h) = (&self.slots, &self.hasher);
        self.by_id.insert_unique(h.hash_one(id), idx, |&i| {
            slots.get(i as usize).map_or(0, |e| h.hash_one(e.id))
        });
    }

    fn id_remove(&mut self, id: u64, idx: u32) {
        if let Ok(e) = self
            .by_id
            .find_entry(self.hasher.hash_one(id), |&i| i == idx)
        {
            e.remove();
        }
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
            Key::Print(h) => self.prints.get(&h),
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
            Key::Print(h) => {
                self.prints.insert(h, idx);
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
                self.host_names.remove(&h);
            }
            Key::Print(h) => {
                self.prints.remove(&h);
                self.print_names.remove(&h);
            }
        }
    }
}
