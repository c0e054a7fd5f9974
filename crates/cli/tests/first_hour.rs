//! A new user's first hour: what the binary says when something is wrong at
//! start, what `policy validate` reports, and what the client commands print.
//! Real processes on free loopback ports.

mod common;

use common::*;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `palisade args…` to its end (no admin token in the environment, so
/// `up` generates one). A process still running after 60 s is killed and the
/// test fails: the bug this guards against left the process up for ever.
fn run_to_exit(args: &[String]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("PALISADE_ADMIN_TOKEN")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "palisade {args:?} still running after 60 s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `palisade up` arguments on free ports, data in `dir`, plus `extra`.
fn up_args(dir: &TempDir, listen: &str, api: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "up",
        "--listen",
        listen,
        "--api",
        api,
        "--threads",
        "1",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.path().join("data").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn up_on_a_busy_port_exits_at_once_with_one_line() {
    let dir = TempDir::new("busy");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let free = format!("127.0.0.1:{}", free_port());
    for (flag, listen, api) in [("--listen", &busy, &free), ("--api", &free, &busy)] {
        let out = run_to_exit(&up_args(&dir, listen, api, &[]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert_eq!(
            err.trim(),
            format!("error: cannot listen on {busy} ({flag}): the address is already in use (another process listens there)"),
            "{flag}"
        );
    }
    drop(taken);
}

#[test]
fn up_refuses_a_bad_policy_before_starting_anything() {
    let dir = TempDir::new("badpolicy");
    let listen = format!("127.0.0.1:{}", free_port());
    let api = format!("127.0.0.1:{}", free_port());
    let missing = dir.path().join("missing.toml").display().to_string();
    let invalid = dir
        .write(
            "invalid.toml",
            "[[rules]]\nid = \"a\"\nexpression = 'http.nope eq \"x\"'\naction = \"block\"\n",
        )
        .display()
        .to_string();
    let no_crs = dir
        .write(
            "nocrs.toml",
            "[waf]\ncrs_dir = \"/nonexistent/crs/rules\"\n",
        )
        .display()
        .to_string();
    for (policy, expect) in [
        (
            &missing,
            format!("cannot read the policy file {missing} (--policy)"),
        ),
        (
            &invalid,
            format!("{invalid}:3:15: `a`: unknown field `http.nope`"),
        ),
        (&no_crs, "/nonexistent/crs/rules".to_string()),
    ] {
        let out = run_to_exit(&up_args(&dir, &listen, &api, &["--policy", policy]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{policy}: {err}");
        assert!(
            err.contains(&expect),
            "{policy}: expected {expect:?} in:\n{err}"
        );
        assert!(
            !err.contains("demo origin"),
            "{policy}: the demo origin started:\n{err}"
        );
    }
}

#[test]
fn upstream_urls_follow_one_rule_with_one_message() {
    let dir = TempDir::new("upstreams");
    let listen = format!("127.0.0.1:{}", free_port());
    let api = format!("127.0.0.1:{}", free_port());
    for bad in [
        "127.0.0.1:9000",
        "ftp://127.0.0.1:21",
        "not a url",
        "http://",
    ] {
        let out = run_to_exit(&up_args(&dir, &listen, &api, &["--upstream", bad]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(
            err.contains(&format!("upstream `{bad}`"))
                && err.contains("an upstream is a URL starting with http:// or https://"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn up_help_mentions_the_waf_and_the_demo_origin() {
    let out = Command::new(BIN).args(["up", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("OWASP CRS WAF"), "{help}");
    assert!(help.contains("built-in demo origin"), "{help}");
}

fn validate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["policy", "validate"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn policy_validate_reports_every_error_of_every_section() {
    let dir = TempDir::new("validate-all");
    let bad = dir.write(
        "bad.toml",
        r#"colour = "blue"

[[rules]]
id = "two-errors"
expression = 'http.nope eq "x" and lower(http.host) eq 5 or http.request.uri.path matches "("'
action = "block"

[[rules]]
id = "typo"
expresion = 'http.host eq "x"'
action = "block"

[[rate_limits]]
id = "login"
expression = 'http.host eq "x"'
requests = "five"
period = "10s"

[[rules]]
id = "last"
expression = 'http.host eq "x"'
action = "explode"
"#,
    );
    let name = bad.display().to_string();
    let out = validate(&[&name]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expect in [
        format!("{name}:1:1: unknown section `colour`"),
        format!("{name}:5:15: `two-errors`: unknown field `http.nope`"),
        format!("{name}:5:56: `two-errors`: expected a string after `eq`, found an integer"),
        format!("{name}:5:91: `two-errors`: invalid regular expression"),
        format!("{name}:10:1: [[rules]]: unknown field `expresion`"),
        format!("{name}:16:1: [[rate_limits]]: `requests`: invalid type: string \"five\""),
        format!("{name}:22:10: rule `last`: unknown action `explode`"),
        format!("{name}: 7 error(s)"),
    ] {
        assert!(err.contains(&expect), "expected {expect:?} in:\n{err}");
    }

    // --json: the same errors, as JSON on standard output.
    let out = validate(&["--json", &name]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 7, "{report:#}");
    assert_eq!(errors[0]["line"], 1);
    assert_eq!(errors[0]["source"], "policy");

    // It is an offline command: no API flags.
    let out = validate(&["--api", "http://127.0.0.1:1", &name]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unexpected argument '--api'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn policy_validate_loads_the_waf_as_up_does() {
    let dir = TempDir::new("validate-waf");
    let missing = dir.write(
        "missing.toml",
        "[waf]\ncrs_dir = \"/nonexistent/crs/rules\"\n\n[[rules]]\nid = \"x\"\nexpression = 'http.nope eq \"x\"'\naction = \"block\"\n",
    );
    let out = validate(&["--json", &missing.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["errors"].as_array().unwrap();
    // Both the policy's error and the WAF's.
    assert_eq!(errors.len(), 2, "{report:#}");
    assert_eq!(errors[0]["source"], "policy");
    assert_eq!(errors[1]["source"], "waf");
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/crs/rules"),
        "{report:#}"
    );

    // A real CRS: found, compiled and counted.
    let crs = crs_dir();
    let skip = if crs_is_v4(&crs) {
        ""
    } else {
        "skip_unsupported_rules = true\n"
    };
    let good = dir.write(
        "good.toml",
        &format!("[waf]\ncrs_dir = \"{}\"\n{skip}", crs.display()),
    );
    let out = validate(&["--json", &good.display().to_string()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert!(report["waf"]["rules"].as_u64().unwrap() > 100, "{report:#}");
    let out = validate(&[&good.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CRS rules loaded from"), "{text}");
}

#[test]
fn the_admin_token_is_not_printed_and_logs_have_no_colours() {
    let dir = TempDir::new("token");
    let proxy = format!("127.0.0.1:{}", free_port());
    let api = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("stderr.log");
    let mut up = Proc {
        child: Command::new(BIN)
            .args(up_args(&dir, &proxy, &api, &[]))
            .env_remove("PALISADE_ADMIN_TOKEN")
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        name: "up".into(),
    };
    wait_ready(&format!("http://{proxy}/"), Duration::from_secs(60));
    let token_file = dir.path().join("data").join("admin.token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert!(token.len() >= 32);
    let found = eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(&token_file.display().to_string())
    });
    up.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(found, "the token file is not named:\n{text}");
    assert!(!text.contains(token), "the token is printed:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colours on a non-terminal:\n{text}"
    );
    assert!(text.contains("started the built-in demo origin"), "{text}");
}

/// The column at which `word` starts on `line`.
fn col(line: &str, word: &str) -> usize {
    line.find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"))
}

#[test]
fn client_tables_align_and_print_readable_times() {
    let up = Up::start(&[], None, &[]);
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("PALISADE_API", &up.api)
            .env("PALISADE_TOKEN", &up.token)
            .output()
            .unwrap()
    };
    // Decisions of very different widths.
    for (scope, value, reason) in [
        (
            "ip",
            "2001:db8:1234:5678:9abc:def0:1234:5678",
            "a long IPv6 address",
        ),
        ("ip", "192.0.2.1", "short"),
        ("country", "FR", "c"),
    ] {
        let out = cli(&[
            "decisions",
            "add",
            "--scope",
            scope,
            "--value",
            value,
            "--duration",
            "1h",
            "--reason",
            reason,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = cli(&["decisions", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for header in ["SCOPE", "VALUE", "ACTION", "SIMULATED", "EXPIRES", "REASON"] {
        let at = col(lines[0], header);
        for line in &lines[1..] {
            assert_eq!(
                line.get(at - 1..at),
                Some(" "),
                "{header} does not start a column:\n{text}"
            );
            assert_ne!(line.get(at..at + 1), Some(" "), "{header}:\n{text}");
        }
    }

    // A policy version and a security event: readable times, raw ones in --json.
    let policy = up.dir.write(
        "p.toml",
        "[[rules]]\nid = \"block-admin\"\nexpression = 'http.request.uri.path eq \"/admin\"'\naction = \"block\"\n",
    );
    let out = cli(&["policy", "apply", &policy.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(eventually(Duration::from_secs(20), || up
        .get("/admin", None)
        .status()
        == 403));
    let rfc3339 = |s: &str| {
        s.split_whitespace().any(|w| {
            w.len() == 20
                && w.as_bytes()[10] == b'T'
                && w.ends_with('Z')
                && w[..4].parse::<u32>().is_ok()
        })
    };
    let raw = cli(&["policy", "history", "--json"]);
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let created = raw[0]["created_at"].as_u64().unwrap();
    assert!(created > 1_600_000_000_000, "{raw:#}");
    let history = String::from_utf8_lossy(&cli(&["policy", "history"]).stdout).into_owned();
    assert!(rfc3339(&history) && history.contains(" ago)"), "{history}");
    assert!(!history.contains(&created.to_string()), "{history}");

    let mut events = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            events = String::from_utf8_lossy(&cli(&["events"]).stdout).into_owned();
            events.contains("block-admin")
        }),
        "{events}"
    );
    assert!(rfc3339(&events) && events.contains(" ago)"), "{events}");
    let raw = cli(&["events", "--json"]);
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let time = raw[0]["time_ms"].as_u64().unwrap();
    assert!(!events.contains(&time.to_string()), "{events}");
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        col(lines[0], "RULE"),
        col(lines[1], "block-admin"),
        "{events}"
    );
}
