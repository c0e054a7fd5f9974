//! Resident memory added by a large [`DecisionSet`]: inserts N IPv4 ban
//! decisions (default 1,000,000; the first argument overrides) sharing one
//! reason and origin, as an imported blocklist does, and prints the RSS
//! added and the bytes per decision. Linux only (reads /proc/self/statm).
//!
//! `cargo run --release -p palisade-policy --example decision_memory [N]`

use std::net::Ipv4Addr;

use palisade_policy::decisions::{Decision, DecisionAction, DecisionSet, Scope};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss_bytes();
    let mut set = DecisionSet::new();
    for i in 0..n {
        let ip = Ipv4Addr::from(i.wrapping_mul(0x9e37_79b1));
        let d = Decision {
            id: u64::from(i) + 1,
            scope: Scope::Ip,
            value: ip.to_string(),
            action: DecisionAction::Ban,
            reason: "crowdsec blocklist: ssh-bf".into(),
            origin: "import".into(),
            simulated: false,
            created_at: 1_700_000_000_000,
            expires_at: Some(1_700_000_000_000 + 86_400_000),
        };
        if let Err(e) = set.insert(d) {
            eprintln!("insert failed: {e}");
            std::process::exit(1);
        }
    }
    let after = rss_bytes();
    let added = after.saturating_sub(before);
    println!(
        "{} decisions: RSS +{:.1} MiB, {} bytes per decision",
        set.len(),
        added as f64 / (1024.0 * 1024.0),
        added / u64::from(n.max(1))
    );
}
