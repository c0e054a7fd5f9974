//! LoginGuard behaviour, with time passed in.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

const KEY: [u8; 32] = [7; 32];
const T0: u64 = 1_800_000_000_000;

fn spec() -> LoginSpec {
    validate(&LoginConfig {
        path: "/login".into(),
        username_field: "username".into(),
        ..Default::default()
    })
    .unwrap()
}

fn user(i: u32) -> UserHash {
    username_key_hash(&KEY, &format!("user{i}@example.com"))
}

fn report(node: &str, time_ms: u64, ip: IpAddr, user: UserHash) -> FailureReport {
    FailureReport {
        node: node.into(),
        time_ms,
        ip,
        asn: Some(64496),
        user,
        login: 0,
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn sources(esc: &[Escalation]) -> Vec<(Scope, String)> {
    esc.iter()
        .filter_map(|e| match e {
            Escalation::Source { scope, value, .. } => Some((*scope, value.clone())),
            _ => None,
        })
        .collect()
}

fn usernames(esc: &[Escalation]) -> usize {
    esc.iter()
        .filter(|e| matches!(e, Escalation::Username { .. }))
        .count()
}

#[test]
fn credential_stuffing_escalates_the_address_then_its_network() {
    let (g, s) = (LoginGuard::default(), spec());
    let ip = v4(203, 0, 113, 9);
    let mut ip_at = Vec::new();
    let mut net_at = Vec::new();
    for i in 0..100u32 {
        let t = T0 + u64::from(i) * 100;
        let out = g.record(&report("n1", t, ip, user(i)), &s, t);
        assert_eq!(usernames(&out), 0, "one try per username is not guessing");
        for (scope, value) in sources(&out) {
            match scope {
                Scope::Ip => {
                    assert_eq!(value, "203.0.113.9");
                    ip_at.push(i + 1);
                }
                Scope::Cidr => {
                    assert_eq!(value, "203.0.113.0/24");
                    net_at.push(i + 1);
                }
                other => panic!("unexpected scope {other:?}"),
            }
        }
    }
    // The 10th distinct username fires, once per node within the duration.
    assert_eq!(ip_at, vec![10]);
    assert_eq!(net_at, vec![30]);
    // Another node's next failure from the same address fires for that node
    // (it issues the decision if nobody had the chance).
    let t = T0 + 20_000;
    let out = g.record(&report("n2", t, ip, user(1)), &s, t);
    assert_eq!(sources(&out).len(), 2);
    let Escalation::Source {
        action,
        duration_ms,
        reason,
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!((*action, *duration_ms), (Action::Challenge, 3_600_000));
    assert!(reason.contains("POST /login"), "{reason}");
    assert_eq!(g.stats().source_escalations, 4);
}

#[test]
fn asn_counts_only_when_configured() {
    let mut raw = LoginConfig {
        path: "/login".into(),
        username_field: "u".into(),
        ..Default::default()
    };
    raw.stuffing = Some(StuffingConfig {
        usernames: Some(1000),
        cidr_usernames: Some(1000),
        asn_usernames: Some(50),
        ..Default::default()
    });
    let s = validate(&raw).unwrap();
    let g = LoginGuard::default();
    let mut fired = Vec::new();
    for i in 0..60u32 {
        let t = T0 + u64::from(i);
        let ip = v4(198, 51, (i % 200) as u8, 1);
        for (scope, value) in sources(&g.record(&report("n1", t, ip, user(i)), &s, t)) {
            fired.push((i + 1, scope, value));
        }
    }
    assert_eq!(fired, vec![(50, Scope::Asn, "64496".to_string())]);
    // Without the setting, the default spec never counts ASes.
    let g = LoginGuard::default();
    for i in 0..60u32 {
        let ip = v4(198, 51, i as u8, 1);
        let out = g.record(&report("n1", T0, ip, user(i)), &spec(), T0);
        assert!(sources(&out).iter().all(|(s, _)| *s != Scope::Asn));
    }
}

#[test]
fn distributed_guessing_marks_the_username() {
    let (g, s) = (LoginGuard::default(), spec());
    let victim = user(42);
    let mut first = None;
    for i in 0..200u32 {
        let t = T0 + u64::from(i) * 50;
        let ip = v4(10, (i / 250) as u8, (i % 250) as u8, 7);
        let out = g.record(&report("n1", t, ip, victim), &s, t);
        assert!(
            sources(&out).is_empty(),
            "one username per source is not stuffing"
        );
        if usernames(&out) > 0 {
            assert!(first.is_none(), "fires once, then the mark is extended");
            first = Some(i + 1);
            let Escalation::Username {
                user,
                action,
                until_ms,
            } = out[0].clone()
            else {
                panic!()
            };
            assert_eq!(
                (user, action, until_ms),
                (victim, Action::Challenge, t + 900_000)
            );
        }
    }
    assert_eq!(first, Some(20), "at the 20th failure");
    let now = T0 + 10_000;
    assert_eq!(g.username_state(&victim, now), Some(Action::Challenge));
    // The mark follows the latest failure.
    assert_eq!(
        g.username_until(&victim, now),
        Some(T0 + 199 * 50 + 900_000)
    );
    assert_eq!(g.username_state(&user(43), now), None);
    assert_eq!(g.username_state(&victim, T0 + 199 * 50 + 900_000), None);
}

#[test]
fn guessing_needs_enough_distinct_sources() {
    let (g, s) = (LoginGuard::default(), spec());
    let victim = user(1);
    // 50 failures from one address: far past `failures`, one source.
    for i in 0..50u64 {
        let out = g.record(&report("n1", T0 + i, v4(192, 0, 2, 1), victim), &s, T0 + i);
        assert_eq!(usernames(&out), 0);
    }
    assert_eq!(g.username_counts(&victim, 600_000, T0 + 50), (20, 1));
    // Sources 2 to 4: still not enough; the 5th marks it.
    for k in 2..=5u8 {
        let t = T0 + 100 + u64::from(k);
        let out = g.record(&report("n1", t, v4(192, 0, 100 + k, 1), victim), &s, t);
        assert_eq!(usernames(&out), usize::from(k == 5), "source {k}");
    }
    assert_eq!(g.username_state(&victim, T0 + 200), Some(Action::Challenge));
}

/// A deterministic shuffle (no rand in this crate).
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

#[test]
fn nodes_fed_in_different_orders_agree() {
    let s = spec();
    let nodes = ["n1", "n2", "n3"];
    let mut all = Vec::new();
    for i in 0..600u32 {
        // A few addresses trying many usernames, many addresses guessing a
        // few, with shared milliseconds (tie-breaks) and repeats.
        let ip = if i % 3 == 0 {
            v4(203, 0, 113, (i % 7) as u8)
        } else {
            v4(10, (i % 50) as u8, (i % 40) as u8, 1)
        };
        let u = if i % 2 == 0 {
            user(i % 61)
        } else {
            user(i % 4)
        };
        all.push(report(
            nodes[i as usize % 3],
            T0 + u64::from(i / 4) * 10,
            ip,
            u,
        ));
    }
    let now = T0 + 2_000;
    let mut orders = vec![all.clone(), all.iter().rev().cloned().collect::<Vec<_>>()];
    let mut shuffled = all.clone();
    shuffle(&mut shuffled, 99);
    orders.push(shuffled);
    let guards: Vec<LoginGuard> = orders
        .iter()
        .map(|order| {
            let g = LoginGuard::default();
            for r in order {
                g.record(r, &s, now);
            }
            g
        })
        .collect();
    let mut marked = 0;
    for u in (0..61).map(user) {
        let state: Vec<_> = guards
            .iter()
            .map(|g| {
                (
                    g.username_until(&u, now),
                    g.username_state(&u, now),
                    // Narrower windows see which failures were kept.
                    [600_000, 1_200, 900].map(|w| g.username_counts(&u, w, now)),
                )
            })
            .collect();
        assert!(state.windows(2).all(|w| w[0] == w[1]), "{u}: {state:?}");
        marked += usize::from(state[0].0.is_some());
    }
    assert!(marked >= 1, "the test must exercise marks");
    for r in &all {
        for (scope, value) in [
            (Scope::Ip, r.ip.to_string()),
            (
                Scope::Cidr,
                format!(
                    "{}/24",
                    r.ip.to_string().rsplit_once('.').unwrap().0.to_owned() + ".0"
                ),
            ),
        ] {
            let counts: Vec<[u64; 3]> = guards
                .iter()
                .map(|g| [600_000, 1_200, 900].map(|w| g.source_usernames(scope, &value, w, now)))
                .collect();
            assert!(
                counts.windows(2).all(|w| w[0] == w[1]),
                "{value}: {counts:?}"
            );
            assert!(counts[0][0] > 0, "{value} was counted");
        }
    }
}

#[test]
fn duplicates_are_not_counted_twice() {
    let (g, s) = (LoginGuard::default(), spec());
    let victim = user(5);
    // 19 distinct failures from 19 addresses, each delivered three times.
    for _ in 0..3 {
        for i in 0..19u8 {
            let t = T0 + u64::from(i);
            let out = g.record(&report("n1", t, v4(10, i, 0, 1), victim), &s, T0 + 100);
            assert_eq!(usernames(&out), 0);
        }
    }
    assert_eq!(g.username_counts(&victim, 600_000, T0 + 100), (19, 5));
    assert_eq!(g.stats().duplicates, 38);
    // The same address, node and time but another node: another failure.
    let out = g.record(&report("n2", T0, v4(10, 0, 0, 1), victim), &s, T0 + 100);
    assert_eq!(usernames(&out), 1);
    // An address retrying one username does not look like stuffing.
    let g = LoginGuard::default();
    for i in 0..50u64 {
        let out = g.record(&report("n1", T0 + i, v4(192, 0, 2, 9), user(1)), &s, T0 + i);
        assert!(sources(&out).is_empty());
    }
    assert_eq!(
        g.source_usernames(Scope::Ip, "192.0.2.9", 600_000, T0 + 50),
        1
    );
}

#[test]
fn windows_expire() {
    let (g, s) = (LoginGuard::default(), spec());
    let ip = v4(203, 0, 113, 1);
    for i in 0..9u32 {
        g.record(&report("n1", T0, ip, user(i)), &s, T0);
    }
    // The 10th username, once the first nine left the 10-minute window.
    let later = T0 + 600_000;
    let out = g.record(&report("n1", later, ip, user(9)), &s, later);
    assert!(sources(&out).is_empty(), "{out:?}");
    assert_eq!(
        g.source_usernames(Scope::Ip, "203.0.113.1", 600_000, later),
        1
    );
    // Within the window it would have fired: the control case.
    let out = g.record(
        &report("n1", T0 + 1, v4(203, 0, 113, 2), user(9)),
        &s,
        T0 + 1,
    );
    assert!(sources(&out).is_empty());
    for i in 0..9u32 {
        let out = g.record(
            &report("n1", T0 + 2, v4(203, 0, 113, 2), user(i)),
            &s,
            T0 + 2,
        );
        assert_eq!(!sources(&out).is_empty(), i == 8);
    }
    // A report already out of the window, or from the far future, is ignored.
    let before = g.stats().stale;
    let out = g.record(&report("n1", T0, ip, user(77)), &s, T0 + 600_000);
    assert!(out.is_empty());
    g.record(&report("n1", T0 + 3_600_000, ip, user(78)), &s, T0);
    assert_eq!(g.stats().stale, before + 2);
    assert_eq!(
        g.username_counts(&user(78), 600_000, T0 + 3_600_000),
        (0, 0)
    );
    // Sweeping drops entries with nothing left.
    g.sweep(T0 + 10_000_000);
    assert_eq!((g.stats().sources, g.stats().usernames), (0, 0));
}

#[test]
fn tables_are_capped_and_marks_survive_floods() {
    let limits = GuardLimits {
        max_sources: 64,
        max_usernames: 64,
        max_skew_ms: 60_000,
    };
    let (g, s) = (LoginGuard::new(limits), spec());
    let victim = user(999_999);
    for i in 0..20u8 {
        g.record(&report("n1", T0, v4(10, i, 0, 1), victim), &s, T0);
    }
    assert!(g.username_state(&victim, T0).is_some());
    for i in 0..5_000u32 {
        let t = T0 + 1 + u64::from(i);
        let ip = IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1,
        ));
        g.record(&report("n1", t, ip, user(i)), &s, t);
    }
    let st = g.stats();
    assert!(st.sources <= 64 && st.usernames <= 64, "{st:?}");
    assert!(
        st.source_evictions > 0 && st.username_evictions > 0,
        "{st:?}"
    );
    assert_eq!(
        g.username_state(&victim, T0 + 6_000),
        Some(Action::Challenge)
    );
    // Expired entries go before live ones, even more recent ones: eight
    // users of an endpoint with a 1-day window, then 56 of one with a
    // 1-second window; the table is full.
    let g = LoginGuard::new(limits);
    let mut long = LoginConfig {
        path: "/login".into(),
        username_field: "u".into(),
        ..Default::default()
    };
    let mut short = long.clone();
    long.guessing = Some(GuessingConfig {
        window: Some("1d".into()),
        ..Default::default()
    });
    short.guessing = Some(GuessingConfig {
        window: Some("1s".into()),
        ..Default::default()
    });
    let (long, short) = (validate(&long).unwrap(), validate(&short).unwrap());
    for i in 0..8u32 {
        g.record(&report("n1", T0, v4(10, 0, 0, 1), user(i)), &long, T0);
    }
    for i in 100..156u32 {
        g.record(
            &report("n1", T0 + 1_000, v4(10, 0, 0, 2), user(i)),
            &short,
            T0 + 1_000,
        );
    }
    assert_eq!(g.stats().usernames, 64);
    let now = T0 + 5_000;
    for i in 200..208u32 {
        g.record(&report("n1", now, v4(10, 0, 0, 3), user(i)), &s, now);
    }
    for i in 0..8u32 {
        assert_eq!(
            g.username_counts(&user(i), 86_400_000, now),
            (1, 1),
            "user {i} kept"
        );
    }
    assert_eq!(g.stats().usernames, 16);
}

#[test]
fn the_hash_not_the_username_leaves_the_edge() {
    let names = ["alice@example.com", "Bob.Smith", "carol"];
    let reports: Vec<FailureReport> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            report(
                "edge-1",
                T0 + i as u64,
                v4(192, 0, 2, 1),
                username_key_hash(&KEY, n),
            )
        })
        .collect();
    let bytes = encode(&reports);
    for n in names {
        for form in [n.to_string(), n.to_lowercase()] {
            assert!(
                !bytes
                    .windows(form.len())
                    .any(|w| w.eq_ignore_ascii_case(form.as_bytes())),
                "{form} in clear"
            );
        }
        let h = username_key_hash(&KEY, n);
        assert!(bytes.windows(16).any(|w| w == h.0), "the hash is sent");
    }
    assert_eq!(decode(&bytes).unwrap(), reports);
}
