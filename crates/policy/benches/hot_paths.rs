//! Benchmarks of the per-request hot paths of the policy crate.
//!
//! Run with `cargo bench -p palisade-policy --bench hot_paths`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use palisade_policy::decisions::{Decision, DecisionAction, DecisionSet, Scope};
use palisade_policy::ratelimit::global::{GlobalLimiter, Mode};
use palisade_policy::ratelimit::{LimitSpec, RateLimiter};
use palisade_policy::request::Geo;

const NOW: u64 = 1_700_000_000_000;

/// Spreads `i` over the IPv4 space (an odd multiplier is a bijection mod 2^32).
fn spread(i: u32) -> u32 {
    i.wrapping_mul(0x9e37_79b1)
}

fn decision(id: u64, scope: Scope, value: String) -> Decision {
    Decision {
        id,
        scope,
        value,
        action: DecisionAction::Ban,
        reason: "bench".into(),
        origin: "operator".into(),
        simulated: false,
        created_at: NOW,
        expires_at: Some(NOW + 3_600_000),
    }
}

/// 1,000,000 IP decisions (even `i`), up to 1,000 v4 CIDRs of lengths 8..=30 and 24 v6 ones, 4 countries.
fn big_set() -> DecisionSet {
    let mut set = DecisionSet::new();
    let mut id = 0;
    for i in 0..1_000_000u32 {
        id += 1;
        let ip = Ipv4Addr::from(spread(2 * i));
        set.insert(decision(id, Scope::Ip, ip.to_string()))
            .expect("valid ip");
    }
    for j in 0..1_000u32 {
        id += 1;
        let len = 8 + j % 23;
        let net = Ipv4Addr::from(spread(0x4000_0000 + j * 7_919));
        set.insert(decision(id, Scope::Cidr, format!("{net}/{len}")))
            .expect("valid cidr");
    }
    for j in 0..24u16 {
        id += 1;
        let net = Ipv6Addr::new(0x2001, 0xdb8, j, 0, 0, 0, 0, 0);
        set.insert(decision(id, Scope::Cidr, format!("{net}/{}", 32 + j * 4)))
            .expect("valid cidr");
    }
    for c in ["CN", "RU", "KP", "IR"] {
        id += 1;
        set.insert(decision(id, Scope::Country, c.into()))
            .expect("valid country");
    }
    set
}

fn bench_decisions(c: &mut Criterion) {
    let set = big_set();
    let geo = Geo {
        country: Some(*b"FR"),
        asn: Some(64_500),
    };
    const N: usize = 1 << 16;
    let hits: Vec<IpAddr> = (0..N as u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(spread(2 * (i * 15 % 1_000_000)))))
        .collect();
    // Odd `i` are not in the set; keep those outside every CIDR.
    let misses: Vec<IpAddr> = (0..)
        .map(|i: u32| IpAddr::V4(Ipv4Addr::from(spread(2 * i + 1))))
        .filter(|&ip| set.lookup(ip, geo, NOW).is_none())
        .take(N)
        .collect();
    assert!(hits.iter().all(|&ip| set.lookup(ip, geo, NOW).is_some()));

    let mut g = c.benchmark_group("decisions");
    let mut i = 0;
    g.bench_function(BenchmarkId::new("lookup_1m", "hit"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup(black_box(hits[i]), geo, NOW))
        })
    });
    // Listed addresses in an order unrelated to insertion (the slab is read at
    // random, as a blocklist's clients arrive), unlike `hit` (a fixed stride).
    let random_hits: Vec<IpAddr> = (0..N as u32)
        .map(|i| {
            let j = i.wrapping_mul(0x2545_f491).rotate_left(13) % 1_000_000;
            IpAddr::V4(Ipv4Addr::from(spread(2 * j)))
        })
        .collect();
    assert!(random_hits
        .iter()
        .all(|&ip| set.lookup(ip, geo, NOW).is_some()));
    g.bench_function(BenchmarkId::new("lookup_1m", "hit_random"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup(black_box(random_hits[i]), geo, NOW))
        })
    });
    g.bench_function(BenchmarkId::new("lookup_1m", "miss"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup(black_box(misses[i]), geo, NOW))
        })
    });
    // What the request path calls (the pipeline and the accept-time check):
    // id, action and shadow mode, read from the entry alone.
    g.bench_function(BenchmarkId::new("lookup_hit_1m", "hit"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup_hit(black_box(hits[i]), geo, NOW))
        })
    });
    g.bench_function(BenchmarkId::new("lookup_hit_1m", "hit_random"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup_hit(black_box(random_hits[i]), geo, NOW))
        })
    });
    g.bench_function(BenchmarkId::new("lookup_hit_1m", "miss"), |b| {
        b.iter(|| {
            i = (i + 1) & (N - 1);
            black_box(set.lookup_hit(black_box(misses[i]), geo, NOW))
        })
    });
    g.finish();
}

fn bench_ratelimit(c: &mut Criterion) {
    let spec = LimitSpec {
        requests: u64::MAX,
        period_ms: 60_000,
        mitigation_timeout_ms: 0,
    };
    let mut g = c.benchmark_group("ratelimit");

    let rl = RateLimiter::new(100_000);
    let mut now = NOW;
    g.bench_function(BenchmarkId::new("hit", "existing_key"), |b| {
        b.iter(|| {
            now += 1;
            black_box(rl.hit(black_box(0xdead_beef), &spec, now))
        })
    });

    // A global limit on a node of a 5-node mesh: the same lookup plus the
    // allowance (the rounds run elsewhere).
    let gl = GlobalLimiter::new(100_000);
    gl.set_mode(Mode::Connected {
        nodes: 5,
        round_ms: 50,
    });
    let mut now = NOW;
    g.bench_function(BenchmarkId::new("hit_global", "existing_key"), |b| {
        b.iter(|| {
            now += 1;
            black_box(gl.hit(black_box(0xdead_beef), &spec, now))
        })
    });

    const KEYS: u64 = 1_000_000;
    let rl = RateLimiter::new(2_000_000);
    for k in 0..KEYS {
        rl.hit(k, &spec, NOW);
    }
    let mut k = 0;
    g.bench_function(BenchmarkId::new("hit", "rotating_1m"), |b| {
        b.iter(|| {
            k = (k + 1) % KEYS;
            black_box(rl.hit(black_box(k), &spec, NOW + 1))
        })
    });
    g.finish();
    assert!(rl.len() as u64 >= KEYS * 9 / 10, "len {}", rl.len());
}

/// The whole pipeline over the 50-rule example policy (`examples/bench-policy.toml`)
/// with 1M decisions, for a benign browser request that matches nothing: the
/// per-request cost of the security checks in the edge.
fn bench_rules(c: &mut Criterion) {
    use palisade_policy::pipeline::Checks;
    use palisade_policy::{Geo, Policy, Request};
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/bench-policy.toml"
    ))
    .expect("examples/bench-policy.toml");
    let policy = Policy::from_toml(&src, "bench-policy.toml").expect("bench policy compiles");
    assert_eq!(policy.rules.len(), 50);
    let decisions = big_set();
    let limiter = RateLimiter::new(1_000_000);
    let mut headers = http::HeaderMap::new();
    for (k, v) in [
        ("host", "shop.example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.9"),
        ("cookie", "session=abc123; theme=dark"),
    ] {
        headers.insert(k, http::HeaderValue::from_static(v));
    }
    let req = Request {
        client_ip: "198.18.0.1".parse().expect("literal"),
        host: "shop.example.com",
        method: "GET",
        uri: "/products/view?id=42&ref=home",
        raw_uri: "/products/view?id=42&ref=home",
        headers: &headers,
        geo: Geo::default(),
        client: palisade_policy::Client::UNKNOWN,
    };
    let checks = Checks {
        under_attack: false,
        policy: &policy,
        decisions: &decisions,
        limiter: &limiter,
        global: None,
    };
    let mut matches = 0usize;
    assert_eq!(
        checks.evaluate(&req, NOW, &mut |_| matches += 1),
        palisade_policy::Verdict::Continue
    );
    assert_eq!(matches, 0, "the benchmark request must match no rule");
    let mut g = c.benchmark_group("rules");
    g.bench_function("pipeline_50_rules_1m_decisions", |b| {
        b.iter(|| checks.evaluate(std::hint::black_box(&req), NOW, &mut |_| {}))
    });
    g.bench_function("rule_eval_each", |b| {
        b.iter(|| {
            policy
                .rules
                .iter()
                .filter(|r| r.expression.eval(std::hint::black_box(&req)))
                .count()
        })
    });
    g.finish();
}

/// What the edge does once per request before the pipeline: the host and
/// the target for rules, for a target that is already normal (borrowed, no
/// allocation) and for one that is not.
fn bench_normalize(c: &mut Criterion) {
    use palisade_policy::normalize::{normalize_host, normalize_uri};
    let mut g = c.benchmark_group("normalize");
    g.bench_function(BenchmarkId::new("uri", "already_normal"), |b| {
        b.iter(|| normalize_uri(black_box(b"/products/view?id=42&ref=home")).len())
    });
    g.bench_function(BenchmarkId::new("uri", "needs_work"), |b| {
        b.iter(|| normalize_uri(black_box(b"/static//x/../%61dmin;p=1/%2e/view?id=42")).len())
    });
    g.bench_function(BenchmarkId::new("host", "already_normal"), |b| {
        b.iter(|| normalize_host(black_box(b"shop.example.com:8080")).len())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_decisions,
    bench_ratelimit,
    bench_rules,
    bench_normalize
);
criterion_main!(benches);
