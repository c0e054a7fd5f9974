//! What a clearance costs per request: checking a cookie the edge verified
//! before (cached: a hash lookup and a comparison; with a changed address
//! or User-Agent, one SHA-256 more), the first check of a cookie (Ed25519
//! verification), minting a challenge, and redeeming a solved one.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade_bots::clearance::{solve, Clearances, KeyRing, Settings};
use std::net::IpAddr;

const NOW: u64 = 1_800_000_000_000;
const UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

fn ready() -> Clearances {
    let c = Clearances::new();
    c.set_keys(KeyRing::new([7; 32], [9; 32], NOW - 1_000));
    c
}

fn clearance(c: &Clearances, s: &Settings, ip: IpAddr) -> String {
    let ch = c.challenge(s, ip, UA, 8, 60, [1; 12], NOW).unwrap();
    let n = solve(&ch, 8);
    c.redeem(s, &ch, n, ip, UA, [2; 12], NOW).unwrap().0
}

fn bench(cr: &mut Criterion) {
    let s = Settings::default();
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let other: IpAddr = "198.51.100.8".parse().unwrap();
    let c = ready();
    let cookie = clearance(&c, &s, ip);
    assert!(c.check(&s, &cookie, ip, UA, NOW + 1).is_ok());
    cr.bench_function("clearance_check_cached", |b| {
        b.iter(|| c.check(&s, black_box(&cookie), ip, UA, NOW + 1).is_ok())
    });
    let mut flip = false;
    cr.bench_function("clearance_check_cached_new_address", |b| {
        b.iter(|| {
            flip = !flip;
            let who = if flip { ip } else { other };
            c.check(&s, black_box(&cookie), who, UA, NOW + 1).is_ok()
        })
    });
    cr.bench_function("clearance_check_uncached", |b| {
        b.iter(|| {
            // A fresh edge: every check verifies the signature.
            let fresh = Clearances::with_cap(16);
            fresh.set_keys(KeyRing::new([7; 32], [9; 32], NOW - 1_000));
            fresh.check(&s, black_box(&cookie), ip, UA, NOW + 1).is_ok()
        })
    });
    cr.bench_function("clearance_set_keys_only", |b| {
        b.iter(|| {
            let fresh = Clearances::with_cap(16);
            fresh.set_keys(KeyRing::new([7; 32], [9; 32], NOW - 1_000));
            black_box(fresh)
        })
    });
    cr.bench_function("challenge_mint", |b| {
        b.iter(|| c.challenge(&s, ip, UA, 16, 40, [3; 12], NOW))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
