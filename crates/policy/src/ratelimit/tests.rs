//! Tests of local rate limiting.
use super::*;
use crate::request::tests::{with_raw_request, with_request};

#[allow(non_snake_case)]
fn LIMITED(retry_after_ms: u64) -> RateOutcome {
    RateOutcome::Limited { retry_after_ms }
}

fn spec(requests: u64, period_ms: u64, mitigation_timeout_ms: u64) -> LimitSpec {
    LimitSpec {
        requests,
        period_ms,
        mitigation_timeout_ms,
    }
}

#[test]
fn counter_is_32_bytes() {
    assert_eq!(std::mem::size_of::<Counter>(), 32);
    assert_eq!(std::mem::size_of::<table::Set<Counter>>(), 320);
}

#[test]
fn limiter_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RateLimiter>();
}

#[test]
fn exactly_n_allowed_then_blocked_for_the_mitigation_timeout() {
    let rl = RateLimiter::new(1000);
    let s = spec(5, 10_000, 60_000);
    for i in 0..5 {
        assert_eq!(
            rl.hit(7, &s, 100_000 + i),
            RateOutcome::Allowed,
            "request {i}"
        );
    }
    assert_eq!(rl.hit(7, &s, 100_005), LIMITED(60_000));
    // Retry-After is the remaining block, and blocked requests are not counted.
    assert_eq!(rl.hit(7, &s, 101_005), LIMITED(59_000));
    for i in 0..100 {
        assert_eq!(rl.hit(7, &s, 150_000 + i), LIMITED(10_005 - i));
    }
    assert_eq!(rl.hit(7, &s, 160_004), LIMITED(1));
    // Recovery: the block ended and nothing was counted in the last windows.
    for i in 0..5 {
        assert_eq!(rl.hit(7, &s, 160_005 + i), RateOutcome::Allowed);
    }
    assert_eq!(rl.hit(7, &s, 160_010), LIMITED(60_000));
}

#[test]
fn without_mitigation_only_requests_over_the_rate_are_limited() {
    let rl = RateLimiter::new(1000);
    let s = spec(5, 10_000, 0);
    for i in 0..5 {
        assert_eq!(rl.hit(1, &s, i), RateOutcome::Allowed);
    }
    // 6 counted: in the next window the estimate is 6 × (1 − t/P) + 1 ≤ 5 from t = 3334.
    assert_eq!(rl.hit(1, &s, 5), LIMITED(10_000 - 5 + 3_334));
    // Same history on two keys; one retries 1 ms early, the other on time.
    for k in [2, 3] {
        for i in 0..6 {
            rl.hit(k, &s, i);
        }
    }
    assert!(matches!(rl.hit(2, &s, 13_333), RateOutcome::Limited { .. }));
    assert_eq!(rl.hit(3, &s, 13_334), RateOutcome::Allowed);
}

#[test]
fn retry_within_the_same_window_when_the_previous_one_decays() {
    let rl = RateLimiter::new(1000);
    let s = spec(10, 1_000, 0);
    for i in 0..10 {
        assert_eq!(rl.hit(1, &s, 500 + i), RateOutcome::Allowed);
    }
    // Window [1000, 2000): prev = 10. At 1500 the estimate is 5 + cur.
    for i in 0..5 {
        assert_eq!(rl.hit(1, &s, 1_500), RateOutcome::Allowed, "request {i}");
    }
    // The 6th makes it 10 × 0.5 + 6 = 11; one more request fits when 10 × (500 − d)/1000 + 7 ≤ 10,
    // that is d ≥ 200.
    assert_eq!(rl.hit(1, &s, 1_500), LIMITED(200));
    assert_eq!(rl.hit(1, &s, 1_700), RateOutcome::Allowed);
}

#[test]
fn sliding_window_carries_over_the_previous_window() {
    let rl = RateLimiter::new(1000);
    let s = spec(10, 10_000, 0);
    for i in 0..10 {
        assert_eq!(rl.hit(9, &s, 1_000 + i), RateOutcome::Allowed);
    }
    // Half-way through the next window, half of the previous count still weighs.
    for _ in 0..5 {
        assert_eq!(rl.hit(9, &s, 15_000), RateOutcome::Allowed);
    }
    assert!(matches!(rl.hit(9, &s, 15_000), RateOutcome::Limited { .. }));
    // At 28 000, prev = 6 weighs 6 × 0.2 = 1.2: 8 more requests fit, not 9.
    for _ in 0..8 {
        assert_eq!(rl.hit(9, &s, 28_000), RateOutcome::Allowed);
    }
    assert!(matches!(rl.hit(9, &s, 28_000), RateOutcome::Limited { .. }));
    // A window with no request in between: nothing carries over.
    for _ in 0..10 {
        assert_eq!(rl.hit(9, &s, 40_000), RateOutcome::Allowed);
    }
    // A `now` a little behind (another thread's clock) counts in the current window.
    assert!(matches!(rl.hit(9, &s, 39_999), RateOutcome::Limited { .. }));
}

#[test]
fn zero_requests_and_zero_period_do_not_panic() {
    let rl = RateLimiter::new(100);
    assert_eq!(rl.hit(1, &spec(0, 1_000, 0), 5), LIMITED(1_000));
    assert_eq!(rl.hit(2, &spec(1, 0, 0), 5), RateOutcome::Allowed);
    // 2 counted at 5: at 6 the previous window still weighs 2.
    assert_eq!(rl.hit(2, &spec(1, 0, 0), 5), LIMITED(2));
    assert_eq!(rl.hit(2, &spec(1, 0, 0), 7), RateOutcome::Allowed);
    assert_eq!(
        rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX - 1),
        RateOutcome::Allowed
    );
    assert_eq!(
        rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX - 1),
        LIMITED(u64::MAX)
    );
    assert!(matches!(
        rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX),
        RateOutcome::Limited { .. }
    ));
}

#[test]
fn keys_are_independent() {
    let rl = RateLimiter::new(1000);
    let s = spec(2, 60_000, 30_000);
    assert_eq!(rl.hit(1, &s, 0), RateOutcome::Allowed);
    assert_eq!(rl.hit(1, &s, 1), RateOutcome::Allowed);
    assert!(matches!(rl.hit(1, &s, 2), RateOutcome::Limited { .. }));
    assert_eq!(rl.hit(2, &s, 3), RateOutcome::Allowed);
    assert_eq!(rl.hit(2, &s, 4), RateOutcome::Allowed);
    assert_eq!(rl.len(), 2);
    rl.clear();
    assert_eq!(rl.len(), 0);
    assert!(rl.is_empty());
    assert_eq!(rl.hit(1, &s, 5), RateOutcome::Allowed);
}

#[test]
fn memory_is_bounded_and_evictions_counted() {
    let rl = RateLimiter::new(10_000);
    assert!(
        rl.capacity() <= 10_000 && rl.capacity() >= 9_000,
        "{}",
        rl.capacity()
    );
    let s = spec(100, 60_000, 0);
    let n = 1_000_000u64;
    for k in 0..n {
        rl.hit(k, &s, 1_000 + k / 1_000);
    }
    let len = rl.len();
    assert!(len <= 10_000, "{len}");
    assert!(len >= 9_000, "{len}");
    // Nothing was stale: every new key either took a free way or evicted one.
    assert_eq!(len as u64 + rl.evictions(), n);
}

#[test]
fn stale_counters_are_reused_without_eviction() {
    // 8 keys: one shard of one 8-way set.
    let rl = RateLimiter::new(8);
    assert_eq!(rl.capacity(), 8);
    let s = spec(100, 1_000, 0);
    let strict = spec(1, 1_000, 10_000);
    rl.hit(0, &strict, 0);
    assert!(matches!(rl.hit(0, &strict, 0), RateOutcome::Limited { .. }));
    for k in 1..8u64 {
        rl.hit(k, &s, 0);
    }
    assert_eq!((rl.len(), rl.evictions()), (8, 0));
    // Two periods later the seven unblocked counters are stale and get reused.
    for k in 8..15u64 {
        rl.hit(k, &s, 2_000);
    }
    assert_eq!((rl.len(), rl.evictions()), (8, 0));
    assert!(rl.contains(0));
    // Now nothing is stale: a new key evicts the least recently used unblocked counter.
    assert!((1..8).all(|k| !rl.contains(k)));
    rl.hit(8, &s, 2_500);
    rl.hit(15, &s, 2_600);
    assert_eq!((rl.len(), rl.evictions()), (8, 1));
    assert!(rl.contains(0) && rl.contains(8) && rl.contains(15));
    assert_eq!((9..15).filter(|&k| rl.contains(k)).count(), 5);
    assert!(matches!(
        rl.hit(0, &strict, 2_700),
        RateOutcome::Limited { .. }
    ));
}

#[test]
fn recently_used_and_blocked_counters_survive_a_flood() {
    let rl = RateLimiter::new(10_000);
    let strict = spec(1, 60_000, 600_000);
    let loose = spec(1_000, 60_000, 0);
    assert_eq!(rl.hit(u64::MAX, &strict, 0), RateOutcome::Allowed);
    assert!(matches!(
        rl.hit(u64::MAX, &strict, 0),
        RateOutcome::Limited { .. }
    ));
    for k in 0..200_000u64 {
        let now = 1 + k / 100;
        rl.hit(k, &loose, now);
        if k % 50 == 0 {
            rl.hit(u64::MAX - 1, &loose, now);
        }
    }
    assert!(rl.evictions() > 150_000);
    assert!(rl.contains(u64::MAX - 1));
    assert!(rl.contains(u64::MAX));
    assert!(matches!(
        rl.hit(u64::MAX, &strict, 5_000),
        RateOutcome::Limited { .. }
    ));
}

#[test]
fn concurrent_hits_are_counted_exactly() {
    let rl = RateLimiter::new(1_000);
    let s = spec(2_500, 60_000, 0);
    let allowed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..1_000)
                        .filter(|_| rl.hit(42, &s, 1_000) == RateOutcome::Allowed)
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 2_500);
}

#[test]
fn parses_characteristics() {
    let p = Characteristic::parse;
    assert_eq!(p("ip.src"), Ok(Characteristic::IpSrc));
    assert_eq!(p(" ip "), Ok(Characteristic::IpSrc));
    assert_eq!(p("path"), Ok(Characteristic::Path));
    assert_eq!(p("http.request.uri.path"), Ok(Characteristic::Path));
    assert_eq!(
        p("http.request.headers[\"X-API-Key\"]"),
        Ok(Characteristic::Header("x-api-key".into()))
    );
    assert_eq!(
        p("header:X-Api-Key"),
        Ok(Characteristic::Header("x-api-key".into()))
    );
    assert_eq!(
        p("http.request.cookies[\"session\"]"),
        Ok(Characteristic::Cookie("session".into()))
    );
    assert_eq!(
        p("cookie:session"),
        Ok(Characteristic::Cookie("session".into()))
    );
    assert_eq!(
        p("http.request.uri.args[\"user\"]"),
        Ok(Characteristic::QueryArg("user".into()))
    );
    assert_eq!(p("query:user"), Ok(Characteristic::QueryArg("user".into())));
    for bad in [
        "",
        "ip.dst",
        "header:",
        "header:bad header",
        "cookie:a;b",
        "http.request.headers[x]",
        "http.request.headers[\"\"]",
        "http.request.headers[\"a\"b\"]",
        "foo:bar",
    ] {
        let e = p(bad).unwrap_err();
        assert!(e.contains("http.request.headers[\"name\"]"), "{bad}: {e}");
    }
    for c in [
        Characteristic::IpSrc,
        Characteristic::Path,
        Characteristic::Header("x-a".into()),
        Characteristic::Cookie("s".into()),
        Characteristic::QueryArg("u".into()),
    ] {
        assert_eq!(p(&c.to_string()), Ok(c));
    }
}

#[test]
fn rate_keys() {
    let chars = [
        Characteristic::IpSrc,
        Characteristic::Header("x-api-key".into()),
        Characteristic::Cookie("session".into()),
        Characteristic::QueryArg("user".into()),
        Characteristic::Path,
    ];
    let key = |ip: &str, uri: &str, headers: &[(&str, &str)], index: u32| {
        with_request(ip, "GET", uri, headers, |r| rate_key(index, &chars, r))
    };
    let h = [("x-api-key", "k1"), ("cookie", "session=s1")];
    let base = key("1.2.3.4", "/a?user=u1", &h, 0);
    assert_eq!(base, key("1.2.3.4", "/a?user=u1", &h, 0));
    assert_eq!(base, key("::ffff:1.2.3.4", "/a?x=1&user=u1", &h, 0));
    assert_ne!(base, key("1.2.3.4", "/a?user=u1", &h, 1));
    assert_ne!(base, key("1.2.3.5", "/a?user=u1", &h, 0));
    assert_ne!(base, key("1.2.3.4", "/b?user=u1", &h, 0));
    assert_ne!(base, key("1.2.3.4", "/a?user=u2", &h, 0));
    assert_ne!(
        base,
        key("1.2.3.4", "/a?user=u1", &[("x-api-key", "k2"), h[1]], 0)
    );
    assert_ne!(
        base,
        key(
            "1.2.3.4",
            "/a?user=u1",
            &[h[0], ("cookie", "session=s2")],
            0
        )
    );
    // Missing values hash as empty ones.
    assert_eq!(
        key("1.2.3.4", "/a", &[], 0),
        key(
            "1.2.3.4",
            "/a?user=",
            &[("x-api-key", ""), ("cookie", "session=")],
            0
        )
    );
    // Field boundaries matter.
    let two = [
        Characteristic::QueryArg("a".into()),
        Characteristic::QueryArg("b".into()),
    ];
    let k = |uri| with_request("::1", "GET", uri, &[], |r| rate_key(0, &two, r));
    assert_ne!(k("/?a=xy&b=z"), k("/?a=x&b=yz"));
    // Only the listed characteristics count.
    let ip_only = [Characteristic::IpSrc];
    let k = |uri| with_request("::1", "GET", uri, &[], |r| rate_key(3, &ip_only, r));
    assert_eq!(k("/a"), k("/b?c=d"));
}

#[test]
fn rate_keys_cover_every_value_and_every_byte() {
    let chars = [
        Characteristic::Header("x-api-key".into()),
        Characteristic::Cookie("session".into()),
        Characteristic::QueryArg("user".into()),
    ];
    let key = |uri: &str, headers: &[(&str, &[u8])]| {
        with_raw_request("::1", "GET", uri.as_bytes(), headers, |r| {
            rate_key(0, &chars, r)
        })
    };
    let one: &[(&str, &[u8])] = &[("x-api-key", b"k1"), ("cookie", b"session=s1")];
    let base = key("/?user=u1", one);
    // A second value (same first value) is another client, for each kind.
    let more_keys: &[(&str, &[u8])] = &[
        ("x-api-key", b"k1"),
        ("x-api-key", b"k2"),
        ("cookie", b"session=s1"),
    ];
    assert_ne!(base, key("/?user=u1", more_keys));
    let more_cookies: &[(&str, &[u8])] = &[
        ("x-api-key", b"k1"),
        ("cookie", b"session=s1"),
        ("cookie", b"session=s2"),
    ];
    assert_ne!(base, key("/?user=u1", more_cookies));
    assert_ne!(base, key("/?user=u1&user=u2", one));
    // Split cookie fields are one cookie header.
    let joined: &[(&str, &[u8])] = &[("x-api-key", b"k1"), ("cookie", b"a=1; session=s1")];
    let split: &[(&str, &[u8])] = &[
        ("x-api-key", b"k1"),
        ("cookie", b"a=1"),
        ("cookie", b"session=s1"),
    ];
    assert_eq!(key("/?user=u1", joined), key("/?user=u1", split));
    assert_eq!(base, key("/?user=u1", split));
    // Value boundaries matter: ("ab", "c") is not ("a", "bc").
    let ab_c: &[(&str, &[u8])] = &[("x-api-key", b"ab"), ("x-api-key", b"c")];
    let a_bc: &[(&str, &[u8])] = &[("x-api-key", b"a"), ("x-api-key", b"bc")];
    assert_ne!(key("/", ab_c), key("/", a_bc));
    // Bytes that are not UTF-8 count, and differ from one another.
    let h80: &[(&str, &[u8])] = &[("x-api-key", b"k\x80"), ("cookie", b"session=\x80")];
    let h81: &[(&str, &[u8])] = &[("x-api-key", b"k\x81"), ("cookie", b"session=\x80")];
    let c81: &[(&str, &[u8])] = &[("x-api-key", b"k\x80"), ("cookie", b"session=\x81")];
    let empty: &[(&str, &[u8])] = &[("x-api-key", b""), ("cookie", b"session=")];
    assert_ne!(key("/", h80), key("/", h81));
    assert_ne!(key("/", h80), key("/", c81));
    assert_ne!(key("/", h80), key("/", empty));
    // The path characteristic is the normalized path.
    let path = [Characteristic::Path];
    let k = |uri: &str| with_request("::1", "GET", uri, &[], |r| rate_key(0, &path, r));
    for same in [
        "/%61dmin",
        "//admin",
        "/x/../admin",
        "/admin;p=1",
        "/admin?x=1",
    ] {
        assert_eq!(k("/admin"), k(same), "{same}");
    }
    assert_ne!(k("/admin"), k("/admin/"));
}
