//! What a node shares with the fleet ([`FleetShare`]: its most active
//! clients and its route baselines, [`Mergeable`]) and the lookup structure
//! scores read ([`FleetIndex`], built once per refresh).
//!
//! On the wire a share is JSON with two base64 blobs of fixed-size
//! little-endian records (JSON arrays of numbers would not fit 4,096 clients
//! in 512 KiB):
//!
//! - client, [`CLIENT_RECORD`] bytes: key u64, requests, html, assets,
//!   responses, errors, cookie_due, cookie_back, path_n, gaps (u16 each,
//!   saturated), gap_mean f32, gap_var f32, first and last seen (u32
//!   seconds), path sketch u128;
//! - route, [`ROUTE_RECORD`] bytes: key u64, then 5 × 10 bucket counts u32.
//!
//! A state from the wire is checked: version, blob sizes (never more than
//! the caps: an oversized state is refused whole), values (floats finite and
//! in range, sub-counts not above their totals); duplicates are merged.

use super::baseline::{RouteHist, BUCKETS, FEATURES, MAX_ROUTES};
use super::stats::{Evidence, PathSketch, MAX_GAP_MS};
use ahash::AHashMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use palisade_policy::learn::Mergeable;
use serde::{Deserialize, Serialize};

/// The stats name to publish under (`publish_stats(STATS_NAME, node, bytes)`).
pub const STATS_NAME: &str = "bot_behaviour";
/// Clients a share holds (a node's most active; a merge keeps the most
/// active of the union).
pub const MAX_SHARE_CLIENTS: usize = 4096;
/// Bytes of one client record on the wire.
pub const CLIENT_RECORD: usize = 8 + 9 * 2 + 4 + 4 + 4 + 4 + 16;
/// Bytes of one route record on the wire.
pub const ROUTE_RECORD: usize = 8 + FEATURES * BUCKETS * 4;
/// The largest serialized share this module accepts or produces (the mesh's
/// limit).
pub const MAX_SHARE_BYTES: usize = 512 * 1024;
const VERSION: u32 = 1;

/// One node's (or the merged fleet's) shareable behaviour state. Clients
/// and routes are sorted by key, without duplicates, within their caps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct FleetShare {
    clients: Vec<(u64, Evidence)>,
    routes: Vec<(u64, RouteHist)>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    clients: String,
    routes: String,
}

fn sat16(n: u32) -> u16 {
    n.min(u32::from(u16::MAX)) as u16
}

fn encode_client(out: &mut Vec<u8>, key: u64, e: &Evidence) {
    out.extend_from_slice(&key.to_le_bytes());
    for n in [
        e.requests,
        e.html,
        e.assets,
        e.responses,
        e.errors,
        e.cookie_due,
        e.cookie_back,
        e.path_n,
        e.gaps,
    ] {
        out.extend_from_slice(&sat16(n).to_le_bytes());
    }
    out.extend_from_slice(&e.gap_mean.to_le_bytes());
    out.extend_from_slice(&e.gap_var.to_le_bytes());
    for ms in [e.first_ms, e.last_ms] {
        out.extend_from_slice(&((ms / 1000).min(u64::from(u32::MAX)) as u32).to_le_bytes());
    }
    out.extend_from_slice(&e.paths.0.to_le_bytes());
}

/// Reads little-endian values off a record (its length is checked first).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let n = N.min(self.0.len());
        a[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        a
    }
    fn u16(&mut self) -> u32 {
        u32::from(u16::from_le_bytes(self.take()))
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
}

fn decode_client(rec: &[u8]) -> (u64, Evidence) {
    let mut r = Reader(rec);
    let key = u64::from_le_bytes(r.take());
    let mut e = Evidence {
        requests: r.u16(),
        html: r.u16(),
        assets: r.u16(),
        responses: r.u16(),
        errors: r.u16(),
        cookie_due: r.u16(),
        cookie_back: r.u16(),
        path_n: r.u16(),
        gaps: r.u16(),
        gap_mean: r.f32(),
        gap_var: r.f32(),
        first_ms: u64::from(r.u32()) * 1000,
        last_ms: u64::from(r.u32()) * 1000,
        paths: PathSketch(u128::from_le_bytes(r.take())),
    };
    // Never trust the wire: sub-counts within totals, floats in range.
    e.html = e.html.min(e.requests);
    e.assets = e.assets.min(e.requests - e.html);
    e.errors = e.errors.min(e.responses);
    e.cookie_back = e.cookie_back.min(e.cookie_due);
    e.first_ms = e.first_ms.min(e.last_ms);
    let max_gap = MAX_GAP_MS as f32;
    let clean = |x: f32, max: f32| {
        if x.is_finite() {
            x.clamp(0.0, max)
        } else {
            0.0
        }
    };
    e.gap_mean = clean(e.gap_mean, max_gap);
    e.gap_var = clean(e.gap_var, max_gap * max_gap);
    (key, e)
}

fn encode_route(out: &mut Vec<u8>, key: u64, h: &RouteHist) {
    out.extend_from_slice(&key.to_le_bytes());
    for c in h.counts.iter().flatten() {
        out.extend_from_slice(&c.to_le_bytes());
    }
}

fn decode_route(rec: &[u8]) -> (u64, RouteHist) {
    let mut r = Reader(rec);
    let key = u64::from_le_bytes(r.take());
    let mut h = RouteHist::default();
    for c in h.counts.iter_mut().flatten() {
        *c = r.u32();
    }
    (key, h)
}

/// Decodes a base64 blob of at most `max` records of `size` bytes.
fn blob(s: &str, size: usize, max: usize) -> Result<Vec<u8>, String> {
    // Checked before decoding: never allocate what the wire claims.
    if s.len() > (size * max).div_ceil(3) * 4 {
        return Err(format!("more than {max} records"));
    }
    let b = STANDARD.decode(s).map_err(|e| e.to_string())?;
    if b.len() % size != 0 {
        return Err("truncated record".into());
    }
    Ok(b)
}

impl TryFrom<Wire> for FleetShare {
    type Error = String;
    fn try_from(w: Wire) -> Result<FleetShare, String> {
        if w.v != VERSION {
            return Err(format!(
                "behaviour share version {} (this node reads {VERSION})",
                w.v
            ));
        }
        let c = blob(&w.clients, CLIENT_RECORD, MAX_SHARE_CLIENTS)?;
        let r = blob(&w.routes, ROUTE_RECORD, MAX_ROUTES)?;
        let mut s = FleetShare {
            clients: c.chunks_exact(CLIENT_RECORD).map(decode_client).collect(),
            routes: r.chunks_exact(ROUTE_RECORD).map(decode_route).collect(),
        };
        s.normalize();
        Ok(s)
    }
}

impl From<FleetShare> for Wire {
    fn from(s: FleetShare) -> Wire {
        let mut c = Vec::with_capacity(s.clients.len() * CLIENT_RECORD);
        for (k, e) in &s.clients {
            encode_client(&mut c, *k, e);
        }
        let mut r = Vec::with_capacity(s.routes.len() * ROUTE_RECORD);
        for (k, h) in &s.routes {
            encode_route(&mut r, *k, h);
        }
        Wire {
            v: VERSION,
            clients: STANDARD.encode(c),
            routes: STANDARD.encode(r),
        }
    }
}

/// Sorts by key, merges duplicates with `join`, keeps the `cap` heaviest
/// (then lowest keys: every node keeps alike).
fn normalize<T>(
    v: &mut Vec<(u64, T)>,
    cap: usize,
    join: impl Fn(&T, &T) -> T,
    weight: impl Fn(&T) -> u64,
) {
    v.sort_by_key(|(k, _)| *k);
    let mut out: Vec<(u64, T)> = Vec::with_capacity(v.len());
    for (k, t) in v.drain(..) {
        match out.last_mut() {
            Some((lk, lt)) if *lk == k => *lt = join(lt, &t),
            _ => out.push((k, t)),
        }
    }
    if out.len() > cap {
        out.sort_by(|a, b| weight(&b.1).cmp(&weight(&a.1)).then(a.0.cmp(&b.0)));
        out.truncate(cap);
        out.sort_by_key(|(k, _)| *k);
    }
    *v = out;
}

impl FleetShare {
    /// A share of these clients and routes (normalized: sorted, duplicates
    /// merged, within the caps).
    pub fn new(clients: Vec<(u64, Evidence)>, routes: Vec<(u64, RouteHist)>) -> FleetShare {
        let mut s = FleetShare { clients, routes };
        s.normalize();
        s
    }

    fn normalize(&mut self) {
        normalize(
            &mut self.clients,
            MAX_SHARE_CLIENTS,
            |a, b| a.combine(b),
            |e| u64::from(e.requests),
        );
        normalize(
            &mut self.routes,
            MAX_ROUTES,
            |a, b| {
                let mut m = *a;
                m.merge(b);
                m
            },
            RouteHist::weight,
        );
    }

    /// The clients (sorted by key).
    pub fn clients(&self) -> &[(u64, Evidence)] {
        &self.clients
    }

    /// The routes (sorted by key).
    pub fn routes(&self) -> &[(u64, RouteHist)] {
        &self.routes
    }

    /// The bytes to publish (JSON; under [`MAX_SHARE_BYTES`] for any share
    /// within the caps).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A peer's share from its bytes; refuses more than [`MAX_SHARE_BYTES`]
    /// and anything malformed or over the caps.
    pub fn from_bytes(bytes: &[u8]) -> Result<FleetShare, String> {
        if bytes.len() > MAX_SHARE_BYTES {
            return Err(format!("{} bytes is over {MAX_SHARE_BYTES}", bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Mergeable for FleetShare {
    fn merge(&mut self, other: &Self) {
        self.clients.extend_from_slice(&other.clients);
        self.routes.extend_from_slice(&other.routes);
        self.normalize();
    }
}

/// The fleet's state as scores read it: hash maps built once per refresh
/// from the peers' merge, so a score is two lookups.
#[derive(Debug, Clone, Default)]
pub struct FleetIndex {
    clients: AHashMap<u64, Evidence>,
    routes: AHashMap<u64, RouteHist>,
}

impl FleetIndex {
    /// Builds the index. `peers` is the merge of the **other** nodes' shares
    /// (`FleetView::rebuild(&FleetShare::default())`): their client
    /// evidence is added to this node's live statistics, so this node's own
    /// share must not be in it (it would count twice). `own` is this node's
    /// latest snapshot: its route baselines join the peers' (baselines are
    /// only read from here).
    pub fn build(peers: &FleetShare, own: &FleetShare) -> FleetIndex {
        let mut routes: AHashMap<u64, RouteHist> = peers.routes.iter().copied().collect();
        for (k, h) in &own.routes {
            routes.entry(*k).or_default().merge(h);
        }
        FleetIndex {
            clients: peers.clients.iter().copied().collect(),
            routes,
        }
    }

    /// What other nodes saw of `key`.
    pub fn client(&self, key: u64) -> Option<&Evidence> {
        self.clients.get(&key)
    }

    /// The route's fleet-wide baseline.
    pub fn route(&self, key: u64) -> Option<&RouteHist> {
        self.routes.get(&key)
    }

    /// Clients and routes indexed.
    pub fn len(&self) -> (usize, usize) {
        (self.clients.len(), self.routes.len())
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.routes.is_empty()
    }
}
