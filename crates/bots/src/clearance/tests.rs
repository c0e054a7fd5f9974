use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NOW: u64 = 1_800_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ready(seed: u8) -> Clearances {
    let c = Clearances::new();
    c.set_keys(KeyRing::new([seed; 32], [0xaa; 32], NOW - 1000));
    c
}

fn cleared(c: &Clearances, s: &Settings, who: IpAddr, ua: &[u8]) -> String {
    let ch = c.challenge(s, who, ua, 8, 50, [1; 12], NOW).unwrap();
    let n = solve(&ch, 8);
    c.redeem(s, &ch, n, who, ua, [2; 12], NOW + 10).unwrap().0
}

#[test]
fn a_solved_challenge_earns_a_clearance_that_any_edge_accepts() {
    let s = Settings::default();
    let a = ready(3);
    let b = ready(3); // another edge, same ring
    let who = ip("198.51.100.7");
    let ch = a
        .challenge(&s, who, b"Mozilla/5.0", 10, 60, [7; 12], NOW)
        .unwrap();
    assert_eq!(ch.len(), token::TOKEN_LEN);
    // Unsolved: refused.
    let wrong = (0u64..).find(|&n| !work_ok(&ch, n, 10)).unwrap();
    assert_eq!(
        b.redeem(&s, &ch, wrong, who, b"Mozilla/5.0", [1; 12], NOW),
        Err(Refusal::BadWork)
    );
    let n = solve(&ch, 10);
    let (cl, ttl) = b
        .redeem(&s, &ch, n, who, b"Mozilla/5.0", [9; 12], NOW + 500)
        .unwrap();
    assert_eq!(ttl, s.ttl_ms);
    // Redeemed once per node.
    assert_eq!(
        b.redeem(&s, &ch, n, who, b"Mozilla/5.0", [9; 12], NOW + 600),
        Err(Refusal::Replayed)
    );
    // The clearance passes on both edges, also from another address of the /24.
    for edge in [&a, &b] {
        let t = edge
            .check(&s, &cl, who, b"Mozilla/5.0", NOW + 1000)
            .unwrap();
        assert_eq!(
            (t.kind, t.bits, t.score, t.id),
            (Kind::Clearance, 10, 60, [9; 12])
        );
        assert!(edge
            .check(&s, &cl, ip("198.51.100.200"), b"Mozilla/5.0", NOW + 1000)
            .is_ok());
    }
    // A challenge token is not a clearance.
    assert_eq!(
        a.check(&s, &ch, who, b"Mozilla/5.0", NOW + 1000),
        Err(Refusal::WrongKind)
    );
}

#[test]
fn forged_expired_and_rebound_clearances_are_refused() {
    let s = Settings::default();
    let a = ready(3);
    let who = ip("203.0.113.9");
    let cl = cleared(&a, &s, who, b"UA");
    // Another network, another User-Agent: refused, cached or not.
    for _ in 0..2 {
        assert_eq!(
            a.check(&s, &cl, ip("203.0.114.9"), b"UA", NOW + 100),
            Err(Refusal::Rebound)
        );
        assert_eq!(
            a.check(&s, &cl, who, b"UA2", NOW + 100),
            Err(Refusal::Rebound)
        );
        assert!(a.check(&s, &cl, who, b"UA", NOW + 100).is_ok());
    }
    // Expired, cached or not.
    let late = NOW + s.ttl_ms + 11;
    assert_eq!(a.check(&s, &cl, who, b"UA", late), Err(Refusal::Expired));
    assert_eq!(
        ready(3).check(&s, &cl, who, b"UA", late),
        Err(Refusal::Expired)
    );
    // Forged: another fleet's key, or one payload byte changed.
    let other = ready(4);
    let forged = cleared(&other, &s, who, b"UA");
    assert_eq!(
        a.check(&s, &forged, who, b"UA", NOW + 100),
        Err(Refusal::BadSignature)
    );
    let mut bytes = cl.clone().into_bytes();
    bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = a.check(&s, &tampered, who, b"UA", NOW + 100);
    assert!(
        matches!(r, Err(Refusal::BadSignature) | Err(Refusal::Malformed)),
        "{r:?}"
    );
    for junk in ["", "x", &"A".repeat(token::TOKEN_LEN), &cl[..cl.len() - 1]] {
        assert!(a.check(&s, junk, who, b"UA", NOW).is_err());
    }
    // A ring without keys verifies nothing.
    assert_eq!(
        Clearances::new().check(&s, &cl, who, b"UA", NOW),
        Err(Refusal::UnknownKey)
    );
}

#[test]
fn a_clearance_minted_before_a_rotation_passes_after_it() {
    let s = Settings::default();
    let mut ring = KeyRing::new([5; 32], [0xaa; 32], NOW - 1000);
    let a = Clearances::new();
    a.set_keys(ring.clone());
    let who = ip("192.0.2.1");
    let before = cleared(&a, &s, who, b"UA");
    ring.rotate([6; 32], NOW + 20, s.ttl_ms);
    let b = Clearances::new(); // an edge that never saw the old ring
    b.set_keys(ring.clone());
    a.set_keys(ring.clone());
    for edge in [&a, &b] {
        assert!(edge.check(&s, &before, who, b"UA", NOW + 30).is_ok());
    }
    let after = cleared(&b, &s, who, b"UA");
    assert_eq!(
        Token::decode_unverified(&after).unwrap().key_id,
        2,
        "the new key signs"
    );
    // Once the old key's verification time passed, a later rotation drops
    // it: even a token of key 1 that claims a longer life is refused.
    let old_keys = Keys::new(KeyRing::new([5; 32], [0xaa; 32], NOW - 1000));
    let mut long = Token::decode_unverified(&before).unwrap();
    long.expires_ms = NOW + 10 * s.ttl_ms;
    let long = long.sign(&old_keys, NOW).unwrap();
    ring.rotate([7; 32], NOW + s.ttl_ms + 100, s.ttl_ms);
    b.set_keys(ring);
    assert_eq!(
        b.check(&s, &long, who, b"UA", NOW + s.ttl_ms + 100),
        Err(Refusal::UnknownKey)
    );
    assert_eq!(
        b.check(&s, &before, who, b"UA", NOW + s.ttl_ms + 100),
        Err(Refusal::Expired)
    );
}

#[test]
fn too_little_work_is_refused_before_the_signature() {
    let s = Settings {
        min_bits: 12,
        ..Settings::default()
    };
    let a = ready(1);
    let who = ip("192.0.2.1");
    // A token asking for 4 bits (forged or from a lower policy) is refused.
    let ch = a.challenge(&s, who, b"UA", 4, 50, [3; 12], NOW).unwrap();
    let n = solve(&ch, 4);
    assert_eq!(
        a.redeem(&s, &ch, n, who, b"UA", [0; 12], NOW),
        Err(Refusal::BadWork)
    );
    let ch = a.challenge(&s, who, b"UA", 12, 50, [4; 12], NOW).unwrap();
    let n = solve(&ch, 12);
    assert!(a.redeem(&s, &ch, n, who, b"UA", [0; 12], NOW).is_ok());
}

#[test]
fn bindings_follow_the_policy() {
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6));
    let v6_same64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
    let v6_other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 3, 4, 5, 6));
    let b = Binding::default();
    assert_eq!(b.digest(v6, b"x"), b.digest(v6_same64, b"x"));
    assert_ne!(b.digest(v6, b"x"), b.digest(v6_other, b"x"));
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(
        b.digest(mapped, b"x"),
        b.digest(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77)), b"x")
    );
    let loose = Binding {
        ipv4_prefix: 0,
        ipv6_prefix: 0,
        user_agent: false,
    };
    assert_eq!(loose.digest(v6, b"x"), loose.digest(mapped, b"y"));
    let exact = Binding {
        ipv4_prefix: 32,
        ..Binding::default()
    };
    assert_ne!(
        exact.digest(ip("192.0.2.1"), b"x"),
        exact.digest(ip("192.0.2.2"), b"x")
    );
}

#[test]
fn challenges_expire_and_are_bound() {
    let s = Settings::default();
    let a = ready(1);
    let who = ip("192.0.2.1");
    let ch = a.challenge(&s, who, b"UA", 4, 50, [3; 12], NOW).unwrap();
    let n = solve(&ch, 4);
    assert_eq!(
        a.redeem(&s, &ch, n, ip("192.0.3.1"), b"UA", [0; 12], NOW),
        Err(Refusal::Rebound)
    );
    assert_eq!(
        a.redeem(&s, &ch, n, who, b"UA", [0; 12], NOW + s.challenge_ttl_ms),
        Err(Refusal::Expired)
    );
    assert_eq!(
        a.challenge(&s, who, b"UA", 99, 50, [3; 12], NOW)
            .map(|t| Token::decode_unverified(&t).unwrap().bits),
        Some(MAX_BITS)
    );
}

#[test]
fn the_cache_is_capped() {
    let s = Settings::default();
    let a = ready(1);
    let who = ip("192.0.2.1");
    let ch = a.challenge(&s, who, b"UA", 0, 50, [3; 12], NOW).unwrap();
    let cl = a.redeem(&s, &ch, 0, who, b"UA", [0; 12], NOW).unwrap().0;
    // Many distinct valid-looking but forged cookies are not cached at all.
    let mut bytes = cl.into_bytes();
    for i in 0..2_000u32 {
        let j = 80 + (i as usize % 60);
        bytes[j] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(i as usize / 60) % 26];
        let t = String::from_utf8(bytes.clone()).unwrap();
        let _ = a.check(&s, &t, who, b"UA", NOW);
    }
    assert!(a.stats().cache_entries <= 1);
    // Many valid clearances: capped.
    let small = Clearances::with_cap(64);
    small.set_keys(a.keys().unwrap().ring().clone());
    for i in 0..300u64 {
        let t = Token {
            kind: Kind::Clearance,
            key_id: 0,
            issued_ms: NOW + i,
            expires_ms: NOW + 100_000,
            binding: s.binding.digest(who, b"UA"),
            id: [(i % 251) as u8; 12],
            bits: 0,
            score: 50,
        };
        let text = t.sign(&a.keys().unwrap(), NOW).unwrap();
        assert!(small.check(&s, &text, who, b"UA", NOW).is_ok());
        assert!(small.stats().cache_entries <= 64);
    }
    assert!(small.stats().cache_entries > 0);
}
