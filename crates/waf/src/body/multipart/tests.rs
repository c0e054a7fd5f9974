use super::super::{parse as parse_body, BodyLimits, ParsedBody, Processor};
use super::*;

fn mp(ct: &str, body: &[u8]) -> ParsedBody {
    parse_body(
        Processor::Multipart,
        ct.as_bytes(),
        body,
        &BodyLimits::default(),
    )
}

fn flags(p: &ParsedBody) -> &MultipartFlags {
    p.multipart.as_ref().unwrap()
}

fn s(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

const CT: &str = "multipart/form-data; boundary=----WebKitFormBoundary";

#[test]
fn simple_form_and_file() {
    let body = b"------WebKitFormBoundary\r\n\
Content-Disposition: form-data; name=\"a\"\r\n\
\r\n\
hello\r\n\
world\r\n\
------WebKitFormBoundary\r\n\
Content-Disposition: form-data; name=\"up\"; filename=\"x.php\"\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
<?php system($_GET['c']); ?>\n\r\n\
------WebKitFormBoundary--\r\n";
    let p = mp(CT, body);
    assert_eq!(p.error, None);
    assert_eq!(p.args, vec![(b"a".to_vec(), b"hello\r\nworld".to_vec())]);
    assert_eq!(p.files.len(), 1);
    let f = &p.files[0];
    assert_eq!(f.name, b"up");
    assert_eq!(f.filename, b"x.php");
    assert_eq!(f.content_in(body), b"<?php system($_GET['c']); ?>\n");
    assert_eq!(f.size, f.content.len());
    assert_eq!(
        f.content_type.as_deref(),
        Some(&b"application/octet-stream"[..])
    );
    assert_eq!(
        p.multipart_part_headers
            .iter()
            .map(|(a, b)| (s(a), s(b)))
            .collect::<Vec<_>>(),
        vec![
            (
                "a".into(),
                "Content-Disposition: form-data; name=\"a\"".into()
            ),
            (
                "up".into(),
                "Content-Disposition: form-data; name=\"up\"; filename=\"x.php\"".into()
            ),
            ("up".into(), "Content-Type: application/octet-stream".into()),
        ]
    );
    let fl = flags(&p);
    assert!(!fl.strict_error(), "{fl:?}");
    assert_eq!(fl.get_i64("MULTIPART_STRICT_ERROR"), 0);
    assert_eq!(fl.get_i64("MULTIPART_UNMATCHED_BOUNDARY"), 0);
    assert_eq!(
        fl.get("MULTIPART_FILENAME"),
        Some(MultipartValue::Bytes(b"x.php"))
    );
    assert_eq!(fl.get("multipart_name"), Some(MultipartValue::Bytes(b"up")));
    assert_eq!(fl.get("NOPE"), None);
    assert_eq!(p.files_combined_size(), f.size);
}

#[test]
fn empty_field_value_and_empty_filename() {
    let body = b"--b\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--b\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert_eq!(p.error, None);
    // v3 treats an empty filename as a plain field.
    assert_eq!(
        p.args,
        vec![(b"e".to_vec(), vec![]), (b"f".to_vec(), vec![])]
    );
    assert!(p.files.is_empty());
    assert!(!flags(&p).strict_error());
}

#[test]
fn lf_lines_and_mixed() {
    let body = b"--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert_eq!(p.error, None);
    assert_eq!(p.args, vec![(b"a".to_vec(), b"v".to_vec())]);
    let f = flags(&p);
    assert!(f.lf_line && !f.crlf_line && f.strict_error());
    assert_eq!(f.get_i64("MULTIPART_CRLF_LF_LINES"), 0);
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    let f = flags(&p);
    assert!(f.lf_line && f.crlf_line);
    assert_eq!(f.get_i64("MULTIPART_CRLF_LF_LINES"), 1);
}

#[test]
fn final_boundary_without_newline() {
    // 922130-3 style body, without the trailing CRLF.
    let body = b"--boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"1.php\"\r\n\r\n<?php ?>\r\n--boundary--";
    let p = mp("multipart/form-data; boundary=boundary", body);
    assert_eq!(p.error, None);
    assert_eq!(p.files[0].content_in(body), b"<?php ?>");
    assert!(!flags(&p).strict_error());
}

#[test]
fn invalid_header_character_922130() {
    let body = b"--boundary\r\n\x0eContent-Disposition: form-data; name=\"file\"; filename=\"1.php\"\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\n<?php var_dump(file_get_contents(\"/etc/passwd\"));\r\n--boundary--";
    let p = mp("multipart/form-data; boundary=boundary", body);
    assert_eq!(
        p.error.as_deref(),
        Some(
            "Multipart parsing error: Multipart: Invalid part header (contains invalid character)."
        )
    );
    assert!(flags(&p).strict_error());
    // Parsing continued with the valid header, like libmodsecurity.
    assert_eq!(p.args[0].0, b"post");
    assert_eq!(p.multipart_part_headers.len(), 1);
    for bad in [
        &b"Content- Disposition"[..],
        b"Content\x7f-Disposition",
        b"Content-Disposition\x0e",
    ] {
        let mut body = b"--boundary\r\n".to_vec();
        body.extend_from_slice(bad);
        body.extend_from_slice(b": form-data; name=\"x\"\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\nv\r\n--boundary--\r\n");
        let p = mp("multipart/form-data; boundary=boundary", &body);
        assert!(p
            .error
            .clone()
            .unwrap()
            .contains("contains invalid character"));
    }
    // '!' and '~' are fine.
    let body = b"--boundary\r\nContent~Disposition: x\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\nv\r\n--boundary--\r\n";
    let p = mp("multipart/form-data; boundary=boundary", body);
    assert_eq!(p.error, None);
    assert_eq!(p.multipart_part_headers.len(), 2);
}

#[test]
fn no_headers_922130_8() {
    let body = b"--boundary123\r\ntest\r\n--boundary123\r\nyet another test\r\n--boundary123--\r\n";
    let p = mp("multipart/form-data; boundary=boundary123", body);
    assert!(p.multipart_part_headers.is_empty());
    assert!(p.error.is_some());
    assert!(flags(&p).invalid_part);
}

#[test]
fn charset_part_922100() {
    let body = b"--boundary\r\nContent-disposition: form-data; name=\"_charset_\"\r\n\r\nutf-7\r\n--boundary\r\nContent-disposition: form-data; name=\"positive\"\r\nContent-Type: text/plain\r\n\r\nLet me see if I can use utf-7.\r\n--boundary--\r\n";
    let p = mp("multipart/form-data; boundary=boundary", body);
    assert_eq!(p.error, None);
    assert_eq!(
        p.multipart_part_headers
            .iter()
            .filter(|(n, _)| n == b"_charset_")
            .count(),
        1
    );
    assert_eq!(p.args[0], (b"_charset_".to_vec(), b"utf-7".to_vec()));
    assert_eq!(p.multipart_part_headers[2].1, b"Content-Type: text/plain");
}

#[test]
fn content_type_checks() {
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=\"b\"", body);
    assert_eq!(p.error, None);
    assert!(flags(&p).boundary_quoted && flags(&p).strict_error());
    let p = mp("multipart/form-data boundary=b", body);
    assert_eq!(p.error, None);
    assert!(flags(&p).missing_semicolon);
    let p = mp("multipart/form-data; boundary =b", body);
    assert!(flags(&p).boundary_whitespace && p.error.is_none());
    let p = mp("multipart/form-data; boundary=b; charset=utf-8", body);
    assert_eq!(p.error, None);
    assert_eq!(p.args.len(), 1);
    for (ct, msg) in [
        ("", "not available"),
        ("multipart/mixed; boundary=b", "Invalid MIME type"),
        ("multipart/form-data", "Boundary not found"),
        ("multipart/form-data; Boundary=b", "case sensitivity"),
        (
            "multipart/form-data; boundary=a; boundary=b",
            "Multiple boundary",
        ),
        ("multipart/form-data; x; boundary=b", "malformed"),
        ("multipart/form-data; boundaryx=b", "parameter name"),
        ("multipart/form-data; boundary=\"b", "quote"),
        ("multipart/form-data; boundary=", "empty"),
        ("multipart/form-data; boundary=\"\"", "empty"),
        ("multipart/form-data; boundary=a{b", "characters"),
    ] {
        let p = mp(ct, body);
        let e = p.error.clone().unwrap_or_default();
        assert!(e.contains(msg), "{ct:?}: {e}");
        assert!(flags(&p).error && flags(&p).strict_error());
        assert!(p.args.is_empty());
    }
    let long = format!("multipart/form-data; boundary={}", "a".repeat(1100));
    assert!(mp(&long, body).error.unwrap().contains("length"));
}

#[test]
fn data_before_and_after() {
    let body =
        b"junk\r\n--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\nmore";
    let p = mp("multipart/form-data; boundary=b", body);
    let f = flags(&p);
    assert!(f.data_before && f.data_after && f.strict_error());
    assert_eq!(p.error, None);
    assert_eq!(p.args.len(), 1);
}

#[test]
fn header_folding() {
    let body = b"--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert_eq!(p.error, None);
    let f = flags(&p);
    assert!(f.header_folding && !f.invalid_header_folding && f.strict_error());
    assert_eq!(p.args[0].0, b"a");
    assert_eq!(
        p.multipart_part_headers[0].1,
        b"Content-Disposition: form-data; name=\"a\""
    );
    let body = b"--b\r\n\x0bContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    let f = flags(&p);
    assert!(f.header_folding && f.invalid_header_folding);
    assert!(p.error.clone().unwrap().contains("folding error"));
}

#[test]
fn invalid_quoting() {
    let body = b"--b\r\nContent-Disposition: form-data; name='a'\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(flags(&p).invalid_quoting);
    assert_eq!(p.args[0].0, b"a");
    let body = b"--b\r\nContent-Disposition: form-data; name=a'b\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(flags(&p).invalid_quoting);
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"x\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(flags(&p).invalid_quoting);
    assert!(p.error.clone().unwrap().contains("(-12)"));
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\\\"b\\c\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert_eq!(p.error, None);
    assert_eq!(p.args[0].0, b"a\"b\\c");
}

#[test]
fn content_disposition_errors() {
    for (cd, code) in [
        ("Form-Data; name=\"a\"", "(-1)"),
        ("form-data name=\"a\"", "(-2)"),
        ("form-data; name=\"a\"; ", "(-3)"),
        ("form-data; name", "(-4)"),
        ("form-data; name x", "(-13)"),
        ("form-data; name=\"a\"; foo=bar", "(-11)"),
        ("form-data; name=\"a\"; name=\"b\"", "(-14)"),
        (
            "form-data; name=\"a\"; filename=\"x\"; filename=\"y\"",
            "(-15)",
        ),
        ("form-data; name=\"a\"; filename*=x", "(-16)"),
        ("form-data; name=\"a\"; filename*=utf-8'en", "(-17)"),
        ("form-data; name=\"a\"; filename*=utf-8''%4", "(-18)"),
        ("form-data; name=\"a\"; filename*=utf-8''a b", "(-19)"),
        ("form-data; name=\"a\"; filename*=utf-8''x", "(-21)"),
        ("form-data; name=\"abc", "(-7)"),
    ] {
        let body = format!("--b\r\nContent-Disposition: {cd}\r\n\r\nv\r\n--b--\r\n");
        let p = mp("multipart/form-data; boundary=b", body.as_bytes());
        let e = p.error.clone().unwrap_or_default();
        assert!(e.contains(code), "{cd:?}: {e}");
        assert!(flags(&p).strict_error());
    }
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x.txt\"; filename*=utf-8''x%41.php\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert_eq!(p.error, None);
    assert_eq!(p.files[0].filename, b"x.txt");
    let body = b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(p
        .error
        .clone()
        .unwrap()
        .contains("missing Content-Disposition"));
    assert!(flags(&p).invalid_part);
    let body = b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(p.error.clone().unwrap().contains("missing name"));
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\ncontent-disposition: form-data; name=\"b\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(p.error.clone().unwrap().contains("Duplicate part header"));
    assert_eq!(p.args[0].0, b"a");
}

#[test]
fn boundary_errors_and_unmatched() {
    let ct = "multipart/form-data; boundary=b";
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--bx\r\n";
    let p = mp(ct, body);
    assert!(p.error.clone().unwrap().contains("Invalid boundary: --bx"));
    assert!(flags(&p).error);
    assert_eq!(p.args, vec![(b"a".to_vec(), b"v".to_vec())]);

    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n-- b\r\n--b--\r\n";
    assert!(mp(ct, body).error.unwrap().contains("(whitespace)"));
    let body =
        b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--\"b\"\r\n--b--\r\n";
    assert!(mp("multipart/form-data; boundary=\"b\"", body)
        .error
        .unwrap()
        .contains("(quotes)"));

    // A boundary-looking line that does not match, then a real boundary.
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--c\r\nv\r\n--b--\r\n";
    let p = mp(ct, body);
    assert_eq!(p.error, None);
    assert_eq!(flags(&p).unmatched_boundary, 2);
    assert_eq!(p.args[0].1, b"--c\r\nv");
    // Boundary text inside a data line.
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx--b\r\n";
    let p = mp(ct, body);
    assert_eq!(flags(&p).unmatched_boundary, 1);
    assert!(p.error.clone().unwrap().contains("Final boundary missing"));
    // The in-progress part is still reported.
    assert_eq!(p.args, vec![(b"a".to_vec(), b"x--b".to_vec())]);

    let p = mp(ct, b"no boundaries at all\r\n");
    assert!(p.error.clone().unwrap().contains("No boundaries found"));
    assert!(flags(&p).data_before);
    let p = mp(ct, b"");
    assert_eq!(p.error, None);
}

#[test]
fn invalid_part_boundary_instead_of_data() {
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(flags(&p).invalid_part);
    assert!(flags(&p).strict_error());
}

#[test]
fn long_lines_and_binary() {
    let mut body =
        b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n".to_vec();
    let mut data = Vec::new();
    for i in 0..20000u32 {
        data.push((i % 251) as u8);
    }
    data.extend_from_slice(&[b'\r'; 5000]);
    data.extend_from_slice(b"\r\n\r\nend\n");
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let p = mp("multipart/form-data; boundary=b", &body);
    assert_eq!(p.error, None, "{:?}", p.multipart);
    assert_eq!(p.files[0].content_in(&body), data);
    assert_eq!(p.files[0].size, data.len());

    let mut body = b"--b\r\nContent-Disposition: form-data; name=\"a\"; x=\"".to_vec();
    body.extend_from_slice(&[b'y'; 5000]);
    body.extend_from_slice(b"\"\r\n\r\nv\r\n--b--\r\n");
    let p = mp("multipart/form-data; boundary=b", &body);
    assert!(p.error.clone().unwrap().contains("over 4096"));

    let body =
        b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX: \x00\r\n\r\nv\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(p.error.clone().unwrap().contains("Nul byte"));
}

#[test]
fn file_limit() {
    let mut body = Vec::new();
    for i in 0..(MAX_FILES + 2) {
        body.extend_from_slice(format!("--b\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"{i}.txt\"\r\n\r\ndata\r\n").as_bytes());
    }
    body.extend_from_slice(b"--b--\r\n");
    let p = mp("multipart/form-data; boundary=b", &body);
    let f = flags(&p);
    assert!(f.file_limit_exceeded && f.strict_error());
    assert!(p
        .error
        .clone()
        .unwrap()
        .contains("Upload file limit exceeded"));
    assert_eq!(p.files.len(), MAX_FILES + 2);
    assert!(p.files[MAX_FILES + 1].content.is_empty());
    assert_eq!(p.files[MAX_FILES + 1].size, 4);
}

#[test]
fn final_duplicate_and_args_limit() {
    let body = b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--\r\n--b--\r\n";
    let p = mp("multipart/form-data; boundary=b", body);
    assert!(flags(&p).data_after);
    let mut body = Vec::new();
    for i in 0..5 {
        body.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=\"a{i}\"\r\n\r\nv\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"--b--\r\n");
    let l = BodyLimits {
        max_args: 3,
        ..BodyLimits::default()
    };
    let p = parse_body(
        Processor::Multipart,
        b"multipart/form-data; boundary=b",
        &body,
        &l,
    );
    assert_eq!(p.args.len(), 3);
    assert!(p.args_exceeded);
}

/// Every multipart body of the CRS regression cases parses without a
/// panic, and the ones CRS expects to be well-formed without an error.
/// `#[ignore]`d because it reads ../shared (scripts/test.sh runs it);
/// it fails when asked to run without its file.
#[test]
#[ignore = "needs ../shared/crs/cases/crs_cases.jsonl; scripts/test.sh runs it"]
fn shared_crs_case_multipart_bodies() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/crs/cases/crs_cases.jsonl");
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (this test needs ../shared)", path.display()));
    let mut n = 0;
    for line in data.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(hl) = v["header_list"].as_array() else {
            continue;
        };
        let ct = hl
            .iter()
            .filter_map(|h| h.as_array())
            .find(|h| {
                h[0].as_str()
                    .is_some_and(|k| k.eq_ignore_ascii_case("content-type"))
            })
            .and_then(|h| h[1].as_str())
            .unwrap_or("");
        let body = match v["body"].as_str() {
            Some(b) => b.as_bytes().to_vec(),
            None => continue,
        };
        if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
            continue;
        }
        let p = mp(ct, &body);
        n += 1;
        let id = v["id"].as_str().unwrap_or("");
        if id.starts_with("944120") || id.starts_with("933111") || id.starts_with("920120-1") {
            assert!(p.error.is_none(), "{id}: {:?}", p.error);
        }
    }
    assert!(n > 0);
}
