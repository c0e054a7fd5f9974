//! Fuzzes Palisade's structural detectors (`palisade_detect`): arbitrary
//! bytes never panic, and a finding's evidence stays short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_detect::{detect, Detector};

fuzz_target!(|data: &[u8]| {
    for d in Detector::ALL {
        if let Some(f) = detect(d, data) {
            assert_eq!(f.detector, d);
            assert!(f.evidence.chars().count() <= 80, "{f}");
        }
    }
});
