//! Published crawler IP range files: parsing (pure: the caller reads the file).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// At most this many prefixes in one file.
pub const MAX_PREFIXES: usize = 100_000;
/// Largest accepted file, in bytes (Google's files are a few tens of KiB).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// At most this many problems are listed for one file; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Where in a range file a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeLocation {
    /// The file as a whole.
    File,
    /// A 1-based line (plain text files, and JSON syntax errors).
    Line(usize),
    /// A 0-based index in the JSON `prefixes` array.
    Entry(usize),
}

/// One problem in a range file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError {
    /// Where.
    pub at: RangeLocation,
    /// What.
    pub message: String,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            RangeLocation::File => write!(f, "{}", self.message),
            RangeLocation::Line(n) => write!(f, "line {n}: {}", self.message),
            RangeLocation::Entry(i) => write!(f, "prefixes[{i}]: {}", self.message),
        }
    }
}

impl std::error::Error for RangeError {}

fn err(at: RangeLocation, message: impl Into<String>) -> RangeError {
    RangeError {
        at,
        message: message.into(),
    }
}

/// Collects errors up to [`MAX_REPORTED_ERRORS`], counting the rest.
#[derive(Default)]
struct Errors {
    list: Vec<RangeError>,
    more: usize,
}

impl Errors {
    fn push(&mut self, e: RangeError) {
        if self.list.len() < MAX_REPORTED_ERRORS {
            self.list.push(e);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<RangeError> {
        if self.more > 0 {
            self.list.push(err(
                RangeLocation::File,
                format!("... and {} more problems", self.more),
            ));
        }
        self.list
    }
}

/// Parses the text of a range file: Google/Bing's published JSON
/// (`{"creationTime": ..., "prefixes": [{"ipv4Prefix": "66.249.64.0/27"},
/// {"ipv6Prefix": "2001:4860:4801:10::/64"}]}`; other keys are ignored), or
/// plain text, one IP or CIDR per line, with blank lines and `#` comments
/// (whole-line or trailing). The format is JSON when the first non-blank
/// character is `{`.
///
/// Host bits after the prefix length are cleared (`10.0.0.5/8` is
/// `10.0.0.0/8`). A file with no prefix at all, more than [`MAX_PREFIXES`]
/// prefixes or more than [`MAX_FILE_BYTES`] bytes is refused. Every bad entry
/// is reported (up to [`MAX_REPORTED_ERRORS`], then a count).
pub fn parse_range_file(text: &str) -> Result<Vec<IpNet>, Vec<RangeError>> {
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![err(
            RangeLocation::File,
            format!(
                "{} bytes, larger than the {MAX_FILE_BYTES} accepted",
                text.len()
            ),
        )]);
    }
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_text(text)
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

fn parse_text(text: &str) -> Result<Vec<IpNet>, Vec<RangeError>> {
    let mut nets = Vec::new();
    let mut errors = Errors::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let item = line.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        match parse_net(item) {
            Some(net) if nets.len() < MAX_PREFIXES => nets.push(net),
            Some(_) => {
                errors.push(err(
                    RangeLocation::Line(line_no),
                    format!("more than {MAX_PREFIXES} prefixes in the file"),
                ));
                break;
            }
            None => errors.push(err(
                RangeLocation::Line(line_no),
                format!("{item:?} is not an IP address or CIDR"),
            )),
        }
    }
    finish(nets, errors)
}

fn finish(nets: Vec<IpNet>, errors: Errors) -> Result<Vec<IpNet>, Vec<RangeError>> {
    let mut errors = errors.finish();
    if errors.is_empty() && nets.is_empty() {
        errors.push(err(
            RangeLocation::File,
            "no IP range in the file (an empty or truncated download?)",
        ));
    }
    if errors.is_empty() {
        Ok(nets)
    } else {
        Err(errors)
    }
}

fn parse_json(text: &str) -> Result<Vec<IpNet>, Vec<RangeError>> {
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![err(
                RangeLocation::Line(e.line()),
                format!("not valid JSON: {e}"),
            )])
        }
    };
    let Some(prefixes) = doc.get("prefixes") else {
        return Err(vec![err(
            RangeLocation::File,
            "JSON without a `prefixes` array",
        )]);
    };
    let Some(prefixes) = prefixes.as_array() else {
        return Err(vec![err(RangeLocation::File, "`prefixes` is not an array")]);
    };
    if prefixes.len() > MAX_PREFIXES {
        return Err(vec![err(
            RangeLocation::File,
            format!(
                "{} prefixes, more than the {MAX_PREFIXES} accepted",
                prefixes.len()
            ),
        )]);
    }
    let mut nets = Vec::with_capacity(prefixes.len());
    let mut errors = Errors::default();
    for (i, entry) in prefixes.iter().enumerate() {
        let at = RangeLocation::Entry(i);
        let Some(obj) = entry.as_object() else {
            errors.push(err(at, "not an object"));
            continue;
        };
        let v4 = obj.get("ipv4Prefix");
        let v6 = obj.get("ipv6Prefix");
        let (value, want_v4) = match (v4, v6) {
            (Some(v), None) => (v, true),
            (None, Some(v)) => (v, false),
            (Some(_), Some(_)) => {
                errors.push(err(at, "both `ipv4Prefix` and `ipv6Prefix`"));
                continue;
            }
            (None, None) => {
                errors.push(err(at, "neither `ipv4Prefix` nor `ipv6Prefix`"));
                continue;
            }
        };
        let key = if want_v4 { "ipv4Prefix" } else { "ipv6Prefix" };
        let Some(s) = value.as_str() else {
            errors.push(err(at, format!("`{key}` is not a string")));
            continue;
        };
        match parse_net(s.trim()) {
            Some(net @ IpNet::V4(_)) if want_v4 => nets.push(net),
            Some(net @ IpNet::V6(_)) if !want_v4 => nets.push(net),
            Some(_) => errors.push(err(
                at,
                format!("`{key}` {s:?} is of the other address family"),
            )),
            None => errors.push(err(
                at,
                format!("`{key}` {s:?} is not an IP address or CIDR"),
            )),
        }
    }
    finish(nets, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn google_json_format() {
        let text = r#"{
  "creationTime": "2024-05-01T23:00:00.000000",
  "prefixes": [
    {"ipv6Prefix": "2001:4860:4801:10::/64"},
    {"ipv4Prefix": "66.249.64.0/27"},
    {"ipv4Prefix": "66.249.66.1"}
  ]
}"#;
        assert_eq!(
            parse_range_file(text).unwrap(),
            vec![
                net("2001:4860:4801:10::/64"),
                net("66.249.64.0/27"),
                net("66.249.66.1/32")
            ]
        );
    }

    #[test]
    fn json_errors_name_every_bad_entry() {
        let text = r#"{"prefixes": [
            {"ipv4Prefix": "66.249.64.0/27"},
            {"ipv4Prefix": "66.249.64.0/33"},
            {"ipv6Prefix": "66.249.64.0/24"},
            "66.249.64.0/24",
            {"ipv4Prefix": 7},
            {"other": "x"},
            {"ipv4Prefix": "1.2.3.4", "ipv6Prefix": "::1"}
        ]}"#;
        let errors = parse_range_file(text).unwrap_err();
        let at: Vec<RangeLocation> = errors.iter().map(|e| e.at).collect();
        assert_eq!(
            at,
            (1..=6).map(RangeLocation::Entry).collect::<Vec<_>>(),
            "{errors:#?}"
        );
        assert_eq!(
            errors[0].to_string(),
            "prefixes[1]: `ipv4Prefix` \"66.249.64.0/33\" is not an IP address or CIDR"
        );
        assert!(errors[1].message.contains("other address family"));
    }

    #[test]
    fn json_syntax_and_shape_errors() {
        let errors = parse_range_file("{\n\"prefixes\": [\n{\"ipv4Prefix\": }]}").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at, RangeLocation::Line(3), "{errors:?}");
        let errors = parse_range_file(r#"{"creationTime": "x"}"#).unwrap_err();
        assert_eq!(errors[0].at, RangeLocation::File);
        assert!(errors[0].message.contains("prefixes"));
        let errors = parse_range_file(r#"{"prefixes": {}}"#).unwrap_err();
        assert!(errors[0].message.contains("not an array"));
        let errors = parse_range_file(r#"{"prefixes": []}"#).unwrap_err();
        assert!(errors[0].message.contains("no IP range"));
    }

    #[test]
    fn plain_text_format() {
        let text = "# Googlebot\n\n66.249.64.0/27\n  66.249.66.1  # one host\n2001:4860:4801:10::/64\n10.1.2.3/8\n";
        assert_eq!(
            parse_range_file(text).unwrap(),
            vec![
                net("66.249.64.0/27"),
                net("66.249.66.1/32"),
                net("2001:4860:4801:10::/64"),
                net("10.0.0.0/8"),
            ]
        );
    }

    #[test]
    fn plain_text_errors_name_every_bad_line() {
        let text = "1.2.3.4\nnot-an-ip\n\n# fine\n1.2.3.4/40\n::1\n300.1.1.1 # bad\n";
        let errors = parse_range_file(text).unwrap_err();
        let lines: Vec<RangeLocation> = errors.iter().map(|e| e.at).collect();
        assert_eq!(
            lines,
            vec![
                RangeLocation::Line(2),
                RangeLocation::Line(5),
                RangeLocation::Line(7)
            ]
        );
        assert_eq!(
            errors[0].to_string(),
            "line 2: \"not-an-ip\" is not an IP address or CIDR"
        );
    }

    #[test]
    fn empty_files_are_refused() {
        for text in ["", "\n\n", "# only a comment\n"] {
            let errors = parse_range_file(text).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert!(errors[0].message.contains("no IP range"), "{errors:?}");
        }
    }

    #[test]
    fn prefix_cap() {
        let ok: String = (0..MAX_PREFIXES)
            .map(|i| format!("10.{}.{}.0/24\n", i / 256 % 256, i % 256))
            .collect();
        assert_eq!(parse_range_file(&ok).unwrap().len(), MAX_PREFIXES);
        let over = format!("{ok}192.0.2.1\n");
        let errors = parse_range_file(&over).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at, RangeLocation::Line(MAX_PREFIXES + 1));

        let entries: Vec<String> = (0..=MAX_PREFIXES)
            .map(|_| r#"{"ipv4Prefix": "192.0.2.0/24"}"#.to_string())
            .collect();
        let json = format!("{{\"prefixes\": [{}]}}", entries.join(","));
        let errors = parse_range_file(&json).unwrap_err();
        assert!(
            errors[0].message.contains("more than the 100000"),
            "{errors:?}"
        );
    }

    #[test]
    fn error_list_is_capped_with_a_count() {
        let text = "x\n".repeat(MAX_REPORTED_ERRORS + 5);
        let errors = parse_range_file(&text).unwrap_err();
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        assert_eq!(errors.last().unwrap().message, "... and 5 more problems");
    }

    #[test]
    fn oversized_file_is_refused() {
        let text = " ".repeat(MAX_FILE_BYTES + 1);
        let errors = parse_range_file(&text).unwrap_err();
        assert!(errors[0].message.contains("larger than"), "{errors:?}");
    }
}
