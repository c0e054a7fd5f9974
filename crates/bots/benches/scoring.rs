//! `observe` + `score` for a warm client in a full table (65,536 clients)
//! with a merged fleet view present; plus the per-request helpers
//! (`ua_class`, `RouteKey::new`) and the once-per-second `snapshot`.
//!
//! Measured on the shared 2-core dev machine (bench profile, 3 s, nice):
//! observe+score 146 ns; with observe_response 177 ns; ua_class (Chrome)
//! 303 ns; RouteKey::new 66 ns; snapshot of the full table + to_bytes 3.4 ms.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade_bots::behaviour::{
    ua_class, ClientKey, ClientTable, FleetIndex, FleetShare, Observation, RequestSignals,
    RouteKey, DEFAULT_CLIENTS,
};
use palisade_policy::learn::{stable_hash, FleetView};
use std::cell::Cell;

const T0: u64 = 1_700_000_000_000;
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn key(i: u32) -> ClientKey {
    ClientKey(stable_hash(&i.to_le_bytes()))
}

fn obs(i: u32) -> Observation {
    Observation {
        route: RouteKey::new("shop.example", "GET", &format!("/r{}", i % 300)),
        path_hash: stable_hash(&i.to_le_bytes()),
        is_html: matches!(i % 3, 0),
        is_asset: !matches!(i % 3, 0),
        has_cookie: true,
    }
}

/// A table with `DEFAULT_CLIENTS` clients of 8 requests each.
fn fill(t: &ClientTable, salt: u32) {
    for i in 0..DEFAULT_CLIENTS as u32 {
        for j in 0..8u64 {
            t.observe(key(i ^ salt), &obs(i), T0 + u64::from(i % 1000) + j * 700);
            t.observe_response(
                key(i ^ salt),
                200,
                j == 0,
                T0 + u64::from(i % 1000) + j * 700,
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let local = ClientTable::new(DEFAULT_CLIENTS);
    fill(&local, 0);
    // A peer that saw half of the same clients (and others).
    let peer = ClientTable::new(DEFAULT_CLIENTS);
    fill(&peer, 0x8000);
    let now0 = T0 + 10_000;
    let mut view: FleetView<FleetShare> = FleetView::default();
    view.set_peer("peer", peer.snapshot(now0), 64);
    let own = local.snapshot(now0);
    let fleet = FleetIndex::build(view.rebuild(&FleetShare::default()), &own);
    assert!(fleet.len().0 > 0 && fleet.len().1 > 0);

    let signals = RequestSignals {
        ua: ua_class(CHROME),
        accept_language: true,
        sec_fetch: true,
        sec_ch_ua: true,
        accept_encoding: true,
        ..RequestSignals::default()
    };
    // A client the peer shared (so the fleet lookup hits).
    let warm = peer.snapshot(now0).clients()[0].0;
    let warm = ClientKey(warm);
    let o = obs(0);
    let now = Cell::new(now0);
    c.bench_function(
        "observe+score, warm client, 65,536 clients, fleet view",
        |b| {
            b.iter(|| {
                let t = now.get() + 1_300;
                now.set(t);
                local.observe(warm, black_box(&o), t);
                black_box(local.score(warm, &signals, o.route, &fleet, t))
            })
        },
    );
    c.bench_function("observe+observe_response+score", |b| {
        b.iter(|| {
            let t = now.get() + 1_300;
            now.set(t);
            local.observe(warm, black_box(&o), t);
            let s = local.score(warm, &signals, o.route, &fleet, t);
            local.observe_response(warm, 200, false, t + 20);
            black_box(s)
        })
    });
    c.bench_function("ua_class (Chrome)", |b| {
        b.iter(|| ua_class(black_box(CHROME)))
    });
    c.bench_function("RouteKey::new", |b| {
        b.iter(|| {
            RouteKey::new(
                black_box("shop.example:443"),
                "GET",
                black_box("/api/users/12345?x=1"),
            )
        })
    });
    c.bench_function("snapshot (65,536 clients) + to_bytes", |b| {
        b.iter(|| black_box(local.snapshot(now0).to_bytes().len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
