//! Behaviour scored against the fleet.
//!
//! Per client, a fixed-size record of streaming statistics; per route,
//! histograms of what clients do there; both shared across the fleet so
//! that what edge A saw of a client changes its score on edge B, and a
//! client is compared with the whole fleet's clients of a route.
//!
//! # Features (per client, [`stats::Evidence`], about 90 bytes)
//!
//! | feature | how it is kept | evidence needed |
//! |---|---|---|
//! | page rate | non-asset requests / span (≥ 1 min) | 8 requests |
//! | path diversity | 32-register HyperLogLog of non-asset paths (16 bytes) / their count, over windows of 256 | 8 non-asset requests |
//! | error ratio | 4xx/5xx responses / responses | 8 responses |
//! | HTML vs assets | HTML requests, asset requests | 8 HTML requests |
//! | timing regularity | EWMA (α = 1/8) of the inter-arrival gap and of its squared deviation → coefficient of variation | 6 gaps, mean ≥ 1 ms |
//! | cookie continuity | requests made after a response set a cookie (or carrying one), and how many carried one | 4 such requests |
//!
//! Counts halve at 512 requests (recent behaviour weighs most); a client
//! idle 30 minutes starts afresh.
//!
//! # Bot score (1 = automated … 99 = human), [`score`]
//!
//! Static start by user agent ([`ua_class`]): library or tool 2, headless
//! browser 2, empty 5, self-declared unverified bot 5, unknown agent 25,
//! browser 90 minus 20 without Accept-Language, 20 without Sec-Fetch-*, 10
//! for Chromium without Sec-CH-UA, 15 without Accept-Encoding, 45 when the
//! header fingerprint is not the claimed browser's (at least 5). A clearance
//! lifts the start to at least 80, except for agents that say they are
//! automated (a solved challenge proves a JavaScript engine, not a person).
//!
//! Then, from 8 requests on (local and fleet evidence combined):
//! timing CV < 0.1 −40, < 0.25 −20, > 1 +5; ≥ 8 HTML pages with no asset
//! −25 (assets < 10 % of pages −10); diversity > 0.9 over ≥ 16 requests −10;
//! error ratio > 0.5 −25, > 0.25 −10; cookie continuity < 0.1 −25, < 0.5
//! −10, > 0.9 +5; page rate > 600/min −30, > 120/min −15. The sum is
//! clipped to 1..99; agents that say they are automated never rise above
//! their start. A **verified crawler scores 1** with
//! [`Reasons::VERIFIED_CRAWLER`]: it is automated, and a policy must allow it
//! by that flag (or the edge's own verified flag), never by the score.
//! Every point taken comes with a [`Reasons`] flag.
//!
//! # Anomaly (0 = typical … 99 = far from the route's clients)
//!
//! Each route ([`RouteKey`]: host, method, first path segment — two for
//! `/api/…`, `/v1/…` — with ids replaced) keeps 10-bucket histograms of five
//! features (page rate, error ratio, asset ratio, diversity, timing CV).
//! A client adds its features to the route of its 8th, 16th, 32nd … request
//! (then every 256): each client counts a few times, so one heavy client
//! cannot make itself the baseline. Per feature with ≥ 30 fleet-wide
//! samples, the smaller tail at the client's bucket, `t`, gives `1 − 2t`;
//! the anomaly is the largest, × 99. Features at 80 or more are named
//! (`UNUSUAL_*`).
//!
//! # Fleet sharing
//!
//! Every publication the edge calls [`ClientTable::snapshot`]: a
//! [`FleetShare`] ([`palisade_policy::learn::Mergeable`]) of the node's 4,096
//! most active recent clients and its route histograms, serialized with
//! [`FleetShare::to_bytes`] (458,788 bytes at the caps, under the mesh's
//! 512 KiB; a test checks it) and published as [`STATS_NAME`]. Peers' bytes go through
//! [`FleetShare::from_bytes`] into a `FleetView<FleetShare>`; then
//! `FleetIndex::build(view.rebuild(&FleetShare::default()), &own_snapshot)`
//! — the **peers-only** merge for client evidence (this node's own is live
//! in the table; including it would count it twice), plus the node's own
//! routes for baselines. Scores read the index with two hash lookups; swap
//! it (`ArcSwap`) once per refresh.
//!
//! # Caps
//!
//! Clients: 65,536 per node by default (16 shards; a new client in a full
//! shard evicts the least recently seen of 8 sampled slots — a flood of new
//! keys churns the table but memory stays fixed). Routes: 512 per node (new
//! routes' samples dropped when full, counted) and 512 in a merge (the most
//! sampled kept), so an index holds at most 1,024. Shares: 4,096 clients
//! (a merge keeps the most active), 512 routes; a peer's share over the caps
//! or over 512 KiB is refused whole, and its values are clipped (floats
//! finite, sub-counts within totals). Route keys are hashes of a clipped
//! host (253 bytes) and segments (48 bytes).
//!
//! # What it must not do
//!
//! No I/O, clock, threads or allocation per request (`observe` and `score`
//! allocate only when a client or route is new); no panic on any input,
//! including peers' bytes; never trust a size from the wire. A score never
//! grants anything on its own: `stable_hash` keys can be made to collide by
//! a chosen input, so a collision may only blur statistics.

pub mod baseline;
pub mod reasons;
pub mod score;
pub mod share;
pub mod signals;
pub mod stats;
pub mod table;

#[cfg(test)]
mod tests;

pub use reasons::Reasons;
pub use score::Scores;
pub use share::{FleetIndex, FleetShare, MAX_SHARE_BYTES, MAX_SHARE_CLIENTS, STATS_NAME};
pub use signals::{ua_class, ClientKey, RequestSignals, RouteKey, UaClass};
pub use stats::{Evidence, Features, Observation};
pub use table::{ClientTable, TableStats, DEFAULT_CLIENTS};
