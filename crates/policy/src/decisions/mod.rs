//! Active decisions: bans and dynamic allow entries keyed by scope and value.
//!
//! A [`Decision`] (CrowdSec's lexicon) applies to one IP address, one CIDR
//! range, one country or one autonomous system. [`DecisionSet`] stores them
//! compactly (about 70 bytes per decision at a million: `set`) with one index
//! per scope so that [`DecisionSet::lookup`] answers "what applies to this
//! client?" without allocating: one hash probe for the exact address, one per
//! CIDR prefix length actually in use (longest first, `index`), then one for
//! the ASN and one for the country.
//!
//! What it owns: normalization of decision values, precedence between scopes
//! and expiry. What it must not do: read the clock (`now` is passed in) or
//! decide the HTTP answer (the caller maps a [`DecisionAction`] to a verdict).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::UnixMillis;

mod index;
mod set;
#[cfg(test)]
mod tests;

pub use set::{DecisionRef, DecisionSet, Hit};

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
    /// A client fingerprint, as rules see it: a JA4
    /// (`palisade.fingerprint.ja4`), an HTTP/2 fingerprint or a header
    /// fingerprint. Matches every client whose connection or request has it.
    Fingerprint,
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
            Scope::Fingerprint => "fingerprint",
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
        } else if t.eq_ignore_ascii_case("fingerprint") || t.eq_ignore_ascii_case("ja4") {
            Scope::Fingerprint
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
    /// Challenge the client (a proof of work) unless it holds a clearance.
    Challenge,
}

impl DecisionAction {
    /// The name used in the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Ban => "ban",
            DecisionAction::Allow => "allow",
            DecisionAction::AttackMode => "attack_mode",
            DecisionAction::Challenge => "challenge",
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
        } else if t.eq_ignore_ascii_case("challenge") {
            Ok(DecisionAction::Challenge)
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
    /// The scope name is not one of `ip`, `cidr`, `country`, `asn`, `host`,
    /// `fingerprint`.
    #[error("unknown scope `{scope}` (expected ip, cidr, country, asn, host or fingerprint)")]
    UnknownScope {
        /// The name as given.
        scope: String,
    },
    /// The action name is not `ban`, `allow` or `attack_mode`.
    #[error("unknown decision action `{action}` (expected ban, challenge, allow or attack_mode)")]
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

/// The canonical form of a fingerprint: trimmed, 1 to 128 printable ASCII
/// characters without spaces (JA4, HTTP/2 and header fingerprints all are).
pub(crate) fn normalize_print_value(scope: Scope, value: &str) -> Result<String, DecisionError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            scope,
            value,
            "expected a fingerprint as rules see it (1 to 128 printable characters, no space), such as t13d1516h2_8daaf6152771_e5627efa2ab1",
        ));
    }
    Ok(v.to_string())
}

/// A keyed hash of a normalized host name (the seed is per process, so a
/// client cannot choose names that collide).
fn host_key(host: &str) -> u64 {
    static SEED: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(ahash::RandomState::new).hash_one(host)
}

/// A keyed hash of a fingerprint (its own seed: a fingerprint never
/// collides with a host on purpose).
pub(crate) fn print_key(fp: &str) -> u64 {
    static SEED: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(ahash::RandomState::new).hash_one(fp)
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
pub(crate) enum Key {
    Ip4(u32),
    Ip6(u128),
    /// Network address (host bits zero) and prefix length.
    Net4(u32, u8),
    Net6(u128, u8),
    Country([u8; 2]),
    Asn(u32),
    /// A keyed hash of the host name ([`host_key`]); the name is kept beside.
    Host(u64),
    /// A keyed hash of the fingerprint ([`host_key`]); kept beside too.
    Print(u64),
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

/// Parses and normalizes `value` for `scope` into its index key.
fn parse_key(scope: Scope, value: &str) -> Result<Key, DecisionError> {
    let v = value.trim();
    match scope {
        Scope::Ip => {
            let ip: IpAddr = v
                .parse()
                .map_err(|_| invalid(scope, value, "not an IPv4 or IPv6 address"))?;
            Ok(match canonical_addr(ip) {
                Addr::V4(a) => Key::Ip4(a),
                Addr::V6(a) => Key::Ip6(a),
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
                Addr::V4(a) => Key::Net4(mask4(a, len), len),
                Addr::V6(a) => Key::Net6(mask6(a, len), len),
            })
        }
        Scope::Country => match v.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Ok(Key::Country([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
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
            Ok(Key::Asn(n))
        }
        Scope::Host => Ok(Key::Host(host_key(&normalize_host_value(scope, value)?))),
        Scope::Fingerprint => Ok(Key::Print(print_key(&normalize_print_value(scope, value)?))),
    }
}

impl Key {
    /// The scope the key belongs to.
    fn scope(self) -> Scope {
        match self {
            Key::Ip4(_) | Key::Ip6(_) => Scope::Ip,
            Key::Net4(..) | Key::Net6(..) => Scope::Cidr,
            Key::Country(_) => Scope::Country,
            Key::Asn(_) => Scope::Asn,
            Key::Host(_) => Scope::Host,
            Key::Print(_) => Scope::Fingerprint,
        }
    }

    /// The canonical text of the value (see [`DecisionSet::normalize`]).
    fn text(self) -> String {
        match self {
            Key::Ip4(a) => Ipv4Addr::from(a).to_string(),
            Key::Ip6(a) => Ipv6Addr::from(a).to_string(),
            Key::Net4(n, l) => format!("{}/{l}", Ipv4Addr::from(n)),
            Key::Net6(n, l) => format!("{}/{l}", Ipv6Addr::from(n)),
            Key::Country(c) => String::from_utf8_lossy(&c).into_owned(),
            Key::Asn(n) => n.to_string(),
            // The name is kept beside the key (`DecisionRef::value`).
            Key::Host(_) | Key::Print(_) => String::new(),
        }
    }
}
