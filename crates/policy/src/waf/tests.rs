//! Tests of the `[waf]` section: parsing, defaults and located errors.
use crate::policy::Policy;
use crate::verdict::CheckKind;

use super::*;

fn errors(src: &str) -> Vec<String> {
    match Policy::from_toml(src, "f.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn defaults_apply() {
    let p = Policy::from_toml("[waf]\ncrs_dir = \"crs/rules\"\n", "f").unwrap();
    let w = p.waf.unwrap();
    assert_eq!(
        w,
        WafSettings {
            crs_dir: Some("crs/rules".into()),
            ..WafSettings::default()
        }
    );
    assert_eq!(
        (
            w.mode,
            w.blocking_paranoia_level,
            w.inbound_threshold,
            w.body.limit,
            w.body.limit_no_files,
            w.body.limit_action,
            w.response.enabled,
            w.response.body_limit,
        ),
        (
            WafMode::Block,
            1,
            5,
            13_107_200,
            131_072,
            BodyLimitAction::Reject,
            true,
            524_288
        )
    );
    assert!(Policy::from_toml("", "f").unwrap().waf.is_none());
}

#[test]
fn every_key_is_read() {
    let src = r#"
[waf]
crs_dir = "/srv/crs"
setup = "/srv/crs-setup.conf"
mode = "detect"
blocking_paranoia_level = 2
detection_paranoia_level = 3
inbound_threshold = 10
outbound_threshold = 8
max_body_bytes = 1024
max_body_bytes_no_files = 512
body_limit_action = "inspect_prefix"
body_content_encoding = "refuse"
inspect_responses = false
max_response_body_bytes = 2048
response_body_limit_action = "reject"
response_body_mime_types = ["Text/HTML", "application/json"]
extra_rules = ["/srv/local.conf"]
tx = { arg_length = 400, allowed_methods = "GET HEAD POST", Enforce_BodyProc_URLencoded = true }

[[waf.exclusions]]
host = "Shop.Example.com"
path_prefix = "/search"
rule_ids = [942100, "942200-942299"]

[[waf.exclusions]]
tags = ["attack-sqli"]
targets = ["ARGS:password", "REQUEST_COOKIES:/^sess/"]
"#;
    let w = Policy::from_toml(src, "f").unwrap().waf.unwrap();
    assert_eq!(w.mode, WafMode::Detect);
    assert_eq!(w.setup.as_deref(), Some("/srv/crs-setup.conf"));
    assert_eq!(
        (
            w.blocking_paranoia_level,
            w.detection_paranoia_level,
            w.inbound_threshold,
            w.outbound_threshold,
            w.body.limit,
            w.body.limit_no_files
        ),
        (2, Some(3), 10, 8, 1024, 512)
    );
    assert_eq!(w.body.limit_action, BodyLimitAction::InspectPrefix);
    assert_eq!(w.body.content_encoding, ContentEncodingAction::Refuse);
    assert!(!w.response.enabled);
    assert_eq!(w.response.body_limit, 2048);
    assert_eq!(w.response.limit_action, BodyLimitAction::Reject);
    assert_eq!(
        w.response.mime_types,
        vec!["text/html".to_string(), "application/json".to_string()]
    );
    assert_eq!(w.extra_rules, vec!["/srv/local.conf".to_string()]);
    assert_eq!(w.tx["arg_length"], "400");
    assert_eq!(w.tx["allowed_methods"], "GET HEAD POST");
    assert_eq!(w.tx["enforce_bodyproc_urlencoded"], "1");
    assert_eq!(w.exclusions.len(), 2);
    let e = &w.exclusions[0];
    assert_eq!(e.host.as_deref(), Some("shop.example.com"));
    assert_eq!(e.path_prefix.as_deref(), Some("/search"));
    let ids: Vec<String> = e.rule_ids.iter().map(|r| r.to_string()).collect();
    assert_eq!(ids, vec!["942100", "942200-942299"]);
    assert_eq!(w.exclusions[1].tags, vec!["attack-sqli".to_string()]);
    assert_eq!(w.exclusions[1].targets.len(), 2);
}

#[test]
fn bad_values_are_located() {
    let src = r#"[waf]
crs_dir = ""
mode = "shout"
blocking_paranoia_level = 5
detection_paranoia_level = 0
inbound_threshold = 0
outbound_threshold = -1
max_body_bytes = -1
tx = { "bad-name" = 1, inbound_anomaly_score_threshold = 3, ok = "a'b" }
body_limit_action = "truncate"
body_content_encoding = "ignore"
response_body_mime_types = ["text/html; charset=utf-8", "html"]
max_response_body_bytes = 2000000000
"#;
    let e = errors(src);
    let joined = e.join("\n");
    for needle in [
        "f.toml:2:11: waf: crs_dir must not be empty",
        "f.toml:3:8: waf: unknown mode `shout`",
        "f.toml:4:27: waf: blocking_paranoia_level must be 1 to 4",
        "f.toml:5:28: waf: detection_paranoia_level",
        "f.toml:6:21: waf: inbound_threshold",
        "f.toml:7:22: waf: outbound_threshold",
        "f.toml:8:18: waf: max_body_bytes",
        "tx setting `bad-name`",
        "use `inbound_threshold`",
        "tx setting `ok`: the value must not contain '\\''",
        "f.toml:10:21: waf: unknown body_limit_action `truncate`",
        "f.toml:11:25: waf: unknown body_content_encoding `ignore`",
        "f.toml:12:29: waf: `text/html; charset=utf-8` is not a media type",
        "f.toml:12:57: waf: `html` is not a media type",
        "f.toml:13:27: waf: max_response_body_bytes",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(e.iter().all(|l| l.starts_with("f.toml:")), "{joined}");
}

#[test]
fn detection_level_below_blocking_is_refused() {
    let e = errors(
        "[waf]\ncrs_dir = \"x\"\nblocking_paranoia_level = 3\ndetection_paranoia_level = 2\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("f.toml:4:"), "{e:?}");
    assert!(
        e[0].contains("at least blocking_paranoia_level (3)"),
        "{e:?}"
    );
}

#[test]
fn bad_exclusions_are_located() {
    let src = r#"[waf]
crs_dir = "x"

[[waf.exclusions]]
path_prefix = "/a"

[[waf.exclusions]]
host = "a b"
path_prefix = "no-slash"
rule_ids = [0, "942100-942000", "abc", "1-2-3"]
tags = ["a,b"]
targets = ["args:x", "ARGS:"]

[[waf.exclusions]]
path_prefix = "/x\"y"
tags = ["attack-xss"]
"#;
    let e = errors(src);
    let joined = e.join("\n");
    for needle in [
        "f.toml:4:1: waf exclusion #1: names no rule_ids, tags or targets",
        "f.toml:8:8: waf exclusion #2: host must not contain ' '",
        "f.toml:9:15: waf exclusion #2: path_prefix must start with `/`",
        "f.toml:10:13: waf exclusion #2: rule id 0",
        "f.toml:10:16: waf exclusion #2: range `942100-942000` ends before it starts",
        "f.toml:10:33: waf exclusion #2: `abc` is not a rule id",
        "f.toml:10:40: waf exclusion #2: `1-2-3` is not a rule id",
        "f.toml:11:9: waf exclusion #2: tag `a,b`",
        "f.toml:12:12: waf exclusion #2: target `args:x`",
        "f.toml:12:22: waf exclusion #2: target `ARGS:`",
        "f.toml:15:15: waf exclusion #3: path_prefix must not contain '\"'",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn crs_dir_is_optional_and_unknown_keys_are_errors() {
    let w = Policy::from_toml("[waf]\nmode = \"detect\"\n", "f")
        .unwrap()
        .waf
        .unwrap();
    assert_eq!(w.crs_dir, None);
    assert!(w.validate().is_empty());
    let e = errors("[waf]\ncrs_dir = \"x\"\nparanoia = 2\n");
    assert!(e[0].starts_with("f.toml:3:"), "{e:?}");
    assert!(e[0].contains("paranoia"), "{e:?}");
}

#[test]
fn other_errors_are_still_reported_with_waf_errors() {
    let src = "[waf]\ncrs_dir = \"x\"\nmode = \"nope\"\n\n[[rules]]\nid = \"a\"\nexpression = 'http.host eq'\naction = \"block\"\n";
    let e = errors(src);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("f.toml:3:"));
    assert!(e[1].starts_with("f.toml:7:"));
}

#[test]
fn the_example_blocks_with_crs_and_its_commented_parts_compile() {
    let path = format!("{}/../../examples/policy.toml", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).unwrap();
    let p = Policy::from_toml(&src, "policy.toml").unwrap_or_else(|e| panic!("{e}"));
    let w = p.waf.expect("the example turns the WAF on");
    assert_eq!((w.mode, w.crs_dir), (WafMode::Block, None));
    let start = src
        .find("# [[waf.exclusions]]")
        .expect("an exclusions example");
    let uncommented: String = src[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let full = format!("{}{uncommented}\n", &src[..start]);
    let p = match Policy::from_toml(&full, "policy.toml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let w = p.waf.unwrap();
    assert_eq!(w.mode, WafMode::Block);
    assert_eq!(w.exclusions.len(), 1);
    assert!(p.escalations.iter().any(|e| e.kinds == [CheckKind::Waf]));
}

#[test]
fn escalations_may_count_waf_blocks() {
    let src = "[waf]\ncrs_dir = \"x\"\n\n[[escalations]]\nid = \"w\"\nkinds = [\"waf\"]\nthreshold = 2\nwindow = \"1m\"\nduration = \"1h\"\n";
    let p = Policy::from_toml(src, "f").unwrap();
    assert_eq!(p.escalations[0].kinds, vec![CheckKind::Waf]);
    assert_eq!(CheckKind::Waf.as_str(), "waf");
}

#[test]
fn no_files_limit_cannot_exceed_the_overall_limit() {
    let e = errors("[waf]\ncrs_dir = \"x\"\nmax_body_bytes = 100\nmax_body_bytes_no_files = 200\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("f.toml:4:"), "{e:?}");
    // A lower overall limit lowers the default no-files limit with it.
    let w = Policy::from_toml("[waf]\ncrs_dir = \"x\"\nmax_body_bytes = 100\n", "f")
        .unwrap()
        .waf
        .unwrap();
    assert_eq!((w.body.limit, w.body.limit_no_files), (100, 100));
}

#[test]
fn limits_follow_the_content_type() {
    let b = RequestBodySettings {
        limit: 1000,
        limit_no_files: 10,
        ..RequestBodySettings::default()
    };
    assert_eq!(b.limit_for(b"multipart/form-data; boundary=x"), 1000);
    assert_eq!(b.limit_for(b" Multipart/Form-Data;boundary=x"), 1000);
    assert_eq!(b.limit_for(b"application/x-www-form-urlencoded"), 10);
    assert_eq!(b.limit_for(b"multipart/mixed"), 10);
    assert_eq!(b.limit_for(b""), 10);
    let r = ResponseSettings::default();
    assert!(r.inspects_type(b"text/html; charset=utf-8"));
    assert!(r.inspects_type(b"TEXT/PLAIN"));
    assert!(!r.inspects_type(b"image/png"));
    assert!(!r.inspects_type(b""));
}

#[test]
fn validate_runs_the_parser_checks_on_a_built_value() {
    assert!(WafSettings {
        crs_dir: Some("x".into()),
        ..WafSettings::default()
    }
    .validate()
    .is_empty());
    let mut bad = WafSettings {
        crs_dir: Some(" ".into()),
        blocking_paranoia_level: 0,
        detection_paranoia_level: Some(9),
        inbound_threshold: 0,
        ..WafSettings::default()
    };
    bad.tx.insert("paranoia_level".into(), "2".into());
    bad.tx.insert("x".into(), "a;b".into());
    bad.exclusions.push(WafExclusion {
        rule_ids: vec![RuleIdRange { first: 5, last: 2 }],
        targets: vec!["args".into()],
        ..WafExclusion::default()
    });
    bad.exclusions.push(WafExclusion::default());
    bad.response.mime_types = vec!["nope".into()];
    let e = bad.validate().join("\n");
    for needle in [
        "crs_dir must not be empty",
        "blocking_paranoia_level must be 1 to 4",
        "detection_paranoia_level must be 1 to 4",
        "inbound_threshold",
        "use `blocking_paranoia_level`",
        "tx setting `x`: the value must not contain ';'",
        "waf exclusion #1: `5-2` is not a valid rule id range",
        "waf exclusion #1: target `args`",
        "waf exclusion #2: names no rule_ids",
        "`nope` is not a media type",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
}

#[test]
fn crs_list_settings_may_hold_bars() {
    let mut w = WafSettings {
        crs_dir: Some("/crs".into()),
        ..WafSettings::default()
    };
    w.tx.insert(
        "allowed_request_content_type".into(),
        "|application/json| |text/xml|".into(),
    );
    assert!(w.validate().is_empty(), "{:?}", w.validate());
    w.tx.insert("x".into(), "a'b".into());
    assert!(!w.validate().is_empty());
}

#[test]
fn the_model_section_is_read_and_checked() {
    use crate::learn::model::ModelApply;
    let p = Policy::from_toml(
        "[waf]\n[waf.model]\napply = \"replace\"\nmin_requests = 50\nmin_sources = 3\nmax_routes = 200\nshare_every = \"2s\"\nlearn = true\n",
        "f",
    )
    .unwrap();
    let m = p.waf.unwrap().model;
    assert_eq!(
        (
            m.apply,
            m.min_requests,
            m.min_sources,
            m.max_routes,
            m.share_every_ms,
            m.learn
        ),
        (ModelApply::Replace, 50, 3, 200, 2000, true)
    );
    // Defaults: learn, change nothing.
    let m = Policy::from_toml("[waf]\n", "f")
        .unwrap()
        .waf
        .unwrap()
        .model;
    assert_eq!((m.learn, m.apply), (true, ModelApply::Off));
    assert!(WafSettings::default().validate().is_empty());

    let e = errors(
        "[waf]\n[waf.model]\napply = \"always\"\nmin_sources = 0\nmax_routes = 100000000\nshare_every = \"1ms\"\nbogus = 1\n",
    );
    let joined = e.join("\n");
    assert!(joined.contains("unknown field `bogus`"), "{joined}");
    let e = errors(
        "[waf]\n[waf.model]\napply = \"always\"\nmin_sources = 0\nmax_routes = 100000000\nshare_every = \"1ms\"\n",
    );
    let joined = e.join("\n");
    for needle in [
        "f.toml:3:",
        "unknown apply `always`",
        "f.toml:4:",
        "min_sources must be between 1",
        "f.toml:5:",
        "max_routes must be between 1 and 100000",
        "f.toml:6:",
        "share_every must be between 100ms and 1h",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn value_memo_is_on_unless_turned_off() {
    let on = Policy::from_toml("[waf]\n", "f").unwrap().waf.unwrap();
    assert!(on.value_memo);
    let off = Policy::from_toml("[waf]\nvalue_memo = false\n", "f")
        .unwrap()
        .waf
        .unwrap();
    assert!(!off.value_memo);
    assert!(Policy::from_toml("[waf]\nvalue_memo = \"no\"\n", "f").is_err());
}

#[test]
fn refinements_are_on_unless_turned_off() {
    let on = Policy::from_toml("[waf]\n", "f").unwrap().waf.unwrap();
    assert!(on.refinements);
    let off = Policy::from_toml("[waf]\nrefinements = false\n", "f")
        .unwrap()
        .waf
        .unwrap();
    assert!(!off.refinements);
    assert!(Policy::from_toml("[waf]\nrefinements = 1\n", "f").is_err());
}
