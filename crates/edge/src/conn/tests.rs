//! Who is refused at accept: bans (enforced, ip or cidr), the allowlist,
//! trusted proxies and the per-IP cap.

use super::*;
use crate::client_ip::TrustedProxies;
use crate::config::Limits;
use crate::events::EventSink;
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::{Decision, Policy, Scope};

fn state(policy: &str, trusted: &[&str]) -> Arc<EdgeState> {
    Arc::new(
        EdgeState::new(
            "test".into(),
            Policy::from_toml(policy, "p.toml").unwrap(),
            RateLimiter::new(1000),
            None,
            EventSink::new(None).unwrap(),
            TrustedProxies::new(trusted.iter().map(|t| t.parse().unwrap()).collect()),
            Limits::default(),
        )
        .unwrap(),
    )
}

fn ban(st: &EdgeState, scope: Scope, value: &str, simulated: bool) {
    st.add_decision(Decision {
        id: 0,
        scope,
        value: value.into(),
        action: DecisionAction::Ban,
        reason: "test".into(),
        origin: "test".into(),
        simulated,
        created_at: 0,
        expires_at: None,
    })
    .unwrap();
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn enforced_ip_and_cidr_bans_are_refused_at_accept() {
    let st = state("", &["10.9.0.0/16"]);
    let f = ConnFilter::new(st.clone());
    ban(&st, Scope::Ip, "192.0.2.1", false);
    ban(&st, Scope::Cidr, "198.51.100.0/24", false);
    ban(&st, Scope::Ip, "192.0.2.2", true);
    ban(&st, Scope::Country, "KP", false);
    ban(&st, Scope::Cidr, "10.9.0.0/16", false);
    assert_eq!(f.refuse(ip("192.0.2.1")), Some(Reason::Banned));
    assert_eq!(f.refuse(ip("198.51.100.77")), Some(Reason::Banned));
    assert_eq!(f.refuse(ip("::ffff:192.0.2.1")), Some(Reason::Banned));
    assert_eq!(
        f.refuse(ip("192.0.2.2")),
        None,
        "simulated: logged, not enforced"
    );
    assert_eq!(f.refuse(ip("192.0.2.3")), None);
    assert_eq!(f.refuse(ip("10.9.1.1")), None, "a trusted proxy");
}

#[test]
fn the_allowlist_spares_an_address_and_ban_at_accept_can_be_off() {
    let st = state("[allowlist]\nips = [\"192.0.2.0/28\"]\n", &[]);
    let f = ConnFilter::new(st.clone());
    ban(&st, Scope::Cidr, "192.0.2.0/24", false);
    assert_eq!(f.refuse(ip("192.0.2.5")), None);
    assert_eq!(f.refuse(ip("192.0.2.100")), Some(Reason::Banned));
    st.set_policy(Policy::from_toml("[connections]\nban_at_accept = false\n", "p.toml").unwrap())
        .unwrap();
    assert_eq!(f.refuse(ip("192.0.2.100")), None);
}

#[test]
fn the_cap_is_read_at_accept_and_trusted_proxies_are_exempt() {
    let st = state("[connections]\nmax_per_ip = 2\n", &["10.9.0.0/16"]);
    let f = ConnFilter::new(st.clone());
    let _a = st.conns.registry.register(ip("192.0.2.1"), 2).unwrap();
    assert_eq!(f.refuse(ip("192.0.2.1")), None);
    let _b = st.conns.registry.register(ip("192.0.2.1"), 2).unwrap();
    assert_eq!(f.refuse(ip("192.0.2.1")), Some(Reason::PerIpCap));
    let _p: Vec<_> = (0..5)
        .map(|_| st.conns.registry.register(ip("10.9.0.1"), 0).unwrap())
        .collect();
    assert_eq!(f.refuse(ip("10.9.0.1")), None);
}

#[test]
fn a_ban_wakes_the_sweeper_which_closes_the_banned_connections() {
    let st = state("", &[]);
    spawn_sweeper(&st).unwrap();
    let doomed = st.conns.registry.register(ip("203.0.113.5"), 0).unwrap();
    let spared = st.conns.registry.register(ip("203.0.114.5"), 0).unwrap();
    ban(&st, Scope::Cidr, "203.0.113.0/24", false);
    let start = std::time::Instant::now();
    while doomed.closed().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(doomed.closed(), Some(Reason::BanClosed));
    assert_eq!(spared.closed(), None);
    assert_eq!(st.metrics.conn.dropped(Reason::BanClosed), 1);
}

#[test]
fn reasons_round_trip() {
    for r in Reason::ALL {
        assert_eq!(Reason::from_u8(r as u8), Some(r));
    }
    assert_eq!(Reason::from_u8(0), None);
    assert_eq!(Reason::from_u8(200), None);
}
