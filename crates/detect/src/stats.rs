//! How often each detector ran and found something, process-wide (relaxed
//! atomic counters: no lock, no allocation). The edge exports them as
//! metrics; the rules that call the detectors are counted per rule as well.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Detector;

static CALLS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static FINDINGS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Counts one call of `detector`, and a finding when `found`.
pub(crate) fn record(detector: Detector, found: bool) {
    let i = detector.index();
    CALLS[i].fetch_add(1, Ordering::Relaxed);
    if found {
        FINDINGS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// One detector's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub detector: Detector,
    /// Values inspected.
    pub calls: u64,
    /// Values found to be an attack.
    pub findings: u64,
}

/// Every detector's counters, in [`Detector::ALL`] order.
pub fn snapshot() -> [Counts; 4] {
    Detector::ALL.map(|d| Counts {
        detector: d,
        calls: CALLS[d.index()].load(Ordering::Relaxed),
        findings: FINDINGS[d.index()].load(Ordering::Relaxed),
    })
}
