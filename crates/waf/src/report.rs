//! What an error about a rule file may show.
//!
//! Owns: the one format of a rule-loading error line and the cap on how
//! many are listed. A policy can name a rule file by mistake (or, pushed
//! through the API, on purpose: `extra_rules = ["/etc/passwd"]`); its
//! errors end up in logs, heartbeats and API answers, so they say file,
//! line and what is wrong, and show a line's text only when it starts with
//! a SecLang directive name, cut short. Must not: decide what loads.

use crate::parser::Directive;

/// At most this many errors are listed; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 50;

/// The longest error message kept (longer ones are cut, marked `…`).
const MAX_MESSAGE_BYTES: usize = 240;

/// One error line: where, which directive, what is wrong. A line that
/// does not start with a SecLang directive name is not shown at all (a
/// file named by mistake, `/etc/passwd`, must not end up in logs or API
/// answers); messages, which may quote a short piece of a directive's
/// arguments, are cut at [`MAX_MESSAGE_BYTES`].
pub(crate) fn error_line(d: &Directive, message: &str) -> String {
    if !looks_like_directive(&d.name) {
        return format!(
            "{}: not a SecLang directive (the line is not shown)",
            d.location
        );
    }
    let mut m = format!("{} {}", d.name, message);
    if m.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        m.truncate(end);
        m.push('…');
    }
    let m: String = m
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{}: {m}", d.location)
}

/// Whether a directive name is one SecLang could have: `Sec…` or
/// `Include…`, letters only, not too long.
fn looks_like_directive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_alphabetic())
        && (lower.starts_with("sec") || lower.starts_with("include"))
}

/// The first [`MAX_LISTED_ERRORS`] errors, and how many more there were.
pub(crate) fn capped(mut errors: Vec<String>) -> Vec<String> {
    if errors.len() > MAX_LISTED_ERRORS {
        let more = errors.len() - MAX_LISTED_ERRORS;
        errors.truncate(MAX_LISTED_ERRORS);
        errors.push(format!("… and {more} more error(s)"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    #[test]
    fn lines_of_other_files_are_never_shown() {
        let text =
            "root:x:0:0:root:/root:/bin/bash\nSecRule ARGS \"@rx a\" \"id:1,phase:2,frobnicate\"\n";
        let ds = crate::parser::parse_str(
            text,
            &Arc::from("/etc/passwd"),
            &Arc::from(Path::new("/etc")),
        )
        .unwrap();
        let e = crate::rules::compile(&ds).unwrap_err().to_string();
        assert!(!e.contains("root:"), "{e}");
        assert!(e.contains("/etc/passwd:1: not a SecLang directive"), "{e}");
        // A SecLang line says what is wrong with it.
        assert!(e.contains("/etc/passwd:2: SecRule"), "{e}");
        let long = format!(
            "SecRule ARGS \"@rx a\" \"id:2,phase:2,{}\"",
            "x".repeat(1000)
        );
        let ds =
            crate::parser::parse_str(&long, &Arc::from("f"), &Arc::from(Path::new("."))).unwrap();
        let e = crate::rules::compile(&ds).unwrap_err().to_string();
        assert!(e.len() < 400, "{e}");
        assert!(looks_like_directive("SecRule") && looks_like_directive("IncludeOptional"));
        assert!(!looks_like_directive("daemon:x:1:1") && !looks_like_directive("Secret=1"));
    }

    #[test]
    fn the_list_is_capped() {
        let many: Vec<String> = (0..120).map(|i| i.to_string()).collect();
        let c = capped(many);
        assert_eq!(c.len(), MAX_LISTED_ERRORS + 1);
        assert_eq!(c.last().unwrap(), "… and 70 more error(s)");
    }
}
