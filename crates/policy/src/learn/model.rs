//! The WAF's positive model: per host and route, the methods, content types
//! and query parameter shapes that legitimate traffic actually uses.
//!
//! **What teaches it.** Only requests that passed every check (the edge
//! decides: no block or would-be block by rules, decisions, rate limits or
//! the WAF, apart from the static-list rules the model exists to replace,
//! and an origin answer below 400). A value becomes *trusted* once
//! `min_sources` distinct client networks sent it, so one attacker, even one
//! whose requests pass, cannot teach it alone.
//!
//! **What it changes** (`apply`, off by default): CRS' static lists
//! `tx.allowed_methods` and `tx.allowed_request_content_type`, per request,
//! for the request's route: `extend` adds the route's trusted values to the
//! lists; `replace` uses only them once the route has seen `min_requests`
//! requests from `min_sources` networks (a positive model: what the route
//! never legitimately received is refused).
//!
//! Bounded: at most `max_routes` routes (a new one replaces the one the
//! fewest networks used), 8 methods, 16 content types and 32 parameters per route.

use super::kmv::Kmv;
use super::top::TopValues;
use super::Mergeable;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The name the model travels under between nodes (the mesh's learned statistics).
pub const STATS_NAME: &str = "waf_model";

/// Whether and how the model changes what CRS allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelApply {
    /// Learn only (see `palisade waf model`).
    #[default]
    Off,
    /// CRS' lists plus each route's trusted values.
    Extend,
    /// Each mature route's trusted values instead of CRS' lists.
    Replace,
}

impl ModelApply {
    /// The policy file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelApply::Off => "off",
            ModelApply::Extend => "extend",
            ModelApply::Replace => "replace",
        }
    }
}

/// `[waf.model]` of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSettings {
    /// Learn from passed traffic.
    pub learn: bool,
    /// What the model changes.
    pub apply: ModelApply,
    /// Requests a route needs before `replace` applies to it.
    pub min_requests: u64,
    /// Distinct client networks (IPv4 /24, IPv6 /48) a value needs to be trusted.
    pub min_sources: u64,
    /// Routes kept per node (and in the fleet's merge).
    pub max_routes: usize,
    /// How often a node shares its model with the fleet, in milliseconds.
    pub share_every_ms: u64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            learn: true,
            apply: ModelApply::Off,
            min_requests: 100,
            min_sources: 10,
            max_routes: 1_000,
            share_every_ms: 10_000,
        }
    }
}

/// Methods kept per route.
pub const MAX_METHODS: usize = 8;
/// Content types kept per route.
pub const MAX_CONTENT_TYPES: usize = 16;
/// Query parameters kept per route.
pub const MAX_PARAMS: usize = 32;
/// Segments of a path kept in its route (the rest becomes `/*`).
pub const MAX_SEGMENTS: usize = 6;

/// The shape of a parameter's values: which kinds of characters they use
/// and how long they get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Values seen.
    pub count: u64,
    /// Longest value, in bytes.
    pub max_len: u32,
    /// Character classes seen ([`Shape::DIGIT`] ...).
    pub classes: u8,
}

impl Shape {
    /// `0-9`.
    pub const DIGIT: u8 = 1;
    /// ASCII letters.
    pub const ALPHA: u8 = 2;
    /// `-_.~` (unreserved punctuation).
    pub const SAFE_PUNCT: u8 = 4;
    /// Space or `+`.
    pub const SPACE: u8 = 8;
    /// Any other ASCII punctuation (quotes, `<`, `;`, ...).
    pub const PUNCT: u8 = 16;
    /// Bytes beyond ASCII.
    pub const NON_ASCII: u8 = 32;
    /// Control characters.
    pub const CONTROL: u8 = 64;

    /// The classes of `value`'s characters.
    pub fn classes_of(value: &[u8]) -> u8 {
        let mut c = 0;
        for &b in value {
            c |= match b {
                b'0'..=b'9' => Shape::DIGIT,
                b'a'..=b'z' | b'A'..=b'Z' => Shape::ALPHA,
                b'-' | b'_' | b'.' | b'~' => Shape::SAFE_PUNCT,
                b' ' | b'+' => Shape::SPACE,
                0..=31 | 127 => Shape::CONTROL,
                128..=255 => Shape::NON_ASCII,
                _ => Shape::PUNCT,
            };
        }
        c
    }

    /// A short description: `digits ≤ 4`, `text ≤ 80`.
    pub fn describe(&self) -> String {
        let kind = match self.classes {
            0 => "empty",
            Shape::DIGIT => "digits",
            c if c & !(Shape::DIGIT | Shape::ALPHA) == 0 => "alphanumeric",
            c if c & !(Shape::DIGIT | Shape::ALPHA | Shape::SAFE_PUNCT) == 0 => "token",
            c if c & (Shape::PUNCT | Shape::CONTROL) == 0 => "words",
            _ => "text",
        };
        format!("{kind} ≤ {}", self.max_len)
    }

    fn observe(&mut self, value: &[u8]) {
        self.count += 1;
        self.max_len = self.max_len.max(value.len().min(u32::MAX as usize) as u32);
        self.classes |= Shape::classes_of(value);
    }

    fn merge(&mut self, o: &Shape) {
        self.count += o.count;
        self.max_len = self.max_len.max(o.max_len);
        self.classes |= o.classes;
    }
}

/// What one route learned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteModel {
    /// Requests that taught it.
    pub requests: u64,
    /// Distinct client networks among them.
    pub sources: Kmv,
    /// Methods.
    pub methods: TopValues,
    /// Content types (lower case, without parameters).
    pub content_types: TopValues,
    /// Query parameters by name, with the shape of their values.
    pub params: BTreeMap<String, Shape>,
    /// Parameters left out because the route had [`MAX_PARAMS`] already.
    pub params_dropped: u64,
}

impl RouteModel {
    fn with_caps() -> RouteModel {
        RouteModel {
            methods: TopValues::new(MAX_METHODS),
            content_types: TopValues::new(MAX_CONTENT_TYPES),
            ..RouteModel::default()
        }
    }

    /// Whether `replace` applies to this route.
    pub fn mature(&self, s: &ModelSettings) -> bool {
        self.requests >= s.min_requests && self.sources.at_least(s.min_sources)
    }

    /// The trusted methods, as CRS' `tx.allowed_methods` spells a list.
    pub fn trusted_methods(&self, s: &ModelSettings) -> Vec<&str> {
        trusted(&self.methods, s)
    }

    /// The trusted content types.
    pub fn trusted_content_types(&self, s: &ModelSettings) -> Vec<&str> {
        trusted(&self.content_types, s)
    }
}

fn trusted<'a>(t: &'a TopValues, s: &ModelSettings) -> Vec<&'a str> {
    let mut v: Vec<&str> = t
        .values()
        .filter(|e| e.sources.at_least(s.min_sources))
        .map(|e| e.value.as_str())
        .collect();
    v.sort_unstable();
    v
}

/// One request that passed every check, as the model learns it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The normalized host (lower case, no port).
    pub host: &'a str,
    /// The normalized path.
    pub path: &'a str,
    /// The method.
    pub method: &'a str,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<&'a str>,
    /// The query string, without `?`.
    pub query: &'a str,
    /// Hash of the client's network (see [`source_of`]).
    pub source: u64,
}

/// The whole model of one node, or of the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositiveModel {
    /// By route key ([`route_key`]).
    pub routes: BTreeMap<String, RouteModel>,
    /// Routes that replaced a less used one.
    pub routes_replaced: u64,
    /// The cap on routes (the tighter of two merged models).
    pub max_routes: usize,
}

impl PositiveModel {
    /// An empty model of at most `max_routes` routes.
    pub fn new(max_routes: usize) -> PositiveModel {
        PositiveModel {
            max_routes: max_routes.max(1),
            ..PositiveModel::default()
        }
    }

    /// Learns from one request that passed every check.
    pub fn observe(&mut self, o: &Observation<'_>) {
        let key = route_key(o.host, o.path);
        if !self.routes.contains_key(&key) && self.routes.len() >= self.max_routes.max(1) {
            // The least supported route (fewest networks, then fewest
            // requests) makes room: a flood of distinct paths from a few
            // networks cycles through the weakest slots only.
            let victim = self
                .routes
                .iter()
                .min_by_key(|(_, r)| (r.sources.estimate(), r.requests))
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                self.routes.remove(&k);
                self.routes_replaced += 1;
            }
        }
        let r = self.routes.entry(key).or_insert_with(RouteModel::with_caps);
        r.requests += 1;
        r.sources.insert(o.source);
        r.methods.observe(o.method, o.source);
        if let Some(ct) = o.content_type.and_then(mime_type) {
            r.content_types.observe(&ct, o.source);
        }
        for (name, value) in query_pairs(o.query) {
            let name = String::from_utf8_lossy(name);
            let full = r.params.len() >= MAX_PARAMS;
            match r.params.get_mut(name.as_ref()) {
                Some(s) => s.observe(value),
                None if full => r.params_dropped += 1,
                None => {
                    let mut s = Shape::default();
                    s.observe(value);
                    r.params.insert(super::top::clip(&name).to_string(), s);
                }
            }
        }
    }

    /// The route a request belongs to, when the model knows it.
    pub fn route(&self, host: &str, path: &str) -> Option<&RouteModel> {
        self.routes.get(&route_key(host, path))
    }

    /// What CRS should allow for this request's route, as `tx` values, or
    /// None to keep CRS' lists: `(allowed_methods, allowed_request_content_type)`
    /// for `replace`, the values to add for `extend`.
    pub fn allowances(&self, s: &ModelSettings, host: &str, path: &str) -> Option<Allowances> {
        if s.apply == ModelApply::Off {
            return None;
        }
        let r = self.route(host, path)?;
        if s.apply == ModelApply::Replace && !r.mature(s) {
            return None;
        }
        let methods = r.trusted_methods(s);
        let types = r.trusted_content_types(s);
        if methods.is_empty() && types.is_empty() {
            return None;
        }
        Some(Allowances {
            methods: (!methods.is_empty()).then(|| methods.join(" ")),
            content_types: (!types.is_empty()).then(|| {
                types
                    .iter()
                    .map(|t| format!("|{t}|"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        })
    }

    /// Brings a state received from another node within bounds.
    pub fn sanitize(&mut self, max_routes: usize) {
        self.max_routes = max_routes.max(1);
        for r in self.routes.values_mut() {
            r.sources.sanitize();
            r.methods.sanitize();
            r.content_types.sanitize();
            while r.params.len() > MAX_PARAMS {
                r.params.pop_last();
            }
        }
        if self.routes.len() > self.max_routes {
            let mut by_use: Vec<(u64, String)> = self
                .routes
                .iter()
                .map(|(k, r)| (r.requests, k.clone()))
                .collect();
            by_use.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            for (_, k) in by_use.into_iter().skip(self.max_routes) {
                self.routes.remove(&k);
            }
        }
    }
}

impl Mergeable for PositiveModel {
    fn merge(&mut self, other: &Self) {
        let cap = match (self.max_routes, other.max_routes) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        for (k, o) in &other.routes {
            let r = self
                .routes
                .entry(k.clone())
                .or_insert_with(RouteModel::with_caps);
            r.requests += o.requests;
            r.sources.merge(&o.sources);
            r.methods.merge(&o.methods);
            r.content_types.merge(&o.content_types);
            for (name, s) in &o.params {
                match r.params.get_mut(name) {
                    Some(mine) => mine.merge(s),
                    None => {
                        r.params.insert(name.clone(), *s);
                    }
                }
            }
            r.params_dropped += o.params_dropped;
        }
        self.routes_replaced += other.routes_replaced;
        self.sanitize(cap.max(1));
    }
}

/// The `tx` values the model gives one request (see [`PositiveModel::allowances`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowances {
    /// Methods, space separated (`GET POST`).
    pub methods: Option<String>,
    /// Content types in CRS' list format (`|application/json| |text/plain|`).
    pub content_types: Option<String>,
}

/// The media type of a `Content-Type` value as CRS compares it: lower case,
/// without parameters. None for an empty or malformed one (never learned).
pub fn mime_type(content_type: &str) -> Option<String> {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = !t.is_empty()
        && t.len() <= 100
        && t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-/".contains(&c))
        })
        && t.bytes().filter(|&c| c == b'/').count() == 1;
    ok.then_some(t)
}

/// The route of a path: its first [`MAX_SEGMENTS`] segments, with numbers,
/// ids (hex or UUIDs of 8 or more characters) and long segments replaced by
/// placeholders, so that `/users/42` and `/users/43` are one route.
pub fn route_key(host: &str, path: &str) -> String {
    let mut key = String::with_capacity(host.len() + path.len().min(256));
    key.push_str(host);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segs.iter().enumerate() {
        if i == MAX_SEGMENTS {
            key.push_str("/*");
            break;
        }
        key.push('/');
        key.push_str(template(seg));
    }
    if segs.is_empty() || path.ends_with('/') && segs.len() <= MAX_SEGMENTS {
        key.push('/');
    }
    key
}

fn template(seg: &str) -> &str {
    let b = seg.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        "{n}"
    } else if b.len() >= 8
        && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
        && b.iter().any(u8::is_ascii_digit)
    {
        "{id}"
    } else if b.len() > 40 {
        "{s}"
    } else {
        seg
    }
}

/// Name and value of each `&`-separated pair of a query (still encoded).
fn query_pairs(q: &str) -> impl Iterator<Item = (&[u8], &[u8])> {
    q.as_bytes()
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .take(256)
        .map(|p| match memchr::memchr(b'=', p) {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        })
}

/// The hash of a client's network, as the model counts sources: its IPv4
/// /24 or IPv6 /48 (one host of a network is as good as another).
pub fn source_of(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            super::stable_hash(&[4, o[0], o[1], o[2]])
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return source_of(std::net::IpAddr::V4(v4));
            }
            let o = v6.octets();
            super::stable_hash(&[6, o[0], o[1], o[2], o[3], o[4], o[5]])
        }
    }
}

/// A readable summary of a model (the API's `GET /api/v1/waf/model`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelView {
    /// Nodes whose states were merged.
    pub nodes: usize,
    /// Routes in the merge.
    pub total_routes: usize,
    /// The busiest routes, most requests first.
    pub routes: Vec<RouteView>,
}

/// One route of a [`ModelView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// Host and templated path (`shop.example/api/items/{n}`).
    pub route: String,
    /// Requests learned from.
    pub requests: u64,
    /// Distinct client networks.
    pub sources: u64,
    /// Whether `replace` applies to it.
    pub mature: bool,
    /// Methods.
    pub methods: Vec<ValueView>,
    /// Content types.
    pub content_types: Vec<ValueView>,
    /// Query parameters: name and shape (`digits ≤ 4`).
    pub params: Vec<(String, String)>,
}

/// One value of a [`RouteView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueView {
    /// The value.
    pub value: String,
    /// Requests.
    pub count: u64,
    /// Distinct networks.
    pub sources: u64,
    /// Sent by `min_sources` networks: the model allows it.
    pub trusted: bool,
}

impl PositiveModel {
    /// The `limit` busiest routes, judged with `s`.
    pub fn view(&self, s: &ModelSettings, nodes: usize, limit: usize) -> ModelView {
        let values = |t: &TopValues| {
            let mut v: Vec<ValueView> = t
                .values()
                .map(|e| ValueView {
                    value: e.value.clone(),
                    count: e.count,
                    sources: e.sources.estimate(),
                    trusted: e.sources.at_least(s.min_sources),
                })
                .collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            v
        };
        let mut routes: Vec<RouteView> = self
            .routes
            .iter()
            .map(|(k, r)| RouteView {
                route: k.clone(),
                requests: r.requests,
                sources: r.sources.estimate(),
                mature: r.mature(s),
                methods: values(&r.methods),
                content_types: values(&r.content_types),
                params: r
                    .params
                    .iter()
                    .map(|(n, sh)| (n.clone(), sh.describe()))
                    .collect(),
            })
            .collect();
        routes.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.route.cmp(&b.route))
        });
        routes.truncate(limit);
        ModelView {
            nodes,
            total_routes: self.routes.len(),
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(apply: ModelApply) -> ModelSettings {
        ModelSettings {
            apply,
            min_requests: 4,
            min_sources: 3,
            ..ModelSettings::default()
        }
    }

    fn obs<'a>(path: &'a str, method: &'a str, ct: Option<&'a str>, src: u8) -> Observation<'a> {
        Observation {
            host: "shop.example",
            path,
            method,
            content_type: ct,
            query: "id=42&q=red+shoes",
            source: source_of(std::net::IpAddr::from([198, 51, src, 7])),
        }
    }

    #[test]
    fn routes_group_ids_and_numbers() {
        assert_eq!(route_key("h", "/users/42/orders"), "h/users/{n}/orders");
        assert_eq!(
            route_key("h", "/o/3f2a9c1e-77aa-4c1b-9d3e-0123456789ab"),
            "h/o/{id}"
        );
        assert_eq!(route_key("h", "/"), "h/");
        assert_eq!(route_key("h", ""), "h/");
        assert_eq!(route_key("h", "/docs/"), "h/docs/");
        assert_eq!(route_key("h", "/a/b/c/d/e/f/g/h"), "h/a/b/c/d/e/f/*");
        assert_eq!(route_key("h", &format!("/f/{}", "x".repeat(50))), "h/f/{s}");
        // Words stay words, even hex-looking ones without digits.
        assert_eq!(route_key("h", "/deadbeef/facade"), "h/deadbeef/facade");
    }

    #[test]
    fn media_types_as_crs_compares_them() {
        assert_eq!(
            mime_type("Application/JSON; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(mime_type("text/plain").as_deref(), Some("text/plain"));
        for bad in ["", "json", "a/b/c", "text/pl ain", "|text/x|", "/x", "x/"] {
            assert_eq!(mime_type(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values_are_trusted_only_once_enough_networks_sent_them() {
        let s = settings(ModelApply::Extend);
        let mut m = PositiveModel::new(10);
        // One network, many requests: not trusted.
        for _ in 0..50 {
            m.observe(&obs("/api/items/7", "PATCH", Some("text/plain"), 1));
        }
        assert_eq!(m.allowances(&s, "shop.example", "/api/items/8"), None);
        // A network on the same /24 is the same source.
        m.observe(&Observation {
            source: source_of(std::net::IpAddr::from([198, 51, 1, 200])),
            ..obs("/api/items/7", "PATCH", Some("text/plain"), 1)
        });
        assert_eq!(m.allowances(&s, "shop.example", "/api/items/8"), None);
        for src in 2..=3 {
            m.observe(&obs("/api/items/9", "PATCH", Some("text/plain"), src));
        }
        let a = m.allowances(&s, "shop.example", "/api/items/1").unwrap();
        assert_eq!(a.methods.as_deref(), Some("PATCH"));
        assert_eq!(a.content_types.as_deref(), Some("|text/plain|"));
        // Other routes and hosts are not affected.
        assert_eq!(m.allowances(&s, "shop.example", "/api/other"), None);
        assert_eq!(m.allowances(&s, "other.example", "/api/items/1"), None);
        assert_eq!(
            m.allowances(&settings(ModelApply::Off), "shop.example", "/api/items/1"),
            None
        );
    }

    #[test]
    fn replace_waits_for_a_mature_route() {
        let s = settings(ModelApply::Replace);
        let mut m = PositiveModel::new(10);
        for src in 1..=3 {
            m.observe(&obs(
                "/login",
                "POST",
                Some("application/x-www-form-urlencoded"),
                src,
            ));
        }
        assert!(!m.route("shop.example", "/login").unwrap().mature(&s));
        assert_eq!(m.allowances(&s, "shop.example", "/login"), None);
        m.observe(&obs("/login", "GET", None, 1));
        let a = m.allowances(&s, "shop.example", "/login").unwrap();
        assert_eq!(a.methods.as_deref(), Some("POST"), "GET: one network only");
        assert_eq!(
            a.content_types.as_deref(),
            Some("|application/x-www-form-urlencoded|")
        );
    }

    #[test]
    fn parameter_shapes() {
        let mut m = PositiveModel::new(10);
        m.observe(&obs("/search", "GET", None, 1));
        let r = m.route("shop.example", "/search").unwrap();
        assert_eq!(r.params["id"].describe(), "digits ≤ 2");
        assert_eq!(r.params["q"].describe(), "words ≤ 9");
        assert_eq!(
            Shape {
                classes: Shape::PUNCT | Shape::ALPHA,
                count: 1,
                max_len: 3
            }
            .describe(),
            "text ≤ 3"
        );
        let many: String = (0..100).map(|i| format!("p{i}=1&")).collect();
        m.observe(&Observation {
            query: &many,
            ..obs("/search", "GET", None, 1)
        });
        let r = m.route("shop.example", "/search").unwrap();
        assert_eq!(
            (r.params.len(), r.params_dropped),
            (MAX_PARAMS, 100 - (MAX_PARAMS as u64 - 2))
        );
    }

    #[test]
    fn the_route_table_is_capped_and_keeps_busy_routes() {
        let mut m = PositiveModel::new(3);
        for _ in 0..20 {
            m.observe(&obs("/busy", "GET", None, 1));
            m.observe(&obs("/also-busy", "GET", None, 1));
        }
        for i in 0..500 {
            m.observe(&obs(&format!("/junk-{i}x"), "GET", None, 2));
        }
        assert_eq!(m.routes.len(), 3);
        assert!(m.route("shop.example", "/busy").is_some());
        assert!(m.route("shop.example", "/also-busy").is_some());
        assert_eq!(m.routes_replaced, 499);
    }

    #[test]
    fn merging_models_is_order_free_and_bounded() {
        let mut a = PositiveModel::new(5);
        let mut b = PositiveModel::new(5);
        let mut c = PositiveModel::new(5);
        for src in 0..4 {
            a.observe(&obs("/a", "GET", None, src));
            b.observe(&obs("/a", "PUT", Some("application/json"), src + 10));
            c.observe(&obs(&format!("/c{src}"), "GET", None, src));
        }
        let mut abc = a.clone();
        abc.merge(&b);
        abc.merge(&c);
        let mut cba = c.clone();
        cba.merge(&b);
        cba.merge(&a);
        assert_eq!(abc, cba);
        assert_eq!(abc.routes.len(), 5);
        let r = abc.route("shop.example", "/a").unwrap();
        assert_eq!((r.requests, r.sources.estimate()), (8, 8));
        // What no node saw from enough networks alone is trusted fleet-wide.
        let s = ModelSettings {
            min_sources: 4,
            ..settings(ModelApply::Extend)
        };
        let (mut n1, mut n2) = (PositiveModel::new(5), PositiveModel::new(5));
        for src in 20..22 {
            n1.observe(&obs("/a", "DELETE", None, src));
            n2.observe(&obs("/a", "DELETE", None, src + 2));
        }
        assert_eq!(n1.allowances(&s, "shop.example", "/a"), None);
        assert_eq!(n2.allowances(&s, "shop.example", "/a"), None);
        n1.merge(&n2);
        let al = n1.allowances(&s, "shop.example", "/a").unwrap();
        assert_eq!(al.methods.as_deref(), Some("DELETE"));
        let al = abc.allowances(&s, "shop.example", "/a").unwrap();
        assert_eq!(al.methods.as_deref(), Some("GET PUT"));
        assert_eq!(al.content_types.as_deref(), Some("|application/json|"));
        let s = ModelSettings {
            min_sources: 5,
            ..s
        };
        assert_eq!(
            abc.allowances(&s, "shop.example", "/a"),
            None,
            "4 networks each"
        );
        // A foreign state beyond the caps is cut down.
        let mut big = PositiveModel::new(1000);
        for i in 0..50 {
            big.observe(&obs(&format!("/r{i}x"), "GET", None, 1));
        }
        let mut small = PositiveModel::new(4);
        small.merge(&big);
        assert_eq!(small.routes.len(), 4);
        let v = abc.view(&s, 3, 2);
        assert_eq!((v.nodes, v.total_routes, v.routes.len()), (3, 5, 2));
        assert_eq!(v.routes[0].route, "shop.example/a");
        assert_eq!(v.routes[0].requests, 8);
        assert_eq!(
            v.routes[0]
                .methods
                .iter()
                .map(|m| (m.value.as_str(), m.trusted))
                .collect::<Vec<_>>(),
            vec![("GET", false), ("PUT", false)],
            "4 networks each, 5 needed"
        );
        let json = serde_json::to_string(&abc).unwrap();
        let back: PositiveModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, abc);
    }
}
