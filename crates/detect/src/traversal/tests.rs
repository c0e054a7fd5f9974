use super::*;

fn hit(s: &str) -> Option<&'static str> {
    detect(s).map(|f| f.reason)
}

#[test]
fn catches_climbs_out_of_the_root() {
    let attacks = [
        "../../../../etc/shadow",
        "..\\..\\..\\windows\\win.ini",
        "/static/../../../app/secret.key",
        "files/a/../../../../opt/app/key.pem",
        // Percent-encoded once, twice, three times; mixed case.
        "..%2f..%2f..%2fhome%2fuser%2fnotes.txt",
        "%2E%2E%2F%2e%2e%2Fsecret.txt",
        "..%252f..%252fdata.db",
        "%25252e%25252e%25252fx",
        // IIS %u, overlong UTF-8, look-alikes.
        "%u002e%u002e%u2215backup.tar",
        "..%c0%afconfig.json",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/x",
        "..%e0%80%afkeys.txt",
        "\u{FF0E}\u{FF0E}/\u{FF0E}\u{FF0E}/x",
        // Tomcat path parameters, Windows trailing dots, NUL truncation.
        "..;/..;/manager/html",
        "/app/..;/admin",
        "....//....//data.db",
        "../../data.db%00.png",
        // In a URL, in a query string, in a JSON document.
        "https://example.com/download/../../../../srv/db.sqlite",
        "page=1&file=../../../srv/data.csv",
        "{\"path\":\"..\\\\..\\\\..\\\\boot.ini\"}",
    ];
    for a in attacks {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_sensitive_targets_reached_by_climbing_or_encoding() {
    for a in [
        "../etc/passwd",
        "/var/www/html/../../../etc/passwd",
        "/images/../proc/self/environ",
        "..\\WEB-INF\\web.xml",
        "%252fetc%252fpasswd",
        "file:///%2565tc/passwd",
    ] {
        assert_eq!(hit(a), Some("path reaches a sensitive file"), "{a:?}");
    }
}

#[test]
fn reasons_say_what_was_found() {
    assert_eq!(hit("../../x"), Some("path climbs out of its root"));
    assert_eq!(hit("..%252fx"), Some("encoded path climbs out of its root"));
    let f = detect("a=..%2f..%2fetc").unwrap();
    assert_eq!(f.detector, Detector::Traversal);
    assert_eq!(f.evidence, "../../etc");
}

#[test]
fn benign_look_alikes_pass() {
    let benign = [
        "",
        "hello world",
        // One plain level up: a relative link (CRS' 930110 scores it).
        "../images/logo.png",
        "<a href=\"../index.html\">up</a>",
        // `..` that stays inside the root.
        "/docs/guide/../api/index.html",
        "a/b/c/../../d",
        // Version ranges, file names, prose.
        "1..2",
        "v1.2..v1.3",
        "git diff main...feature",
        "archive.tar.gz",
        ".gitignore",
        "wait... what?",
        "Loading.../ please wait",
        "range 10..20 and 30..40",
        // URLs in parameters.
        "https://example.com/a/b/../c?x=1&y=2",
        "http://cdn.example.org/js/app.min.js",
        "/etc/passwd is where accounts live",
        "%7B%22a%22%3A1%7D",
        "100%",
        "%zz%u12",
        "C:\\Users\\me\\Documents\\report.docx",
    ];
    for b in benign {
        assert_eq!(detect(b), None, "{b:?}");
    }
}

#[test]
fn never_panics_and_stays_bounded() {
    let big = "../".repeat(100_000);
    assert!(detect(&big).is_some());
    for s in [
        "%", "%u", "%u12", "%c0", "\u{FF0E}", "\0", ";", "..;", ":", "a://",
    ] {
        let _ = detect(s);
    }
    let bytes: Vec<u8> = (0..=255u8).collect();
    let _ = detect(&bytes);
    let _ = detect(b"\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/x".as_slice());
}
