use super::index::{bucket4, bucket6, buckets4, BucketFilter, GATE6};
use super::*;
use crate::request::Geo;

fn dec(id: u64, scope: Scope, value: &str, action: DecisionAction) -> Decision {
    Decision {
        id,
        scope,
        value: value.to_owned(),
        action,
        reason: "test".into(),
        origin: "operator".into(),
        simulated: false,
        created_at: 1_000,
        expires_at: None,
    }
}

fn ban(id: u64, scope: Scope, value: &str) -> Decision {
    dec(id, scope, value, DecisionAction::Ban)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn geo(country: Option<&str>, asn: Option<u32>) -> Geo {
    Geo {
        country: country.map(|c| {
            let b = c.as_bytes();
            [b[0], b[1]]
        }),
        asn,
    }
}

fn id_of(set: &DecisionSet, addr: &str, g: Geo, now: UnixMillis) -> Option<u64> {
    set.lookup(ip(addr), g, now).map(|d| d.id)
}

/// Checks that every index agrees with the slab.
fn assert_consistent(set: &DecisionSet) {
    let live = set.iter().count();
    assert_eq!(live, set.len());
    let indexed = set.ip4.len()
        + set.ip6.len()
        + set.net4.len()
        + set.net6.len()
        + set.country.len()
        + set.asn.len();
    assert_eq!(indexed, set.len());
    let mut reasons = std::collections::HashSet::new();
    for d in set.iter() {
        assert_eq!(set.get(d.id), Some(d));
        assert_eq!(set.get_key(d.scope, &d.value()), Some(d));
        reasons.insert((d.reason, d.origin));
    }
    // Interned reasons are released with their last decision.
    assert_eq!(reasons.len(), set.distinct_reasons());
    let n4: u32 = set.net4_lens.counts.iter().sum();
    let n6: u32 = set.net6_lens.counts.iter().sum();
    assert_eq!(n4 as usize, set.net4.len());
    assert_eq!(n6 as usize, set.net6.len());
    // The filters count exactly the indexed networks.
    let mut f4 = BucketFilter::default();
    let mut f6 = BucketFilter::default();
    for d in set.iter().filter(|d| d.scope == Scope::Cidr) {
        match parse_key(Scope::Cidr, &d.value()).unwrap() {
            Key::Net4(n, l) => buckets4(n, l).for_each(|b| f4.add(b)),
            Key::Net6(n, l) if l >= GATE6 => f6.add(bucket6(n)),
            _ => {}
        }
    }
    for (want, got) in [(f4, &set.net4_filter), (f6, &set.net6_filter)] {
        let nonzero = |f: &BucketFilter| f.counts.iter().any(|&c| c > 0);
        if nonzero(&want) || nonzero(got) {
            assert!(want.counts == got.counts && want.bits == got.bits);
        }
    }
}

#[test]
fn scope_and_action_names() {
    for s in Scope::ALL {
        assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert_eq!("Range".parse::<Scope>(), Ok(Scope::Cidr));
    assert_eq!("AS".parse::<Scope>(), Ok(Scope::Asn));
    assert_eq!(" IP ".parse::<Scope>(), Ok(Scope::Ip));
    assert!(matches!(
        "user".parse::<Scope>(),
        Err(DecisionError::UnknownScope { .. })
    ));
    assert_eq!("BAN".parse::<DecisionAction>(), Ok(DecisionAction::Ban));
    assert_eq!(DecisionAction::Allow.as_str(), "allow");
    assert!("captcha".parse::<DecisionAction>().is_err());
}

#[test]
fn normalizes_ips() {
    let n = |v| DecisionSet::normalize(Scope::Ip, v);
    assert_eq!(n("1.2.3.4").unwrap(), "1.2.3.4");
    assert_eq!(n(" 1.2.3.4\n").unwrap(), "1.2.3.4");
    assert_eq!(n("::ffff:1.2.3.4").unwrap(), "1.2.3.4");
    assert_eq!(n("2001:DB8:0:0::1").unwrap(), "2001:db8::1");
    assert_eq!(n("::1").unwrap(), "::1");
    for bad in [
        "",
        "1.2.3",
        "1.2.3.4/32",
        "256.1.1.1",
        "fe80::1%eth0",
        "example.com",
    ] {
        let e = n(bad).unwrap_err();
        assert!(
            matches!(
                &e,
                DecisionError::InvalidValue {
                    scope: Scope::Ip,
                    ..
                }
            ),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn normalizes_cidrs() {
    let n = |v| DecisionSet::normalize(Scope::Cidr, v);
    assert_eq!(n("10.1.2.3/8").unwrap(), "10.0.0.0/8");
    assert_eq!(n("10.1.2.3/32").unwrap(), "10.1.2.3/32");
    assert_eq!(n("10.1.2.3").unwrap(), "10.1.2.3/32");
    assert_eq!(n("0.0.0.0/0").unwrap(), "0.0.0.0/0");
    assert_eq!(n("192.168.77.1/0").unwrap(), "0.0.0.0/0");
    assert_eq!(n("2001:db8:ffff::1/32").unwrap(), "2001:db8::/32");
    assert_eq!(n("2001:db8::1/128").unwrap(), "2001:db8::1/128");
    assert_eq!(n("::ffff:10.9.8.7/104").unwrap(), "10.0.0.0/8");
    assert_eq!(n("::ffff:10.9.8.7/128").unwrap(), "10.9.8.7/32");
    assert_eq!(n("::ffff:0.0.0.0/80").unwrap(), "::/80");
    for bad in [
        "",
        "10.0.0.0/33",
        "10.0.0.0/",
        "2001:db8::/129",
        "10.0.0.0/8/8",
        "x/8",
    ] {
        let e = n(bad).unwrap_err();
        assert!(
            matches!(
                &e,
                DecisionError::InvalidValue {
                    scope: Scope::Cidr,
                    ..
                }
            ),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn normalizes_countries_and_asns() {
    let c = |v| DecisionSet::normalize(Scope::Country, v);
    assert_eq!(c("fr").unwrap(), "FR");
    assert_eq!(c(" Us ").unwrap(), "US");
    for bad in ["", "F", "FRA", "F1", "é", "ÉÉ"] {
        assert!(c(bad).is_err(), "{bad}");
    }
    let a = |v| DecisionSet::normalize(Scope::Asn, v);
    assert_eq!(a("AS15169").unwrap(), "15169");
    assert_eq!(a("as15169").unwrap(), "15169");
    assert_eq!(a("15169").unwrap(), "15169");
    assert_eq!(a("As007").unwrap(), "7");
    assert_eq!(a("4294967295").unwrap(), "4294967295");
    for bad in [
        "",
        "AS",
        "ASN15169",
        "4294967296",
        "-1",
        "15 169",
        "+5",
        "é",
    ] {
        assert!(a(bad).is_err(), "{bad}");
    }
    let e = a("AS99999999999").unwrap_err();
    assert!(
        e.to_string().contains("invalid asn value `AS99999999999`"),
        "{e}"
    );
}

#[test]
fn error_values_are_clipped() {
    let long = "é".repeat(200);
    match DecisionSet::normalize(Scope::Ip, &long).unwrap_err() {
        DecisionError::InvalidValue { value, .. } => assert!(value.len() <= 100),
        e => panic!("{e:?}"),
    }
}

#[test]
fn insert_normalizes_and_replaces_by_key() {
    let mut set = DecisionSet::new();
    assert_eq!(set.insert(ban(1, Scope::Ip, "::ffff:9.9.9.9")), Ok(None));
    assert_eq!(set.get(1).unwrap().value(), "9.9.9.9");
    let old = set
        .insert(dec(2, Scope::Ip, "9.9.9.9", DecisionAction::Allow))
        .unwrap()
        .unwrap();
    assert_eq!(old.id, 1);
    assert_eq!(set.len(), 1);
    assert_eq!(set.get(1), None);
    assert_eq!(set.get(2).unwrap().action, DecisionAction::Allow);
    // Same id, same key: a plain update.
    let mut upd = ban(2, Scope::Ip, "9.9.9.9");
    upd.expires_at = Some(5_000);
    assert_eq!(
        set.insert(upd).unwrap().unwrap().action,
        DecisionAction::Allow
    );
    assert_eq!(set.get(2).unwrap().expires_at, Some(5_000));
    // Same id, other key: refused, nothing changes.
    let e = set.insert(ban(2, Scope::Country, "fr")).unwrap_err();
    assert!(matches!(
        e,
        DecisionError::DuplicateId {
            id: 2,
            scope: Scope::Ip,
            ..
        }
    ));
    assert_eq!(set.len(), 1);
    // Invalid value: refused.
    assert!(set.insert(ban(3, Scope::Cidr, "10.0.0.0/40")).is_err());
    assert_eq!(set.len(), 1);
    // Cidr replacement goes through normalization too.
    set.insert(ban(4, Scope::Cidr, "10.1.2.3/8")).unwrap();
    assert_eq!(
        set.insert(ban(5, Scope::Cidr, "10.200.0.0/8"))
            .unwrap()
            .unwrap()
            .id,
        4
    );
    assert_eq!(set.net4_lens.counts[8], 1);
    assert_consistent(&set);
}

#[test]
fn lookup_precedence() {
    let mut set = DecisionSet::new();
    set.insert(ban(1, Scope::Country, "FR")).unwrap();
    set.insert(ban(2, Scope::Asn, "AS64500")).unwrap();
    set.insert(ban(3, Scope::Cidr, "10.0.0.0/8")).unwrap();
    set.insert(ban(4, Scope::Cidr, "10.1.0.0/16")).unwrap();
    set.insert(dec(5, Scope::Cidr, "10.1.2.0/24", DecisionAction::Allow))
        .unwrap();
    set.insert(ban(6, Scope::Ip, "10.1.2.3")).unwrap();
    set.insert(ban(7, Scope::Cidr, "0.0.0.0/0")).unwrap();
    let g = geo(Some("FR"), Some(64500));
    assert_eq!(id_of(&set, "10.1.2.3", g, 0), Some(6));
    assert_eq!(id_of(&set, "10.1.2.4", g, 0), Some(5));
    assert_eq!(id_of(&set, "10.1.3.4", g, 0), Some(4));
    assert_eq!(id_of(&set, "10.2.3.4", g, 0), Some(3));
    assert_eq!(id_of(&set, "11.2.3.4", g, 0), Some(7));
    set.remove(7).unwrap();
    assert_eq!(id_of(&set, "11.2.3.4", g, 0), Some(2));
    assert_eq!(id_of(&set, "11.2.3.4", geo(Some("FR"), None), 0), Some(1));
    // Country codes from GeoIP are compared upper-cased.
    assert_eq!(id_of(&set, "11.2.3.4", geo(Some("fr"), None), 0), Some(1));
    assert_eq!(id_of(&set, "11.2.3.4", geo(Some("DE"), Some(1)), 0), None);
    assert_eq!(id_of(&set, "11.2.3.4", Geo::default(), 0), None);
    // IPv6 client: no v4 networks apply, geo still does.
    assert_eq!(id_of(&set, "2001:db8::1", g, 0), Some(2));
    assert_eq!(
        set.lookup(ip("10.1.2.4"), g, 0).unwrap().action,
        DecisionAction::Allow
    );
}

#[test]
fn ipv6_and_mapped_addresses() {
    let mut set = DecisionSet::new();
    set.insert(ban(1, Scope::Ip, "1.2.3.4")).unwrap();
    set.insert(ban(2, Scope::Cidr, "::ffff:5.6.0.0/112"))
        .unwrap();
    set.insert(ban(3, Scope::Cidr, "2001:db8::/32")).unwrap();
    set.insert(ban(4, Scope::Cidr, "2001:db8:1::/48")).unwrap();
    set.insert(ban(5, Scope::Ip, "2001:db8:1::9")).unwrap();
    set.insert(ban(6, Scope::Cidr, "2001:db8:1::7/128"))
        .unwrap();
    let g = Geo::default();
    assert_eq!(id_of(&set, "::ffff:1.2.3.4", g, 0), Some(1));
    assert_eq!(id_of(&set, "1.2.3.4", g, 0), Some(1));
    assert_eq!(id_of(&set, "5.6.7.8", g, 0), Some(2));
    assert_eq!(id_of(&set, "::ffff:5.6.7.8", g, 0), Some(2));
    assert_eq!(id_of(&set, "2001:db8:1::9", g, 0), Some(5));
    assert_eq!(id_of(&set, "2001:db8:1::7", g, 0), Some(6));
    assert_eq!(id_of(&set, "2001:db8:1::8", g, 0), Some(4));
    assert_eq!(id_of(&set, "2001:db8:2::8", g, 0), Some(3));
    assert_eq!(id_of(&set, "2001:db9::1", g, 0), None);
    // `::1.2.3.4` (IPv4-compatible, deprecated) is not an IPv4 address.
    assert_eq!(id_of(&set, "::1.2.3.4", g, 0), None);
    assert_eq!(set.get(2).unwrap().value(), "5.6.0.0/16");
    // Networks shorter than the filter's /32 gate are always probed.
    set.insert(ban(7, Scope::Cidr, "2001::/16")).unwrap();
    set.insert(ban(8, Scope::Cidr, "::/0")).unwrap();
    assert_eq!(id_of(&set, "2001:db9::1", g, 0), Some(7));
    assert_eq!(id_of(&set, "2002::1", g, 0), Some(8));
    assert_eq!(id_of(&set, "2001:db8:2::8", g, 0), Some(3));
    assert_eq!(id_of(&set, "9.9.9.9", g, 0), None);
    assert_consistent(&set);
    for id in [3, 4, 6, 7, 8] {
        set.remove(id).unwrap();
        assert_consistent(&set);
    }
    assert_eq!(id_of(&set, "2001:db8:1::8", g, 0), None);
    assert_eq!(id_of(&set, "2001:db8:1::9", g, 0), Some(5));
}

#[test]
fn short_ipv4_networks_cover_their_whole_range() {
    let mut set = DecisionSet::new();
    let g = Geo::default();
    set.insert(ban(1, Scope::Cidr, "128.0.0.0/1")).unwrap();
    set.insert(ban(2, Scope::Cidr, "10.0.0.0/7")).unwrap();
    set.insert(ban(3, Scope::Cidr, "10.1.2.0/24")).unwrap();
    assert_consistent(&set);
    assert_eq!(id_of(&set, "255.255.255.255", g, 0), Some(1));
    assert_eq!(id_of(&set, "128.0.0.0", g, 0), Some(1));
    assert_eq!(id_of(&set, "127.255.255.255", g, 0), None);
    assert_eq!(id_of(&set, "11.255.0.1", g, 0), Some(2));
    assert_eq!(id_of(&set, "10.1.2.255", g, 0), Some(3));
    assert_eq!(id_of(&set, "12.0.0.0", g, 0), None);
    set.insert(ban(4, Scope::Cidr, "0.0.0.0/0")).unwrap();
    assert_eq!(id_of(&set, "12.0.0.0", g, 0), Some(4));
    assert_consistent(&set);
    set.remove(2).unwrap();
    set.remove(4).unwrap();
    assert_consistent(&set);
    assert_eq!(id_of(&set, "11.255.0.1", g, 0), None);
    assert_eq!(id_of(&set, "10.1.2.255", g, 0), Some(3));
    assert!(!set.net4_filter.may_contain(bucket4(0x0b00_0000)));
    assert!(set.net4_filter.may_contain(bucket4(0x0a01_0000)));
}

#[test]
fn expired_decisions_are_skipped_then_purged() {
    let mut set = DecisionSet::new();
    let mut d = ban(1, Scope::Ip, "1.2.3.4");
    d.expires_at = Some(10_000);
    set.insert(d).unwrap();
    let mut d = ban(2, Scope::Cidr, "1.2.3.0/24");
    d.expires_at = Some(20_000);
    set.insert(d).unwrap();
    let mut d = ban(3, Scope::Cidr, "1.2.0.0/16");
    d.expires_at = Some(20_000);
    set.insert(d).unwrap();
    set.insert(ban(4, Scope::Country, "NL")).unwrap();
    let g = geo(Some("NL"), None);
    assert_eq!(id_of(&set, "1.2.3.4", g, 9_999), Some(1));
    assert_eq!(id_of(&set, "1.2.3.4", g, 10_000), Some(2));
    assert_eq!(id_of(&set, "1.2.3.4", g, 20_000), Some(4));
    assert_eq!(set.len(), 4);
    let mut purged: Vec<u64> = set.purge_expired(10_000).iter().map(|d| d.id).collect();
    assert_eq!(purged, vec![1]);
    assert_eq!(set.len(), 3);
    purged = set.purge_expired(30_000).iter().map(|d| d.id).collect();
    purged.sort_unstable();
    assert_eq!(purged, vec![2, 3]);
    assert!(set.purge_expired(u64::MAX).is_empty());
    assert_eq!(set.len(), 1);
    assert_eq!(set.net4_lens.present, [0; 3]);
    assert_eq!(id_of(&set, "1.2.3.4", g, 0), Some(4));
    assert_consistent(&set);
}

#[test]
fn remove_by_id_and_key_keeps_indexes_consistent() {
    let mut set = DecisionSet::new();
    set.insert(ban(1, Scope::Ip, "1.1.1.1")).unwrap();
    set.insert(ban(2, Scope::Cidr, "1.1.0.0/16")).unwrap();
    set.insert(ban(3, Scope::Country, "de")).unwrap();
    set.insert(ban(4, Scope::Asn, "as3320")).unwrap();
    set.insert(ban(5, Scope::Cidr, "2001:db8::/32")).unwrap();
    assert_consistent(&set);
    assert_eq!(set.remove_key(Scope::Ip, "::ffff:1.1.1.1").unwrap().id, 1);
    assert_eq!(set.remove_key(Scope::Ip, "1.1.1.1"), None);
    assert_eq!(set.remove_key(Scope::Ip, "not an ip"), None);
    assert_eq!(set.remove_key(Scope::Country, "DE").unwrap().id, 3);
    assert_eq!(set.remove_key(Scope::Asn, "3320").unwrap().id, 4);
    assert_eq!(set.remove(2).unwrap().value, "1.1.0.0/16");
    assert_eq!(set.remove(2), None);
    assert_consistent(&set);
    assert_eq!(set.len(), 1);
    assert_eq!(id_of(&set, "1.1.1.1", geo(Some("DE"), Some(3320)), 0), None);
    // The freed slots are reused.
    set.insert(ban(6, Scope::Ip, "8.8.8.8")).unwrap();
    assert!(set.slots.len() <= 5);
    assert_consistent(&set);
    assert_eq!(
        set.remove_key(Scope::Cidr, "2001:db8:1::/32").unwrap().id,
        5
    );
    assert_eq!(set.remove(6).unwrap().id, 6);
    assert!(set.is_empty());
    assert_eq!(set.iter().count(), 0);
    assert_consistent(&set);
    // Usable again after emptying.
    set.insert(ban(7, Scope::Ip, "8.8.8.8")).unwrap();
    assert_eq!(id_of(&set, "8.8.8.8", Geo::default(), 0), Some(7));
}

#[test]
fn serde_round_trip() {
    let mut d = ban(9, Scope::Asn, "AS1");
    d.expires_at = Some(3);
    let json = serde_json::to_string(&d).unwrap();
    assert!(json.contains("\"scope\":\"asn\"") && json.contains("\"action\":\"ban\""));
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn many_inserts_and_lookups() {
    let mut set = DecisionSet::new();
    let n: u32 = 100_000;
    for i in 0..n {
        let a = Ipv4Addr::from(0x0a00_0000 + i * 3);
        let mut d = ban(u64::from(i), Scope::Ip, &a.to_string());
        d.expires_at = Some(if i % 2 == 0 { 1_000 } else { 2_000 });
        set.insert(d).unwrap();
    }
    for l in [12u8, 20, 28] {
        set.insert(ban(
            1_000_000 + u64::from(l),
            Scope::Cidr,
            &format!("10.0.0.0/{l}"),
        ))
        .unwrap();
    }
    assert_eq!(set.len(), n as usize + 3);
    let g = Geo::default();
    for i in 0..n {
        let hit = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 3));
        assert_eq!(set.lookup(hit, g, 500).map(|d| d.id), Some(u64::from(i)));
        let miss = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 3 + 1));
        let expect = match 0x0a00_0000 + i * 3 + 1 {
            a if a < 0x0a00_0010 => Some(1_000_028),
            a if a < 0x0a00_1000 => Some(1_000_020),
            a if a < 0x0a10_0000 => Some(1_000_012),
            _ => None,
        };
        assert_eq!(set.lookup(miss, g, 500).map(|d| d.id), expect, "{miss}");
    }
    assert!(!set.any_expired(999) && set.any_expired(1_000));
    assert_eq!(set.purge_expired(1_500).len(), n as usize / 2);
    assert_eq!(
        set.lookup(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 6)), g, 1_500)
            .map(|d| d.id),
        Some(1_000_028)
    );
    assert_consistent(&set);
}

#[test]
fn debug_is_short() {
    let mut set = DecisionSet::new();
    set.insert(ban(1, Scope::Ip, "1.1.1.1")).unwrap();
    let s = format!("{set:?}");
    assert!(s.contains("len: 1"), "{s}");
}

/// `lookup_hit` reads action, shadow mode and "expires" from the index value:
/// replacing a decision about the same key must rewrite them there too.
#[test]
fn lookup_hit_follows_a_replaced_decision_in_every_scope() {
    let g = geo(Some("FR"), Some(64_500));
    let keys = [
        (Scope::Ip, "203.0.113.7", "203.0.113.7"),
        (Scope::Ip, "2001:db8::7", "2001:db8::7"),
        (Scope::Cidr, "198.51.100.0/24", "198.51.100.9"),
        (Scope::Cidr, "2001:db8:1::/48", "2001:db8:1::9"),
        (Scope::Asn, "64500", "192.0.2.1"),
        (Scope::Country, "FR", "192.0.2.2"),
    ];
    for (i, (scope, value, client)) in keys.into_iter().enumerate() {
        let mut set = DecisionSet::new();
        let id = 10 * i as u64 + 1;
        let mut d = ban(id, scope, value);
        d.expires_at = Some(5_000);
        set.insert(d.clone()).unwrap();
        let hit = set.lookup_hit(ip(client), g, 4_999).expect("a live ban");
        assert_eq!(
            (hit.id, hit.action, hit.simulated),
            (id, DecisionAction::Ban, false),
            "{scope} {value}"
        );
        assert_eq!(
            set.lookup_hit(ip(client), g, 5_000),
            None,
            "{scope} {value} expired"
        );
        // The same key: allowed, in shadow mode, without expiry, another id.
        d.id = id + 1;
        d.action = DecisionAction::Allow;
        d.simulated = true;
        d.expires_at = None;
        assert!(set.insert(d.clone()).unwrap().is_some());
        let hit = set
            .lookup_hit(ip(client), g, u64::MAX)
            .expect("no expiry any more");
        assert_eq!(
            (hit.id, hit.action, hit.simulated),
            (id + 1, DecisionAction::Allow, true),
            "{scope} {value}"
        );
        let full = set.lookup(ip(client), g, u64::MAX).unwrap();
        assert_eq!(
            (full.id, full.action, full.simulated),
            (hit.id, hit.action, hit.simulated)
        );
        // And back to an expiring ban.
        d.action = DecisionAction::Ban;
        d.simulated = false;
        d.expires_at = Some(7_000);
        set.insert(d).unwrap();
        assert_eq!(
            set.lookup_hit(ip(client), g, 6_999)
                .map(|h| (h.action, h.simulated)),
            Some((DecisionAction::Ban, false))
        );
        assert_eq!(set.lookup_hit(ip(client), g, 7_000), None);
        assert_eq!(set.get_key(scope, value).map(|r| r.id), Some(id + 1));
        assert_eq!(set.remove_key(scope, value).map(|r| r.id), Some(id + 1));
        assert_eq!(set.lookup_hit(ip(client), g, 0), None);
    }
}
