//! The WAF's positive model in the edge: learns from requests that passed
//! every check, applies the fleet's merged model to CRS' lists, and shares
//! this node's model with the fleet through the mesh.
//!
//! The model itself (what it learns, when a value is trusted, how models
//! merge) is `palisade_policy::learn::model`; this module only feeds it and
//! carries it. What it must not do: learn from a request that anything
//! blocked or would have blocked (see [`teachable`]).
//!
//! Cost in the request path: with `apply` on, one `ArcSwap` load and a route
//! lookup per WAF-inspected request; with `learn` on, one short mutex hold
//! per passed request, after the response.

use crate::state::EdgeState;
use arc_swap::ArcSwap;
use palisade_mesh::{Mesh, MAX_STATS_BYTES};
use palisade_policy::learn::model::{
    source_of, Allowances, ModelApply, ModelSettings, Observation, PositiveModel,
};
use palisade_policy::learn::FleetView;
use palisade_waf::config::{MODEL_CONTENT_TYPES_TX, MODEL_METHODS_TX};
use palisade_waf::{Exchange, MatchedRule};
use pingora_http::RequestHeader;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use palisade_policy::learn::model::STATS_NAME;

/// The rules whose static lists the model replaces: a request they alone
/// flagged still teaches the model (in detect mode; in block mode it was
/// blocked, and a blocked request never teaches).
pub const LIST_RULES: [u32; 2] = [911_100, 920_420];

/// Other nodes merged at most (states beyond it are ignored).
const MAX_PEERS: usize = 1024;

/// This node's model and the fleet's.
pub struct ModelState {
    local: parking_lot::Mutex<PositiveModel>,
    /// Requests learned from since start (tells the sharer whether to save).
    observed: std::sync::atomic::AtomicU64,
    fleet: ArcSwap<PositiveModel>,
    view: parking_lot::Mutex<FleetView<PositiveModel>>,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            local: parking_lot::Mutex::new(PositiveModel::new(ModelSettings::default().max_routes)),
            observed: Default::default(),
            fleet: ArcSwap::from_pointee(PositiveModel::default()),
            view: parking_lot::Mutex::new(FleetView::default()),
        }
    }
}

impl std::fmt::Debug for ModelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelState")
            .field("local_routes", &self.local.lock().routes.len())
            .field("fleet_routes", &self.fleet.load().routes.len())
            .finish()
    }
}

/// Whether a request's WAF matches leave it teachable: none at all, or only
/// the static-list rules the model replaces and the rules that sum up and
/// report scores (949xxx, 959xxx, 980xxx). (The policy's generated settings
/// are never among the matches an exchange reports.)
pub fn teachable<'a>(mut matched: impl Iterator<Item = &'a MatchedRule>) -> bool {
    matched.all(|m| {
        LIST_RULES.contains(&m.id)
            || (949_000..950_000).contains(&m.id)
            || (959_000..960_000).contains(&m.id)
            || (980_000..981_000).contains(&m.id)
    })
}

/// Host and path as the model keys them (normalized as rules see them).
fn host_and_path(req: &RequestHeader) -> (String, String) {
    let host = palisade_policy::normalize_host(
        req.headers
            .get(http::header::HOST)
            .map(|h| h.as_bytes())
            .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()))
            .unwrap_or_default(),
    );
    (
        without_port(&host).to_string(),
        palisade_policy::normalize_path(&crate::waf::raw_path(req)).into_owned(),
    )
}

/// `host` without its `:port` (`[::1]:8080` → `[::1]`).
pub(crate) fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl ModelState {
    /// The fleet's merged model (as of the last share).
    pub fn fleet(&self) -> Arc<PositiveModel> {
        self.fleet.load_full()
    }

    /// A copy of this node's own model.
    pub fn local(&self) -> PositiveModel {
        self.local.lock().clone()
    }

    /// Sets CRS' lists of `ex` from the fleet's model for this request's
    /// route, when the policy applies the model. Call before phase 1.
    pub fn apply(
        &self,
        settings: &ModelSettings,
        req: &RequestHeader,
        ex: &mut Exchange,
    ) -> Option<Allowances> {
        if settings.apply == ModelApply::Off {
            return None;
        }
        let fleet = self.fleet.load();
        if fleet.routes.is_empty() {
            return None;
        }
        let (host, path) = host_and_path(req);
        let a = fleet.allowances(settings, &host, &path)?;
        if let Some(m) = &a.methods {
            ex.set_tx(MODEL_METHODS_TX, m.as_bytes());
        }
        if let Some(t) = &a.content_types {
            ex.set_tx(MODEL_CONTENT_TYPES_TX, t.as_bytes());
        }
        Some(a)
    }

    /// Learns from one request that passed every check (the caller checked:
    /// see [`teachable`]).
    pub fn observe(&self, settings: &ModelSettings, req: &RequestHeader, client: IpAddr) {
        let (host, path) = host_and_path(req);
        let content_type = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let query = req.uri.query().unwrap_or("");
        let obs = Observation {
            host: &host,
            path: &path,
            method: req.method.as_str(),
            content_type,
            query,
            source: source_of(client),
        };
        let mut local = self.local.lock();
        if local.max_routes != settings.max_routes {
            local.sanitize(settings.max_routes);
        }
        local.observe(&obs);
        self.observed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Loads the model this node saved (`DATA_DIR/waf-model.json`): what it
    /// learned survives restarts. A missing or unreadable file starts empty.
    pub fn load(&self, path: &Path, max_routes: usize) {
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        match serde_json::from_slice::<PositiveModel>(&bytes) {
            Ok(mut m) => {
                m.sanitize(max_routes);
                tracing::info!(routes = m.routes.len(), file = %path.display(), "loaded the WAF's positive model");
                *self.local.lock() = m.clone();
                self.fleet.store(Arc::new(m));
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "the saved positive model does not decode; starting empty")
            }
        }
    }

    /// Saves this node's model to `path` (write, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.local()).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }

    /// Rebuilds the fleet's view with this node's current model and the
    /// other nodes' last known states (the mesh is unreachable). Returns
    /// how many other nodes contribute.
    pub fn remerge_local(&self) -> usize {
        let mut view = self.view.lock();
        let merged = view.rebuild(&self.local()).clone();
        self.fleet.store(Arc::new(merged));
        view.peers()
    }

    /// Merges the latest states of the other nodes (`(node token, JSON)`)
    /// with this node's model into the fleet's view. Undecodable states
    /// are skipped (counted in the return value).
    pub fn merge_fleet(
        &self,
        own_token: &str,
        settings: &ModelSettings,
        states: Vec<(String, Vec<u8>)>,
    ) -> (usize, usize) {
        let mut bad = 0;
        let mut view = self.view.lock();
        let alive: std::collections::BTreeSet<String> =
            states.iter().map(|(n, _)| n.clone()).collect();
        view.retain_peers(|n| alive.contains(n));
        for (node, bytes) in states {
            if node == own_token {
                continue;
            }
            match serde_json::from_slice::<PositiveModel>(&bytes) {
                Ok(mut m) => {
                    m.sanitize(settings.max_routes);
                    view.set_peer(&node, m, MAX_PEERS);
                }
                Err(e) => {
                    bad += 1;
                    tracing::warn!(node = %node, error = %e, "a node's positive model did not decode; ignored");
                }
            }
        }
        let local = self.local();
        let merged = view.rebuild(&local).clone();
        let peers = view.peers();
        self.fleet.store(Arc::new(merged));
        (peers, bad)
    }
}

/// This node's model as the mesh carries it: JSON of at most
/// [`MAX_STATS_BYTES`] (the least used routes are left out until it fits).
pub fn encode(model: &PositiveModel) -> Vec<u8> {
    let mut m = model.clone();
    loop {
        let bytes = serde_json::to_vec(&m).unwrap_or_default();
        if bytes.len() <= MAX_STATS_BYTES || m.routes.len() <= 1 {
            return bytes;
        }
        let keep = m.routes.len() * 3 / 4;
        m.sanitize(keep.max(1));
    }
}

/// The file a node keeps its model in.
pub fn model_file(data_dir: &Path) -> PathBuf {
    data_dir.join("waf-model.json")
}

/// Shares this node's model every `share_every` and merges the fleet's,
/// for as long as the edge runs; saves it to `data_dir` when it learned
/// something. Without a `[waf]` section, or with `learn` and `apply` both
/// off, it only waits.
pub async fn share<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>, data_dir: PathBuf) {
    let own = palisade_mesh::mesh::token(&state.node_id);
    let file = model_file(&data_dir);
    let max_routes = state
        .policy()
        .waf
        .as_ref()
        .map_or(ModelSettings::default().max_routes, |w| w.model.max_routes);
    state.model.load(&file, max_routes);
    let mut saved_at = 0;
    loop {
        let settings = state.policy().waf.as_ref().map(|w| w.model.clone());
        let Some(settings) = settings.filter(|s| s.learn || s.apply != ModelApply::Off) else {
            // Nothing to share: look at the policy again in a second.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tokio::time::sleep(Duration::from_millis(settings.share_every_ms.max(100))).await;
        let m = &state.metrics;
        if settings.learn {
            let observed = state
                .model
                .observed
                .load(std::sync::atomic::Ordering::Relaxed);
            if observed != saved_at {
                saved_at = observed;
                let (st, f) = (state.clone(), file.clone());
                match tokio::task::spawn_blocking(move || st.model.save(&f)).await {
                    Ok(Ok(())) => {}
                    other => {
                        tracing::warn!(file = %file.display(), result = ?other, "could not save the positive model")
                    }
                }
            }
            let bytes = encode(&state.model.local());
            if let Err(e) = mesh.publish_stats(STATS_NAME, &state.node_id, bytes).await {
                m.model_share_failures.inc();
                tracing::debug!(error = %e, "could not share the positive model");
            }
        }
        match mesh.stats(STATS_NAME).await {
            Ok(states) => {
                let (peers, _bad) = state.model.merge_fleet(&own, &settings, states);
                m.model_peers.set(peers as i64);
                m.model_routes.set(state.model.fleet().routes.len() as i64);
            }
            Err(e) => {
                m.model_share_failures.inc();
                tracing::debug!(error = %e, "could not fetch the fleet's positive model");
                // Keep the other nodes' last states; add what this node learned since.
                m.model_peers.set(state.model.remerge_local() as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: u32) -> MatchedRule {
        MatchedRule {
            id,
            phase: 1,
            msg: String::new(),
            logdata: String::new(),
            severity: None,
            tags: Vec::new(),
            matched_var_name: String::new(),
            matched_var_names: Vec::new(),
            log: true,
        }
    }

    #[test]
    fn ports_are_not_part_of_the_host() {
        assert_eq!(without_port("shop.example:8080"), "shop.example");
        assert_eq!(without_port("shop.example"), "shop.example");
        assert_eq!(without_port("[2001:db8::1]:443"), "[2001:db8::1]");
        assert_eq!(without_port("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn only_list_and_scoring_rules_leave_a_request_teachable() {
        assert!(teachable([].iter()));
        assert!(teachable([rule(920420), rule(949110), rule(980170)].iter()));
        assert!(teachable([rule(911100)].iter()));
        assert!(
            !teachable([rule(palisade_waf::config::EXPECT_RULE_ID)].iter()),
            "odd Expect header"
        );
        assert!(!teachable([rule(9_200_100)].iter()), "a Palisade detector");
        assert!(!teachable(
            [rule(920420), rule(942100), rule(949110)].iter()
        ));
        assert!(!teachable([rule(920350)].iter()));
        assert!(!teachable([rule(951100)].iter()), "a response leak");
    }

    #[test]
    fn a_model_too_large_for_the_mesh_is_cut_to_its_busiest_routes() {
        let mut m = PositiveModel::new(100_000);
        let long = "x".repeat(30);
        for i in 0..20_000 {
            let path = format!("/{long}/{i}a/b");
            for _ in 0..(i % 3 + 1) {
                m.observe(&Observation {
                    host: "h",
                    path: &path,
                    method: "GET",
                    content_type: None,
                    query: "a=1&b=two",
                    source: i as u64,
                });
            }
        }
        let bytes = encode(&m);
        assert!(bytes.len() <= MAX_STATS_BYTES, "{}", bytes.len());
        let back: PositiveModel = serde_json::from_slice(&bytes).unwrap();
        assert!(back.routes.len() > 100);
        assert!(
            back.routes.values().all(|r| r.requests >= 2),
            "busiest kept"
        );
    }

    #[test]
    fn the_fleet_view_merges_peers_and_skips_bad_states() {
        let st = ModelState::default();
        let s = ModelSettings {
            min_sources: 2,
            apply: ModelApply::Extend,
            ..ModelSettings::default()
        };
        let mut req = RequestHeader::build("PATCH", b"/api/items/1?x=1", None).unwrap();
        req.insert_header("host", "Shop.Example:8080").unwrap();
        req.insert_header("content-type", "text/plain; charset=utf-8")
            .unwrap();
        st.observe(&s, &req, "198.51.100.1".parse().unwrap());
        let mut peer = PositiveModel::new(10);
        peer.observe(&Observation {
            host: "shop.example",
            path: "/api/items/9",
            method: "PATCH",
            content_type: Some("text/plain"),
            query: "",
            source: source_of("203.0.113.9".parse().unwrap()),
        });
        let states = vec![
            ("edge-2".to_string(), serde_json::to_vec(&peer).unwrap()),
            ("edge-3".to_string(), b"not json".to_vec()),
            ("me".to_string(), b"ignored: own state".to_vec()),
        ];
        assert_eq!(st.merge_fleet("me", &s, states), (1, 1));
        let fleet = st.fleet();
        let a = fleet
            .allowances(&s, "shop.example", "/api/items/5")
            .expect("two networks across two nodes");
        assert_eq!(a.methods.as_deref(), Some("PATCH"));
        assert_eq!(a.content_types.as_deref(), Some("|text/plain|"));
        // With the mesh unreachable, the other nodes' last states stay.
        assert_eq!(st.remerge_local(), 1);
        assert!(st
            .fleet()
            .allowances(&s, "shop.example", "/api/items/5")
            .is_some());
        // A node that left is forgotten at the next merge.
        st.merge_fleet("me", &s, Vec::new());
        assert_eq!(
            st.fleet().allowances(&s, "shop.example", "/api/items/5"),
            None
        );

        // What a node learned survives its restart.
        let dir = std::env::temp_dir().join(format!("palisade-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = model_file(&dir);
        st.save(&file).unwrap();
        let again = ModelState::default();
        again.load(&file, 1000);
        assert_eq!(again.local(), st.local());
        assert_eq!(*again.fleet(), st.local(), "applied before the first share");
        std::fs::write(&file, "garbage").unwrap();
        let empty = ModelState::default();
        empty.load(&file, 100);
        assert!(empty.local().routes.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
