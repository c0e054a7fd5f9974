//! Flood auto-mitigation and under-attack mode, end to end: a real
//! `palisade up`, a real origin, a real HTTP client and the real CLI.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn get(up: &Up, host: &str, client_ip: &str) -> u16 {
    client()
        .get(format!("{}/", up.proxy))
        .header("Host", host)
        .header("x-forwarded-for", client_ip)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn cli(up: &Up, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .args(["--api", &up.api, "--token", &up.token])
        .output()
        .unwrap()
}

fn decisions(up: &Up) -> Vec<serde_json::Value> {
    client()
        .get(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .unwrap()
}

#[test]
fn a_flooding_source_is_banned_and_a_normal_one_is_not() {
    let (_origin, url) = demo_origin();
    // A wide window, so that the counts of this test fall in one or two windows.
    let policy = r#"
[[floods]]
id = "per-ip"
per = "ip"
window = "10s"
learn = "1m"
factor = 10
min_requests = 30
duration = "10m"
"#;
    let up = Up::start(&[url], Some(policy), &["--trusted-proxy", "127.0.0.1/32"]);
    let mut passed = 0;
    let mut banned = false;
    for _ in 0..200 {
        match get(&up, "shop.example", "192.0.2.50") {
            200 => passed += 1,
            403 => {
                banned = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(banned, "the flooding source was never banned");
    // Above the floor of 30 per window (two windows at most: up to 60).
    assert!(
        (30..=60).contains(&passed),
        "{passed} requests passed first"
    );
    // The ban holds on any host; another source is served.
    assert_eq!(get(&up, "other.example", "192.0.2.50"), 403);
    for _ in 0..5 {
        assert_eq!(get(&up, "shop.example", "192.0.2.60"), 200);
    }
    let ds = decisions(&up);
    let d = ds
        .iter()
        .find(|d| d["value"] == "192.0.2.50")
        .unwrap_or_else(|| panic!("no decision for the flooding source: {ds:?}"));
    assert_eq!(d["scope"], "ip");
    assert_eq!(d["action"], "ban");
    assert!(
        d["origin"].as_str().unwrap().starts_with("flood:per-ip@"),
        "{d}"
    );
    assert!(!ds.iter().any(|d| d["value"] == "192.0.2.60"));
    let m = up.metrics();
    assert!(
        m.contains(r#"palisade_flood_fires_total{action="ban",flood="per-ip"} 1"#),
        "{m}"
    );
    assert!(m.contains("palisade_flood_keys"), "{m}");
}

#[test]
fn under_attack_mode_tightens_the_rate_limits_of_one_host() {
    let (_origin, url) = demo_origin();
    let policy = r#"
[[rate_limits]]
id = "per-client"
expression = 'true'
characteristics = ["ip.src", "header:host"]
requests = 10
period = "1m"

[attack_mode]
rate_limit_factor = 0.5
"#;
    let up = Up::start(&[url], Some(policy), &["--trusted-proxy", "127.0.0.1/32"]);
    for _ in 0..6 {
        assert_eq!(get(&up, "shop.example", "192.0.2.7"), 200);
    }

    let out = cli(&up, &["attack-mode", "on", "--host", "Shop.Example:443"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("shop.example: under attack until turned off"),
        "{said}"
    );
    // Half the limit (5) is already spent by 6 requests: the next is refused.
    assert!(
        eventually(Duration::from_secs(5), || get(
            &up,
            "shop.example",
            "192.0.2.7"
        ) == 429),
        "under-attack mode did not tighten the limit"
    );
    // Another host keeps its full limit.
    for _ in 0..8 {
        assert_eq!(get(&up, "other.example", "192.0.2.8"), 200);
    }
    // On shop.example a fresh client gets 5, not 10.
    let served = (0..10)
        .filter(|_| get(&up, "shop.example", "192.0.2.9") == 200)
        .count();
    assert_eq!(served, 5);

    let out = cli(&up, &["attack-mode", "status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("shop.example: under attack"),
        "{out:?}"
    );
    assert!(eventually(Duration::from_secs(5), || up
        .metrics()
        .contains("palisade_attack_mode_hosts 1")));
    let ds = decisions(&up);
    assert!(
        ds.iter()
            .any(|d| d["scope"] == "host" && d["action"] == "attack_mode"),
        "{ds:?}"
    );

    let out = cli(&up, &["attack-mode", "off", "--host", "shop.example"]);
    assert!(out.status.success(), "{out:?}");
    // Back to 10: a fresh client gets 10.
    assert!(eventually(Duration::from_secs(5), || up
        .metrics()
        .contains("palisade_attack_mode_hosts 0")));
    let served = (0..12)
        .filter(|_| get(&up, "shop.example", "192.0.2.10") == 200)
        .count();
    assert_eq!(served, 10);
    // Off again: a clear error, not a crash.
    let out = cli(&up, &["attack-mode", "off", "--host", "shop.example"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in under-attack mode"));
    // A bad host name is refused with a reason.
    let out = cli(&up, &["attack-mode", "on", "--host", "a b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("host name"));
}
