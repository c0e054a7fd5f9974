//! End-to-end checks of the engine with a real OWASP CRS from disk.
//!
//! CRS comes from `PALISADE_CRS_DIR`, else `../shared/crs/rules` (CRS v4),
//! else Debian's `modsecurity-crs` package (CRS 3.3, installed by the test
//! command). Every release loads strictly: no rule is skipped (CRS 3.3's
//! own checks are in `crs3.rs`).

use palisade_policy::waf::WafExclusion;
use palisade_waf::{
    BodyPush, Exchange, HttpRequest, RequestBodyPlan, ResponseBodyPlan, Waf, WafMode, WafSettings,
};
use std::path::PathBuf;

/// The CRS directory; a test that needs it fails without it (the test
/// command installs Debian's `modsecurity-crs`).
fn crs_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        std::env::var_os("PALISADE_CRS_DIR").map(PathBuf::from),
        Some(root.join("../shared/crs/rules")),
        Some(PathBuf::from("/usr/share/modsecurity-crs/rules")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_dir())
    .expect("no OWASP CRS found: set PALISADE_CRS_DIR, or install Debian's modsecurity-crs (scripts/setup-test-deps.sh does)")
}

/// CRS, loaded strictly.
fn build(mut cfg: WafSettings) -> Waf {
    let dir = crs_dir();
    cfg.crs_dir = Some(dir.display().to_string());
    let w = Waf::build(&cfg).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(w.skipped_rules().is_empty());
    w
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
    let mut h: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"Host".to_vec(), b"shop.example.com".to_vec()),
        (
            b"User-Agent".to_vec(),
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".to_vec(),
        ),
        (
            b"Accept".to_vec(),
            b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8".to_vec(),
        ),
        (b"Accept-Language".to_vec(), b"en-US,en;q=0.5".to_vec()),
    ];
    for (k, v) in headers {
        h.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    if !body.is_empty() {
        h.push((
            b"Content-Length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    HttpRequest {
        method: method.as_bytes().to_vec(),
        uri: uri.as_bytes().to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: h,
        body: body.as_bytes().to_vec(),
        remote_addr: "203.0.113.7".into(),
        remote_port: 50000,
        unique_id: "t".into(),
    }
}

#[test]
fn blocks_attacks_and_passes_benign_traffic() {
    let waf = build(WafSettings::default());
    let benign = waf.inspect(req(
        "GET",
        "/shop/search?q=running+shoes&category=sport&page=2",
        &[(
            "Cookie",
            "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
        )],
        "",
    ));
    assert!(!benign.blocked, "benign GET blocked: {:?}", benign.matched);
    assert_eq!(benign.inbound_score, 0, "{:?}", benign.matched);

    let sqli = waf.inspect(req(
        "GET",
        "/shop/search?q=1%27%20OR%20%271%27%3D%271",
        &[],
        "",
    ));
    assert!(sqli.blocked, "SQLi not blocked");
    assert_eq!(sqli.status, 403);
    assert_eq!(sqli.rule_id, Some(949110));
    assert!(sqli.inbound_score >= 5);
    assert!(
        sqli.matched.iter().any(|m| m.id / 1000 == 942),
        "{:?}",
        sqli.matched
    );
    assert!(sqli
        .matched
        .iter()
        .all(|m| !m.msg.is_empty() || m.id == 949110 || !m.log));

    let xss_body = waf.inspect(req(
        "POST",
        "/comment",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "name=joe&text=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
    ));
    assert!(xss_body.blocked, "XSS in a form body not blocked");
    assert!(
        xss_body.matched.iter().any(|m| m.id / 1000 == 941),
        "{:?}",
        xss_body.matched
    );

    let json = waf.inspect(req(
        "POST",
        "/api/items",
        &[("Content-Type", "application/json")],
        r#"{"filter":{"name":"x' UNION SELECT password FROM users--"}}"#,
    ));
    assert!(
        json.blocked,
        "SQLi in a JSON body not blocked: {:?}",
        json.matched
    );

    let benign_post = waf.inspect(req(
        "POST",
        "/contact",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "name=Jane+Doe&email=jane%40example.com&message=Hello%2C+when+will+my+order+ship%3F",
    ));
    assert!(!benign_post.blocked, "{:?}", benign_post.matched);
}

#[test]
fn detect_mode_reports_without_blocking() {
    let waf = build(WafSettings {
        mode: WafMode::Detect,
        ..WafSettings::default()
    });
    let v = waf.inspect(req(
        "GET",
        "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &[],
        "",
    ));
    assert!(!v.blocked);
    assert!(v.would_block);
    assert!(v.inbound_score >= 5);
}

#[test]
fn exclusions_apply_per_path_only() {
    let waf = build(WafSettings {
        exclusions: vec![WafExclusion {
            path_prefix: Some("/api/sql".into()),
            tags: vec!["attack-sqli".into()],
            ..WafExclusion::default()
        }],
        ..WafSettings::default()
    });
    let attack = "?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    let excluded = waf.inspect(req("GET", &format!("/api/sql{attack}"), &[], ""));
    assert!(
        !excluded.blocked,
        "excluded path blocked: {:?}",
        excluded.matched
    );
    let other = waf.inspect(req("GET", &format!("/shop{attack}"), &[], ""));
    assert!(other.blocked, "exclusion leaked to another path");
}

#[test]
fn paranoia_level_changes_what_is_checked() {
    let pl1 = build(WafSettings::default());
    let pl4 = build(WafSettings {
        blocking_paranoia_level: 4,
        ..WafSettings::default()
    });
    // A request only higher paranoia levels complain about (many special characters).
    let r = req("GET", "/search?q=a%60b%7Cc%3Bd~e", &[], "");
    let low = pl1.inspect(r.clone());
    let high = pl4.inspect(r);
    assert!(
        high.matched.len() > low.matched.len(),
        "pl1 {:?} pl4 {:?}",
        low.matched,
        high.matched
    );
}

#[test]
fn bad_settings_and_missing_directories_are_reported() {
    let e = Waf::build(&WafSettings {
        crs_dir: Some("/nonexistent/crs".into()),
        ..WafSettings::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/crs"), "{e}");
    let e = Waf::build(&WafSettings {
        crs_dir: Some("/nonexistent/crs".into()),
        blocking_paranoia_level: 7,
        inbound_threshold: 0,
        ..WafSettings::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("blocking_paranoia_level") && e.contains("inbound_threshold"),
        "{e}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    out.extend(h.finalize().to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// A benign GET through the request phases of an exchange.
fn benign_exchange(waf: &Waf) -> Exchange {
    let mut ex = waf.begin(req("GET", "/account", &[], ""));
    assert!(!ex.request_headers().blocked);
    assert_eq!(ex.request_body_plan(false), RequestBodyPlan::None);
    assert!(!ex.finish_request_body().blocked);
    ex
}

fn html(extra: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut h = vec![(
        b"Content-Type".to_vec(),
        b"text/html; charset=utf-8".to_vec(),
    )];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    h
}

#[test]
fn response_phases_catch_leaks() {
    let waf = build(WafSettings::default());
    // A PHP source leak: `fopen(` (953110) and, for CRS v4 (CRS 3.3 writes it
    // with a look-ahead, which the engine skips), `<?php` (953120).
    let leak = b"<html><body><?php $f = fopen(\"/etc/app.ini\", \"r\"); echo $db_password; ?></body></html>";
    let mut ex = benign_exchange(&waf);
    let (v, plan) = ex.response_headers(200, b"HTTP/1.1", html(&[]));
    assert!(!v.blocked && v.phase == 3);
    assert!(matches!(plan, ResponseBodyPlan::Inspect { .. }));
    for c in leak.chunks(10) {
        assert_eq!(ex.push_response_body(c), BodyPush::Continue);
    }
    let v = ex.finish_response_body();
    assert!(v.blocked, "PHP source leak not blocked: {:?}", v.matched);
    assert_eq!((v.status, v.phase, v.rule_id), (403, 4, Some(959100)));
    assert!(v.outbound_score >= 4);
    assert!(
        v.matched.iter().any(|m| m.id / 1000 == 953),
        "{:?}",
        v.matched
    );
    ex.logging();
    assert!(
        // 980170 in CRS v4, 980130-980150 in CRS 3.3.
        ex.matched().any(|m| m.id / 1000 == 980),
        "phase 5 reports the scores"
    );

    // The same page, gzip-compressed by the application: decoded to be inspected.
    let mut ex = benign_exchange(&waf);
    ex.response_headers(200, b"HTTP/1.1", html(&[("Content-Encoding", "gzip")]));
    ex.push_response_body(&gzip(leak));
    assert!(ex.finish_response_body().blocked);

    // A clean page passes, and so does a leak in detection mode (reported).
    let mut ex = benign_exchange(&waf);
    ex.response_headers(200, b"HTTP/1.1", html(&[]));
    ex.push_response_body(b"<html><body>Your account</body></html>");
    let v = ex.finish_response_body();
    assert!(!v.blocked && !v.would_block, "{:?}", v.matched);
    assert_eq!(v.outbound_score, 0);
    let detect = build(WafSettings {
        mode: WafMode::Detect,
        ..WafSettings::default()
    });
    let mut ex = benign_exchange(&detect);
    ex.response_headers(200, b"HTTP/1.1", html(&[]));
    ex.push_response_body(leak);
    let v = ex.finish_response_body();
    assert!(!v.blocked && v.would_block);
}

#[test]
fn compressed_and_partial_request_bodies() {
    let waf = build(WafSettings::default());
    let attack = gzip(b"q=1%27%20OR%20%271%27%3D%271");
    let mut ex = waf.begin(req(
        "POST",
        "/search",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", &attack.len().to_string()),
        ],
        "",
    ));
    assert!(!ex.request_headers().blocked);
    assert!(matches!(
        ex.request_body_plan(true),
        RequestBodyPlan::Inspect { .. }
    ));
    ex.push_request_body(&attack);
    let v = ex.finish_request_body();
    assert!(
        v.blocked,
        "SQLi in a gzip body not blocked: {:?}",
        v.matched
    );
    assert_eq!(v.rule_id, Some(949110));

    // A long JSON body inspected by its first bytes: not refused as malformed.
    let prefix = build(WafSettings {
        body: palisade_policy::waf::RequestBodySettings {
            limit_no_files: 64,
            limit_action: palisade_policy::waf::BodyLimitAction::InspectPrefix,
            ..Default::default()
        },
        ..WafSettings::default()
    });
    let body = format!(
        r#"{{"items":[{}]}}"#,
        r#"{"name":"shoe","size":42},"#.repeat(20)
    );
    let mut ex = prefix.begin(req(
        "POST",
        "/api/cart",
        &[("Content-Type", "application/json")],
        "",
    ));
    ex.request_headers();
    assert_eq!(ex.push_request_body(body.as_bytes()), BodyPush::Full);
    let v = ex.finish_request_body();
    assert!(!v.blocked, "a JSON prefix was refused: {:?}", v.matched);
    assert!(v.matched.iter().all(|m| m.id != 200002));
    assert_eq!(ex.take_request_body(), body.as_bytes());
}

/// A CRS v4 plugin in CRS' layout, written by the test: its config file
/// loads first, its before file before the rules, its after file after
/// them (a `SecRuleRemoveById` there only works on rules already loaded).
#[test]
fn plugins_load_in_crs_order() {
    let dir = std::env::temp_dir().join(format!("palisade-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write(
        "docs-config.conf",
        "SecAction \"id:9500001,phase:1,pass,nolog,setvar:'tx.docs-plugin_enabled=1'\"\n",
    );
    // Needs the config file's setting: runs only when config came first.
    write(
        "docs-before.conf",
        "SecRule TX:docs-plugin_enabled \"@eq 1\" \"id:9500002,phase:1,pass,nolog,chain\"\n\
         SecRule REQUEST_FILENAME \"@beginsWith /docs/sql\" \"ctl:ruleRemoveByTag=attack-sqli\"\n",
    );
    write("docs-after.conf", "SecRuleRemoveById 941000-941999\n");
    write("README.md", "not a rule file\n");

    let attack = "?q=1%27%20OR%20%271%27%3D%271";
    let xss = "?x=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let plain = build(WafSettings::default());
    assert!(
        plain
            .inspect(req("GET", &format!("/docs/sql{attack}"), &[], ""))
            .blocked
    );
    assert!(
        plain
            .inspect(req("GET", &format!("/shop{xss}"), &[], ""))
            .blocked
    );

    let waf = build(WafSettings {
        plugins_dir: Some(dir.display().to_string()),
        ..WafSettings::default()
    });
    let v = waf.inspect(req("GET", &format!("/docs/sql{attack}"), &[], ""));
    assert!(!v.blocked, "the before plugin's exclusion: {:?}", v.matched);
    assert!(
        waf.inspect(req("GET", &format!("/shop{attack}"), &[], ""))
            .blocked
    );
    let v = waf.inspect(req("GET", &format!("/shop{xss}"), &[], ""));
    assert!(
        !v.matched.iter().any(|m| m.id / 1000 == 941),
        "the after plugin removed the XSS rules: {:?}",
        v.matched
    );

    // Loaded in the wrong order, the after file would remove nothing and
    // the before file's exclusion would never apply: check the test can fail.
    std::fs::remove_file(dir.join("docs-after.conf")).unwrap();
    std::fs::write(
        dir.join("zz-before.conf"),
        "SecRuleRemoveById 941000-941999\n",
    )
    .unwrap();
    let wrong = build(WafSettings {
        plugins_dir: Some(dir.display().to_string()),
        ..WafSettings::default()
    });
    assert!(
        wrong
            .inspect(req("GET", &format!("/shop{xss}"), &[], ""))
            .blocked
    );

    let missing = Waf::build(&WafSettings {
        crs_dir: Some(crs_dir().display().to_string()),
        plugins_dir: Some(dir.join("nope").display().to_string()),
        ..WafSettings::default()
    })
    .map(|_| ())
    .expect_err("a plugins_dir that does not exist is an error")
    .to_string();
    assert!(
        missing.contains("plugins_dir") && missing.contains("nope"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Palisade's defaults allow PUT, PATCH and DELETE and the JSON patch
/// types: what they carry is still inspected, as JSON.
#[test]
fn allowed_methods_and_patch_types_are_still_inspected() {
    let waf = build(WafSettings::default());
    let ct = |t: &'static str| [("Content-Type", t)];
    let benign = r#"{"title":"New name","tags":["a","b"]}"#;
    for (method, t) in [
        ("PATCH", "application/merge-patch+json"),
        ("PATCH", "application/json-patch+json"),
        ("PUT", "application/json"),
    ] {
        let v = waf.inspect(req(method, "/api/items/7", &ct(t), benign));
        assert!(!v.blocked, "{method} {t}: {:?}", v.matched);
        for attack in [
            r#"{"title":"1' UNION SELECT password FROM users--"}"#,
            r#"[{"op":"replace","path":"/title","value":"<script>alert(1)</script>"}]"#,
        ] {
            let v = waf.inspect(req(method, "/api/items/7", &ct(t), attack));
            assert!(v.blocked, "{method} {t} {attack}");
        }
    }
    assert!(!waf.inspect(req("DELETE", "/api/items/7", &[], "")).blocked);
    let q = "/api/items/7?id=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert!(waf.inspect(req("DELETE", q, &[], "")).blocked);
    // Methods outside the list are still refused.
    assert!(waf.inspect(req("TRACK", "/", &[], "")).blocked);
}

/// A setup file that sets `allowed_methods` keeps its value; one that has
/// it commented out (as CRS ships it) gets Palisade's.
#[test]
fn a_setup_file_setting_allowed_methods_wins_over_the_default() {
    let dir = std::env::temp_dir().join(format!("palisade-setup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = "SecDefaultAction \"phase:1,log,auditlog,pass\"\n\
                SecDefaultAction \"phase:2,log,auditlog,pass\"\n\
                SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=4280\"\n";
    let set = "SecAction \"id:900200,phase:1,pass,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS'\"\n";
    for (name, extra, delete_blocked) in [
        ("set.conf", set.to_string(), true),
        ("commented.conf", format!("# {set}"), false),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let waf = build(WafSettings {
            setup: Some(path.display().to_string()),
            ..WafSettings::default()
        });
        let v = waf.inspect(req("DELETE", "/api/items/7", &[], ""));
        assert_eq!(v.blocked, delete_blocked, "{name}: {:?}", v.matched);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The positive model's per-request lists (`tx.palisade_model_*`, set by
/// the edge) extend or replace CRS' static lists, on CRS v4 and 3.3 alike.
#[test]
fn the_positive_model_extends_or_replaces_crs_lists() {
    use palisade_policy::learn::model::{ModelApply, ModelSettings};
    use palisade_waf::config::{MODEL_CONTENT_TYPES_TX, MODEL_METHODS_TX};
    // CRS' own content-type list (Palisade's default allows any
    // well-formed type: there would be nothing for `extend` to add).
    let waf_with = |apply| {
        build(WafSettings {
            model: ModelSettings {
                apply,
                ..ModelSettings::default()
            },
            tx: [(
                "allowed_request_content_type".to_string(),
                "|application/x-www-form-urlencoded| |multipart/form-data| |application/json|"
                    .to_string(),
            )]
            .into(),
            ..WafSettings::default()
        })
    };
    let run_at = |waf: &Waf, method: &str, uri: &str, ct: &str, model: Option<(&str, &str)>| {
        let body = if ct.contains("json") {
            r#"{"note":"hello"}"#
        } else {
            "hello"
        };
        // The body goes in once, through the exchange.
        let mut ex = waf.begin(HttpRequest {
            body: Vec::new(),
            ..req(method, uri, &[("Content-Type", ct)], body)
        });
        if let Some((m, t)) = model {
            ex.set_tx(MODEL_METHODS_TX, m.as_bytes());
            ex.set_tx(MODEL_CONTENT_TYPES_TX, t.as_bytes());
        }
        ex.inspect_request(body.as_bytes().to_vec()).blocked
    };
    let run =
        |waf: &Waf, method: &str, ct: &str, model| run_at(waf, method, "/api/notes", ct, model);
    let learned = Some(("POST REPORT", "|text/csv|"));
    // CRS alone refuses text/csv bodies and REPORT.
    let off = waf_with(ModelApply::Off);
    assert!(run(&off, "POST", "text/csv", None));
    assert!(
        run(&off, "POST", "text/csv", learned),
        "off: the model changes nothing"
    );
    let extend = waf_with(ModelApply::Extend);
    assert!(
        run(&extend, "POST", "text/csv", None),
        "no model for the route"
    );
    assert!(!run(&extend, "POST", "text/csv", learned));
    assert!(!run(&extend, "REPORT", "text/csv", learned));
    assert!(
        !run(&extend, "POST", "application/json", learned),
        "CRS' list still holds"
    );
    assert!(run(&extend, "POST", "text/x-markdown", learned));
    // Attacks in what the model allows are still inspected.
    let attack = "/api/notes?q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
    assert!(run_at(&extend, "POST", attack, "text/csv", learned));
    let replace = waf_with(ModelApply::Replace);
    assert!(!run(&replace, "POST", "text/csv", learned));
    assert!(
        run(&replace, "POST", "application/json", learned),
        "only what was learned"
    );
    assert!(run(&replace, "PUT", "text/csv", learned));
    assert!(
        !run(&replace, "POST", "application/json", None),
        "no model: CRS' lists"
    );
    // With Palisade's default (any well-formed type), `replace` still
    // limits a learned route to its types.
    let default_replace = build(WafSettings {
        model: ModelSettings {
            apply: ModelApply::Replace,
            ..ModelSettings::default()
        },
        ..WafSettings::default()
    });
    assert!(!run(&default_replace, "POST", "text/csv", None));
    assert!(!run(&default_replace, "POST", "text/csv", learned));
    assert!(run(&default_replace, "POST", "application/json", learned));
}

/// Palisade's defaults allow `text/plain` (browsers' `fetch` and
/// `sendBeacon` strings), every `application/…+json` type and any other
/// well-formed type: their bodies are inspected, as JSON when they are
/// JSON, text types else as one argument.
#[test]
fn every_well_formed_content_type_is_allowed_and_its_body_inspected() {
    let waf = build(WafSettings::default());
    let post = |ct: &str, body: &str| {
        waf.inspect(req("POST", "/api/collect", &[("Content-Type", ct)], body))
    };
    for (ct, body) in [
        (
            "text/plain;charset=UTF-8",
            r#"{"event":"page_view","path":"/shop/shoes","ms":412}"#,
        ),
        (
            "text/plain",
            "Thanks for the quick delivery, the shoes fit well.",
        ),
        ("text/plain", "  \n[1, 2, 3]"),
        (
            "application/vnd.api+json",
            r#"{"data":{"type":"articles","attributes":{"title":"Rust"}}}"#,
        ),
        (
            "application/ld+json; charset=utf-8",
            r#"{"@context":"https://schema.org","@type":"Person"}"#,
        ),
        (
            "Application/Problem+JSON",
            r#"{"title":"Not found","status":404}"#,
        ),
    ] {
        let v = post(ct, body);
        assert!(!v.blocked, "{ct} {body}: {:?}", v.matched);
    }
    for (ct, body) in [
        (
            "text/plain;charset=UTF-8",
            r#"{"q":"1' UNION SELECT password FROM users--"}"#,
        ),
        ("text/plain", "1' UNION SELECT password FROM users--"),
        ("text/plain", "<script>alert(document.cookie)</script>"),
        ("text/plain", "{not json but <script>alert(1)</script>"),
        (
            "application/vnd.api+json",
            r#"{"data":{"id":"1 UNION SELECT password FROM users--"}}"#,
        ),
    ] {
        let v = post(ct, body);
        assert!(v.blocked, "{ct} {body}: not blocked");
    }
    // Text types beyond text/plain (Kubernetes' server-side apply sends
    // YAML) are inspected as text; any other well-formed type is allowed
    // and its body inspected when it is JSON; malformed types are refused.
    let yaml = "apiVersion: v1\nkind: ConfigMap\ndata:\n  greeting: hello\n";
    let v = post("application/apply-patch+yaml", yaml);
    assert!(!v.blocked, "{:?}", v.matched);
    assert!(
        post(
            "application/yaml",
            "cmd: \"1' UNION SELECT password FROM users--\""
        )
        .blocked
    );
    for ct in [
        "application/octet-stream",
        "application/x-foo",
        "text/csv",
        "image/png",
    ] {
        let v = post(ct, "\u{1}\u{2}binary");
        assert!(!v.blocked, "{ct}: {:?}", v.matched);
        let v = post(ct, r#"{"q":"1' UNION SELECT password FROM users--"}"#);
        assert!(v.blocked, "{ct}: a JSON body of any type is inspected");
        let v = post(ct, "id=1%27+UNION+SELECT+password+FROM+users--&x=1");
        assert!(v.blocked, "{ct}: so is a one-line form");
    }
    for ct in ["application/+json", "text/", "nonsense", "a/b/c", "(x)/y"] {
        assert!(post(ct, "a").blocked, "{ct}");
    }
    // A policy that sets the list gets CRS' check back.
    let listed = build(WafSettings {
        tx: [(
            "allowed_request_content_type".to_string(),
            "|application/json|".to_string(),
        )]
        .into(),
        ..WafSettings::default()
    });
    let v = listed.inspect(req(
        "POST",
        "/api/collect",
        &[("Content-Type", "text/csv")],
        "a",
    ));
    assert!(v.blocked, "listed types only");
}

/// Palisade's restricted headers: `Content-Encoding` passes (the body is
/// decompressed and inspected), `Expect: 100-continue` passes and any other
/// expectation is refused (417); method overrides stay restricted.
#[test]
fn compressed_bodies_and_expect_pass_method_overrides_do_not() {
    let waf = build(WafSettings::default());
    let json = |body: &str, extra: &[(&str, &str)]| {
        let gz = gzip(body.as_bytes());
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ];
        h.extend_from_slice(extra);
        let mut r = req("POST", "/api/items", &h, "");
        r.headers.push((
            b"Content-Length".to_vec(),
            gz.len().to_string().into_bytes(),
        ));
        r.body = gz;
        waf.inspect(r)
    };
    let v = json(r#"{"title":"New shoes"}"#, &[]);
    assert!(!v.blocked, "{:?}", v.matched);
    assert!(json(r#"{"title":"1' UNION SELECT password FROM users--"}"#, &[]).blocked);
    let v = waf.inspect(req(
        "POST",
        "/api/items",
        &[
            ("Content-Type", "application/json"),
            ("Expect", "100-continue"),
        ],
        r#"{"a":1}"#,
    ));
    assert!(!v.blocked, "{:?}", v.matched);
    let v = waf.inspect(req("GET", "/", &[("Expect", "100-continue, evil")], ""));
    assert!(v.blocked && v.status == 417, "{v:?}");
    // Reported like any check (events, the positive model's guard).
    let expect_id = palisade_waf::config::EXPECT_RULE_ID;
    assert!(v.matched.iter().any(|m| m.id == expect_id), "{v:?}");
    let v4 = waf
        .crs()
        .version
        .as_deref()
        .is_some_and(|v| v.starts_with('4'));
    let mut restricted = vec!["Lock-Token", "Content-Range"];
    if v4 {
        // CRS 3.3 does not restrict method overrides.
        restricted.extend(["X-HTTP-Method-Override", "X-Method-Override"]);
    }
    for h in restricted {
        assert!(
            waf.inspect(req("GET", "/", &[(h, "DELETE")], "")).blocked,
            "{h}"
        );
    }
}

/// 943110 (session id parameter with an off-domain referer): a referer from
/// the same site (another subdomain of the same registrable domain) is not
/// off-domain by Palisade's default; other sites, look-alikes and the
/// userinfo trick still are, and `tx.palisade_same_site_referer = 0`
/// restores CRS' comparison.
#[test]
fn session_ids_from_the_same_site_are_not_fixation() {
    let waf = build(WafSettings::default());
    let get = |waf: &Waf, referer: &str| {
        waf.inspect(req(
            "GET",
            "/account/login?sessionid=8f14e45fceea167a5a36dedd4bea2543",
            &[("Referer", referer)],
            "",
        ))
    };
    let fixation = |v: &palisade_waf::WafVerdict| v.matched.iter().any(|m| m.id == 943110);
    for same in [
        "https://shop.example.com/cart",
        "https://www.example.com/",
        "https://login.example.com:8443/sso?next=%2Faccount",
        "https://example.com/",
    ] {
        let v = get(&waf, same);
        assert!(!v.blocked && !fixation(&v), "{same}: {:?}", v.matched);
    }
    for off in [
        "https://attacker.test/",
        "https://example.com.attacker.test/",
        "https://shop.example.com@attacker.test/",
        "https://shop.example.co/",
        "http://10.0.0.7/",
    ] {
        let v = get(&waf, off);
        assert!(v.blocked && fixation(&v), "{off}: {:?}", v.matched);
    }
    let crs = build(WafSettings {
        tx: [("palisade_same_site_referer".to_string(), "0".to_string())].into(),
        ..WafSettings::default()
    });
    assert!(fixation(&get(&crs, "https://www.example.com/")));
}

/// 930130 (restricted file names in the path): a listed name counts when it
/// starts a path segment (after CRS' decoding and path normalization), or
/// ends one for names that start with a dot (extensions such as
/// `.sql.z`, also as the start of a longer last extension: `.sql.zip`), not
/// followed by another extension inside a segment; `tx.palisade_file_names_at_segment_start = 0`
/// restores CRS' substring search.
#[test]
fn restricted_file_names_count_at_the_start_of_a_path_segment() {
    let waf = build(WafSettings::default());
    let get = |waf: &Waf, path: &str| waf.inspect(req("GET", path, &[], ""));
    let restricted = |v: &palisade_waf::WafVerdict| v.matched.iter().any(|m| m.id == 930130);
    for benign in [
        "/api/users.profile.get",
        "/api/team.profile.get?token=abc",
        "/static/app-config.json",
        "/docs/myconfig.php.html",
        "/files/notes.sql.z.html",
    ] {
        let v = get(&waf, benign);
        assert!(!v.blocked && !restricted(&v), "{benign}: {:?}", v.matched);
    }
    for attack in [
        "/.env",
        "/app/.git/config",
        "/%2e%65nv",
        "/static/..%2f.env",
        "/static/..%5c.htaccess",
        "/x.profile/.env",
        "/users.profile.get/.profile",
        "/wp-config.php",
        "/api/.aws/credentials",
        "/.PROFILE",
        "/get/backup.sql.zip",
        "/dump.sql.gz/",
    ] {
        let v = get(&waf, attack);
        assert!(v.blocked && restricted(&v), "{attack}: {:?}", v.matched);
    }
    let crs = build(WafSettings {
        tx: [(
            "palisade_file_names_at_segment_start".to_string(),
            "0".to_string(),
        )]
        .into(),
        ..WafSettings::default()
    });
    assert!(restricted(&get(&crs, "/api/users.profile.get")));
}

/// Palisade's refinements (`palisade_waf::refine`) apply to CRS' rules as
/// shipped: 942550 no longer counts a plain quoted JSON literal
/// (stringified JSON in a cookie or a parameter), still catches JSON-based
/// SQL; `refinements = false` runs CRS' rule.
#[test]
fn refinements_narrow_crs_rules_that_match_plain_json() {
    let v4 = |w: &Waf| {
        w.crs()
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with('4'))
    };
    let waf = build(WafSettings::default());
    if !v4(&waf) {
        eprintln!("CRS 3.3 has no 942550: nothing to refine");
        return;
    }
    let shipped = build(WafSettings {
        refinements: false,
        ..WafSettings::default()
    });
    let json_sql = |v: &palisade_waf::WafVerdict| v.matched.iter().any(|m| m.id == 942550);
    let get = |waf: &Waf, q: &str, cookie: &str| {
        waf.inspect(req(
            "GET",
            &format!("/search?q={q}"),
            &[("Cookie", cookie)],
            "",
        ))
    };
    for (q, cookie) in [
        ("%27%7B%22necessary%22%3Atrue%7D%27", "a=b"),
        ("shoes", "prefs=\"{\\\"theme\\\":\\\"dark\\\"}\""),
        ("%22%5B1%2C2%2C3%5D%22%2C%20page%202", "a=b"),
    ] {
        assert!(json_sql(&get(&shipped, q, cookie)), "CRS: {q} {cookie}");
        let v = get(&waf, q, cookie);
        assert!(!json_sql(&v) && !v.blocked, "{q} {cookie}: {:?}", v.matched);
    }
    for q in [
        "OR%20%27%7B%22b%22%3A2%7D%27%3A%3Ajsonb%20%3C%40%20%27%7B%22a%22%3A1%7D%27",
        "OR%20%27%7B%22a%22%3A%22b%22%7D%27%20%3F%20%27a%27",
        "%27%7B%22b%22:2%7D%27::jsonb%20@%20%27%7B%22a%22:1%7D%27::jsonb",
    ] {
        let v = get(&waf, q, "a=b");
        assert!(json_sql(&v) && v.blocked, "{q}: {:?}", v.matched);
    }
}
