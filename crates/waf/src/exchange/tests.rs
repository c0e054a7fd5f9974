use super::*;
use palisade_policy::waf::ResponseSettings;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rules that stand in for CRS: one per thing to observe.
const RULES: &str = r#"
SecRule REQUEST_HEADERS:User-Agent "@contains badbot" "id:1001,phase:1,deny,status:403,msg:'bad bot'"
SecRule ARGS "@contains attack" "id:1002,phase:2,deny,status:403,msg:'attack',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule REQUEST_BODY "@contains evil" "id:1003,phase:2,deny,status:403,msg:'evil body'"
SecRule INBOUND_DATA_ERROR "@eq 1" "id:1004,phase:2,pass,msg:'inbound over limit'"
SecAction "id:1005,phase:2,pass,nolog,setvar:tx.phase2=1"
SecRule RESPONSE_STATUS "@streq 500" "id:2001,phase:3,deny,status:502,msg:'server error'"
SecRule RESPONSE_HEADERS:X-Leak "@rx ." "id:2002,phase:3,pass,msg:'leak',logdata:'%{MATCHED_VAR}'"
SecRule &RESPONSE_HEADERS:Set-Cookie "@eq 2" "id:2003,phase:3,pass,msg:'two cookies'"
SecRule RESPONSE_HEADERS_NAMES "@streq X-Powered-By" "id:2004,phase:3,pass,msg:'powered by'"
SecRule STATUS_LINE "@streq HTTP/1.1 404 Not Found" "id:2005,phase:3,pass,msg:'status line'"
SecRule RESPONSE_PROTOCOL "@streq HTTP/2.0" "id:2006,phase:3,pass,msg:'h2'"
SecRule RESPONSE_CONTENT_TYPE "@beginsWith text/html" "id:2007,phase:3,pass,msg:'html'"
SecRule RESPONSE_CONTENT_LENGTH "@eq 12" "id:2008,phase:4,pass,msg:'length 12'"
SecRule RESPONSE_BODY "@contains SECRET" "id:2009,phase:4,pass,msg:'secret',setvar:'tx.outbound_anomaly_score_pl1=+5'"
SecRule OUTBOUND_DATA_ERROR "@eq 1" "id:2010,phase:4,pass,msg:'outbound over limit'"
SecRule &RESPONSE_HEADERS:Content-Encoding "@eq 0" "id:2011,phase:4,pass,msg:'no content-encoding'"
SecAction "id:2012,phase:4,pass,nolog,setvar:'tx.blocking_outbound_anomaly_score=+%{tx.outbound_anomaly_score_pl1}'"
SecRule TX:BLOCKING_OUTBOUND_ANOMALY_SCORE "@ge %{tx.outbound_anomaly_score_threshold}" "id:959100,phase:4,deny,msg:'Outbound Anomaly Score Exceeded (Total Score: %{tx.blocking_outbound_anomaly_score})'"
SecAction "id:3001,phase:5,pass,msg:'logging ran'"
"#;

fn waf(configure: impl FnOnce(&mut WafSettings)) -> Waf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "palisade-exchange-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("REQUEST-900-TEST.conf"), RULES).unwrap();
    let mut s = WafSettings {
        crs_dir: Some(dir.display().to_string()),
        ..WafSettings::default()
    };
    configure(&mut s);
    let w = Waf::build(&s).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    w
}

fn request(method: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: method.as_bytes().to_vec(),
        uri: b"/path?x=1".to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        ..HttpRequest::default()
    }
}

fn form(len: Option<usize>) -> HttpRequest {
    let cl = len.map(|n| n.to_string());
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(cl) = &cl {
        h.push(("Content-Length", cl));
    }
    request("POST", &h)
}

fn ids(ex: &Exchange) -> Vec<u32> {
    ex.matched().map(|m| m.id).collect()
}

fn phase2_ran(ex: &Exchange) -> bool {
    ex.transaction().tx_num("phase2") == Some(1)
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

fn headers(h: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    h.iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn limits(limit: usize, action: BodyLimitAction) -> impl FnOnce(&mut WafSettings) {
    move |s| {
        s.body.limit = limit;
        s.body.limit_no_files = limit;
        s.body.limit_action = action;
    }
}

#[test]
fn declared_bodies_are_allocated_once() {
    let w = waf(|_| {});
    // Content-Length: exactly that much, on the first push.
    let mut ex = w.begin(form(Some(3000)));
    ex.request_headers();
    for _ in 0..3 {
        assert_eq!(ex.push_request_body(&[b'a'; 1000]), BodyPush::Continue);
        assert_eq!(ex.req.raw.capacity(), 3000);
    }
    // Chunked: the Content-Length means nothing, the buffer grows.
    let mut chunked = form(Some(100_000));
    chunked
        .headers
        .push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
    let mut ex = w.begin(chunked);
    ex.request_headers();
    ex.push_request_body(b"a=1");
    assert_eq!(ex.req.raw.capacity(), 4096);
    // Over the limit: the limit, not the declared length.
    let mut ex = w.begin(form(Some(10_000_000)));
    ex.request_headers();
    ex.push_request_body(b"a=1");
    assert_eq!(ex.req.raw.capacity(), 131_072);
    // A response with a Content-Length.
    let mut ex = w.begin(request("GET", &[]));
    ex.finish_request_body();
    let (_, plan) = ex.response_headers(
        200,
        b"HTTP/1.1",
        headers(&[("Content-Type", "text/html"), ("Content-Length", "600")]),
    );
    assert!(matches!(plan, ResponseBodyPlan::Inspect { .. }));
    for c in [&[b'x'; 100][..], &[b'y'; 500]] {
        assert_eq!(ex.push_response_body(c), BodyPush::Continue);
        assert_eq!(ex.resp.raw.capacity(), 600);
    }
}

#[test]
fn request_body_plans() {
    let w = waf(|_| {});
    let plan = |r: HttpRequest, expected| w.begin(r).request_body_plan(expected);
    assert_eq!(plan(form(Some(10)), false), RequestBodyPlan::None);
    assert_eq!(plan(form(Some(0)), true), RequestBodyPlan::None);
    assert_eq!(
        plan(form(Some(10)), true),
        RequestBodyPlan::Inspect {
            limit: 131_072,
            declared: Some(10)
        }
    );
    // HTTP/2: no length, a body all the same.
    assert_eq!(
        plan(form(None), true),
        RequestBodyPlan::Inspect {
            limit: 131_072,
            declared: None
        }
    );
    // Files: the larger limit.
    let mp = request(
        "POST",
        &[("Content-Type", "multipart/form-data; boundary=x")],
    );
    assert_eq!(
        plan(mp, true),
        RequestBodyPlan::Inspect {
            limit: 13_107_200,
            declared: None
        }
    );
    // Chunked framing wins over Content-Length.
    let chunked = request(
        "POST",
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "999999999"),
        ],
    );
    assert_eq!(
        plan(chunked, true),
        RequestBodyPlan::Inspect {
            limit: 131_072,
            declared: None
        }
    );
    // Declared over the limit: refused (reject), held in part (inspect_prefix).
    assert_eq!(
        plan(form(Some(131_073)), true),
        RequestBodyPlan::Refuse {
            status: 413,
            reason: reason::BODY_TOO_LARGE
        }
    );
    let prefix = waf(limits(100, BodyLimitAction::InspectPrefix));
    assert_eq!(
        prefix.begin(form(Some(1000))).request_body_plan(true),
        RequestBodyPlan::Inspect {
            limit: 100,
            declared: Some(1000)
        }
    );
    // Detection mode never refuses.
    let detect = waf(|s| s.mode = WafMode::Detect);
    assert!(matches!(
        detect.begin(form(Some(1 << 20))).request_body_plan(true),
        RequestBodyPlan::Inspect { .. }
    ));
    // Encodings.
    let enc = |w: &Waf, ce: &str| {
        w.begin(request(
            "POST",
            &[("Content-Length", "10"), ("Content-Encoding", ce)],
        ))
        .request_body_plan(true)
    };
    assert!(matches!(enc(&w, "gzip"), RequestBodyPlan::Inspect { .. }));
    assert!(matches!(
        enc(&w, "identity"),
        RequestBodyPlan::Inspect { .. }
    ));
    assert!(matches!(
        enc(&w, "gzip, br"),
        RequestBodyPlan::Inspect { .. }
    ));
    let unsupported = RequestBodyPlan::Refuse {
        status: 415,
        reason: reason::ENCODING_UNSUPPORTED,
    };
    assert_eq!(enc(&w, "zstd"), unsupported);
    assert_eq!(enc(&w, "gzip, deflate, br"), unsupported);
    let refuse = waf(|s| s.body.content_encoding = ContentEncodingAction::Refuse);
    assert_eq!(
        enc(&refuse, "gzip"),
        RequestBodyPlan::Refuse {
            status: 415,
            reason: reason::ENCODING_REFUSED
        }
    );
    assert!(matches!(
        enc(&refuse, "identity"),
        RequestBodyPlan::Inspect { .. }
    ));
    assert_eq!(
        enc(&detect, "zstd"),
        RequestBodyPlan::Uninspected {
            reason: reason::ENCODING_UNSUPPORTED
        }
    );
    // Limit 0: bodies are not inspected.
    let off = waf(limits(0, BodyLimitAction::Reject));
    let mut ex = off.begin(form(Some(10)));
    assert_eq!(
        ex.request_body_plan(true),
        RequestBodyPlan::Uninspected {
            reason: reason::DISABLED
        }
    );
    // Pushed anyway: the first chunk is held, then nothing more.
    assert_eq!(ex.push_request_body(b"a=attack"), BodyPush::Full);
    assert_eq!(ex.push_request_body(b"&b=2"), BodyPush::Full);
    let v = ex.finish_request_body();
    assert!(!v.blocked && v.reason == Some(reason::DISABLED));
    assert_eq!(ex.take_request_body(), b"a=attack");
}

#[test]
fn reject_limit_refuses_with_413() {
    let w = waf(limits(10, BodyLimitAction::Reject));
    let mut ex = w.begin(form(None));
    assert!(!ex.request_headers().blocked);
    assert_eq!(ex.push_request_body(b"a=12345"), BodyPush::Continue);
    assert_eq!(ex.push_request_body(b"678"), BodyPush::Continue);
    assert_eq!(ex.push_request_body(b"9"), BodyPush::TooLarge);
    assert_eq!(ex.push_request_body(b"more"), BodyPush::TooLarge);
    let v = ex.finish_request_body();
    assert!(v.blocked && v.would_block);
    assert_eq!(
        (v.status, v.phase, v.reason),
        (413, 2, Some(reason::BODY_TOO_LARGE))
    );
    assert_eq!(v.rule_id, None);
    assert!(!phase2_ran(&ex));
    assert!(ex.take_request_body().is_empty());
    // The response side knows the exchange is over.
    let (rv, plan) = ex.response_headers(200, b"HTTP/1.1", Vec::new());
    assert_eq!(
        plan,
        ResponseBodyPlan::Skip {
            reason: reason::BLOCKED
        }
    );
    assert!(rv.blocked);
    ex.logging();
    assert!(ids(&ex).contains(&3001));
}

#[test]
fn inspect_prefix_inspects_the_first_bytes_and_keeps_all() {
    let w = waf(limits(16, BodyLimitAction::InspectPrefix));
    let mut ex = w.begin(form(None));
    ex.request_headers();
    assert_eq!(ex.push_request_body(b"a=attack&b="), BodyPush::Continue);
    // Crosses the limit: held whole (to be forwarded), inspected to 16.
    assert_eq!(ex.push_request_body(b"evil-evil-evil"), BodyPush::Full);
    assert_eq!(ex.push_request_body(b"not held"), BodyPush::Full);
    let held = ex.req.raw.as_ptr();
    let v = ex.finish_request_body();
    assert!(v.blocked);
    assert_eq!(
        (v.rule_id, v.phase, v.reason),
        (Some(1002), 2, Some(reason::BODY_TRUNCATED))
    );
    // REQUEST_BODY is the prefix: "evil" starts at byte 11 and is cut.
    assert_eq!(ex.transaction().data.inspected_body(), b"a=attack&b=evil-");
    let body = ex.take_request_body();
    assert_eq!(body, b"a=attack&b=evil-evil-evil");
    assert_eq!(body.as_ptr(), held, "given back without a copy");
    // After the body: nothing of it is left.
    assert!(ex.transaction().data.req.body.is_empty());
    assert!(ex.transaction().data.body.as_ref().unwrap().args.is_empty());

    // Only past the limit: passes.
    let mut ex = w.begin(form(None));
    assert_eq!(
        ex.push_request_body(b"a=b&c=ddddddddddddattack"),
        BodyPush::Full
    );
    let v = ex.finish_request_body();
    assert!(!v.blocked && !v.would_block);
    assert_eq!(v.reason, Some(reason::BODY_TRUNCATED));
    assert!(phase2_ran(&ex));
    assert!(ids(&ex).contains(&1004), "INBOUND_DATA_ERROR");
}

#[test]
fn detect_mode_reports_a_reject_limit() {
    let w = waf(|s| {
        limits(8, BodyLimitAction::Reject)(s);
        s.mode = WafMode::Detect;
    });
    let mut ex = w.begin(form(None));
    assert_eq!(ex.push_request_body(b"a=attack-and-more"), BodyPush::Full);
    let v = ex.finish_request_body();
    assert!(!v.blocked && v.would_block);
    assert_eq!(v.reason, Some(reason::BODY_TOO_LARGE));
    assert!(ids(&ex).contains(&1002), "the prefix is inspected");
    assert_eq!(ex.take_request_body(), b"a=attack-and-more");
}

#[test]
fn bodies_without_pushes_still_run_phase_2() {
    let w = waf(|_| {});
    let mut ex = w.begin(request("GET", &[("User-Agent", "curl")]));
    assert!(!ex.request_headers().blocked);
    assert_eq!(ex.request_body_plan(false), RequestBodyPlan::None);
    let v = ex.finish_request_body();
    assert_eq!((v.phase, v.blocked), (2, false));
    assert!(phase2_ran(&ex));
    // Phase 1 blocks: phase 2 does not run, the verdict says phase 1.
    let mut ex = w.begin(request("GET", &[("User-Agent", "badbot")]));
    let v = ex.request_headers();
    assert_eq!(
        (v.blocked, v.status, v.phase, v.rule_id),
        (true, 403, 1, Some(1001))
    );
    let v = ex.finish_request_body();
    assert_eq!((v.blocked, v.phase), (true, 1));
    assert!(!phase2_ran(&ex));
    // Out of order: finishing runs phase 1 first; a second finish repeats.
    let mut ex = w.begin(form(Some(8)));
    ex.push_request_body(b"a=attack");
    assert!(ex.finish_request_body().blocked);
    assert!(ex.finish_request_body().blocked);
    assert_eq!(ex.push_request_body(b"x"), BodyPush::Full);
}

#[test]
fn compressed_request_bodies() {
    let w = waf(|_| {});
    let gz = |w: &Waf, body: &[u8]| {
        let mut ex = w.begin(request(
            "POST",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Encoding", "gzip"),
            ],
        ));
        ex.request_headers();
        for c in body.chunks(5) {
            ex.push_request_body(c);
        }
        let v = ex.finish_request_body();
        (ex, v)
    };
    let attack = gzip(b"q=attack");
    let (mut ex, v) = gz(&w, &attack);
    assert!(v.blocked && v.rule_id == Some(1002), "{v:?}");
    assert_eq!(ex.take_request_body(), attack, "forwarded as received");
    let (_, v) = gz(&w, &gzip(b"q=fine"));
    assert!(!v.blocked && v.reason.is_none());

    // Corrupt data: 400 (detection mode: reported, phase 2 runs).
    let mut corrupt = gzip(b"q=fine");
    corrupt[12] ^= 0xff;
    let (ex, v) = gz(&w, &corrupt);
    assert_eq!(
        (v.blocked, v.status, v.reason),
        (true, 400, Some(reason::ENCODING_CORRUPT))
    );
    assert!(!phase2_ran(&ex));
    let detect = waf(|s| s.mode = WafMode::Detect);
    let (ex, v) = gz(&detect, &corrupt);
    assert!(!v.blocked && v.would_block && v.reason == Some(reason::ENCODING_CORRUPT));
    assert!(phase2_ran(&ex));

    // A bomb: 413 with reject; its first bytes inspected with inspect_prefix.
    let mut big = b"q=attack&pad=".to_vec();
    big.resize(1 << 20, b'a');
    let bomb = gzip(&big);
    let small = waf(limits(4096, BodyLimitAction::Reject));
    let (_, v) = gz(&small, &bomb);
    assert_eq!(
        (v.blocked, v.status, v.reason),
        (true, 413, Some(reason::DECODED_TOO_LARGE))
    );
    let prefix = waf(limits(4096, BodyLimitAction::InspectPrefix));
    let (mut ex, v) = gz(&prefix, &bomb);
    assert_eq!(
        (v.rule_id, v.reason),
        (Some(1002), Some(reason::BODY_TRUNCATED))
    );
    assert_eq!(ex.transaction().data.inspected_body().len(), 4096);
    assert_eq!(ex.take_request_body(), bomb);

    // Refused and unsupported encodings (block mode refuses even when pushed).
    let refuse = waf(|s| s.body.content_encoding = ContentEncodingAction::Refuse);
    let (_, v) = gz(&refuse, &attack);
    assert_eq!(
        (v.blocked, v.status, v.reason),
        (true, 415, Some(reason::ENCODING_REFUSED))
    );
    let mut ex = detect.begin(request(
        "POST",
        &[("Content-Length", "5"), ("Content-Encoding", "zstd")],
    ));
    assert_eq!(ex.push_request_body(b"q=evil"), BodyPush::Full);
    let v = ex.finish_request_body();
    assert!(!v.blocked && v.would_block && v.reason == Some(reason::ENCODING_UNSUPPORTED));
    assert!(!ids(&ex).contains(&1003), "not inspected");
    assert_eq!(ex.take_request_body(), b"q=evil");
}

#[test]
fn a_prefix_is_not_a_malformed_body() {
    let w = waf(limits(22, BodyLimitAction::InspectPrefix));
    let json = br#"{"a":"fine","b":"attack","c":"more text"}"#;
    let mut ex = w.begin(request("POST", &[("Content-Type", "application/json")]));
    assert_eq!(ex.push_request_body(json), BodyPush::Full);
    let v = ex.finish_request_body();
    assert!(!ids(&ex).contains(&200002), "{:?}", ids(&ex));
    // json.b is cut ("attac"): not found, but nothing is refused either.
    assert!(!v.blocked, "{v:?}");
    assert_eq!(v.reason, Some(reason::BODY_TRUNCATED));
    let args = &ex.transaction().data.body.as_ref().unwrap().args;
    assert_eq!(args.last(), Some(&(b"json.b".to_vec(), b"attac".to_vec())));
    // The same JSON, truncated by its sender, is malformed.
    let mut ex = w.begin(request("POST", &[("Content-Type", "application/json")]));
    ex.push_request_body(&json[..20]);
    let v = ex.finish_request_body();
    assert_eq!((v.blocked, v.status, v.rule_id), (true, 400, Some(200002)));
}

fn response_waf(configure: impl FnOnce(&mut ResponseSettings)) -> Waf {
    waf(|s| configure(&mut s.response))
}

fn through_request(w: &Waf, method: &str) -> Exchange {
    let mut ex = w.begin(request(method, &[("User-Agent", "curl")]));
    ex.request_headers();
    ex.finish_request_body();
    ex
}

#[test]
fn response_body_plans() {
    let w = response_waf(|_| {});
    let plan = |w: &Waf, method: &str, status: u16, h: &[(&str, &str)]| {
        let mut ex = through_request(w, method);
        ex.response_headers(status, b"HTTP/1.1", headers(h)).1
    };
    let skip = |reason| ResponseBodyPlan::Skip { reason };
    assert_eq!(
        plan(&w, "GET", 200, &[("Content-Type", "text/html")]),
        ResponseBodyPlan::Inspect { limit: 524_288 }
    );
    assert_eq!(
        plan(
            &w,
            "GET",
            200,
            &[
                ("Content-Type", "TEXT/plain; charset=x"),
                ("Content-Encoding", "gzip")
            ]
        ),
        ResponseBodyPlan::Inspect { limit: 524_288 }
    );
    assert_eq!(
        plan(&w, "GET", 200, &[("Content-Type", "image/png")]),
        skip(reason::MIME_TYPE)
    );
    assert_eq!(plan(&w, "GET", 200, &[]), skip(reason::MIME_TYPE));
    assert_eq!(
        plan(&w, "HEAD", 200, &[("Content-Type", "text/html")]),
        skip(reason::NO_BODY)
    );
    for status in [101, 204, 304] {
        assert_eq!(
            plan(&w, "GET", status, &[("Content-Type", "text/html")]),
            skip(reason::NO_BODY)
        );
    }
    assert_eq!(
        plan(
            &w,
            "GET",
            200,
            &[("Content-Type", "text/html"), ("Content-Encoding", "zstd")]
        ),
        skip(reason::ENCODING_UNSUPPORTED)
    );
    let zero = response_waf(|r| r.body_limit = 0);
    assert_eq!(
        plan(&zero, "GET", 200, &[("Content-Type", "text/html")]),
        skip(reason::DISABLED)
    );
    // Disabled: phase 3 does not even run.
    let off = response_waf(|r| r.enabled = false);
    let mut ex = through_request(&off, "GET");
    let (_, p) = ex.response_headers(200, b"HTTP/1.1", headers(&[("X-Powered-By", "x")]));
    assert_eq!(p, skip(reason::DISABLED));
    ex.finish_response_body();
    assert!(!ids(&ex).contains(&2004));
}

#[test]
fn response_variables_in_phase_3_and_4() {
    let w = response_waf(|_| {});
    let mut ex = through_request(&w, "GET");
    let (v, plan) = ex.response_headers(
        404,
        b"HTTP/1.1",
        headers(&[
            ("Content-Type", "text/html"),
            ("X-Leak", "internal-host-7"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Powered-By", "PHP"),
        ]),
    );
    assert_eq!((v.phase, v.blocked), (3, false));
    assert_eq!(plan, ResponseBodyPlan::Inspect { limit: 524_288 });
    let found = ids(&ex);
    for id in [2002, 2003, 2004, 2005, 2007] {
        assert!(found.contains(&id), "{id} in {found:?}");
    }
    assert!(!found.contains(&2006));
    let leak = ex.matched().find(|m| m.id == 2002).unwrap();
    assert_eq!(leak.logdata, "internal-host-7");
    assert_eq!(leak.matched_var_name, "RESPONSE_HEADERS:X-Leak");
    assert_eq!(ex.push_response_body(b"hello "), BodyPush::Continue);
    assert_eq!(ex.push_response_body(b"world!"), BodyPush::Continue);
    let v = ex.finish_response_body();
    assert_eq!((v.phase, v.blocked, v.outbound_score), (4, false, 0));
    // No Content-Length: the length read.
    assert!(ids(&ex).contains(&2008));
    assert!(!ids(&ex).contains(&3001));
    ex.logging();
    assert!(ids(&ex).contains(&3001));

    let mut ex = through_request(&w, "GET");
    ex.response_headers(200, b"HTTP/2.0", headers(&[("content-type", "text/plain")]));
    assert!(ids(&ex).contains(&2006));
    assert!(!ids(&ex).contains(&2005));
}

#[test]
fn outbound_blocking_and_detection() {
    let leak = |w: &Waf, h: &[(&str, &str)], body: &[u8]| {
        let mut ex = through_request(w, "GET");
        let (_, plan) = ex.response_headers(200, b"HTTP/1.1", headers(h));
        assert!(matches!(plan, ResponseBodyPlan::Inspect { .. }), "{plan:?}");
        for c in body.chunks(3) {
            ex.push_response_body(c);
        }
        let v = ex.finish_response_body();
        (ex, v)
    };
    let text = [("Content-Type", "text/plain")];
    let block = response_waf(|_| {});
    let (mut ex, v) = leak(&block, &text, b"the SECRET is out");
    assert_eq!((v.blocked, v.would_block, v.status), (true, true, 403));
    assert_eq!((v.phase, v.rule_id, v.outbound_score), (4, Some(959100), 5));
    ex.logging();
    assert!(ids(&ex).contains(&3001), "logging runs after a block");
    let (_, v) = leak(&block, &text, b"nothing to see");
    assert!(!v.blocked && !v.would_block);

    let detect = waf(|s| s.mode = WafMode::Detect);
    let (_, v) = leak(&detect, &text, b"the SECRET is out");
    assert_eq!(
        (v.blocked, v.would_block, v.rule_id),
        (false, true, Some(959100))
    );
    // A higher threshold: reported as matched, not blocked.
    let lenient = waf(|s| s.outbound_threshold = 10);
    let (ex, v) = leak(&lenient, &text, b"the SECRET is out");
    assert!(!v.blocked && !v.would_block && ids(&ex).contains(&2009));

    // Compressed: decoded for inspection; phase 4 sees no Content-Encoding.
    let gz = gzip(b"the SECRET is out");
    let (ex, v) = leak(
        &block,
        &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        &gz,
    );
    assert!(v.blocked, "{v:?}");
    assert!(ids(&ex).contains(&2011));
    let (_, v) = leak(
        &block,
        &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        &gz[..gz.len() - 9],
    );
    assert_eq!(v.reason, Some(reason::ENCODING_CORRUPT));
    assert!(!v.blocked);

    // Phase 3 blocks: no body plan.
    let mut ex = through_request(&block, "GET");
    let (v, plan) = ex.response_headers(500, b"HTTP/1.1", headers(&text));
    assert_eq!(
        (v.blocked, v.status, v.phase, v.rule_id),
        (true, 502, 3, Some(2001))
    );
    assert_eq!(
        plan,
        ResponseBodyPlan::Skip {
            reason: reason::BLOCKED
        }
    );
    assert_eq!(ex.push_response_body(b"x"), BodyPush::Full);
    assert!(ex.finish_response_body().blocked);
}

#[test]
fn response_limits() {
    let text = headers(&[("Content-Type", "text/plain")]);
    // inspect_prefix (the default action): the first bytes.
    let w = response_waf(|r| r.body_limit = 8);
    let mut ex = through_request(&w, "GET");
    ex.response_headers(200, b"HTTP/1.1", text.clone());
    assert_eq!(ex.push_response_body(b"12345"), BodyPush::Continue);
    assert_eq!(ex.push_response_body(b"678 SECRET"), BodyPush::Full);
    assert!(ex.resp.raw.len() <= 8);
    let v = ex.finish_response_body();
    assert_eq!((v.blocked, v.reason), (false, Some(reason::BODY_TRUNCATED)));
    assert!(ids(&ex).contains(&2010) && !ids(&ex).contains(&2009));
    // reject: the response is cut.
    let w = response_waf(|r| {
        r.body_limit = 8;
        r.limit_action = BodyLimitAction::Reject;
    });
    let mut ex = through_request(&w, "GET");
    ex.response_headers(200, b"HTTP/1.1", text);
    assert_eq!(ex.push_response_body(b"123456789"), BodyPush::TooLarge);
    let v = ex.finish_response_body();
    assert_eq!(
        (v.blocked, v.status, v.reason),
        (true, 500, Some(reason::BODY_TOO_LARGE))
    );
}

#[test]
fn calls_in_any_order_do_not_panic() {
    let w = waf(|_| {});
    let mut ex = w.begin(form(Some(3)));
    // The response first: the request phases run before it.
    assert!(ex.finish_response_body().phase >= 2);
    let (_, plan) =
        ex.response_headers(200, b"HTTP/1.1", headers(&[("Content-Type", "text/html")]));
    assert!(phase2_ran(&ex));
    assert!(matches!(plan, ResponseBodyPlan::Inspect { .. }));
    assert_eq!(ex.push_request_body(b"abc"), BodyPush::Full);
    ex.logging();
    ex.logging();
    assert_eq!(ex.push_response_body(b"x"), BodyPush::Full);
    ex.finish_response_body();
    ex.take_request_body();
    let mut ex = w.begin(form(Some(3)));
    ex.logging();
    ex.take_request_body();
    ex.finish_request_body();
    // A body given with the request counts as pushed.
    let mut r = form(Some(8));
    r.body = b"a=attack".to_vec();
    let mut ex = w.begin(r);
    assert!(ex.finish_request_body().blocked);
}

#[test]
fn inspect_runs_the_request_phases() {
    let w = waf(|_| {});
    let mut r = form(Some(8));
    r.body = b"a=attack".to_vec();
    let v = w.inspect(r);
    assert!(v.blocked && v.rule_id == Some(1002));
    let mut r = form(Some(200_000));
    r.body = vec![b'a'; 200_000];
    let v = w.inspect(r);
    assert_eq!((v.blocked, v.status, v.rule_id), (true, 413, None));
}
