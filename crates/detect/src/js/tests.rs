use super::*;

fn hit(s: &str) -> Option<&'static str> {
    detect(s).map(|f| f.reason)
}

#[test]
fn catches_escaped_and_computed_sinks() {
    for a in [
        r"self['\x65\x76\x61\x6c']('1+1')",
        r#"window["al"+"ert"](document.domain)"#,
        r"top['\u0061lert'](7)",
        r"parent['\u{61}lert'](8)",
        r"this['\141\154\145\162\164'](9)",
        r#"[]["constructor"]["constructor"]("return this")()"#,
        r#"x=[]['\x63onstructor']"#,
        r"\u0061lert(1)",
        r"\u{65}val(name)",
        r#"<img src=x onerror="self['ev'+'al'](location.hash.slice(1))">"#,
        r#"globalThis[("ale")+("rt")]`5`"#,
        r"https://shop.example/list?q=self['\x65\x76\x61\x6c'](name)",
        "javascript://%0a\nalert(document.domain)",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_code_from_strings() {
    for a in [
        "eval(atob('YWxlcnQoMSk='))",
        "Function('return document.cookie')()",
        "new Function(\"x\", \"return x\")",
        "setTimeout('location=\"//evil.test\"', 10)",
        "x=window.eval(name)",
        "''.constructor.constructor('return this')()",
        "top.alert(document.cookie)",
        "javascript:confirm(1)",
        "\"-prompt(8)-\"",
        "a=1;alert`1`",
        "<svg onload=alert(document.domain)>",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_jsfuck() {
    let a = "[][(![]+[])[+[]]+(![]+[])[!+[]+!+[]]+(![]+[])[+!+[]]+(!![]+[])[+[]]]";
    assert_eq!(hit(a), Some("JSFuck-style expression"));
    assert!(hit(&format!("x={a}")).is_some());
}

#[test]
fn benign_look_alikes_pass() {
    for b in [
        "",
        "[1, 2, 3]",
        "[[1,2],[3,4]]",
        "[\"eval\", \"alert\", \"constructor\"]",
        "{\"items\": [\"write\", \"cookie\"], \"n\": [[], []]}",
        "(1 + 2) * [3 - 4]",
        "((a+b)+(c+d))!",
        "see the eval (the function) docs",
        "Set an alert (daily) for this",
        "Please confirm (by email) your address",
        "I'd like to print (double-sided)",
        "alert(1)",
        "Function keys (F1-F12)",
        "obj['name'] = value",
        "data[\"location\"]",
        "config['write']",
        "array[0][1]",
        "The setTimeout function in JS",
        "C:\\users\\files",
        "path\\u0061",
        "[x](https://example.com/page)",
        "!!! (wow) !!! [sic] +++",
    ] {
        assert_eq!(detect(b), None, "{b:?}");
    }
}

#[test]
fn never_panics() {
    for s in [
        "\\u{",
        "\\u{ffffffff}x",
        "'\\",
        "'\\x",
        "\\u",
        "`",
        "a`",
        "[(",
        "eval(",
        "x[''",
        "/*",
        "//",
    ] {
        let _ = detect(s);
    }
    let _ = detect("[".repeat(50_000));
    let _ = detect("eval(".repeat(5_000));
    let bytes: Vec<u8> = (0..=255u8).collect();
    let _ = detect(&bytes);
}
