//! The bot defence in the request path (`[bots]` in the policy): what the
//! edge learns of a client before the pipeline runs, the challenge it
//! answers with, and the fleet-wide state behind both. The decisions are
//! `palisade-bots`'s; this module feeds it from Pingora's phases.
//!
//! - [`assess`] (in `request_filter`, before the pipeline): the header
//!   fingerprint, the HTTP/2 fingerprint of the connection, the clearance
//!   cookie (verified, cached), the verified-crawler check (a cache read;
//!   DNS runs on a worker, [`dns`]), then the behaviour table's observation
//!   and the bot and anomaly scores. Its [`Assessed::client`] is what rules
//!   see as `palisade.*` fields.
//! - [`challenge`]: the answer to a `challenge` verdict (a page with a
//!   proof of work, or JSON for non-HTML clients) and the endpoint that
//!   turns a solved challenge into a clearance cookie.
//! - [`logins`]: account protection — the username of a declared login
//!   endpoint, hashed with the fleet's key, and the origin's verdict on it.
//! - [`share`]: the background tasks: the key ring from the mesh, the
//!   behaviour statistics shared and merged across the fleet, failed-login
//!   reports broadcast and counted.
//!
//! What it must not do: block on I/O in the request path, or keep anything
//! keyed by client data without a cap (every table here is capped by
//! `palisade-bots`; see `docs/limits.md`).

pub mod challenge;
pub mod dns;
pub mod logins;
pub mod metrics;
pub mod share;

use crate::state::EdgeState;
use arc_swap::{ArcSwap, ArcSwapOption};
use palisade_bots::behaviour::{
    ua_class, ClientKey, ClientTable, FleetIndex, Observation, RequestSignals, RouteKey, Scores,
};
use palisade_bots::clearance::{self, Clearances, Refusal, Token};
use palisade_bots::crawlers::{BotIdentity, CrawlerSpec, Verifier, VerifierLimits};
use palisade_bots::fingerprint::{self, HeaderFingerprint, HttpVersion};
use palisade_bots::logins::{GuardLimits, LoginGuard, ReportBatcher};
use palisade_policy::bots::{BotsPolicy, ChallengeSettings};
use palisade_policy::Client;
use std::net::IpAddr;
use std::sync::Arc;

/// The clearance cookie's name.
pub const CLEARANCE_COOKIE: &str = "palisade_clearance";
/// Where a solved challenge is posted.
pub const VERIFY_PATH: &str = "/.well-known/palisade/challenge";
/// Where the no-JavaScript path waits.
pub const WAIT_PATH: &str = "/.well-known/palisade/wait";

/// The bot defence's state, shared by every worker thread.
pub struct BotState {
    /// Challenge and clearance tokens, with the fleet's keys.
    pub clearances: Clearances,
    /// Per-client behaviour on this node.
    pub table: ClientTable,
    /// The fleet's clients and route baselines (other nodes' shares).
    pub fleet: ArcSwap<FleetIndex>,
    verifier: ArcSwapOption<CrawlerVerifier>,
    /// Failed logins counted across the fleet.
    pub logins: LoginGuard,
    /// Failed-login reports waiting to be broadcast.
    pub reports: parking_lot::Mutex<ReportBatcher>,
    /// Wakes the report sender when a failed login is queued.
    pub reports_ready: tokio::sync::Notify,
    /// Wakes the DNS worker when a lookup is queued.
    pub dns_wake: tokio::sync::Notify,
    resolver: parking_lot::RwLock<Arc<dyn palisade_bots::crawlers::Resolver + Send + Sync>>,
}

/// The verifier built from a policy's crawlers (rebuilt when they change).
pub struct CrawlerVerifier {
    specs: Vec<CrawlerSpec>,
    ranges: Vec<Vec<ipnet::IpNet>>,
    /// The verifier.
    pub verifier: Verifier,
}

impl Default for BotState {
    fn default() -> Self {
        BotState {
            clearances: Clearances::new(),
            table: ClientTable::default(),
            fleet: ArcSwap::from_pointee(FleetIndex::default()),
            verifier: ArcSwapOption::empty(),
            logins: LoginGuard::new(GuardLimits::default()),
            reports: parking_lot::Mutex::new(ReportBatcher::new(100, 4_096)),
            reports_ready: tokio::sync::Notify::new(),
            dns_wake: tokio::sync::Notify::new(),
            resolver: parking_lot::RwLock::new(Arc::new(dns::SystemResolver)),
        }
    }
}

/// Why a policy's `[bots]` section could not be put in force.
#[derive(Debug, thiserror::Error)]
#[error("[bots]: {}", .0.join("; "))]
pub struct BotsApplyError(pub Vec<String>);

impl BotState {
    /// Builds what `bots` needs that is not in the policy itself: the
    /// crawler verifier, reading the range files it names. Unchanged
    /// crawlers keep the running verifier (and its cache).
    pub fn prepare(
        &self,
        bots: Option<&BotsPolicy>,
    ) -> Result<Option<Arc<CrawlerVerifier>>, BotsApplyError> {
        let Some(bots) = bots.filter(|b| !b.crawlers.is_empty()) else {
            return Ok(None);
        };
        // The files are read at every apply (they are updated by their
        // publishers); unchanged crawlers and ranges keep the running
        // verifier and its cache.
        let mut errors = Vec::new();
        let mut ranges = Vec::with_capacity(bots.crawlers.len());
        for (i, spec) in bots.crawlers.iter().enumerate() {
            let mut nets = Vec::new();
            for path in &spec.ranges {
                match std::fs::read_to_string(path) {
                    Ok(text) => match palisade_bots::crawlers::parse_range_file(&text) {
                        Ok(n) => nets.extend(n),
                        Err(errs) => errors.extend(
                            errs.iter()
                                .map(|e| format!("bots.crawlers[{i}].ranges: {path}: {e}")),
                        ),
                    },
                    Err(e) => errors.push(format!("bots.crawlers[{i}].ranges: {path}: {e}")),
                }
            }
            ranges.push(nets);
        }
        if !errors.is_empty() {
            return Err(BotsApplyError(errors));
        }
        if let Some(running) = self.verifier.load_full() {
            if running.specs == bots.crawlers && running.ranges == ranges {
                return Ok(Some(running));
            }
        }
        let verifier = Verifier::new(&bots.crawlers, ranges.clone(), VerifierLimits::default())
            .map_err(BotsApplyError)?;
        Ok(Some(Arc::new(CrawlerVerifier {
            specs: bots.crawlers.clone(),
            ranges,
            verifier,
        })))
    }

    /// Puts in force what [`BotState::prepare`] built.
    pub fn install(&self, verifier: Option<Arc<CrawlerVerifier>>) {
        self.verifier.store(verifier);
    }

    /// The crawler verifier in force.
    pub fn verifier(&self) -> Option<Arc<CrawlerVerifier>> {
        self.verifier.load_full()
    }

    /// Replaces the resolver of the DNS worker (tests: a table of their own).
    pub fn set_resolver(&self, r: Arc<dyn palisade_bots::crawlers::Resolver + Send + Sync>) {
        *self.resolver.write() = r;
    }

    pub(crate) fn resolver(&self) -> Arc<dyn palisade_bots::crawlers::Resolver + Send + Sync> {
        self.resolver.read().clone()
    }
}

/// The settings a `challenge` action uses in a policy without `[bots]`
/// (the policy compiler adds them; this is the fallback of last resort).
pub fn default_policy() -> BotsPolicy {
    BotsPolicy::challenge_only()
}

/// The clearance settings of the policy's challenge.
pub fn clearance_settings(c: &ChallengeSettings) -> clearance::Settings {
    clearance::Settings {
        ttl_ms: c.ttl_ms,
        challenge_ttl_ms: c.challenge_ttl_ms,
        binding: clearance::Binding {
            ipv4_prefix: c.bind_ipv4_prefix,
            ipv6_prefix: c.bind_ipv6_prefix,
            user_agent: c.bind_user_agent,
        },
        min_bits: c.bits,
    }
}

/// What [`assess`] found out about one request.
#[derive(Debug, Default)]
pub struct Assessed {
    header_fp: Option<HeaderFingerprint>,
    h2_fp: Option<Arc<str>>,
    ja4: Option<Arc<str>>,
    /// The valid clearance the request carries.
    pub clearance: Option<Token>,
    /// Why a clearance cookie the request carries was refused.
    pub refused: Option<Refusal>,
    bot_name: Option<Arc<str>>,
    /// The scores (None: `score = false`).
    pub scores: Option<Scores>,
    /// The behaviour table's key of the client.
    pub key: Option<ClientKey>,
}

impl Assessed {
    /// The facts rules see.
    pub fn client(&self) -> Client<'_> {
        Client {
            bot_score: self.scores.map(|s| s.bot),
            anomaly_score: self.scores.map(|s| s.anomaly),
            verified_bot: self.bot_name.is_some(),
            bot_name: self.bot_name.as_deref().unwrap_or(""),
            cleared: self.clearance.is_some(),
            header_fp: self.header_fp.as_ref().map_or("", |f| f.as_str()),
            ja4: self.ja4.as_deref().unwrap_or(""),
            h2_fp: self.h2_fp.as_deref().unwrap_or(""),
        }
    }

    /// What events say of the client (None when it was not scored).
    pub fn event_detail(&self) -> Option<palisade_policy::BotEventDetail> {
        let s = self.scores?;
        Some(palisade_policy::BotEventDetail {
            score: s.bot,
            anomaly: s.anomaly,
            verified: self.bot_name.is_some(),
            cleared: self.clearance.is_some(),
            reasons: s.reasons.names().map(str::to_string).collect(),
        })
    }

    /// The bot score, if computed.
    pub fn bot_score(&self) -> Option<u8> {
        self.scores.map(|s| s.bot)
    }
}

/// The request facts [`assess`] reads.
pub struct Seen<'a> {
    pub ip: IpAddr,
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The raw HTTP/1 head (None on HTTP/2).
    pub raw_head: Option<&'a [u8]>,
    /// The connection's fingerprints (TLS ClientHello, HTTP/2 preface).
    pub prints: Option<crate::conn::ConnPrints>,
}

fn has(headers: &http::HeaderMap, name: &str) -> bool {
    headers.contains_key(name)
}

/// Whether the client asks for a page (not an API answer): `Accept`
/// names `text/html`, or a navigation (`Sec-Fetch-Dest: document`).
pub fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| memchr::memmem::find(v.as_bytes(), b"text/html").is_some())
        || headers
            .get("sec-fetch-dest")
            .is_some_and(|v| v.as_bytes() == b"document")
}

const ASSET_EXTS: [&str; 14] = [
    "css", "js", "mjs", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "woff", "woff2", "map",
    "avif",
];

fn is_asset(path: &str, headers: &http::HeaderMap) -> bool {
    if let Some(dest) = headers.get("sec-fetch-dest") {
        if matches!(
            dest.as_bytes(),
            b"script" | b"style" | b"image" | b"font" | b"manifest"
        ) {
            return true;
        }
    }
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| ASSET_EXTS.iter().any(|a| a.eq_ignore_ascii_case(ext)))
}

/// Removes the clearance cookie from the request sent upstream (the other
/// cookies stay, in order).
pub fn strip_clearance(req: &mut pingora_http::RequestHeader) -> pingora_core::Result<()> {
    let has = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .any(|v| memchr::memmem::find(v.as_bytes(), CLEARANCE_COOKIE.as_bytes()).is_some());
    if !has {
        return Ok(());
    }
    let kept: Vec<String> = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(str::trim)
                .filter(|p| {
                    !p.is_empty() && p.split('=').next().map(str::trim) != Some(CLEARANCE_COOKIE)
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|v| !v.is_empty())
        .collect();
    req.remove_header(&http::header::COOKIE);
    for v in kept {
        req.append_header(http::header::COOKIE, v)?;
    }
    Ok(())
}

/// The clearance cookie of a request, if it carries one.
fn clearance_cookie(headers: &http::HeaderMap) -> Option<&str> {
    palisade_policy::request::cookies_in(headers, CLEARANCE_COOKIE)
        .find_map(|v| std::str::from_utf8(v).ok())
}

/// Learns what `[bots]` asks about a request: see the module docs.
pub fn assess(st: &EdgeState, bots: &BotsPolicy, seen: &Seen<'_>, now: u64) -> Assessed {
    let b = &st.bots;
    let mut out = Assessed {
        header_fp: match seen.raw_head {
            Some(raw) => fingerprint::http1(raw),
            None => Some(fingerprint::from_names(
                HttpVersion::H2,
                seen.headers.keys().map(|k| k.as_str()),
            )),
        },
        h2_fp: seen.prints.as_ref().and_then(|p| p.h2.clone()),
        ja4: seen.prints.as_ref().and_then(|p| p.ja4.clone()),
        ..Assessed::default()
    };
    let ua = seen
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if let Some(cookie) = clearance_cookie(seen.headers) {
        let settings = clearance_settings(&bots.challenge);
        let result = b.clearances.check(&settings, cookie, seen.ip, ua, now);
        let label = match result {
            Ok(t) => {
                out.clearance = Some(t);
                "valid"
            }
            Err(r) => {
                out.refused = Some(r);
                r.as_str()
            }
        };
        st.metrics.bots.clearances.with_label_values(&[label]).inc();
    }
    let ua_text = std::str::from_utf8(ua).unwrap_or("");
    if let Some(v) = b.verifier.load().as_ref() {
        match v.verifier.check(seen.ip, ua_text, now) {
            BotIdentity::Verified { name } => out.bot_name = Some(name),
            // A lookup may be queued: the worker takes it.
            BotIdentity::Unverified { .. } => b.dns_wake.notify_one(),
            BotIdentity::None => {}
        }
    }
    if !bots.score {
        return out;
    }
    let key = ClientKey::ip(seen.ip);
    let route = RouteKey::new(seen.host, seen.method, seen.path);
    let headers = seen.headers;
    let fp = out.header_fp;
    let class = ua_class(ua_text);
    let accept_language = fp.map_or(has(headers, "accept-language"), |f| f.has_accept_language());
    let accept_encoding = fp.map_or(has(headers, "accept-encoding"), |f| f.has_accept_encoding());
    let signals = RequestSignals {
        ua: class,
        accept_language,
        sec_fetch: fp.is_some_and(|f| f.has_sec_fetch()),
        sec_ch_ua: fp.is_some_and(|f| f.has_sec_ch_ua()),
        accept_encoding,
        // A browser's User-Agent on a request without what every browser
        // sends with a page: a library dressed as a browser.
        fingerprint_mismatch: class.is_browser()
            && (!accept_language || !accept_encoding || !has(headers, "accept")),
        cleared: out.clearance.is_some(),
        verified_crawler: out.bot_name.is_some(),
    };
    let obs = Observation {
        route,
        path_hash: palisade_policy::learn::stable_hash(seen.path.as_bytes()),
        is_html: wants_html(headers),
        is_asset: is_asset(seen.path, headers),
        has_cookie: out.clearance.is_some() || headers.contains_key(http::header::COOKIE),
    };
    b.table.observe(key, &obs, now);
    let fleet = b.fleet.load();
    let scores = b.table.score(key, &signals, route, &fleet, now);
    st.metrics
        .bots
        .scored
        .with_label_values(&[score_band(scores.bot)])
        .inc();
    out.scores = Some(scores);
    out.key = Some(key);
    out
}

/// The metric label of a bot score: `automated` (1–29), `likely_automated`
/// (30–49), `likely_human` (50–79), `human` (80–99).
pub fn score_band(score: u8) -> &'static str {
    match score {
        0..=29 => "automated",
        30..=49 => "likely_automated",
        50..=79 => "likely_human",
        _ => "human",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clearance_never_reaches_the_origin() {
        let mut req = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("cookie", "a=1; palisade_clearance=SECRET; b=2")
            .unwrap();
        req.append_header("cookie", "palisade_clearance=SECRET")
            .unwrap();
        req.append_header("cookie", "c=3").unwrap();
        strip_clearance(&mut req).unwrap();
        let all: Vec<&str> = req
            .headers
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, vec!["a=1; b=2", "c=3"]);
        let mut plain = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
        plain.append_header("cookie", "session=x").unwrap();
        strip_clearance(&mut plain).unwrap();
        assert_eq!(plain.headers.get("cookie").unwrap(), "session=x");
    }

    #[test]
    fn pages_and_assets_are_told_apart() {
        let mut h = http::HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert("accept", "text/html,application/xhtml+xml".parse().unwrap());
        assert!(wants_html(&h));
        assert!(is_asset("/static/app.JS", &http::HeaderMap::new()));
        assert!(!is_asset("/articles/7", &http::HeaderMap::new()));
        let mut img = http::HeaderMap::new();
        img.insert("sec-fetch-dest", "image".parse().unwrap());
        assert!(is_asset("/avatar", &img));
    }
}
