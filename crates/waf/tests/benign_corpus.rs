//! The committed benign corpus (`testdata/benign/corpus.jsonl.gz`): present,
//! large and varied enough to be a yardstick, and every request well formed.
//! Its false-positive rate with CRS is measured by `palisade waf benign`
//! (scripts/test.sh, against the ratchet in `.ci/waf-benign-max`).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use palisade_waf::benign::load_corpus;

fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/benign/corpus.jsonl.gz")
}

#[test]
fn the_corpus_has_ten_thousand_requests_from_at_least_five_applications() {
    let corpus = load_corpus(&corpus_path()).expect("the committed corpus loads");
    assert!(corpus.len() >= 10_000, "{} requests", corpus.len());
    let mut per_app: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &corpus {
        *per_app.entry(r.app.as_str()).or_default() += 1;
    }
    let big = per_app.values().filter(|&&n| n >= 500).count();
    assert!(big >= 5, "applications with ≥ 500 requests: {per_app:?}");
    // Each application's source is documented.
    let sources =
        std::fs::read_to_string(corpus_path().with_file_name("SOURCES.md")).expect("SOURCES.md");
    for app in per_app.keys() {
        assert!(
            sources.contains(&format!("`{app}`")),
            "{app} missing from SOURCES.md"
        );
    }
}

#[test]
fn every_request_is_well_formed() {
    let corpus = load_corpus(&corpus_path()).expect("the committed corpus loads");
    let mut ids = HashSet::new();
    let (mut with_body, mut methods) = (0, HashSet::new());
    for r in &corpus {
        assert!(ids.insert(r.id.as_str()), "duplicate id {}", r.id);
        assert!(r.uri.starts_with('/'), "{}: uri {:?}", r.id, r.uri);
        assert!(
            r.uri.bytes().all(|b| b.is_ascii_graphic()),
            "{}: the uri is not percent-encoded: {:?}",
            r.id,
            r.uri
        );
        let header = |name: &str| {
            r.header_list
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert!(header("Host").is_some(), "{}: no Host", r.id);
        assert!(header("User-Agent").is_some(), "{}: no User-Agent", r.id);
        let body = r
            .body_bytes()
            .unwrap_or_else(|| panic!("{}: body_b64", r.id));
        if !body.is_empty() {
            with_body += 1;
            assert!(
                header("Content-Type").is_some(),
                "{}: no Content-Type",
                r.id
            );
            assert_eq!(
                header("Content-Length"),
                Some(body.len().to_string().as_str()),
                "{}: Content-Length",
                r.id
            );
        }
        methods.insert(r.method.as_str());
    }
    assert!(
        with_body * 4 >= corpus.len(),
        "{with_body} requests with a body"
    );
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "no {m} request");
    }
}
