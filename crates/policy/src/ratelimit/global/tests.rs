//! Global limits: the pure core driven by a simulated mesh (rounds every Δ,
//! reports delivered after a delay, nodes cut off at will).

use super::*;

const L: u64 = 100;
const PERIOD: u64 = 10_000;
const DELTA: u64 = 50;
const DELAY: u64 = 2;

fn spec() -> LimitSpec {
    LimitSpec {
        requests: L,
        period_ms: PERIOD,
        mitigation_timeout_ms: 0,
    }
}

/// Nodes exchanging reports every Δ (each with its own phase), delivered
/// `DELAY` ms later, except to or from a cut-off node.
struct Fleet {
    nodes: Vec<GlobalLimiter>,
    peers: Vec<Peers>,
    cut: Vec<bool>,
    /// A stalled node's exchange runs no round and reads no report (they wait
    /// for it); its request path goes on.
    stalled: Vec<bool>,
    in_flight: Vec<(UnixMillis, usize, usize, Vec<u8>)>,
    next_round: Vec<UnixMillis>,
    now: UnixMillis,
}

impl Fleet {
    fn new(n: usize, start: UnixMillis) -> Fleet {
        Fleet {
            nodes: (0..n).map(|_| GlobalLimiter::new(10_000)).collect(),
            peers: (0..n).map(|_| Peers::default()).collect(),
            cut: vec![false; n],
            stalled: vec![false; n],
            in_flight: Vec::new(),
            next_round: (0..n)
                .map(|i| start + i as u64 * DELTA / n as u64)
                .collect(),
            now: start,
        }
    }

    /// Runs rounds and deliveries up to `t`.
    fn advance(&mut self, t: UnixMillis) {
        while self.now < t {
            self.now += 1;
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|m| m.0 <= now && !self.stalled[m.2]);
            self.in_flight = later;
            for (_, from, to, bytes) in due {
                let report = decode(&bytes).expect("decodes");
                assert_eq!(report.node, format!("n{from}"));
                self.peers[to].heard(&report.node, now);
                self.nodes[to].apply(&report.entries, now);
            }
            for i in 0..self.nodes.len() {
                if self.next_round[i] > now {
                    continue;
                }
                if self.stalled[i] {
                    // The next round comes one Δ after the stall ends.
                    self.next_round[i] = now + 1;
                    continue;
                }
                self.next_round[i] += DELTA;
                let mode = self.peers[i].mode(now, DELTA);
                self.nodes[i].set_mode(mode);
                let entries = self.nodes[i].drain(now, mode);
                for bytes in encode(&format!("n{i}"), &entries) {
                    for j in 0..self.nodes.len() {
                        if j != i && !self.cut[i] && !self.cut[j] {
                            self.in_flight.push((now + DELAY, i, j, bytes.clone()));
                        }
                    }
                }
            }
        }
    }

    /// Sends `count` requests of one key at one every `gap_us` µs, to the
    /// node `pick(i)`; returns how many were admitted.
    fn offer(&mut self, count: usize, gap_us: u64, pick: impl Fn(usize) -> usize) -> usize {
        let start_us = self.now * 1000;
        let mut admitted = 0;
        for i in 0..count {
            let t = (start_us + i as u64 * gap_us) / 1000;
            self.advance(t);
            if self.nodes[pick(i)].hit(42, &spec(), self.now) == RateOutcome::Allowed {
                admitted += 1;
            }
        }
        admitted
    }
}

/// The start of a window, plus one second; the fleet has exchanged for 2 s.
fn warmed(n: usize) -> Fleet {
    let t0 = 1_000 * PERIOD;
    let mut f = Fleet::new(n, t0 - 2_000);
    f.advance(t0 + 1_000);
    f
}

fn assert_within(admitted: usize, lo: f64, hi: f64, case: &str) {
    let ratio = admitted as f64 / L as f64;
    eprintln!("{case}: {ratio:.2} × L");
    assert!(
        (lo..=hi).contains(&ratio),
        "{case}: admitted {admitted} = {ratio:.2} × L, expected {lo}..={hi}"
    );
}

#[test]
fn five_nodes_spread_evenly_admit_about_the_limit() {
    // 10 × L as fast as one request every 100 µs (10,000/s), then at 500/s.
    for gap_us in [100, 2_000] {
        let mut f = warmed(5);
        assert!(matches!(
            f.nodes[0].mode(),
            Mode::Connected { nodes: 5, .. }
        ));
        let admitted = f.offer(10 * L as usize, gap_us, |i| i % 5);
        assert_within(admitted, 0.9, 1.1, &format!("spread, gap {gap_us} µs"));
    }
}

#[test]
fn five_nodes_all_on_one_admit_about_the_limit() {
    for gap_us in [100, 2_000] {
        let mut f = warmed(5);
        let admitted = f.offer(10 * L as usize, gap_us, |_| 3);
        assert_within(admitted, 0.9, 1.1, &format!("one node, gap {gap_us} µs"));
    }
}

#[test]
fn local_limits_admit_five_times_the_limit_for_comparison() {
    let locals: Vec<_> = (0..5)
        .map(|_| crate::ratelimit::RateLimiter::new(100))
        .collect();
    let now = 1_000 * PERIOD + 1_000;
    let admitted = (0..10 * L)
        .filter(|i| locals[(i % 5) as usize].hit(42, &spec(), now) == RateOutcome::Allowed)
        .count();
    assert_eq!(admitted, 5 * L as usize);
}

#[test]
fn a_partitioned_node_falls_back_to_its_share() {
    let mut f = warmed(5);
    f.cut[4] = true;
    // Long enough for everyone to notice.
    let t = f.now + 2_000;
    f.advance(t);
    assert_eq!(f.nodes[4].mode(), Mode::Partitioned { nodes: 5 });
    assert!(matches!(
        f.nodes[0].mode(),
        Mode::Connected { nodes: 4, .. }
    ));
    let admitted = f.offer(10 * L as usize, 100, |i| i % 5);
    assert_within(admitted, 0.9, 1.3, "one node partitioned");
    assert!(f.nodes[4].stats.partitioned.load(Ordering::Relaxed) >= 2 * L);
    assert_eq!(f.nodes[0].stats.partitioned.load(Ordering::Relaxed), 0);
}

#[test]
fn a_partition_during_a_global_limit() {
    // The load is under way when node 4 is cut off; it doubts, then enforces
    // its share; the limit still holds within 1.3 × L, and the fleet resumes
    // once it is back.
    for gap_us in [100, 2_000] {
        let mut f = warmed(5);
        let mut admitted = f.offer(2 * 5, gap_us, |i| i % 5);
        f.cut[4] = true;
        admitted += f.offer(10 * L as usize, gap_us, |i| i % 5);
        assert_within(
            admitted,
            0.9,
            1.3,
            &format!("cut mid-load, gap {gap_us} µs"),
        );
        let t = f.now + 1_000;
        f.advance(t);
        assert_eq!(f.nodes[4].mode(), Mode::Partitioned { nodes: 5 });
        // Judged on its share alone now, and counted as such; the fleet's
        // total for the window stays within bounds.
        let before = f.nodes[4].stats.partitioned.load(Ordering::Relaxed);
        admitted += f.offer(L as usize, gap_us, |i| i % 5);
        assert!(f.nodes[4].stats.partitioned.load(Ordering::Relaxed) >= before + L / 5);
        assert_within(
            admitted,
            0.9,
            1.3,
            &format!("then partitioned, gap {gap_us} µs"),
        );
        // Healed: node 4 hears its peers again and leaves the fallback.
        f.cut[4] = false;
        let t = f.now + 500;
        f.advance(t);
        assert!(matches!(
            f.nodes[4].mode(),
            Mode::Connected { nodes: 5, .. }
        ));
    }
}

#[test]
fn a_stalled_exchange_does_not_let_its_node_overspend() {
    // Node 1's exchange stalls for 400 ms (8 rounds) while the load, spread
    // over the 5 nodes, goes on: its allowance lapses and the total stays
    // within the bound.
    for gap_us in [100, 1_000] {
        let mut f = warmed(5);
        let mut admitted = f.offer(10, gap_us, |i| i % 5);
        f.stalled[1] = true;
        admitted += f.offer((400_000 / gap_us) as usize, gap_us, |i| i % 5);
        f.stalled[1] = false;
        admitted += f.offer(10 * L as usize, gap_us, |i| i % 5);
        // What the stalled node spent of its allowance stays unknown to the
        // others until it reports again: the bound is L + that allowance,
        // here at most its even share L / 5 (docs/ratelimit.md).
        assert_within(
            admitted,
            0.9,
            1.2 + 0.02,
            &format!("stalled node, gap {gap_us} µs"),
        );
    }
}

#[test]
fn a_lone_node_enforces_the_whole_limit() {
    let mut f = warmed(1);
    assert!(matches!(
        f.nodes[0].mode(),
        Mode::Connected { nodes: 1, .. }
    ));
    let admitted = f.offer(10 * L as usize, 100, |_| 0);
    assert_within(admitted, 0.99, 1.0, "alone");
}

#[test]
fn without_an_exchange_a_global_limit_is_a_local_one() {
    let g = GlobalLimiter::new(100);
    assert_eq!(g.mode(), Mode::Alone);
    let now = 1_000 * PERIOD;
    let admitted = (0..3 * L)
        .filter(|_| g.hit(7, &spec(), now) == RateOutcome::Allowed)
        .count();
    assert_eq!(admitted, L as usize);
    assert!(
        g.drain(now, Mode::Alone).is_empty(),
        "nothing queued when alone"
    );
}

#[test]
fn the_mitigation_timeout_blocks_on_every_node() {
    let mut f = warmed(3);
    let s = LimitSpec {
        mitigation_timeout_ms: 60_000,
        ..spec()
    };
    let mut admitted = 0;
    for i in 0..1_000u64 {
        let t = f.now + 1;
        f.advance(t);
        if f.nodes[(i % 3) as usize].hit(9, &s, f.now) == RateOutcome::Allowed {
            admitted += 1;
        }
    }
    assert_within(admitted, 0.9, 1.1, "with a mitigation timeout");
    for n in &f.nodes {
        assert!(matches!(
            n.hit(9, &s, f.now + 30_000),
            RateOutcome::Limited { retry_after_ms } if retry_after_ms > 1_000
        ));
    }
}

#[test]
fn reports_round_trip_and_garbage_is_refused() {
    let entries: Vec<_> = (0..(MAX_BATCH_ENTRIES as u64 + 5))
        .map(|k| CountEntry {
            key: k,
            window_start: 10_000,
            period_ms: 10_000,
            count: 3,
            demand: 4,
            left: 5,
        })
        .collect();
    let batches = encode("edge-1", &entries);
    assert_eq!(batches.len(), 2);
    let mut back = Vec::new();
    for b in &batches {
        let r = decode(b).expect("decodes");
        assert_eq!(r.node, "edge-1");
        back.extend(r.entries);
    }
    assert_eq!(back, entries);
    let empty = encode("x", &[]);
    assert_eq!(empty.len(), 1);
    assert!(decode(&empty[0]).expect("decodes").entries.is_empty());
    // Truncations, a wrong magic, a wrong fingerprint, a zero period.
    let b = &batches[1];
    for n in 0..b.len() {
        assert!(decode(&b[..n]).is_err(), "truncated at {n}");
    }
    let mut bad = b.clone();
    bad[0] = b'X';
    assert!(decode(&bad).is_err());
    let mut bad = b.clone();
    bad[5] ^= 1;
    assert!(decode(&bad)
        .unwrap_err()
        .contains("hashes keys differently"));
    let mut bad = encode("n", &entries[..1]).remove(0);
    let at = bad.len() - 16;
    bad[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    assert!(decode(&bad).is_err());
}

#[test]
fn remote_counts_are_capped_like_local_ones() {
    let g = GlobalLimiter::new(1_000);
    let entries: Vec<_> = (0..100_000u64)
        .map(|k| CountEntry {
            key: k,
            window_start: 10_000,
            period_ms: 10_000,
            count: 1,
            demand: 1,
            left: 0,
        })
        .collect();
    g.apply(&entries, 15_000);
    assert!(g.len() <= g.capacity());
    assert!(g.capacity() <= 1_024);
    assert!(g.evictions() > 0);
}

#[test]
fn peers_are_capped_and_forgotten() {
    let mut p = Peers::default();
    for i in 0..MAX_PEERS {
        assert!(p.heard(&format!("n{i}"), 0));
    }
    assert!(!p.heard("one-more", 1));
    assert_eq!(p.refused, 1);
    assert!(
        p.heard("one-more", FORGET_MS + 1),
        "the silent ones are forgotten"
    );
    assert_eq!(
        p.mode(FORGET_MS + 2, DELTA),
        Mode::Connected {
            nodes: 2,
            round_ms: DELTA
        }
    );
}

#[test]
fn counter_is_80_bytes() {
    assert_eq!(std::mem::size_of::<GlobalCounter>(), 80);
}
