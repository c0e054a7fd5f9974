//! Palisade's refinements of CRS rules: where one alternative of a CRS
//! regex matches common legitimate data on its own, the rule's operator is
//! replaced by a narrower one that keeps what the rule is for. Each
//! refinement names the exact CRS operator text it was written for and
//! applies only to a rule with that text (another CRS release runs its own
//! rule unchanged); ids, actions, targets, transformations and scores stay
//! CRS'. `[waf] refinements = false` runs CRS as shipped; docs/waf.md,
//! "Refinements", says what each one gives up, and the CRS regression
//! cases of each refined rule still pass (`crates/waf/tests/crs.rs`).

use crate::parser::Directive;

/// One refinement.
pub struct Refinement {
    /// The CRS rule.
    pub id: u32,
    /// Its operator as CRS ships it (the directive's second argument).
    pub crs_operator: &'static str,
    /// The operator that replaces it.
    pub operator: &'static str,
}

/// Every refinement.
pub const REFINEMENTS: &[Refinement] = &[
    // 942550, JSON-based SQL injection (CRS 4.x): its first alternative
    // matches any quoted JSON literal (`"{...}"`, `'[...]'`), which
    // stringified JSON in cookies, parameters and form fields is. The
    // literal now counts when SQL follows it: a cast (`::jsonb`), a JSON
    // operator (`?`, `?|`, `@>`, `#>`, `->`, `-`), a comparison with
    // another literal or number (`= '...'`, `< '$.c'`), `|` or `&`. The other
    // alternatives (an operator before a literal, `json_extract(...)`) are
    // CRS' own, except that `json_extract` needs no word boundary before
    // it: the rule removes whitespace, so `OR json_extract(` reaches it as
    // `ORjson_extract(` (CRS caught that one through the first alternative).
    Refinement {
        id: 942_550,
        crs_operator: r#"@rx (?i)["'`][\[\{][^#\]\}]*[\]\}]+["'`]|(?:[\-@]>?|<@|@[\?@]|\?(?:(?:)|&|\|#>)|#(?:>>|-)|->>|[<>])["'`](?:[\[\{][^#\]\}]*[\]\}]+["'`]|\$[\.\[])|\bjson_extract\b[^\(]*\([^\)]*\)"#,
        operator: r#"@rx (?i)["'`][\[\{][^#\]\}]*[\]\}]+["'`](?:::|[?@#|&!=-]|[<>][=>]?["'`\d$])|(?:[\-@]>?|<@|@[\?@]|\?(?:(?:)|&|\|#>)|#(?:>>|-)|->>|[<>])["'`](?:[\[\{][^#\]\}]*[\]\}]+["'`]|\$[\.\[])|json_extract\b[^\(]*\([^\)]*\)"#,
    },
];

/// The id a `SecRule`'s actions give it.
fn rule_id(actions: &str) -> Option<u32> {
    let at = actions.find("id:")?;
    let digits: String = actions[at + 3..]
        .trim_start_matches(['\'', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Applies every refinement whose CRS rule is in `directives` exactly as
/// written for; returns the ids of the rules refined.
pub fn apply(directives: &mut [Directive]) -> Vec<u32> {
    let mut done = Vec::new();
    for d in directives.iter_mut() {
        if !d.name.eq_ignore_ascii_case("SecRule") || d.args.len() < 3 {
            continue;
        }
        let Some(id) = rule_id(&d.args[2]) else {
            continue;
        };
        if let Some(r) = REFINEMENTS
            .iter()
            .find(|r| r.id == id && d.args[1] == r.crs_operator)
        {
            d.args[1] = r.operator.to_string();
            done.push(id);
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_actions() {
        assert_eq!(rule_id("id:942550,phase:2,block"), Some(942_550));
        assert_eq!(rule_id("phase:2,id:'942550',block"), Some(942_550));
        assert_eq!(rule_id("phase:2,block"), None);
    }

    /// The refined 942550 regex, on values as the rule sees them (URL-
    /// decoded, whitespace removed).
    #[test]
    fn the_942550_refinement_keeps_json_sql_and_drops_plain_json_literals() {
        let rx = |op: &str| regex::Regex::new(op.strip_prefix("@rx ").unwrap()).unwrap();
        let r = &REFINEMENTS[0];
        let (crs, refined) = (rx(r.crs_operator), rx(r.operator));
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        for attack in [
            r#"OR '{"b":2}'::jsonb <@ '{"a":1, "b":2}'::jsonb"#,
            r#"OR '{"a":"b"}' ? 'a'"#,
            r#"OR '[1,2]' ? '1'"#,
            r#"OR '{"name":"asd"}' ?| array['a','name']"#,
            r#"'{"b":2}'::jsonb @ '{"a":1, "b":2}'::jsonb"#,
            r#"'{"a":2,"c":[4,5,{"f":7}]}' < '$.c[2].f' = 7"#,
            r#"' OR '{"a":1}'='{"a":1}'"#,
            r#"OR json_extract('{"id": 14}', '$.name') = 'Aztalan'"#,
            r#"blah/"}' and data @> '{"a":"a"}' union select 1"#,
        ] {
            let v = squash(attack);
            assert!(crs.is_match(&v), "CRS: {attack}");
            assert!(refined.is_match(&v), "refined: {attack}");
        }
        for benign in [
            r#"{"filters":"[\"shoes\",\"boots\"]"}"#,
            r#"prefs="{\"theme\":\"dark\"}""#,
            r#"'{"necessary":true,"analytics":false}'"#,
            r#"<div data-config='{"autoplay":true}'>Video</div>"#,
            r#"ids="[1,2,3]", page 2"#,
        ] {
            let v = squash(benign);
            assert!(crs.is_match(&v), "CRS matched this: {benign}");
            assert!(!refined.is_match(&v), "refined: {benign}");
        }
    }
}
