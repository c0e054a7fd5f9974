//! Route baselines: per route, fixed-bucket histograms of the features of
//! the clients that used it, summed across the fleet; and the anomaly of one
//! client's features against them.

use super::reasons::Reasons;
use super::stats::Features;
use ahash::AHashMap;

/// Buckets per feature.
pub const BUCKETS: usize = 10;
/// Features kept per route: page rate, error ratio, asset ratio, path
/// diversity, timing regularity.
pub const FEATURES: usize = 5;
/// Routes kept per node, and in a merged share.
pub const MAX_ROUTES: usize = 512;
/// Samples a feature's histogram needs before it is a baseline.
pub const MIN_BASELINE: u32 = 30;
/// A route's histograms are halved (locally) when one reaches this many
/// samples, so that the baseline follows the traffic.
const HALVE_SAMPLES: u32 = 1 << 20;

/// One route's histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteHist {
    pub counts: [[u32; BUCKETS]; FEATURES],
}

fn ratio_bucket(r: f32) -> usize {
    ((r * BUCKETS as f32) as usize).min(BUCKETS - 1)
}

/// The bucket of each feature of `f` (`None` for a feature without
/// evidence). Page rate: < 1/min, then one bucket per doubling up to ≥ 256;
/// ratios: tenths; timing: coefficient of variation in quarters up to ≥ 2.25.
pub fn buckets(f: &Features) -> [Option<usize>; FEATURES] {
    let rate = if f.page_rate < 1.0 {
        0
    } else {
        ((f.page_rate.log2() as usize) + 1).min(BUCKETS - 1)
    };
    [
        (f.requests >= super::stats::MIN_REQUESTS).then_some(rate),
        f.error_ratio.map(ratio_bucket),
        f.asset_ratio.map(ratio_bucket),
        f.diversity.map(ratio_bucket),
        f.timing_cv.map(|cv| ((cv * 4.0) as usize).min(BUCKETS - 1)),
    ]
}

/// The reason raised by each feature when it is anomalous.
const FEATURE_REASONS: [Reasons; FEATURES] = [
    Reasons::UNUSUAL_RATE,
    Reasons::UNUSUAL_ERRORS,
    Reasons::UNUSUAL_ASSETS,
    Reasons::UNUSUAL_PATHS,
    Reasons::UNUSUAL_TIMING,
];

impl RouteHist {
    /// Adds one client's features.
    pub fn add(&mut self, f: &Features) {
        for (i, b) in buckets(f).into_iter().enumerate() {
            if let Some(b) = b {
                self.counts[i][b] = self.counts[i][b].saturating_add(1);
                if self.counts[i][b] >= HALVE_SAMPLES {
                    self.counts[i].iter_mut().for_each(|c| *c /= 2);
                }
            }
        }
    }

    /// Adds another node's histograms.
    pub fn merge(&mut self, o: &RouteHist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
    }

    /// Samples of feature `i`.
    pub fn total(&self, i: usize) -> u32 {
        self.counts[i]
            .iter()
            .fold(0u32, |a, c| a.saturating_add(*c))
    }

    /// All samples (the route's weight when routes compete for the cap).
    pub fn weight(&self) -> u64 {
        (0..FEATURES).map(|i| u64::from(self.total(i))).sum()
    }

    /// How far `f` is from this route's clients, 0 (typical) to 99, and the
    /// features that made it (those at 80 or more). Per feature with a
    /// baseline of at least [`MIN_BASELINE`] samples: the smaller tail
    /// `t = min(P(X ≤ b), P(X ≥ b))` at the client's bucket `b` (smoothed:
    /// `(count + ½) / (total + 1)`), and `1 − 2t`; the score is the largest.
    pub fn anomaly(&self, f: &Features) -> (u8, Reasons) {
        let mut worst = 0f32;
        let mut reasons = Reasons::empty();
        for (i, b) in buckets(f).into_iter().enumerate() {
            let Some(b) = b else { continue };
            let total = self.total(i);
            if total < MIN_BASELINE {
                continue;
            }
            let h = &self.counts[i];
            let le: u64 = h[..=b].iter().map(|&c| u64::from(c)).sum();
            let ge: u64 = h[b..].iter().map(|&c| u64::from(c)).sum();
            let t = (le.min(ge) as f32 + 0.5) / (total as f32 + 1.0);
            let a = (1.0 - 2.0 * t).clamp(0.0, 1.0);
            if a >= 0.8 {
                reasons |= FEATURE_REASONS[i];
            }
            worst = worst.max(a);
        }
        ((worst * 99.0).round() as u8, reasons)
    }
}

/// This node's route baselines: at most [`MAX_ROUTES`] routes; samples for
/// a new route when the table is full are dropped (and counted).
#[derive(Debug, Default)]
pub struct Routes {
    pub map: AHashMap<u64, RouteHist>,
    pub dropped: u64,
}

impl Routes {
    /// Adds one client's features to `route`'s baseline.
    pub fn add(&mut self, route: u64, f: &Features) {
        let full = self.map.len() >= MAX_ROUTES;
        match self.map.get_mut(&route) {
            Some(h) => h.add(f),
            None if full => self.dropped += 1,
            None => {
                let mut h = RouteHist::default();
                h.add(f);
                self.map.insert(route, h);
            }
        }
    }
}
