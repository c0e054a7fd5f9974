//! `waf tune` on the project's own benign corpus (testdata/benign): CRS v4
//! in detect mode records the corpus' would-be blocks as events, the tuner
//! turns them into exclusions, and with those exclusions in block mode the
//! corpus passes while every `block` case of CRS' regression suite still
//! blocks.
//!
//! `#[ignore]`d because it reads CRS v4 and its cases from ../shared
//! (scripts/test.sh runs it); it fails when asked to run without them.

use std::path::{Path, PathBuf};

use palisade_policy::event::{SecurityEvent, WafEventDetail, WafRuleHit};
use palisade_policy::waf::tune::{self, TuneOptions};
use palisade_policy::waf::WafMode;
use palisade_policy::CheckKind;
use palisade_waf::benign::{self, BenignRequest};
use palisade_waf::{conformance, BodyPush, RequestBodyPlan, Waf};

fn shared(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(
        p.exists(),
        "{}: missing (this test needs ../shared)",
        p.display()
    );
    p
}

/// One request through the request phases, as the edge drives them, and
/// the event the edge would write for it (`None`: nothing matched, or no
/// would-be block).
fn record(waf: &Waf, req: &BenignRequest) -> Option<SecurityEvent> {
    let mut http = req.to_http().expect("corpus bodies decode");
    let body = std::mem::take(&mut http.body);
    let host = req
        .header_list
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut ex = waf.begin(http);
    ex.request_headers();
    if let RequestBodyPlan::Inspect { .. } = ex.request_body_plan(!body.is_empty()) {
        for c in body.chunks(4096) {
            if ex.push_request_body(c) != BodyPush::Continue {
                break;
            }
        }
    }
    let v = ex.finish_request_body();
    let rules: Vec<WafRuleHit> = ex
        .matched()
        .map(palisade_waf::MatchedRule::event_hit)
        .collect();
    if !rules.iter().any(|r| r.id == 949110) {
        return None;
    }
    Some(SecurityEvent {
        time_ms: 0,
        node: "test".into(),
        request_id: req.id.clone(),
        client_ip: "192.0.2.10".parse().unwrap(),
        check: CheckKind::Waf,
        rule_id: "949110".into(),
        action: "log".into(),
        simulate: true,
        method: req.method.clone(),
        host,
        path: req.uri.split('?').next().unwrap_or("/").to_string(),
        status: None,
        waf: Some(WafEventDetail {
            anomaly_score: v.inbound_score,
            rules,
            ..WafEventDetail::default()
        }),
        bot: None,
    })
}

#[test]
#[ignore = "needs ../shared/crs (rules and cases); scripts/test.sh runs it"]
fn shared_tuned_exclusions_pass_the_corpus_and_crs_block_cases_still_block() {
    let rules = shared("crs/rules");
    let cases = conformance::load_cases(&shared("crs/cases/crs_cases.jsonl")).unwrap();
    let corpus = benign::load_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/benign/corpus.jsonl.gz"),
    )
    .unwrap();

    // As shipped, block mode blocks part of the corpus.
    let block = benign::measure_settings(&rules);
    let before = benign::run(&Waf::build(&block).unwrap(), &corpus);
    assert!(before.overall.blocked > 0);

    // Detect mode: the would-be blocks, as events.
    let mut detect = block.clone();
    detect.mode = WafMode::Detect;
    let waf = Waf::build(&detect).unwrap();
    let events: Vec<SecurityEvent> = corpus.iter().filter_map(|r| record(&waf, r)).collect();
    let t = tune::propose(&events, &TuneOptions::default());
    eprintln!(
        "corpus: {} of {} blocked as shipped; {} events, {} proposals",
        before.overall.blocked,
        before.overall.total,
        events.len(),
        t.proposals.len()
    );
    assert!(!t.proposals.is_empty());

    // Block mode with the proposals: the corpus passes (bodies refused for
    // their size or encoding are not something an exclusion changes).
    let mut tuned = block.clone();
    tuned
        .exclusions
        .extend(t.proposals.iter().map(|p| p.exclusion()));
    let after = benign::run(&Waf::build(&tuned).unwrap(), &corpus);
    let left: Vec<_> = after
        .blocked
        .iter()
        .filter(|b| b.reason.is_none() || !b.rules.is_empty())
        .collect();
    for b in left.iter().take(5) {
        let e = events.iter().find(|e| e.request_id == b.id);
        eprintln!(
            "{}: {:?}",
            b.id,
            e.map(|e| (
                &e.host,
                &e.path,
                e.waf.as_ref().map(|w| w
                    .rules
                    .iter()
                    .map(|r| (r.id, r.var.clone(), r.data.clone()))
                    .collect::<Vec<_>>())
            ))
        );
    }
    assert!(
        left.is_empty(),
        "{} still blocked with the proposals, e.g. {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );

    // And every CRS `block` case still blocks with the same exclusions added
    // to the regression settings (as scripts/test.sh runs them).
    let mut reg = conformance::regression_config(&rules, 4);
    reg.tx.insert("arg_name_length".into(), "100".into());
    reg.tx.insert("max_num_args".into(), "255".into());
    let plain = conformance::run(&Waf::build(&reg).unwrap(), &cases);
    reg.exclusions = tuned.exclusions.clone();
    let report = conformance::run(&Waf::build(&reg).unwrap(), &cases);
    let b = &report.by_label["block"];
    assert_eq!(
        b.passed,
        plain.by_label["block"].passed,
        "block cases that no longer block with the proposals: {:?}",
        report
            .failures
            .iter()
            .filter(|f| !plain.failures.iter().any(|p| p.id == f.id))
            .map(|f| &f.id)
            .collect::<Vec<_>>()
    );
    assert_eq!(b.passed, b.total, "every CRS block case blocks");
}
