use super::baseline::MAX_ROUTES;
use super::share::CLIENT_RECORD;
use super::stats::PathSketch;
use super::*;
use palisade_policy::learn::{stable_hash, FleetView, Mergeable};
use std::net::IpAddr;

const T0: u64 = 1_700_000_000_000;
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn browser() -> RequestSignals {
    RequestSignals {
        ua: ua_class(CHROME),
        accept_language: true,
        sec_fetch: true,
        sec_ch_ua: true,
        accept_encoding: true,
        ..RequestSignals::default()
    }
}

fn route() -> RouteKey {
    RouteKey::new("shop.example", "GET", "/products/1")
}

fn key(n: u32) -> ClientKey {
    ClientKey(stable_hash(&n.to_le_bytes()))
}

fn page(path: &str, cookie: bool) -> Observation {
    Observation {
        route: route(),
        path_hash: stable_hash(path.as_bytes()),
        is_html: true,
        is_asset: false,
        has_cookie: cookie,
    }
}

fn asset(path: &str) -> Observation {
    Observation {
        is_html: false,
        is_asset: true,
        has_cookie: true,
        ..page(path, true)
    }
}

/// A scraper: a page every 2 s exactly, no assets, the cookie it is given
/// never sent back. Returns the time after its last request.
fn scrape(t: &ClientTable, k: ClientKey, n: u32, start: u64) -> u64 {
    let mut now = start;
    for i in 0..n {
        t.observe(k, &page(&format!("/products/{i}"), false), now);
        t.observe_response(k, 200, true, now + 50);
        now += 2_000;
    }
    now
}

/// A person: a page and its six assets in a burst, then a pause to read
/// (5 to 40 s, varying), cookies sent back once given.
fn browse(t: &ClientTable, k: ClientKey, pages: u32, start: u64) -> u64 {
    let mut now = start;
    for p in 0..pages {
        t.observe(k, &page(&format!("/products/{}", p % 3), p > 0), now);
        t.observe_response(k, 200, p == 0, now + 40);
        for a in 0..6u32 {
            now += 30 + 17 * u64::from(a);
            t.observe(k, &asset(&format!("/static/{a}.js")), now);
            t.observe_response(k, 200, false, now + 10);
        }
        now += 5_000 + (u64::from(p) * 7_919) % 35_000;
    }
    now
}

#[test]
fn ua_classes() {
    assert_eq!(ua_class(""), UaClass::Empty);
    assert_eq!(ua_class("   "), UaClass::Empty);
    for lib in [
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Wget/1.21.4",
        "okhttp/4.12.0",
        "Java/17.0.2",
        "libwww-perl/6.72",
        "Scrapy/2.11.0 (+https://scrapy.org)",
        "axios/1.6.7",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    ] {
        assert_eq!(ua_class(lib), UaClass::Library, "{lib}");
    }
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                    HeadlessChrome/120.0.0.0 Safari/537.36";
    assert_eq!(ua_class(headless), UaClass::Headless);
    assert_eq!(ua_class("Mozilla/5.0 PhantomJS/2.1.1"), UaClass::Headless);
    assert_eq!(ua_class(CHROME), UaClass::Chromium);
    assert_eq!(
        ua_class("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"),
        UaClass::Firefox
    );
    assert_eq!(
        ua_class(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like \
             Gecko) Version/17.4 Safari/605.1.15"
        ),
        UaClass::Safari
    );
    assert_eq!(
        ua_class("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        UaClass::DeclaredBot
    );
    assert_eq!(ua_class("MyShopApp/3.2 (iOS 17)"), UaClass::Other);
    // A crawler claiming Chrome is still a declared crawler; a phone brand
    // ending in "bot" is not one.
    let gbot = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X) AppleWebKit/537.36 (KHTML, like \
                Gecko) Chrome/124.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; \
                +http://www.google.com/bot.html)";
    assert_eq!(ua_class(gbot), UaClass::DeclaredBot);
    let cubot = "Mozilla/5.0 (Linux; Android 9; CUBOT_P30) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/120.0 Mobile Safari/537.36";
    assert_eq!(ua_class(cubot), UaClass::Chromium);
    assert_eq!(
        ua_class("Mozilla/5.0 (compatible; MSIE 9.0; Trident/5.0)"),
        UaClass::OtherBrowser
    );
    assert_eq!(ua_class("Mozilla/5.0"), UaClass::Other);
    // Not ASCII, not UTF-8 friendly cuts: no panic, a class.
    assert_eq!(ua_class("ünïcödé/1.0"), UaClass::Other);
    assert!(UaClass::Library.is_automation() && !UaClass::Chromium.is_automation());
}

#[test]
fn route_keys_normalize() {
    let r = |h: &str, m: &str, p: &str| RouteKey::new(h, m, p);
    assert_eq!(
        r("Shop.Example:443", "get", "/products/12?x=1"),
        r("shop.example", "GET", "/products/99")
    );
    assert_eq!(r("a", "GET", "/orders/12345"), r("a", "GET", "/orders/777"));
    assert_eq!(r("a", "GET", "/api/users/1"), r("a", "GET", "/API/users/2"));
    assert_ne!(r("a", "GET", "/api/users"), r("a", "GET", "/api/orders"));
    assert_ne!(r("a", "GET", "/x"), r("a", "POST", "/x"));
    assert_eq!(r("a", "BREW", "/x"), r("a", "WHATEVER", "/x"));
    assert_eq!(
        r("a", "GET", "/12345"),
        r("a", "GET", "/0a1b2c3d4e5f6a7b8c9d")
    );
    // Huge inputs are clipped, not a panic.
    let long = "h".repeat(10_000);
    assert_eq!(
        r(&long, "GET", &"/s".repeat(5000)),
        r(&long[..300], "GET", &"/s".repeat(5000))
    );
    let _ = r(
        "é".repeat(300).as_str(),
        "ÿ",
        &format!("/{}/", "é".repeat(300)),
    );
}

#[test]
fn client_keys() {
    let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let v6c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(ClientKey::ip(v6a), ClientKey::ip(v6b), "one /64");
    assert_ne!(ClientKey::ip(v6a), ClientKey::ip(v6c));
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(ClientKey::ip(v4), ClientKey::ip(mapped));
    assert_ne!(ClientKey::clearance(b"abc"), ClientKey::fingerprint(b"abc"));
}

#[test]
fn library_and_headless_score_low_at_once() {
    let t = ClientTable::new(1024);
    let fleet = FleetIndex::default();
    for ua in [
        "curl/8.4.0",
        "python-requests/2.31",
        "Mozilla/5.0 HeadlessChrome/120.0",
    ] {
        let s = RequestSignals {
            ua: ua_class(ua),
            ..browser()
        };
        let sc = t.score(key(1), &s, route(), &fleet, T0);
        assert!(sc.bot <= 5, "{ua}: {sc:?}");
        assert!(
            sc.reasons.contains(Reasons::LIBRARY_UA) || sc.reasons.contains(Reasons::HEADLESS_UA)
        );
    }
    let full = t.score(key(1), &browser(), route(), &fleet, T0);
    assert!(full.bot >= 80, "{full:?}");
    let bare = RequestSignals {
        accept_language: false,
        sec_fetch: false,
        ..browser()
    };
    let sc = t.score(key(1), &bare, route(), &fleet, T0);
    assert!(sc.bot < full.bot && sc.bot <= 50, "{sc:?}");
    assert!(sc
        .reasons
        .contains(Reasons::NO_ACCEPT_LANGUAGE | Reasons::NO_SEC_FETCH));
    let odd = RequestSignals {
        fingerprint_mismatch: true,
        ..browser()
    };
    assert!(t.score(key(1), &odd, route(), &fleet, T0).bot < 50);
}

#[test]
fn regular_scraper_scores_low_and_bursty_person_high() {
    let t = ClientTable::new(1024);
    let fleet = FleetIndex::default();
    let end = scrape(&t, key(1), 20, T0);
    let bot = t.score(key(1), &browser(), route(), &fleet, end);
    assert!(bot.bot < 30, "{bot:?}");
    for r in [
        Reasons::REGULAR_TIMING,
        Reasons::NO_ASSETS,
        Reasons::NO_COOKIE_CONTINUITY,
    ] {
        assert!(
            bot.reasons.contains(r),
            "{:?}",
            bot.reasons.names().collect::<Vec<_>>()
        );
    }
    let end = browse(&t, key(2), 4, T0);
    let person = t.score(key(2), &browser(), route(), &fleet, end);
    assert!(person.bot > 50, "{person:?}");
    assert!(
        !person.reasons.contains(Reasons::REGULAR_TIMING),
        "{person:?}"
    );
    assert!(
        !person.reasons.contains(Reasons::NO_COOKIE_CONTINUITY),
        "{person:?}"
    );
    // Before 8 requests the scraper is judged by its headers alone.
    scrape(&t, key(3), 5, T0);
    assert!(
        t.score(key(3), &browser(), route(), &fleet, T0 + 10_000)
            .bot
            >= 80
    );
}

#[test]
fn clearance_and_verified_crawlers() {
    let t = ClientTable::new(1024);
    let fleet = FleetIndex::default();
    let bare = RequestSignals {
        accept_language: false,
        sec_fetch: false,
        ..browser()
    };
    let cleared = RequestSignals {
        cleared: true,
        ..bare
    };
    let sc = t.score(key(1), &cleared, route(), &fleet, T0);
    assert!(
        sc.bot >= 80 && sc.reasons.contains(Reasons::CLEARED),
        "{sc:?}"
    );
    // Behaviour still lowers a cleared client.
    let end = scrape(&t, key(1), 20, T0);
    assert!(t.score(key(1), &cleared, route(), &fleet, end).bot < 30);
    // A clearance does not make a self-declared tool human.
    let curl = RequestSignals {
        ua: UaClass::Library,
        cleared: true,
        ..bare
    };
    assert!(t.score(key(2), &curl, route(), &fleet, T0).bot <= 5);
    let crawler = RequestSignals {
        ua: UaClass::DeclaredBot,
        verified_crawler: true,
        ..bare
    };
    let sc = t.score(key(3), &crawler, route(), &fleet, T0);
    assert_eq!(sc.bot, 1);
    assert!(sc.reasons.contains(Reasons::VERIFIED_CRAWLER));
}

#[test]
fn a_client_seen_on_node_a_changes_its_score_on_node_b() {
    let (a, b) = (ClientTable::new(1024), ClientTable::new(1024));
    let end = scrape(&a, key(7), 20, T0);
    let alone = b.score(key(7), &browser(), route(), &FleetIndex::default(), end);
    assert!(alone.bot >= 80, "B has seen nothing: {alone:?}");
    // A publishes; B fetches, decodes, merges the peers, builds its index.
    let bytes = a.snapshot(end).to_bytes();
    let mut view: FleetView<FleetShare> = FleetView::default();
    assert!(view.set_peer("a", FleetShare::from_bytes(&bytes).unwrap(), 64));
    let own = b.snapshot(end);
    let fleet = FleetIndex::build(view.rebuild(&FleetShare::default()), &own);
    let merged = b.score(key(7), &browser(), route(), &fleet, end);
    assert!(merged.bot < 30, "{merged:?}");
    assert!(merged
        .reasons
        .contains(Reasons::FLEET_EVIDENCE | Reasons::REGULAR_TIMING));
    // B's own requests add to A's: a few more on B keep it low.
    let end2 = scrape(&b, key(7), 3, end);
    assert!(b.score(key(7), &browser(), route(), &fleet, end2).bot < 30);
    // Old fleet evidence is not used once the client would be idle-reset.
    let later = end + stats::IDLE_RESET_MS + 60_000;
    assert!(b.score(key(7), &browser(), route(), &fleet, later).bot >= 80);
}

#[test]
fn anomaly_rises_far_from_the_route_baseline() {
    let t = ClientTable::new(4096);
    // 40 ordinary clients: 16 pages each, all answered 200.
    let visit = |k: ClientKey, status: u16| {
        let mut now = T0;
        for i in 0..16u32 {
            t.observe(k, &page(&format!("/products/{}", i % 4), true), now);
            t.observe_response(k, status, false, now + 30);
            now += 3_000 + u64::from(i % 5) * 4_000;
        }
        now
    };
    for c in 0..40 {
        visit(key(100 + c), 200);
    }
    let end = visit(key(1), 404);
    let fleet = FleetIndex::build(&FleetShare::default(), &t.snapshot(end));
    let odd = t.score(key(1), &browser(), route(), &fleet, end);
    let usual = t.score(key(100), &browser(), route(), &fleet, end);
    assert!(odd.anomaly > 80, "{odd:?}");
    assert!(odd.reasons.contains(Reasons::UNUSUAL_ERRORS), "{odd:?}");
    assert!(usual.anomaly < 30, "{usual:?}");
    // Another route has no baseline: no anomaly.
    let other = RouteKey::new("shop.example", "GET", "/cart");
    assert_eq!(t.score(key(1), &browser(), other, &fleet, end).anomaly, 0);
}

#[test]
fn a_full_table_evicts_the_least_recently_seen() {
    let t = ClientTable::new(256);
    let regular = key(u32::MAX);
    for i in 0..2_000u32 {
        let now = T0 + u64::from(i) * 10;
        t.observe(key(i), &page("/", false), now);
        t.observe(regular, &page("/", false), now + 5);
    }
    let s = t.stats();
    assert_eq!(t.capacity(), 256);
    assert!(s.clients <= 256, "{s:?}");
    assert!(s.evicted >= 2_000 - 256, "{s:?}");
    assert!(t
        .evidence(regular, T0 + 20_000)
        .is_some_and(|e| e.requests >= 256));
}

#[test]
fn routes_are_capped() {
    let t = ClientTable::new(4096);
    for r in 0..(MAX_ROUTES as u32 + 100) {
        let obs = Observation {
            route: RouteKey::new("a", "GET", &format!("/r{r}")),
            ..page("/", false)
        };
        for i in 0..8 {
            t.observe(key(r), &obs, T0 + i * 1000);
        }
    }
    let s = t.stats();
    assert_eq!(s.routes, MAX_ROUTES);
    assert_eq!(s.routes_dropped, 100);
    assert_eq!(t.snapshot(T0 + 8_000).routes().len(), MAX_ROUTES);
}

fn big_share(clients: u32, offset: u32) -> FleetShare {
    let ev = |i: u32| Evidence {
        first_ms: T0,
        last_ms: T0 + u64::from(i),
        requests: 1 + i % 500,
        html: 1,
        gaps: 3,
        gap_mean: 100.0 + i as f32,
        gap_var: 7.0,
        paths: PathSketch(u128::from(i) * 0x1111),
        ..Evidence::default()
    };
    let mut h = baseline::RouteHist::default();
    h.counts[0][0] = u32::MAX;
    FleetShare::new(
        (0..clients)
            .map(|i| (u64::from(i + offset), ev(i + offset)))
            .collect(),
        (0..MAX_ROUTES as u64 + 10)
            .map(|k| (k + u64::from(offset), h))
            .collect(),
    )
}

#[test]
fn merge_is_commutative_and_capped() {
    let (a, b) = (big_share(3_000, 0), big_share(3_000, 1_500));
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!(ab.clients().len(), MAX_SHARE_CLIENTS);
    assert_eq!(ab.routes().len(), MAX_ROUTES);
    // The overlap is summed.
    let k = 1_999u64;
    let one = a
        .clients()
        .iter()
        .find(|(x, _)| *x == k)
        .unwrap()
        .1
        .requests;
    let both = ab
        .clients()
        .iter()
        .find(|(x, _)| *x == k)
        .map(|c| c.1.requests);
    assert_eq!(both, Some(2 * one));
    // Two real tables' shares, merged both ways.
    let (ta, tb) = (ClientTable::new(1024), ClientTable::new(1024));
    scrape(&ta, key(1), 12, T0);
    browse(&tb, key(1), 3, T0);
    browse(&tb, key(2), 3, T0);
    let (sa, sb) = (ta.snapshot(T0 + 60_000), tb.snapshot(T0 + 60_000));
    let mut x = sa.clone();
    x.merge(&sb);
    let mut y = sb.clone();
    y.merge(&sa);
    assert_eq!(x, y);
    assert_eq!(x.clients().len(), 2);
}

#[test]
fn the_largest_snapshot_fits_the_mesh() {
    let t = ClientTable::new(DEFAULT_CLIENTS);
    assert_eq!(t.capacity(), 65_536);
    for i in 0..65_536u32 {
        let obs = Observation {
            route: RouteKey::new("a", "GET", &format!("/r{}", i % 600)),
            ..page("/x", i % 2 == 0)
        };
        // The last 1,200 clients are the active ones.
        for j in 0..(if i >= 65_536 - 1_200 { 8 } else { 1 }) {
            t.observe(key(i), &obs, T0 + u64::from(i) + j * 100);
        }
    }
    // Shards fill unevenly: the fullest evict before the table is full.
    let clients = t.stats().clients;
    assert!((60_000..=65_536).contains(&clients), "{clients}");
    let share = t.snapshot(T0 + 70_000);
    assert_eq!(share.clients().len(), MAX_SHARE_CLIENTS);
    assert_eq!(share.routes().len(), MAX_ROUTES);
    let bytes = share.to_bytes();
    assert!(bytes.len() < MAX_SHARE_BYTES, "{} bytes", bytes.len());
    let back = FleetShare::from_bytes(&bytes).unwrap();
    assert_eq!(back.clients().len(), MAX_SHARE_CLIENTS);
    assert_eq!(back.routes(), share.routes());
    // The most active clients are the ones shared.
    assert!(share
        .clients()
        .iter()
        .all(|(_, e)| e.requests == 8 || e.requests == 1));
    assert!(
        share
            .clients()
            .iter()
            .filter(|(_, e)| e.requests == 8)
            .count()
            == 1_200
    );
    // The most merged shares of the largest possible state fit too.
    let max = big_share(MAX_SHARE_CLIENTS as u32, 0).to_bytes();
    assert!(max.len() < MAX_SHARE_BYTES, "{} bytes", max.len());
}

#[test]
fn peer_states_are_checked() {
    let b64 = |n: usize| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(vec![0u8; n])
    };
    let json =
        |c: &str, r: &str| format!(r#"{{"v":1,"clients":"{c}","routes":"{r}"}}"#).into_bytes();
    assert!(FleetShare::from_bytes(&json(&b64(CLIENT_RECORD * 2), "")).is_ok());
    // Too many records, a truncated record, a wrong version, junk, too big.
    assert!(
        FleetShare::from_bytes(&json(&b64(CLIENT_RECORD * (MAX_SHARE_CLIENTS + 1)), "")).is_err()
    );
    assert!(FleetShare::from_bytes(&json(&b64(CLIENT_RECORD + 1), "")).is_err());
    assert!(FleetShare::from_bytes(br#"{"v":2,"clients":"","routes":""}"#).is_err());
    assert!(FleetShare::from_bytes(b"\xff{not json").is_err());
    assert!(FleetShare::from_bytes(&json("!!!!", "")).is_err());
    assert!(FleetShare::from_bytes(&vec![b' '; MAX_SHARE_BYTES + 1]).is_err());
    // Values are brought within range: NaN, sub-counts above totals.
    let mut rec = vec![0u8; CLIENT_RECORD];
    rec[8..10].copy_from_slice(&10u16.to_le_bytes()); // requests
    rec[10..12].copy_from_slice(&500u16.to_le_bytes()); // html
    rec[26..30].copy_from_slice(&f32::NAN.to_le_bytes()); // gap_mean
    rec[30..34].copy_from_slice(&f32::INFINITY.to_le_bytes()); // gap_var
    let s = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&rec)
    };
    let share = FleetShare::from_bytes(&json(&s, "")).unwrap();
    let e = share.clients()[0].1;
    assert_eq!((e.requests, e.html), (10, 10));
    assert_eq!((e.gap_mean, e.gap_var), (0.0, 0.0));
    // Duplicated keys merge into one.
    let two = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([rec.clone(), rec].concat())
    };
    let dup = FleetShare::from_bytes(&json(&two, "")).unwrap();
    assert_eq!(dup.clients().len(), 1);
    assert_eq!(dup.clients()[0].1.requests, 20);
}

#[test]
fn path_sketch_counts_distinct_paths() {
    let mut s = PathSketch::default();
    assert_eq!(s.estimate(), 0.0);
    for _ in 0..50 {
        s.insert(stable_hash(b"/same"));
    }
    assert!((s.estimate() - 1.0).abs() < 0.5);
    let mut many = PathSketch::default();
    for i in 0..200u32 {
        many.insert(stable_hash(&i.to_le_bytes()));
    }
    let e = many.estimate();
    assert!((120.0..300.0).contains(&e), "{e}");
    let mut u = s;
    u.merge(&many);
    let mut v = many;
    v.merge(&s);
    assert_eq!(u, v);
    assert!(u.estimate() >= e);
}

#[test]
fn idle_clients_start_afresh() {
    let t = ClientTable::new(1024);
    let end = scrape(&t, key(1), 20, T0);
    assert!(t.evidence(key(1), end).is_some());
    let later = end + stats::IDLE_RESET_MS + 1;
    assert!(t.evidence(key(1), later).is_none());
    t.observe(key(1), &page("/", false), later);
    assert_eq!(t.evidence(key(1), later).unwrap().requests, 1);
}

#[test]
fn concurrent_requests_are_all_counted() {
    let t = ClientTable::new(1024);
    std::thread::scope(|s| {
        for th in 0..4u64 {
            let t = &t;
            s.spawn(move || {
                for i in 0..200u64 {
                    t.observe(key(1), &asset("/a.css"), T0 + i * 10 + th);
                    t.observe_response(key(2), 500, false, T0 + i);
                }
            });
        }
    });
    assert_eq!(t.evidence(key(1), T0 + 3_000).unwrap().requests, 288);
    assert!(t.evidence(key(2), T0 + 3_000).unwrap().errors > 0);
}

#[test]
fn reasons_have_names() {
    let r = Reasons::LIBRARY_UA | Reasons::UNUSUAL_TIMING;
    assert_eq!(
        r.names().collect::<Vec<_>>(),
        vec!["library_ua", "unusual_timing"]
    );
    assert_eq!(Reasons::from_bits(r.bits() | 1 << 31), r);
    assert!(Reasons::empty().is_empty() && !r.contains(Reasons::CLEARED));
}
