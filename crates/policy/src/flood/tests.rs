use super::*;
use crate::policy::Policy;

fn flood(per: FloodKey, min_requests: u64) -> Flood {
    Flood {
        id: "f".into(),
        per,
        expression: None,
        window_ms: 1_000,
        learn_ms: 10_000,
        factor: 4.0,
        min_requests,
        action: match per {
            FloodKey::Source(_) => FloodAction::Ban,
            _ => FloodAction::AttackMode,
        },
        duration_ms: 60_000,
        simulate: false,
        max_keys: 1_000,
    }
}

fn seen(ip: &str) -> Seen<'static> {
    Seen {
        ip: ip.parse().unwrap(),
        geo: Geo::default(),
        host: "shop.example",
        path: "/",
        under_attack: false,
    }
}

/// Sends `n` requests from `ip` at `now`, returning the fires.
fn send(d: &FloodDetector, f: &[Flood], s: &Seen<'_>, n: u64, now: u64) -> Vec<Fire> {
    let attack = AttackModeSettings::default();
    (0..n)
        .flat_map(|_| d.observe(f, &attack, s, |_| true, now))
        .collect()
}

/// Sends `n` requests from `s` spread evenly over the window starting at
/// `start` (steady traffic), returning the fires.
fn send_spread(d: &FloodDetector, f: &[Flood], s: &Seen<'_>, n: u64, start: u64) -> Vec<Fire> {
    (0..n)
        .flat_map(|i| send(d, f, s, 1, start + i * 1000 / n.max(1)))
        .collect()
}

#[test]
fn a_source_far_above_the_learned_baseline_fires_once_at_the_crossing() {
    let f = [flood(FloodKey::Source(Source::Ip), 20)];
    let d = FloodDetector::default();
    d.sync(&f);
    // Ten windows of normal traffic: 10 sources at 5 to 14 requests per second.
    for w in 0..10u64 {
        let now = w * 1000;
        d.roll(&f, now);
        for i in 0..10u64 {
            let ip = format!("198.51.100.{i}");
            assert!(send_spread(&d, &f, &seen(&ip), 5 + i, now).is_empty());
        }
    }
    let report = d.roll(&f, 10_000);
    let (_, base) = &report.baselines[0];
    assert!(*base > 5.0 && *base <= 14.0, "baseline {base}");
    // Threshold = max(20, 4 × baseline).
    let limit = threshold(20, 4.0, *base, 1.0);
    assert!(limit > 20 && limit <= 56, "limit {limit}");
    let flooder = seen("203.0.113.9");
    assert!(send(&d, &f, &flooder, limit, 10_100).is_empty());
    let fires = send(&d, &f, &flooder, 100, 10_200);
    assert_eq!(fires.len(), 1, "fires once, at the crossing");
    assert_eq!(fires[0].count, limit + 1);
    assert_eq!(
        fires[0].target,
        (crate::Scope::Ip, "203.0.113.9".to_string())
    );
    let dec = fires[0].decision("n1", 10_200).unwrap();
    assert_eq!(dec.action, crate::DecisionAction::Ban);
    assert_eq!(dec.expires_at, Some(70_200));
    assert!(dec.origin.starts_with("flood:f@n1"));
    // Quiet for `duration`, even in later windows.
    assert!(send(&d, &f, &flooder, 200, 11_500).is_empty());
    // A normal source is untouched.
    assert!(send(&d, &f, &seen("198.51.100.3"), 10, 11_600).is_empty());
}

#[test]
fn the_floor_applies_before_anything_is_learned_and_attack_mode_tightens() {
    let f = [flood(FloodKey::Source(Source::Cidr), 50)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    let s = seen("203.0.113.9");
    let fires = send(&d, &f, &s, 51, 100);
    assert_eq!(fires.len(), 1);
    assert_eq!(
        fires[0].target,
        (crate::Scope::Cidr, "203.0.113.0/24".to_string())
    );
    // Under attack (flood_factor 0.5), 26 requests are enough.
    let attack = AttackModeSettings::default();
    let mut tense = seen("192.0.2.1");
    tense.under_attack = true;
    let n = (0..30).position(|_| !d.observe(&f, &attack, &tense, |_| true, 200).is_empty());
    assert_eq!(n, Some(25), "the 26th request crosses 25");
}

#[test]
fn windows_with_a_flood_are_not_learned_and_growth_is_capped() {
    let f = [flood(FloodKey::Source(Source::Ip), 10)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    // A flood window: not learned from.
    send(&d, &f, &seen("203.0.113.1"), 1000, 500);
    let r = d.roll(&f, 1000);
    assert_eq!(r.baselines[0].1, 0.0);
    // A quiet-looking window with a heavy (non-firing: under the floor after
    // the quiet period) client: growth is capped at max(2 × 0, 10) per window.
    let before = r.baselines[0].1;
    send(&d, &f, &seen("203.0.113.2"), 10, 1500);
    let r = d.roll(&f, 2000);
    assert!(r.baselines[0].1 > before && r.baselines[0].1 <= 10.0);
}

#[test]
fn hosts_learn_their_own_baseline_and_fire_attack_mode() {
    let f = [flood(FloodKey::Host, 30)];
    let d = FloodDetector::default();
    d.sync(&f);
    let mut s = seen("198.51.100.1");
    for w in 0..20u64 {
        d.roll(&f, w * 1000);
        assert!(send_spread(&d, &f, &s, 20, w * 1000).is_empty());
    }
    d.roll(&f, 20_000);
    // Learned about 20 per window: threshold max(30, 80) = 80.
    let fires = send(&d, &f, &s, 100, 20_001);
    assert_eq!(fires.len(), 1);
    assert!(fires[0].threshold > 60 && fires[0].threshold <= 80);
    assert_eq!(
        fires[0].target,
        (crate::Scope::Host, "shop.example".to_string())
    );
    let dec = fires[0].decision("n", 20_001).unwrap();
    assert_eq!(dec.action, crate::DecisionAction::AttackMode);
    // Another host has no baseline: the floor (30) applies.
    s.host = "other.example";
    assert_eq!(send(&d, &f, &s, 31, 20_002).len(), 1);
}

#[test]
fn fleet_baselines_raise_thresholds_and_merge_by_maximum() {
    let f = [flood(FloodKey::Source(Source::Ip), 10)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    let mut peers = FloodStats::default();
    peers.rules.insert(
        "f".into(),
        RuleStats {
            baseline: 50.0,
            keys: BTreeMap::new(),
        },
    );
    d.set_fleet(&peers);
    let r = d.roll(&f, 1000);
    assert_eq!(r.baselines[0].1, 50.0);
    // 4 × 50 = 200 per window before a fire.
    assert!(send(&d, &f, &seen("203.0.113.1"), 200, 1500).is_empty());
    assert_eq!(send(&d, &f, &seen("203.0.113.1"), 1, 1500).len(), 1);

    let mut a = FloodStats::default();
    a.rules.insert(
        "f".into(),
        RuleStats {
            baseline: 3.0,
            keys: [(1, 2.0), (2, 9.0)].into(),
        },
    );
    let mut b = FloodStats::default();
    b.rules.insert(
        "f".into(),
        RuleStats {
            baseline: 7.0,
            keys: [(1, 5.0)].into(),
        },
    );
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!(ab.rules["f"].baseline, 7.0);
    assert_eq!(ab.rules["f"].keys[&1], 5.0);
    // Hostile states are ignored, and the key count stays capped.
    let mut bad = FloodStats::default();
    bad.rules.insert(
        "f".into(),
        RuleStats {
            baseline: f64::NAN,
            keys: (0..1000u64).map(|k| (k, k as f32)).collect(),
        },
    );
    ab.merge(&bad);
    assert_eq!(ab.rules["f"].baseline, 7.0);
    assert_eq!(ab.rules["f"].keys.len(), MAX_SHARED_KEYS);
}

#[test]
fn memory_is_bounded_and_untracked_keys_are_counted() {
    let mut fl = flood(FloodKey::Source(Source::Ip), 1_000);
    fl.max_keys = 32;
    let f = [fl];
    let d = FloodDetector::default();
    d.sync(&f);
    for i in 0..5000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        send(&d, &f, &seen(&ip), 1, 100);
    }
    let r = d.roll(&f, 1000);
    assert!(r.keys <= 32 + 16, "keys {}", r.keys);
    assert!(r.untracked > 4000);
    // Idle keys are forgotten two windows later.
    let r = d.roll(&f, 3000);
    assert_eq!(r.keys, 0);
}

#[test]
fn a_reload_keeps_baselines_of_unchanged_entries() {
    let f = [flood(FloodKey::Source(Source::Ip), 10)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    send(&d, &f, &seen("198.51.100.1"), 8, 10);
    d.roll(&f, 1000);
    let learned = d.local_stats().rules["f"].baseline;
    assert!(learned > 0.0);
    d.sync(&f);
    assert_eq!(d.local_stats().rules["f"].baseline, learned);
    let mut changed = f.clone();
    changed[0].window_ms = 2000;
    d.sync(&changed);
    assert_eq!(d.local_stats().rules["f"].baseline, 0.0);
}

#[test]
fn policy_floods_compile_with_defaults_and_report_every_problem() {
    let p = Policy::from_toml(
        r#"
[[floods]]
id = "per-net"
per = "cidr"
min_requests = 200

[[floods]]
id = "hosts"
per = "host"
min_requests = 5000
action = "attack_mode"
factor = 8
window = "2s"
learn = "1h"

[attack_mode]
rate_limit_factor = 0.25
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(p.floods.len(), 2);
    assert_eq!(p.floods[0].action, FloodAction::Ban);
    assert_eq!(p.floods[0].window_ms, 1000);
    assert_eq!(p.floods[0].learn_ms, 600_000);
    assert_eq!(p.floods[0].factor, 10.0);
    assert_eq!(p.floods[1].action, FloodAction::AttackMode);
    assert_eq!(p.attack_mode.rate_limit_factor, 0.25);
    assert_eq!(p.attack_mode.flood_factor, 0.5);

    let errs = Policy::from_toml(
        r#"
[[floods]]
id = "a"
per = "cidr"
action = "attack_mode"
min_requests = 0
window = "2m"

[[floods]]
id = "b"
per = "planet"
min_requests = 5
factor = 0.5

[attack_mode]
flood_factor = 2
"#,
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "attack_mode is for per",
        "min_requests must be between",
        "window must be between",
        "unknown `per` value `planet`",
        "factor must be between 1 and 1000",
        "flood_factor must be above 0 and at most 1",
    ] {
        assert!(errs.contains(want), "missing `{want}` in:\n{errs}");
    }
}

#[test]
fn host_decisions_carry_attack_mode_and_never_match_a_client() {
    use crate::decisions::{check_action_scope, DecisionError};
    use crate::{Decision, DecisionAction, DecisionSet, Scope};
    let mut set = DecisionSet::new();
    let d = |id, scope, value: &str, action| Decision {
        id,
        scope,
        value: value.into(),
        action,
        reason: String::new(),
        origin: "api".into(),
        simulated: false,
        created_at: 0,
        expires_at: Some(1000),
    };
    set.insert(d(
        1,
        Scope::Host,
        "Shop.Example.:8443",
        DecisionAction::AttackMode,
    ))
    .unwrap();
    assert_eq!(set.get(1).unwrap().value(), "shop.example");
    assert!(set.has_hosts());
    for h in ["shop.example", "SHOP.example:80", "shop.example."] {
        assert!(set.host_decision(h, 10).is_some(), "{h}");
    }
    assert!(set.host_decision("other.example", 10).is_none());
    assert!(set.host_decision("shop.example", 1000).is_none(), "expired");
    assert!(set
        .lookup("203.0.113.1".parse().unwrap(), Geo::default(), 10)
        .is_none());
    // attack_mode only with scope host, and host only with attack_mode.
    assert!(matches!(
        set.insert(d(2, Scope::Host, "a.example", DecisionAction::Ban)),
        Err(DecisionError::ActionScope { .. })
    ));
    assert!(check_action_scope(DecisionAction::AttackMode, Scope::Ip).is_err());
    for bad in ["", "a b", "x/y", "[zz]"] {
        assert!(DecisionSet::normalize(Scope::Host, bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        DecisionSet::normalize(Scope::Host, "[2001:DB8::1]:443").unwrap(),
        "[2001:db8::1]"
    );
    assert_eq!("host".parse::<Scope>(), Ok(Scope::Host));
    assert_eq!(
        "attack_mode".parse::<DecisionAction>(),
        Ok(DecisionAction::AttackMode)
    );
    assert_eq!(
        serde_json::to_string(&DecisionAction::AttackMode).unwrap(),
        "\"attack_mode\""
    );
    set.remove(1).unwrap();
    assert!(!set.has_hosts());
}

/// Evasion attempts: an IPv4 client spelled as IPv4-mapped IPv6, and IPv6
/// addresses rotated within one /64, each count as one source.
#[test]
fn spelling_a_source_differently_does_not_split_its_count() {
    let f = [flood(FloodKey::Source(Source::Ip), 10)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    assert!(send(&d, &f, &seen("203.0.113.9"), 6, 100).is_empty());
    let fires = send(&d, &f, &seen("::ffff:203.0.113.9"), 5, 100);
    assert_eq!(fires.len(), 1, "mapped and plain IPv4 are one source");
    assert_eq!(fires[0].target, (crate::Scope::Ip, "203.0.113.9".into()));

    let f = [flood(FloodKey::Source(Source::Cidr), 10)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    let fires: Vec<Fire> = (0..11u32)
        .flat_map(|i| send(&d, &f, &seen(&format!("2001:db8:1:2::{i:x}")), 1, 100))
        .collect();
    assert_eq!(fires.len(), 1, "one /64 is one source");
    assert_eq!(
        fires[0].target,
        (crate::Scope::Cidr, "2001:db8:1:2::/64".into())
    );
}

#[test]
fn the_rate_slides_across_windows_so_a_flood_started_late_in_one_fires_early_in_the_next() {
    let f = [flood(FloodKey::Source(Source::Ip), 60)];
    let d = FloodDetector::default();
    d.sync(&f);
    d.roll(&f, 0);
    let s = seen("203.0.113.7");
    // 50 requests in the last half of window 0: under 60.
    for i in 0..50u64 {
        assert!(send(&d, &f, &s, 1, 500 + i * 10).is_empty());
    }
    // 100 ms into window 1 the last second holds 50 × 0.9 = 45 of window 0:
    // the 16th request of window 1 crosses 60 (fixed windows would wait
    // for the 61st).
    let n = (0..60u64).position(|_| !send(&d, &f, &s, 1, 1_100).is_empty());
    assert_eq!(n, Some(15), "the 16th request of the new window crosses 60");
    // A steady client under the floor never fires, whatever the phase.
    let calm = seen("198.51.100.8");
    for w in 0..5u64 {
        assert!(send_spread(&d, &f, &calm, 55, w * 1000 + 333).is_empty());
    }
}
