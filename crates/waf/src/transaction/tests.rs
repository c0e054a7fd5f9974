use super::*;
use std::path::Path;

fn rules(src: &str) -> Arc<RuleSet> {
    let directives =
        crate::parser::parse_str(src, &Arc::from("test.conf"), &Arc::from(Path::new("."))).unwrap();
    Arc::new(crate::rules::compile(&directives).unwrap())
}

fn get(uri: &str) -> HttpRequest {
    HttpRequest {
        method: b"GET".to_vec(),
        uri: uri.as_bytes().to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: vec![(b"Host".to_vec(), b"example.com".to_vec())],
        ..HttpRequest::default()
    }
}

fn ids(tx: &Transaction) -> Vec<u32> {
    tx.state.matched.iter().map(|m| m.id).collect()
}

#[test]
fn files_tmp_content_is_read_from_the_body() {
    let rs = rules(
        r#"SecRule FILES_TMP_CONTENT "@rx <\?php" "id:1,phase:2,pass,log,msg:'php',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule FILES_SIZES:up "@eq 30" "id:2,phase:2,pass,log""#,
    );
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"x.php\"\r\n\r\n<?php system($_GET['c']); ?>\r\n\r\n--b--\r\n";
    let mut req = get("/upload");
    req.method = b"POST".to_vec();
    req.headers.push((
        b"Content-Type".to_vec(),
        b"multipart/form-data; boundary=b".to_vec(),
    ));
    req.body = body.to_vec();
    let mut tx = Transaction::new(rs, req);
    tx.process_request();
    assert_eq!(ids(&tx), vec![1, 2]);
    assert_eq!(
        tx.state.matched[0].logdata,
        "FILES_TMP_CONTENT:up=<?php system($_GET['c']); ?>\r\n"
    );
    // Released with the body.
    tx.take_request_body();
    assert!(tx.data.body.as_ref().unwrap().files.is_empty());
}

#[test]
fn groups_check_every_value_whatever_a_rule_excludes() {
    // Both rules share a group (same targets, same transformations);
    // the first leaves ARGS:a out, the second must still see it.
    let rs = rules(
        r#"SecRule ARGS|!ARGS:a "@rx attack" "id:1,phase:2,pass,log"
SecRule ARGS "@rx attack" "id:2,phase:2,pass,log"
SecRule ARGS|!ARGS:a "@pm evil wicked" "id:3,phase:2,pass,log"
SecRule ARGS "@pm evil wicked" "id:4,phase:2,pass,log""#,
    );
    assert!(rs.rules.iter().all(|r| r.group.is_some()));
    let mut tx = Transaction::new(rs.clone(), get("/?a=attack+evil&b=ok"));
    tx.process_request();
    assert_eq!(ids(&tx), vec![2, 4]);
    let mut tx = Transaction::new(rs, get("/?a=ok&b=attack+wicked"));
    tx.process_request();
    assert_eq!(ids(&tx), vec![1, 2, 3, 4]);
}

#[test]
fn response_groups_start_afresh_with_the_response() {
    let rs = rules(
        r#"SecResponseBodyAccess On
SecRule RESPONSE_HEADERS "@pm leak secret" "id:10,phase:3,pass,log"
SecRule RESPONSE_HEADERS "@pm token" "id:11,phase:3,pass,log"
SecRule RESPONSE_BODY "@pm Fatal error" "id:20,phase:4,pass,log,capture,logdata:'%{TX.0}'"
SecRule RESPONSE_BODY "!@pm ORA- mysql_" "id:21,phase:4,pass,log,skipAfter:END"
SecRule RESPONSE_BODY "@rx ORA-\d+" "id:22,phase:4,pass,log"
SecMarker END
SecRule RESPONSE_BODY "@rx <title>Index of" "id:23,phase:4,pass,log""#,
    );
    assert_eq!(rs.rules.iter().filter(|r| r.pm_bit.is_some()).count(), 4);
    let run = |headers: &[(&str, &str)], body: &str| {
        let mut tx = Transaction::new(rs.clone(), get("/"));
        tx.process_request();
        tx.set_response(ResponseData::new(
            200,
            b"HTTP/1.1",
            headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        ));
        tx.process_response_headers();
        tx.set_response_body(body.as_bytes().to_vec(), false);
        tx.process_response_body();
        tx
    };
    // Nothing in the headers, nothing in the body: the negated rule
    // matches (and skips the ORA- rule).
    assert_eq!(ids(&run(&[("X", "a")], "<p>all fine</p>")), vec![21]);
    assert_eq!(ids(&run(&[("X", "a secret")], "")), vec![10, 21]);
    assert_eq!(ids(&run(&[("X", "TOKEN")], "")), vec![11, 21]);
    // The body's phrases (`Fatal`, `error`): the leftmost is captured.
    let tx = run(&[], "x FATAL ERROR: ORA-01756 mysql_");
    assert_eq!(ids(&tx), vec![20, 22]);
    assert_eq!(tx.state.matched[0].logdata, "FATAL");
    assert_eq!(ids(&run(&[], "<title>Index of /</title>")), vec![21, 23]);
    assert_eq!(ids(&run(&[], "a mysql_ error")), vec![20]);
    assert_eq!(ids(&run(&[], "a mysql_ warning")), Vec::<u32>::new());
}

#[test]
fn shared_target_lists_keep_exclusions_and_runtime_removals() {
    // Rules 2 to 5 share one list of values per phase; rule 1's exclusion
    // gives it a list of its own, and rule 3's removal (after the shared
    // list was collected) must still hide ARGS:b from rule 4.
    let rs = rules(
        r#"SecRule ARGS|!ARGS:b "@streq 2" "id:1,phase:2,pass,log"
SecRule ARGS "@streq 2" "id:2,phase:2,pass,log"
SecRule ARGS "@streq 1" "id:3,phase:2,pass,log,ctl:ruleRemoveTargetById=4;ARGS:b"
SecRule ARGS "@streq 2" "id:4,phase:2,pass,log"
SecRule ARGS "@streq 2" "id:5,phase:2,pass,log"
SecRule TX:x "@streq 2" "id:6,phase:2,pass,log""#,
    );
    let lists: Vec<_> = rs.rules.iter().map(|r| r.item_lists).collect();
    assert_eq!(rs.item_lists, 2);
    assert_eq!(lists[0], Some((0, 1)));
    assert!(lists[1..5].iter().all(|l| *l == Some((1, 1))), "{lists:?}");
    assert_eq!(lists[5], None, "TX changes while a phase runs");
    let mut tx = Transaction::new(rs, get("/?a=1&b=2"));
    tx.process_request();
    assert_eq!(ids(&tx), vec![2, 3, 5]);
}
