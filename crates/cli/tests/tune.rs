//! `palisade waf tune` end to end: CRS in detect mode records would-be
//! blocks of a site's legitimate traffic, `waf tune` turns the events into a
//! policy with exclusions, and with that policy in block mode the same
//! traffic passes while attacks elsewhere (another parameter, another path,
//! another host) are still blocked.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// A site about SQL and HTML whose search box and profile field are
/// legitimately full of what CRS looks for.
const LEGIT: &[&str] = &[
    "/docs/search?q=select%20name%20from%20users%20where%20id%3D1%20union%20select%20password%20from%20admins",
    "/docs/search?q=SELECT%20*%20FROM%20orders%20WHERE%20total%20%3E%20100%20UNION%20SELECT%20*%20FROM%20refunds",
    "/docs/search?q=1%27%20OR%20%271%27%3D%271",
    "/docs/search/advanced?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E%20is%20the%20classic%20XSS%20example",
];

fn policy(mode: &str) -> String {
    format!(
        "[waf]\ncrs_dir = {:?}\nmode = {mode:?}\nblocking_paranoia_level = 1\ninbound_threshold = 5\n",
        crs_dir().display().to_string()
    )
}

fn get(up: &Up, path: &str, host: &str) -> u16 {
    up.browser_status(path, host)
}

#[test]
fn proposed_exclusions_let_the_recorded_traffic_pass_and_nothing_else() {
    let (_origin, origin_url) = demo_origin();
    let host = "learn-sql.example.org";

    // 1. Block mode as shipped: the site's own traffic is blocked.
    let mut up = Up::start(
        std::slice::from_ref(&origin_url),
        Some(&policy("block")),
        &[],
    );
    for p in LEGIT {
        assert_eq!(get(&up, p, host), 403, "CRS as shipped blocks {p}");
    }
    drop(up);

    // 2. Detect mode: nothing blocked, would-be blocks recorded.
    up = Up::start(
        std::slice::from_ref(&origin_url),
        Some(&policy("detect")),
        &[],
    );
    for _ in 0..3 {
        for p in LEGIT {
            assert_eq!(get(&up, p, host), 200, "detect mode passes {p}");
        }
    }
    let events_file = up.dir.path().join("events.jsonl");
    assert!(
        eventually(Duration::from_secs(10), || {
            up.events().iter().filter(|e| e["check"] == "waf").count() >= 3 * LEGIT.len()
        }),
        "would-be blocks recorded: {:?}",
        up.events()
    );

    // 3. waf tune: proposals printed, then checked and written into a policy.
    let policy_file = up.dir.write("base.toml", &policy("block"));
    let out_file = up.dir.path().join("tuned.toml");
    let printed = Command::new(BIN)
        .args(["waf", "tune", "--events"])
        .arg(&events_file)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(text.contains("[[waf.exclusions]]"), "{text}");
    assert!(text.contains(&format!("host = \"{host}\"")), "{text}");
    assert!(text.contains("path_prefix = \"/docs/search"), "{text}");
    assert!(text.contains("targets = [\"ARGS:q\"]"), "{text}");
    assert!(text.contains("requests from"), "{text}");
    let written = Command::new(BIN)
        .args(["waf", "tune", "--events"])
        .arg(&events_file)
        .arg("--policy")
        .arg(&policy_file)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let tuned = std::fs::read_to_string(&out_file).unwrap();
    drop(up);

    // 4. Block mode with the proposals: the recorded traffic passes ...
    let up = Up::start(std::slice::from_ref(&origin_url), Some(&tuned), &[]);
    for p in LEGIT {
        assert_eq!(get(&up, p, host), 200, "tuned policy passes {p}\n{tuned}");
    }
    // ... and the same attacks anywhere else are still blocked: another
    // parameter, another path, another host.
    for (p, h) in [
        ("/docs/search?id=1%27%20OR%20%271%27%3D%271", host),
        ("/account?q=1%27%20OR%20%271%27%3D%271", host),
        (LEGIT[0], "shop.example.com"),
        ("/docs/search?x=%3Cscript%3Ealert(1)%3C%2Fscript%3E", host),
    ] {
        assert_eq!(get(&up, p, h), 403, "still blocked: {h}{p}\n{tuned}");
    }
}

#[test]
fn tune_reports_bad_input_clearly() {
    let dir = TempDir::new("tune");
    let missing = Command::new(BIN)
        .args(["waf", "tune", "--events", "/nonexistent/events.jsonl"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/events.jsonl"), "{err}");

    let junk = dir.write("junk.jsonl", "not json\nalso not\n");
    let out = Command::new(BIN)
        .args(["waf", "tune", "--events"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.jsonl:1: not an event"), "{err}");

    // A policy without [waf] cannot take exclusions.
    let ev = r#"{"time_ms":1,"request_id":"r","client_ip":"192.0.2.1","check":"waf","rule_id":"949110","action":"log","simulate":true,"method":"GET","host":"h","path":"/a","waf":{"anomaly_score":5,"rules":[{"id":942100,"msg":"m","data":"d","var":"ARGS:q"}]}}"#;
    let events = dir.write("ev.jsonl", ev);
    let nowaf = dir.write("p.toml", "[[rules]]\nid = \"r\"\nexpression = 'http.request.uri.path eq \"/x\"'\naction = \"block\"\n");
    let out = Command::new(BIN)
        .args(["waf", "tune", "--events"])
        .arg(&events)
        .arg("--policy")
        .arg(&nowaf)
        .arg("--out")
        .arg(dir.path().join("o.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [waf] section"), "{err}");
}
