//! Client fingerprints (see the crate documentation).
