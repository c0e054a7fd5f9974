use super::*;
use crate::crawlers::fcrdns::tests::TableResolver;
use crate::crawlers::{fcrdns, parse_range_file};

const GOOGLE_UA: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const BING_UA: &str = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn specs() -> Vec<CrawlerSpec> {
    vec![
        CrawlerSpec {
            name: "Googlebot".into(),
            user_agent: "Googlebot".into(),
            domains: vec!["googlebot.com".into(), ".google.com".into()],
            ranges: vec!["googlebot.json".into()],
        },
        CrawlerSpec {
            name: "Bingbot".into(),
            user_agent: "bingbot".into(),
            domains: vec!["search.msn.com".into()],
            ranges: vec![],
        },
        CrawlerSpec {
            name: "Googlebot-Image".into(),
            user_agent: "Googlebot-Image".into(),
            domains: vec!["googlebot.com".into()],
            ranges: vec![],
        },
        CrawlerSpec {
            name: "RangesOnly".into(),
            user_agent: "RangesOnlyBot".into(),
            domains: vec![],
            ranges: vec!["r.txt".into()],
        },
    ]
}

fn verifier(limits: VerifierLimits) -> Verifier {
    let google = parse_range_file(
        r#"{"creationTime": "x", "prefixes": [
            {"ipv4Prefix": "66.249.64.0/27"},
            {"ipv6Prefix": "2001:4860:4801:10::/64"}]}"#,
    )
    .unwrap();
    let ranges_only = parse_range_file("192.0.2.0/24\n").unwrap();
    Verifier::new(&specs(), vec![google, vec![], vec![], ranges_only], limits).unwrap()
}

fn unverified(name: &str, status: ClaimStatus) -> BotIdentity {
    BotIdentity::Unverified {
        claimed: name.into(),
        status,
    }
}

fn verified(name: &str) -> BotIdentity {
    BotIdentity::Verified { name: name.into() }
}

#[test]
fn ua_claiming_no_crawler() {
    let v = verifier(VerifierLimits::default());
    assert_eq!(v.check(ip("66.249.64.1"), BROWSER_UA, 0), BotIdentity::None);
    assert_eq!(v.check(ip("66.249.64.1"), "", 0), BotIdentity::None);
    assert_eq!(v.check(ip("66.249.64.1"), "Googlebo", 0), BotIdentity::None);
    assert!(v.take_pending(10).is_empty());
    let s = v.stats();
    assert_eq!((s.checks, s.claims, s.lookups_queued), (3, 0, 0));
}

#[test]
fn claims_match_case_insensitively_and_the_longest_wins() {
    let v = verifier(VerifierLimits::default());
    assert_eq!(v.claimed(GOOGLE_UA), Some(0));
    assert_eq!(v.claimed("GOOGLEBOT"), Some(0));
    assert_eq!(v.claimed(BING_UA), Some(1));
    assert_eq!(v.claimed("Googlebot-Image/1.0"), Some(2));
    assert_eq!(v.claimed("googlebot-image/1.0"), Some(2));
    // Non-ASCII bytes around or inside never panic.
    assert_eq!(v.claimed("é Googlebot é"), Some(0));
    assert_eq!(v.claimed("Googlébot"), None);
    assert_eq!(v.claimed("ééé"), None);
}

#[test]
fn ua_from_an_ip_in_the_ranges_is_verified_without_a_lookup() {
    let v = verifier(VerifierLimits::default());
    assert_eq!(
        v.check(ip("66.249.64.5"), GOOGLE_UA, 0),
        verified("Googlebot")
    );
    assert_eq!(
        v.check(ip("2001:4860:4801:10::1"), GOOGLE_UA, 0),
        verified("Googlebot")
    );
    assert_eq!(
        v.check(ip("192.0.2.9"), "RangesOnlyBot/1", 0),
        verified("RangesOnly")
    );
    assert!(v.take_pending(10).is_empty());
    let s = v.stats();
    assert_eq!((s.range_hits, s.lookups_queued, s.pending), (3, 0, 0));
}

#[test]
fn ranges_only_crawler_outside_its_ranges_is_refuted_without_a_lookup() {
    let v = verifier(VerifierLimits::default());
    assert_eq!(
        v.check(ip("203.0.113.1"), "RangesOnlyBot/1", 0),
        unverified("RangesOnly", ClaimStatus::Refuted)
    );
    assert!(v.take_pending(10).is_empty());
}

#[test]
fn ipv4_mapped_ipv6_is_treated_as_ipv4() {
    let v = verifier(VerifierLimits::default());
    assert_eq!(
        v.check(ip("::ffff:66.249.64.5"), GOOGLE_UA, 0),
        verified("Googlebot")
    );
    // Outside the ranges: one lookup, for the IPv4 address, whichever form
    // the client came in.
    assert_eq!(
        v.check(ip("::ffff:66.249.66.1"), GOOGLE_UA, 0),
        unverified("Googlebot", ClaimStatus::Pending)
    );
    v.check(ip("66.249.66.1"), GOOGLE_UA, 0);
    let lookups = v.take_pending(10);
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].ip, ip("66.249.66.1"));
    v.complete(&lookups[0], LookupOutcome::Verified, 0);
    assert_eq!(
        v.check(ip("::ffff:66.249.66.1"), GOOGLE_UA, 1),
        verified("Googlebot")
    );
}

#[test]
fn full_cycle_with_a_table_resolver() {
    let v = verifier(VerifierLimits::default());
    let r = TableResolver::default()
        .ptr("66.249.66.1", &["crawl-66-249-66-1.googlebot.com."])
        .a("crawl-66-249-66-1.googlebot.com", &["66.249.66.1"])
        .ptr("203.0.113.7", &["crawl-66-249-66-1.googlebot.com."]);
    let pending = unverified("Googlebot", ClaimStatus::Pending);
    assert_eq!(v.check(ip("66.249.66.1"), GOOGLE_UA, 0), pending);
    assert_eq!(v.check(ip("203.0.113.7"), GOOGLE_UA, 0), pending);
    let lookups = v.take_pending(10);
    assert_eq!(lookups.len(), 2);
    assert_eq!(
        &*lookups[0].domains,
        &["googlebot.com".into(), "google.com".into()]
    );
    for l in &lookups {
        v.complete(l, fcrdns(l.ip, &l.domains, &r), 10);
    }
    assert_eq!(
        v.check(ip("66.249.66.1"), GOOGLE_UA, 20),
        verified("Googlebot")
    );
    assert_eq!(
        v.check(ip("203.0.113.7"), GOOGLE_UA, 20),
        unverified("Googlebot", ClaimStatus::Refuted)
    );
    // The cache is per crawler: Bingbot from the Googlebot address is its
    // own claim.
    assert_eq!(
        v.check(ip("66.249.66.1"), BING_UA, 20),
        unverified("Bingbot", ClaimStatus::Pending)
    );
    let s = v.stats();
    assert_eq!(
        (
            s.verified,
            s.failed,
            s.errors,
            s.cache_hits,
            s.cache_size,
            s.pending
        ),
        (1, 1, 0, 2, 2, 1)
    );
}

#[test]
fn cached_results_expire_by_passed_in_time() {
    let limits = VerifierLimits {
        verified_ttl_ms: 1_000,
        failed_ttl_ms: 500,
        error_ttl_ms: 100,
        ..VerifierLimits::default()
    };
    let v = verifier(limits);
    let t0 = 1_700_000_000_000;
    for (addr, outcome, ttl, status) in [
        ("198.51.100.1", LookupOutcome::Verified, 1_000, None),
        (
            "198.51.100.2",
            LookupOutcome::Failed,
            500,
            Some(ClaimStatus::Refuted),
        ),
        (
            "198.51.100.3",
            LookupOutcome::Error,
            100,
            Some(ClaimStatus::ResolverError),
        ),
    ] {
        v.check(ip(addr), GOOGLE_UA, t0);
        let l = v.take_pending(1).pop().unwrap();
        v.complete(&l, outcome, t0);
        let want = status.map_or(verified("Googlebot"), |s| unverified("Googlebot", s));
        assert_eq!(v.check(ip(addr), GOOGLE_UA, t0 + ttl - 1), want, "{addr}");
        assert!(v.take_pending(1).is_empty());
        // Expired: pending again, and a new lookup is queued.
        assert_eq!(
            v.check(ip(addr), GOOGLE_UA, t0 + ttl),
            unverified("Googlebot", ClaimStatus::Pending),
            "{addr}"
        );
        let again = v.take_pending(10);
        assert_eq!(again.len(), 1, "{addr}");
        assert_eq!(again[0].ip, ip(addr));
    }
}

#[test]
fn pending_lookups_are_deduplicated_until_completed() {
    let v = verifier(VerifierLimits::default());
    for t in 0..5 {
        v.check(ip("203.0.113.1"), GOOGLE_UA, t);
    }
    let lookups = v.take_pending(10);
    assert_eq!(lookups.len(), 1);
    // Handed out but not completed: still not queued again.
    v.check(ip("203.0.113.1"), GOOGLE_UA, 10);
    assert!(v.take_pending(10).is_empty());
    assert_eq!(v.stats().pending, 1);
    v.complete(&lookups[0], LookupOutcome::Failed, 20);
    assert_eq!(v.stats().pending, 0);
    assert_eq!(v.stats().lookups_queued, 1);
}

#[test]
fn pending_cap_drops_and_counts() {
    let limits = VerifierLimits {
        max_pending: 3,
        ..VerifierLimits::default()
    };
    let v = verifier(limits);
    for i in 0..5 {
        v.check(ip(&format!("203.0.113.{i}")), GOOGLE_UA, 0);
    }
    let s = v.stats();
    assert_eq!((s.lookups_queued, s.lookups_dropped, s.pending), (3, 2, 3));
    let taken = v.take_pending(2);
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].ip, ip("203.0.113.0"));
    // Handed out lookups still count against the cap until completed.
    v.check(ip("203.0.113.9"), GOOGLE_UA, 0);
    assert_eq!(v.stats().lookups_dropped, 3);
    v.complete(&taken[0], LookupOutcome::Failed, 0);
    v.check(ip("203.0.113.9"), GOOGLE_UA, 0);
    assert_eq!(v.stats().lookups_queued, 4);
}

#[test]
fn lost_lookups_free_their_place_after_the_timeout() {
    let limits = VerifierLimits {
        max_pending: 2,
        pending_timeout_ms: 5_000,
        ..VerifierLimits::default()
    };
    let v = verifier(limits);
    v.check(ip("203.0.113.1"), GOOGLE_UA, 0);
    v.check(ip("203.0.113.2"), GOOGLE_UA, 0);
    assert_eq!(v.take_pending(10).len(), 2); // and never completed
    v.check(ip("203.0.113.3"), GOOGLE_UA, 4_999);
    assert_eq!(v.stats().lookups_dropped, 1);
    v.check(ip("203.0.113.3"), GOOGLE_UA, 5_000);
    let s = v.stats();
    assert_eq!((s.lookups_queued, s.pending), (3, 1));
}

#[test]
fn cache_cap_evicts_expired_first_then_non_verified_soonest_to_expire() {
    let limits = VerifierLimits {
        max_cache: 3,
        verified_ttl_ms: 2_000,
        failed_ttl_ms: 5_000,
        ..VerifierLimits::default()
    };
    let v = verifier(limits);
    let complete = |addr: &str, outcome, now| {
        let l = Lookup {
            ip: ip(addr),
            crawler: 0,
            domains: Arc::from(Vec::new()),
        };
        v.complete(&l, outcome, now);
    };
    complete("198.51.100.1", LookupOutcome::Verified, 0); // expires 2,000
    complete("198.51.100.2", LookupOutcome::Failed, 0); // expires 5,000
    complete("198.51.100.3", LookupOutcome::Failed, 500); // expires 5,500
    assert_eq!(v.stats().cache_size, 3);
    // Full, nothing expired: the failed entry closest to expiry goes, not
    // the verified one, though that one would expire sooner.
    complete("198.51.100.4", LookupOutcome::Verified, 600); // expires 2,600
    assert_eq!(v.stats().cache_size, 3);
    let at = |addr: &str| v.check(ip(addr), GOOGLE_UA, 700);
    assert_eq!(at("198.51.100.1"), verified("Googlebot"));
    assert_eq!(
        at("198.51.100.2"),
        unverified("Googlebot", ClaimStatus::Pending)
    );
    assert_eq!(
        at("198.51.100.3"),
        unverified("Googlebot", ClaimStatus::Refuted)
    );
    assert_eq!(at("198.51.100.4"), verified("Googlebot"));
    // Replacing an entry does not evict.
    complete("198.51.100.3", LookupOutcome::Failed, 800); // expires 5,800
    assert_eq!(at("198.51.100.1"), verified("Googlebot"));
    assert_eq!(at("198.51.100.4"), verified("Googlebot"));
    // Later, .1 has expired: it is swept, the rest stay.
    complete("198.51.100.5", LookupOutcome::Failed, 2_100);
    assert_eq!(v.stats().cache_size, 3);
    let at = |addr: &str| v.check(ip(addr), GOOGLE_UA, 2_101);
    assert_eq!(
        at("198.51.100.1"),
        unverified("Googlebot", ClaimStatus::Pending)
    );
    assert_eq!(at("198.51.100.4"), verified("Googlebot"));
    assert_eq!(
        at("198.51.100.3"),
        unverified("Googlebot", ClaimStatus::Refuted)
    );
    assert_eq!(
        at("198.51.100.5"),
        unverified("Googlebot", ClaimStatus::Refuted)
    );
    // Only verified entries, none expired: the soonest to expire goes.
    let v = verifier(VerifierLimits {
        max_cache: 2,
        ..limits
    });
    for (i, addr) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let l = Lookup {
            ip: ip(addr),
            crawler: 0,
            domains: Arc::from(Vec::new()),
        };
        v.complete(&l, LookupOutcome::Verified, i as u64);
    }
    assert_eq!(v.stats().cache_size, 2);
    assert_eq!(
        v.check(ip("198.51.100.1"), GOOGLE_UA, 5),
        unverified("Googlebot", ClaimStatus::Pending)
    );
    assert_eq!(
        v.check(ip("198.51.100.3"), GOOGLE_UA, 5),
        verified("Googlebot")
    );
}

#[test]
fn sharded_cache_stays_within_its_cap() {
    let limits = VerifierLimits {
        max_cache: 2_048,
        ..VerifierLimits::default()
    };
    let v = verifier(limits);
    for i in 0..10_000u32 {
        let l = Lookup {
            ip: IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
            crawler: 1,
            domains: Arc::from(Vec::new()),
        };
        v.complete(&l, LookupOutcome::Failed, u64::from(i));
    }
    let size = v.stats().cache_size;
    assert!(size <= 2_048, "{size}");
    assert!(size >= 2_048 - SHARDS as u64, "{size}");
}

#[test]
fn completions_for_unknown_crawlers_are_ignored() {
    let v = verifier(VerifierLimits::default());
    let l = Lookup {
        ip: ip("198.51.100.1"),
        crawler: 99,
        domains: Arc::from(Vec::new()),
    };
    v.complete(&l, LookupOutcome::Verified, 0);
    let l = Lookup {
        crawler: usize::MAX,
        ..l
    };
    v.complete(&l, LookupOutcome::Verified, 0);
    assert_eq!(v.stats().cache_size, 0);
    assert_eq!(v.stats().verified, 0);
}

#[test]
fn new_reports_every_problem() {
    let mut bad = specs();
    bad[1].user_agent = String::new();
    let limits = VerifierLimits {
        max_cache: 0,
        max_pending: 0,
        ..VerifierLimits::default()
    };
    let errors = Verifier::new(&bad, vec![vec![]; 5], limits).unwrap_err();
    let expect = [
        "bots.crawlers[1].user_agent: empty",
        "5 range lists for 4 crawlers",
        "verifier limits: max_cache must be at least 1",
        "verifier limits: max_pending must be at least 1",
        "bots.crawlers[3] (\"RangesOnly\"): no domains and its range files hold no prefix",
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (e, want) in errors.iter().zip(expect) {
        assert!(e.starts_with(want), "{e:?} should start with {want:?}");
    }
}

#[test]
fn concurrent_checks_and_completions() {
    let v = Arc::new(verifier(VerifierLimits {
        max_cache: 4_096,
        max_pending: 64,
        ..VerifierLimits::default()
    }));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    let addr = IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + (t << 12) + i));
                    v.check(addr, GOOGLE_UA, u64::from(i));
                    for l in v.take_pending(4) {
                        v.complete(&l, LookupOutcome::Failed, u64::from(i));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = v.stats();
    assert_eq!(s.checks, 8_000);
    assert_eq!(s.lookups_queued + s.lookups_dropped, 8_000);
    assert!(s.cache_size <= 4_096);
    assert!(s.pending <= 64);
}
