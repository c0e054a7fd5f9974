//! One client's streaming statistics ([`Evidence`]): fixed size, updated in
//! O(1) per request, combinable with what other nodes saw of the client.

/// A client idle this long starts afresh (a new session).
pub const IDLE_RESET_MS: u64 = 30 * 60_000;
/// Counts are halved when requests (or responses) reach this many, so that
/// the statistics follow the client's recent behaviour.
pub const HALVE_AT: u32 = 512;
/// The distinct-path sketch restarts after this many non-asset requests.
pub const PATH_WINDOW: u32 = 256;
/// Inter-arrival gaps are clipped to this (a longer pause is one long pause).
pub const MAX_GAP_MS: u64 = 10 * 60_000;
/// Weight of a new gap in the inter-arrival EWMAs.
const ALPHA: f32 = 0.125;

/// Requests before behaviour counts at all.
pub const MIN_REQUESTS: u32 = 8;

/// Distinct paths, approximately: 32 four-bit HyperLogLog registers in 16
/// bytes. Merging is the register-wise maximum (the sketch of the union), so
/// paths seen by two nodes count once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathSketch(pub u128);

const REGS: u32 = 32;

impl PathSketch {
    fn reg(&self, i: u32) -> u32 {
        ((self.0 >> (4 * i)) & 0xF) as u32
    }

    /// Records one path by its hash.
    pub fn insert(&mut self, hash: u64) {
        let i = (hash % u64::from(REGS)) as u32;
        let rank = ((hash >> 5).trailing_zeros() + 1).min(15);
        if rank > self.reg(i) {
            self.0 &= !(0xFu128 << (4 * i));
            self.0 |= u128::from(rank) << (4 * i);
        }
    }

    /// The sketch of the union.
    pub fn merge(&mut self, other: &PathSketch) {
        let mut out = 0u128;
        for i in 0..REGS {
            out |= u128::from(self.reg(i).max(other.reg(i))) << (4 * i);
        }
        self.0 = out;
    }

    /// Distinct paths seen (linear counting while registers are empty, the
    /// HyperLogLog estimate beyond; about 18 % standard error).
    pub fn estimate(&self) -> f32 {
        let m = REGS as f32;
        let (mut sum, mut zeros) = (0f32, 0u32);
        for i in 0..REGS {
            let r = self.reg(i);
            sum += 1.0 / (1u32 << r) as f32;
            zeros += u32::from(r == 0);
        }
        let raw = 0.697 * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f32).ln()
        } else {
            raw
        }
    }
}

/// What is known of one client's behaviour: on one node ([`ClientStats`]),
/// from the fleet's share, or both combined.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// First and last request (ms since the epoch).
    pub first_ms: u64,
    pub last_ms: u64,
    pub requests: u32,
    /// Requests for HTML pages.
    pub html: u32,
    /// Requests for assets (scripts, styles, images, fonts).
    pub assets: u32,
    /// Responses known ([`crate::behaviour::ClientTable::observe_response`]).
    pub responses: u32,
    /// Of them, 4xx or 5xx.
    pub errors: u32,
    /// Requests made after the client was given a cookie (or carrying one).
    pub cookie_due: u32,
    /// Of them, requests carrying a cookie.
    pub cookie_back: u32,
    /// Non-asset requests recorded in `paths`.
    pub path_n: u32,
    pub paths: PathSketch,
    /// Inter-arrival gaps seen, their EWMA (ms) and the EWMA of the squared
    /// deviation (ms²).
    pub gaps: u32,
    pub gap_mean: f32,
    pub gap_var: f32,
}

/// What one request was, for [`crate::behaviour::ClientTable::observe`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    /// The request's route ([`crate::behaviour::RouteKey::new`]).
    pub route: crate::behaviour::RouteKey,
    /// `stable_hash` of the path (without the query).
    pub path_hash: u64,
    /// The request asks for an HTML page (Accept text/html, or a
    /// navigation: `Sec-Fetch-Dest: document`).
    pub is_html: bool,
    /// The request asks for an asset (script, style, image, font, by
    /// extension or `Sec-Fetch-Dest`).
    pub is_asset: bool,
    /// The request carries a cookie this site set. Best is the edge's own
    /// check (the clearance cookie, or a cookie name the origin sets): a
    /// script replaying a fixed `Cookie` header then gets no credit. A plain
    /// "has a `Cookie` header" works, more weakly.
    pub has_cookie: bool,
}

/// The features scores are made of, derived from [`Evidence`]. A feature is
/// `None` until there is enough evidence for it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    pub requests: u32,
    pub html: u32,
    pub assets: u32,
    /// Non-asset requests per minute, over the client's span (at least a
    /// minute: a page load's burst is not a rate).
    pub page_rate: f32,
    /// Errors per response (at least 8 responses).
    pub error_ratio: Option<f32>,
    /// Assets per request (at least [`MIN_REQUESTS`] requests).
    pub asset_ratio: Option<f32>,
    /// Distinct non-asset paths per non-asset request (at least 8).
    pub diversity: Option<f32>,
    /// Coefficient of variation of the inter-arrival gaps (at least 6 gaps):
    /// near 0 for a timer, above 1 for a person's bursts and pauses.
    pub timing_cv: Option<f32>,
    /// Requests carrying a cookie among those that should have (at least 4).
    pub cookie_ratio: Option<f32>,
}

fn halve(n: &mut u32) {
    *n /= 2;
}

impl Evidence {
    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.responses == 0
    }

    fn halve_all(&mut self) {
        for n in [
            &mut self.requests,
            &mut self.html,
            &mut self.assets,
            &mut self.responses,
            &mut self.errors,
            &mut self.cookie_due,
            &mut self.cookie_back,
            &mut self.gaps,
        ] {
            halve(n);
        }
        self.first_ms = self.last_ms - self.last_ms.saturating_sub(self.first_ms) / 2;
    }

    /// Combines what two places saw of one client: counts add up, the path
    /// sketches unite, the gap statistics pool (weighted by their gaps).
    /// Symmetric in its arguments.
    pub fn combine(&self, o: &Evidence) -> Evidence {
        if o.is_empty() {
            return *self;
        }
        if self.is_empty() {
            return *o;
        }
        let mut paths = self.paths;
        paths.merge(&o.paths);
        let (ga, gb) = (self.gaps as f32, o.gaps as f32);
        let g = ga + gb;
        let (mean, var) = if g > 0.0 {
            let mean = (ga * self.gap_mean + gb * o.gap_mean) / g;
            let second = (ga * (self.gap_var + self.gap_mean * self.gap_mean)
                + gb * (o.gap_var + o.gap_mean * o.gap_mean))
                / g;
            (mean, (second - mean * mean).max(0.0))
        } else {
            (0.0, 0.0)
        };
        Evidence {
            first_ms: self.first_ms.min(o.first_ms),
            last_ms: self.last_ms.max(o.last_ms),
            requests: self.requests.saturating_add(o.requests),
            html: self.html.saturating_add(o.html),
            assets: self.assets.saturating_add(o.assets),
            responses: self.responses.saturating_add(o.responses),
            errors: self.errors.saturating_add(o.errors),
            cookie_due: self.cookie_due.saturating_add(o.cookie_due),
            cookie_back: self.cookie_back.saturating_add(o.cookie_back),
            path_n: self.path_n.saturating_add(o.path_n),
            paths,
            gaps: self.gaps.saturating_add(o.gaps),
            gap_mean: mean,
            gap_var: var,
        }
    }

    /// The features of this evidence.
    pub fn features(&self) -> Features {
        let ratio = |a: u32, b: u32, min: u32| (b >= min).then(|| (a.min(b) as f32) / b as f32);
        let span = self.last_ms.saturating_sub(self.first_ms).max(60_000) as f32;
        let pages = self.requests.saturating_sub(self.assets) as f32;
        // Gaps averaging under a millisecond are parallel requests: no
        // timing evidence either way.
        let timing_cv =
            (self.gaps >= 6 && self.gap_mean >= 1.0).then(|| self.gap_var.sqrt() / self.gap_mean);
        Features {
            requests: self.requests,
            html: self.html,
            assets: self.assets,
            page_rate: pages * 60_000.0 / span,
            error_ratio: ratio(self.errors, self.responses, 8),
            asset_ratio: ratio(self.assets, self.requests, MIN_REQUESTS),
            diversity: (self.path_n >= 8)
                .then(|| (self.paths.estimate() / self.path_n as f32).min(1.0)),
            timing_cv,
            cookie_ratio: ratio(self.cookie_back, self.cookie_due, 4),
        }
    }
}

/// One client's statistics on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientStats {
    pub ev: Evidence,
    /// A response to this client set a cookie.
    pub cookie_set: bool,
}

impl ClientStats {
    fn expire(&mut self, now_ms: u64) {
        if !self.ev.is_empty() && now_ms.saturating_sub(self.ev.last_ms) > IDLE_RESET_MS {
            *self = ClientStats::default();
        }
    }

    /// Counts one request. Returns the request count when it reached a
    /// sampling milestone (8, 16, 32 … [`HALVE_AT`]): the caller then adds
    /// the client's features to the route's baseline.
    pub fn observe(&mut self, obs: &Observation, now_ms: u64) -> Option<u32> {
        self.expire(now_ms);
        let ev = &mut self.ev;
        if ev.requests == 0 && ev.gaps == 0 {
            ev.first_ms = now_ms;
            ev.last_ms = now_ms;
        } else {
            let gap = now_ms.saturating_sub(ev.last_ms).min(MAX_GAP_MS) as f32;
            if ev.gaps == 0 {
                ev.gap_mean = gap;
                ev.gap_var = 0.0;
            } else {
                let d = gap - ev.gap_mean;
                ev.gap_mean += ALPHA * d;
                ev.gap_var = (1.0 - ALPHA) * (ev.gap_var + ALPHA * d * d);
            }
            ev.gaps = ev.gaps.saturating_add(1);
            ev.last_ms = ev.last_ms.max(now_ms);
            ev.first_ms = ev.first_ms.min(now_ms);
        }
        ev.requests = ev.requests.saturating_add(1);
        ev.html += u32::from(obs.is_html);
        ev.assets += u32::from(obs.is_asset);
        if self.cookie_set || obs.has_cookie {
            ev.cookie_due += 1;
            ev.cookie_back += u32::from(obs.has_cookie);
        }
        if !obs.is_asset {
            if ev.path_n >= PATH_WINDOW {
                ev.paths = PathSketch::default();
                ev.path_n = 0;
            }
            ev.paths.insert(obs.path_hash);
            ev.path_n += 1;
        }
        let n = ev.requests;
        if n >= HALVE_AT {
            ev.halve_all();
        }
        (n >= MIN_REQUESTS && n.is_power_of_two()).then_some(n)
    }

    /// Counts one response: its status, and whether it set a cookie.
    pub fn observe_response(&mut self, status: u16, set_cookie: bool, now_ms: u64) {
        self.expire(now_ms);
        if self.ev.requests == 0 && self.ev.responses == 0 {
            self.ev.first_ms = now_ms;
            self.ev.last_ms = now_ms;
        }
        self.ev.responses = self.ev.responses.saturating_add(1);
        self.ev.errors += u32::from(status >= 400);
        self.cookie_set |= set_cookie;
        if self.ev.responses >= HALVE_AT {
            self.ev.halve_all();
        }
    }

    /// The evidence, or nothing when the client has been idle too long.
    pub fn current(&self, now_ms: u64) -> Option<Evidence> {
        (!self.ev.is_empty() && now_ms.saturating_sub(self.ev.last_ms) <= IDLE_RESET_MS)
            .then_some(self.ev)
    }
}
