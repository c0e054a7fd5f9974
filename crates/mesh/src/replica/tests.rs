//! The replica over an in-memory transport with injected faults.

use std::collections::{BTreeMap, HashMap, HashSet};

use palisade_policy::decisions::Scope;
use palisade_policy::{Decision, DecisionAction};

use super::*;

/// xorshift64*: deterministic, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The source of truth: a compacted log like the NATS stream.
#[derive(Default)]
struct Log {
    last_seq: u64,
    by_seq: BTreeMap<u64, DecisionOp>,
    by_key: HashMap<String, u64>,
}

impl Log {
    fn publish(&mut self, op: DecisionOp) -> u64 {
        self.last_seq += 1;
        if let Some(old) = self.by_key.insert(op.key(), self.last_seq) {
            self.by_seq.remove(&old);
        }
        self.by_seq.insert(self.last_seq, op);
        self.last_seq
    }

    fn after(&self, seq: u64) -> impl Iterator<Item = DecisionUpdate> + '_ {
        self.by_seq
            .range(seq + 1..)
            .map(|(&seq, op)| DecisionUpdate {
                seq,
                op: op.clone(),
            })
    }

    /// What every replica must end up with: key -> decision.
    fn expected(&self) -> BTreeMap<String, Decision> {
        self.by_seq
            .values()
            .filter_map(|op| match op {
                DecisionOp::Upsert { decision } => Some((op.key(), decision.clone())),
                DecisionOp::Delete { .. } => None,
            })
            .collect()
    }
}

fn contents(r: &DecisionReplica) -> BTreeMap<String, Decision> {
    r.set()
        .iter()
        .map(|d| {
            (
                format!("{}:{}", d.scope.as_str(), d.value()),
                d.to_decision(),
            )
        })
        .collect()
}

/// Key number `k` (values already normalized); its origin id is `k + 1`.
fn key(k: u64) -> (Scope, String) {
    match k % 4 {
        0 => (Scope::Ip, format!("10.0.{}.{}", k / 256, k % 256)),
        1 => (Scope::Cidr, format!("10.{}.0.0/16", k % 256)),
        2 => (Scope::Asn, (64_500 + k).to_string()),
        _ => (
            Scope::Country,
            format!(
                "{}{}",
                char::from(b'A' + (k % 26) as u8),
                char::from(b'A' + ((k / 26) % 26) as u8)
            ),
        ),
    }
}

fn random_op(rng: &mut Rng, keys: u64) -> DecisionOp {
    let k = rng.below(keys);
    let (scope, value) = key(k);
    if rng.chance(30) {
        DecisionOp::Delete { scope, value }
    } else {
        DecisionOp::Upsert {
            decision: Decision {
                id: k + 1,
                scope,
                value,
                action: if rng.chance(80) {
                    DecisionAction::Ban
                } else {
                    DecisionAction::Allow
                },
                reason: format!("r{}", rng.below(1000)),
                origin: "test".into(),
                simulated: rng.chance(10),
                created_at: rng.below(1_000_000),
                expires_at: None,
            },
        }
    }
}

/// A delivery in flight.
struct Packet {
    due: u64,
    /// Reorders packets due at the same tick.
    jitter: u64,
    session: u64,
    n: u64,
    update: DecisionUpdate,
}

/// Fault rates, in percent.
#[derive(Clone, Copy)]
struct Faults {
    drop: u64,
    dup: u64,
    delay: u64,
    partition: u64,
    restart: u64,
}

/// One edge following the log through a faulty network for `ticks` ticks,
/// then reconnecting over a healthy one. Returns the number of resyncs.
fn simulate(seed: u64, ticks: u64, keys: u64, f: Faults) -> u64 {
    let mut rng = Rng::new(seed);
    let mut log = Log::default();
    let mut follower = Follower::new(DecisionReplica::new());
    let mut session = follower.subscribe();
    // The server side of the subscription: cursor and delivery counter.
    let mut cursor = session.from_seq;
    let mut sent = 0u64;
    let mut in_flight: Vec<Packet> = Vec::new();
    let mut partitioned_until = 0u64;
    let mut applied_seqs = HashSet::new();
    let mut resyncs = 0;

    let deliver = |follower: &mut Follower, p: Packet, applied: &mut HashSet<u64>| {
        let seq = p.update.seq;
        match follower.on_delivery(p.session, p.n, p.update) {
            Step::Applied(Applied::Duplicate) | Step::Stale => None,
            Step::Applied(a) => {
                assert!(!matches!(a, Applied::Rejected(_)), "{a:?}");
                assert!(applied.insert(seq), "seq {seq} applied twice");
                None
            }
            Step::Resync(s) => Some(s),
        }
    };

    for tick in 0..ticks {
        // The control plane writes.
        for _ in 0..rng.below(3) {
            log.publish(random_op(&mut rng, keys));
        }
        if rng.chance(f.partition) {
            partitioned_until = tick + 1 + rng.below(20);
        }
        // The server pushes what the session has not been sent yet.
        let fresh: Vec<DecisionUpdate> = log.after(cursor).collect();
        for update in fresh {
            cursor = update.seq;
            sent += 1;
            if tick < partitioned_until || rng.chance(f.drop) {
                continue;
            }
            let copies = if rng.chance(f.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = if rng.chance(f.delay) { rng.below(8) } else { 0 };
                let jitter = if rng.chance(f.delay) { rng.below(4) } else { 0 };
                in_flight.push(Packet {
                    due: tick + delay,
                    jitter,
                    session: session.id,
                    n: sent,
                    update: update.clone(),
                });
            }
        }
        // The edge receives what is due, in a shuffled order among equals.
        let mut due: Vec<Packet> = Vec::new();
        let mut i = 0;
        while i < in_flight.len() {
            if in_flight[i].due <= tick {
                due.push(in_flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.due, p.jitter, p.n));
        for p in due {
            if let Some(s) = deliver(&mut follower, p, &mut applied_seqs) {
                // The edge resubscribes: the server starts a new cursor.
                session = s;
                cursor = s.from_seq;
                sent = 0;
                resyncs += 1;
            }
        }
        // An edge restart: persist, restore, reconnect from disk.
        if rng.chance(f.restart) {
            let json = serde_json::to_string(&follower.replica().snapshot()).unwrap();
            let snap: ReplicaSnapshot = serde_json::from_str(&json).unwrap();
            follower = Follower::new(DecisionReplica::restore(snap).unwrap());
            session = follower.subscribe();
            cursor = session.from_seq;
            sent = 0;
        }
    }

    // The network heals; the edge reconnects from its last_seq.
    let s = follower.subscribe();
    for (n, update) in log.after(s.from_seq).enumerate() {
        let p = Packet {
            due: 0,
            jitter: 0,
            session: s.id,
            n: n as u64 + 1,
            update,
        };
        assert!(deliver(&mut follower, p, &mut applied_seqs).is_none());
    }
    assert_eq!(follower.replica().last_seq(), log.last_seq, "seed {seed}");
    assert_eq!(contents(follower.replica()), log.expected(), "seed {seed}");
    resyncs
}

const CALM: Faults = Faults {
    drop: 0,
    dup: 0,
    delay: 0,
    partition: 0,
    restart: 0,
};

#[test]
fn converges_without_faults() {
    for seed in 0..20 {
        assert_eq!(simulate(seed, 200, 30, CALM), 0);
    }
}

#[test]
fn converges_under_drops() {
    let f = Faults { drop: 10, ..CALM };
    let resyncs: u64 = (0..200).map(|s| simulate(s, 300, 40, f)).sum();
    assert!(resyncs > 0);
}

#[test]
fn converges_under_duplicates_and_reordering() {
    let f = Faults {
        dup: 20,
        delay: 20,
        ..CALM
    };
    let resyncs: u64 = (0..200).map(|s| simulate(s, 300, 40, f)).sum();
    assert!(resyncs > 0);
}

#[test]
fn converges_across_partitions_and_restarts() {
    let f = Faults {
        partition: 3,
        restart: 2,
        ..CALM
    };
    for seed in 0..200 {
        simulate(seed, 300, 40, f);
    }
}

#[test]
fn converges_under_every_fault_at_once() {
    let f = Faults {
        drop: 5,
        dup: 5,
        delay: 10,
        partition: 2,
        restart: 1,
    };
    for seed in 0..500 {
        simulate(seed, 400, 25, f);
    }
}

fn ban(id: u64, scope: Scope, value: &str) -> Decision {
    Decision {
        id,
        scope,
        value: value.into(),
        action: DecisionAction::Ban,
        reason: String::new(),
        origin: "t".into(),
        simulated: false,
        created_at: 0,
        expires_at: None,
    }
}

fn up(seq: u64, d: Decision) -> DecisionUpdate {
    DecisionUpdate {
        seq,
        op: DecisionOp::Upsert { decision: d },
    }
}

#[test]
fn applies_each_seq_once_and_in_order() {
    let mut r = DecisionReplica::new();
    let d = ban(1, Scope::Ip, "1.2.3.4");
    assert_eq!(
        r.apply(up(5, d.clone())),
        Applied::Upserted { replaced: false }
    );
    assert_eq!(r.apply(up(5, d.clone())), Applied::Duplicate);
    assert_eq!(r.apply(up(3, d.clone())), Applied::Duplicate);
    let del = DecisionUpdate {
        seq: 9,
        op: DecisionOp::Delete {
            scope: Scope::Ip,
            value: "::ffff:1.2.3.4".into(),
        },
    };
    assert_eq!(r.apply(del.clone()), Applied::Deleted { found: true });
    assert_eq!(r.apply(del), Applied::Duplicate);
    assert_eq!(r.last_seq(), 9);
    assert!(r.set().is_empty());
}

#[test]
fn reused_ids_do_not_lose_decisions() {
    let mut r = DecisionReplica::new();
    r.apply(up(1, ban(7, Scope::Ip, "1.1.1.1")));
    r.apply(up(2, ban(7, Scope::Ip, "2.2.2.2")));
    // Same key again with its own id: kept.
    r.apply(up(3, ban(7, Scope::Ip, "1.1.1.1")));
    assert_eq!(r.set().len(), 2);
    assert_eq!(r.set().get_key(Scope::Ip, "1.1.1.1").unwrap().id, 7);
    assert_eq!(
        r.set().get_key(Scope::Ip, "2.2.2.2").unwrap().id,
        LOCAL_ID_BASE | 2
    );
    // Invalid values are rejected but their sequence is consumed.
    assert!(matches!(
        r.apply(up(4, ban(8, Scope::Ip, "nope"))),
        Applied::Rejected(_)
    ));
    assert_eq!(r.last_seq(), 4);
}

#[test]
fn snapshot_round_trips() {
    let mut r = DecisionReplica::new();
    r.apply(up(1, ban(1, Scope::Cidr, "10.1.2.3/8")));
    r.apply(up(4, ban(2, Scope::Country, "fr")));
    let snap = r.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back = DecisionReplica::restore(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back.last_seq(), 4);
    assert_eq!(contents(&back), contents(&r));
    assert_eq!(back.set().get_key(Scope::Cidr, "10.0.0.0/8").unwrap().id, 1);
}

#[test]
fn follower_flags_gaps_and_ignores_stale_sessions() {
    let mut f = Follower::new(DecisionReplica::new());
    let s = f.subscribe();
    assert!(matches!(
        f.on_delivery(s.id, 1, up(1, ban(1, Scope::Ip, "1.1.1.1"))),
        Step::Applied(_)
    ));
    // Delivery 2 is missing.
    let Step::Resync(s2) = f.on_delivery(s.id, 3, up(3, ban(3, Scope::Ip, "3.3.3.3"))) else {
        panic!("expected a resync");
    };
    assert_eq!(s2.from_seq, 1);
    assert_eq!(
        f.on_delivery(s.id, 2, up(2, ban(2, Scope::Ip, "2.2.2.2"))),
        Step::Stale
    );
    assert_eq!(f.resyncs(), 1);
}
