//! The policy's description of a known crawler, and its validation.

use serde::{Deserialize, Serialize};

/// At most this many crawlers in a policy.
pub const MAX_CRAWLERS: usize = 128;
/// At most this many rDNS suffixes per crawler.
pub const MAX_DOMAINS: usize = 32;
/// At most this many range files per crawler.
pub const MAX_RANGE_FILES: usize = 16;
/// Longest accepted `user_agent` needle, in bytes.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// One known crawler, as written in the policy file:
///
/// ```toml
/// [[bots.crawlers]]
/// name = "Googlebot"
/// user_agent = "Googlebot"
/// domains = ["googlebot.com", "google.com"]
/// ranges = ["/etc/palisade/ranges/googlebot.json"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerSpec {
    /// The crawler's name, reported by the verifier (`palisade_bots::crawlers`)
    /// (e.g. `Googlebot`). Unique (case-insensitively) within a policy.
    pub name: String,
    /// A substring, matched ASCII case-insensitively, that a request's
    /// `User-Agent` must contain to claim to be this crawler. When several
    /// crawlers' substrings match, the longest one wins (so `Googlebot-Image`
    /// beats `Googlebot`).
    pub user_agent: String,
    /// Reverse-DNS suffixes: a PTR name verifies when it equals one of these
    /// or ends in `.` followed by one (a label boundary: `evilgooglebot.com`
    /// is not in `googlebot.com`). A leading or trailing dot is ignored.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Paths of published IP range files (Google/Bing JSON, or plain text:
    /// one IP or CIDR per line). The edge reads them; this crate parses the
    /// text with `palisade_bots::crawlers::parse_range_file`.
    #[serde(default)]
    pub ranges: Vec<String>,
}

/// The section name used in locations by [`validate`].
pub const DEFAULT_SECTION: &str = "bots.crawlers";

/// Checks `specs`, reporting every problem with its location
/// (`bots.crawlers[2].domains[0]: ...`).
pub fn validate(specs: &[CrawlerSpec]) -> Result<(), Vec<String>> {
    validate_at(DEFAULT_SECTION, specs)
}

/// [`validate`], with locations under `section` instead of `bots.crawlers`.
pub fn validate_at(section: &str, specs: &[CrawlerSpec]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if specs.len() > MAX_CRAWLERS {
        errors.push(format!(
            "{section}: {} crawlers, at most {MAX_CRAWLERS} allowed",
            specs.len()
        ));
    }
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("{section}[{i}]");
        if spec.name.trim().is_empty() {
            errors.push(format!("{at}.name: empty"));
        }
        let ua = spec.user_agent.trim();
        if ua.is_empty() {
            errors.push(format!("{at}.user_agent: empty (a crawler is claimed by a User-Agent substring; it is required)"));
        } else if spec.user_agent.len() > MAX_USER_AGENT_LEN {
            errors.push(format!(
                "{at}.user_agent: {} bytes, at most {MAX_USER_AGENT_LEN}",
                spec.user_agent.len()
            ));
        }
        if spec.domains.is_empty() && spec.ranges.is_empty() {
            errors.push(format!(
                "{at}: neither `domains` nor `ranges`: the crawler could never be verified"
            ));
        }
        if spec.domains.len() > MAX_DOMAINS {
            errors.push(format!(
                "{at}.domains: {} suffixes, at most {MAX_DOMAINS}",
                spec.domains.len()
            ));
        }
        for (j, d) in spec.domains.iter().enumerate() {
            if let Err(why) = check_suffix(d) {
                errors.push(format!("{at}.domains[{j}]: {d:?}: {why}"));
            }
        }
        if spec.ranges.len() > MAX_RANGE_FILES {
            errors.push(format!(
                "{at}.ranges: {} files, at most {MAX_RANGE_FILES}",
                spec.ranges.len()
            ));
        }
        for (j, r) in spec.ranges.iter().enumerate() {
            if r.trim().is_empty() {
                errors.push(format!("{at}.ranges[{j}]: empty path"));
            }
        }
        for (k, earlier) in specs[..i].iter().enumerate() {
            if !spec.name.trim().is_empty()
                && earlier.name.trim().eq_ignore_ascii_case(spec.name.trim())
            {
                errors.push(format!(
                    "{at}.name: {:?} already used by {section}[{k}]",
                    spec.name
                ));
            }
            if !ua.is_empty() && earlier.user_agent.trim().eq_ignore_ascii_case(ua) {
                errors.push(format!(
                    "{at}.user_agent: {:?} already used by {section}[{k}] (only one of them could ever be claimed)",
                    spec.user_agent
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A suffix as compared: lower case, without leading or trailing dots.
pub fn normalize_suffix(s: &str) -> Box<str> {
    s.trim()
        .trim_matches('.')
        .to_ascii_lowercase()
        .into_boxed_str()
}

/// Why `s` is not a usable rDNS suffix.
fn check_suffix(s: &str) -> Result<(), String> {
    let n = normalize_suffix(s);
    if n.is_empty() {
        return Err("empty".into());
    }
    if n.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{c:?} is not allowed (letters, digits, '-' and '.' only; write IDNs in their xn-- form)"
        ));
    }
    let labels: Vec<&str> = n.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err("empty label (\"..\")".into());
    }
    if labels.iter().any(|l| l.len() > 63) {
        return Err("a label is longer than 63 characters".into());
    }
    if labels.len() < 2 {
        return Err(
            "a single label (a top-level domain) would let anyone with a domain under it pass"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ua: &str, domains: &[&str], ranges: &[&str]) -> CrawlerSpec {
        CrawlerSpec {
            name: name.into(),
            user_agent: ua.into(),
            domains: domains.iter().map(|s| s.to_string()).collect(),
            ranges: ranges.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn valid_specs_pass() {
        let specs = [
            spec(
                "Googlebot",
                "Googlebot",
                &[".googlebot.com", "google.com."],
                &["g.json"],
            ),
            spec("Bingbot", "bingbot", &["search.msn.com"], &[]),
            spec("Other", "OtherBot", &[], &["other.txt"]),
        ];
        assert_eq!(validate(&specs), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let specs = [
            spec(" ", "", &[], &[]),
            spec(
                "Googlebot",
                "Googlebot",
                &["goo gle.com", "com", "a..b"],
                &[""],
            ),
            spec("googlebot", "GOOGLEBOT", &["googlebot.com"], &[]),
        ];
        let errors = validate(&specs).unwrap_err();
        let expect = [
            "bots.crawlers[0].name: empty",
            "bots.crawlers[0].user_agent: empty",
            "bots.crawlers[0]: neither `domains` nor `ranges`",
            "bots.crawlers[1].domains[0]: \"goo gle.com\": ' ' is not allowed",
            "bots.crawlers[1].domains[1]: \"com\": a single label",
            "bots.crawlers[1].domains[2]: \"a..b\": empty label",
            "bots.crawlers[1].ranges[0]: empty path",
            "bots.crawlers[2].name: \"googlebot\" already used by bots.crawlers[1]",
            "bots.crawlers[2].user_agent: \"GOOGLEBOT\" already used by bots.crawlers[1]",
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (e, want) in errors.iter().zip(expect) {
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }

    #[test]
    fn validate_at_uses_the_given_section() {
        let errors = validate_at("crawlers", &[spec("", "x", &["a.b"], &[])]).unwrap_err();
        assert_eq!(errors, vec!["crawlers[0].name: empty".to_string()]);
    }

    #[test]
    fn caps_are_reported() {
        let many: Vec<CrawlerSpec> = (0..=MAX_CRAWLERS)
            .map(|i| spec(&format!("b{i}"), &format!("bot{i}"), &["a.example"], &[]))
            .collect();
        let errors = validate(&many).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("at most 128"), "{errors:?}");
        let long_ua = "x".repeat(MAX_USER_AGENT_LEN + 1);
        let domains: Vec<String> = (0..=MAX_DOMAINS).map(|i| format!("d{i}.example")).collect();
        let s = CrawlerSpec {
            name: "n".into(),
            user_agent: long_ua,
            domains,
            ranges: vec![],
        };
        let errors = validate(&[s]).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn deserializes_and_refuses_unknown_fields() {
        let s: CrawlerSpec = serde_json::from_str(
            r#"{"name": "Googlebot", "user_agent": "Googlebot", "domains": ["googlebot.com"]}"#,
        )
        .unwrap();
        assert_eq!(s.domains, vec!["googlebot.com".to_string()]);
        assert!(s.ranges.is_empty());
        let err = serde_json::from_str::<CrawlerSpec>(
            r#"{"name": "G", "user_agent": "G", "domain": ["googlebot.com"]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `domain`"), "{err}");
        let err =
            serde_json::from_str::<CrawlerSpec>(r#"{"name": "G", "domains": []}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `user_agent`"),
            "{err}"
        );
    }

    #[test]
    fn suffixes_are_normalized() {
        assert_eq!(&*normalize_suffix(" .GoogleBot.COM. "), "googlebot.com");
    }
}
