//! Debian's CRS 3.3.4 (package `modsecurity-crs`, installed by the test
//! command): it loads completely, its PCRE-only regexes run on the
//! backtracking engine, and such a rule fires on the attack it targets.
//! Without the package these tests fail.

use palisade_waf::{HttpRequest, Waf, WafSettings};
use std::path::Path;

const DEBIAN_CRS: &str = "/usr/share/modsecurity-crs/rules";

fn waf(paranoia: u8) -> Waf {
    assert!(
        Path::new(DEBIAN_CRS).is_dir(),
        "{DEBIAN_CRS} is missing: install Debian's modsecurity-crs (scripts/test.sh does)"
    );
    let cfg = WafSettings {
        crs_dir: Some(DEBIAN_CRS.into()),
        blocking_paranoia_level: paranoia,
        ..WafSettings::default()
    };
    Waf::build(&cfg).unwrap_or_else(|e| panic!("CRS 3.3.4 must load strictly: {e}"))
}

fn get(uri: &str) -> HttpRequest {
    HttpRequest {
        method: b"GET".to_vec(),
        uri: uri.as_bytes().to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: vec![
            (b"Host".to_vec(), b"shop.example.com".to_vec()),
            (
                b"User-Agent".to_vec(),
                b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".to_vec(),
            ),
            (b"Accept".to_vec(), b"text/html".to_vec()),
        ],
        remote_addr: "192.0.2.10".into(),
        ..HttpRequest::default()
    }
}

#[test]
fn crs_3_3_4_loads_with_no_rule_skipped() {
    let w = waf(1);
    assert!(w.skipped_rules().is_empty(), "{:?}", w.skipped_rules());
    assert_eq!(w.crs().version.as_deref(), Some("3.3.4"));
    let stats = w.rule_stats();
    // The rules docs/waf.md lists as running on the backtracking engine.
    assert_eq!(
        stats.backtracking,
        vec![920120, 920600, 942130, 942260, 953120],
        "update docs/waf.md with the new list"
    );
    assert_eq!(stats.per_phase.iter().sum::<usize>(), stats.total);
}

#[test]
fn a_pcre_only_rule_fires_on_its_attack() {
    // 942130, SQL tautology: `\b([\d\w]+)\b … =[\s'"`()]*?\b\1\b`, a
    // back-reference (paranoia level 2).
    let w = waf(2);
    let ids =
        |uri: &str| -> Vec<u32> { w.inspect(get(uri)).matched.iter().map(|m| m.id).collect() };
    let attack = ids("/search?q=x%27%20or%20%27a%27%3D%27a");
    assert!(attack.contains(&942130), "942130 should match: {attack:?}");
    // The same shape where the two sides differ is no tautology.
    let benign = ids("/search?q=x%27%20or%20%27a%27%3D%27b");
    assert!(
        !benign.contains(&942130),
        "942130 should not match: {benign:?}"
    );
}
