//! The policy file as TOML gives it: one struct per section, deserialized
//! leniently — each section, and each element of an array of tables, on its
//! own — so that a problem in one does not hide the problems of the others.
//! Compiling these into a [`super::Policy`] is the parent module's job.

use super::Diagnostics;
use crate::waf::RawWaf;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// The sections of a policy file, each deserialized on its own (and each
/// element of an array of tables on its own), so that a problem in one does
/// not hide the problems of the others. Unknown top-level keys are found by
/// [`unknown_sections`].
#[derive(Deserialize)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub(super) lists: Option<Section<RawLists>>,
    #[serde(default)]
    pub(super) allowlist: Option<Spanned<Lenient<RawAllowlist>>>,
    #[serde(default)]
    pub(super) rules: Option<Section<Tables<RawRule>>>,
    #[serde(default)]
    pub(super) rate_limits: Option<Section<Tables<RawRateLimit>>>,
    #[serde(default)]
    pub(super) escalations: Option<Section<Tables<RawEscalation>>>,
    #[serde(default)]
    pub(super) waf: Option<Spanned<Lenient<RawWaf>>>,
    #[serde(default)]
    pub(super) url_normalization: Option<Spanned<Lenient<RawUrlNormalization>>>,
    #[serde(default)]
    pub(super) floods: Option<Section<Tables<RawFlood>>>,
    #[serde(default)]
    pub(super) attack_mode: Option<Spanned<Lenient<RawAttackMode>>>,
    pub(super) connections: Option<Section<crate::connections::RawConnections>>,
    #[serde(default)]
    pub(super) bots: Option<Section<crate::bots::RawBots>>,
}

/// A section (or an element of an array of tables) and where it starts.
pub(super) type Section<T> = Spanned<Lenient<T>>;

/// An array of tables (`[[rules]]`), each element deserialized on its own.
pub(super) type Tables<T> = Vec<Section<T>>;

/// `[lists]`: name → items.
pub(super) type RawLists = BTreeMap<String, Spanned<Vec<Spanned<RawListItem>>>>;

/// The top-level keys a policy file may have.
pub(super) const SECTIONS: [&str; 11] = [
    "lists",
    "allowlist",
    "rules",
    "rate_limits",
    "escalations",
    "waf",
    "url_normalization",
    "floods",
    "attack_mode",
    "connections",
    "bots",
];

/// A value that failed to deserialize is kept as its error message, so the
/// rest of the file is still checked. (TOML values are parsed into a tree
/// before they are deserialized: a failed element leaves its siblings intact.)
pub(super) enum Lenient<T> {
    Ok(T),
    Bad(String),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match T::deserialize(d) {
            Ok(v) => Lenient::Ok(v),
            Err(e) => Lenient::Bad(e.to_string()),
        })
    }
}

/// Every top-level key that is not a section, with its span.
pub(super) fn unknown_sections(src: &str) -> Vec<(String, Range<usize>)> {
    toml::from_str::<BTreeMap<Spanned<String>, serde::de::IgnoredAny>>(src)
        .map(|keys| {
            keys.into_keys()
                .filter(|k| !SECTIONS.contains(&k.get_ref().as_str()))
                .map(|k| {
                    let span = k.span();
                    (k.into_inner(), span)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where in `src` an error of a value starting at `start` points: the line of
/// the key it names (`unknown field `x``, or `in `x`` for a value of the
/// wrong type) when that key is found before the next table header, else
/// `start`. Also returns the message without toml's `in `key`` line.
pub(super) fn locate(src: &str, start: usize, error: &str) -> (usize, String) {
    let mut lines = error.trim().lines();
    let message = lines.next().unwrap_or("").trim().to_string();
    let key = lines
        .find_map(|l| l.trim().strip_prefix("in `")?.strip_suffix('`'))
        .or_else(|| message.strip_prefix("unknown field `")?.split('`').next())
        .map(|k| k.rsplit('.').next().unwrap_or(k).to_string());
    let Some(key) = key else {
        return (start, message);
    };
    let message = if message.contains(&format!("`{key}`")) {
        message
    } else {
        format!("`{key}`: {message}")
    };
    let mut offset = start;
    for (i, line) in src
        .get(start..)
        .unwrap_or("")
        .split_inclusive('\n')
        .enumerate()
    {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            break;
        }
        // The key may be the first thing on the line, or follow `{` or `,`
        // in an inline table.
        let found = t
            .match_indices(key.as_str())
            .find(|(at, _)| {
                let before = t[..*at].trim_end();
                let after = t[at + key.len()..].trim_start();
                let after = after
                    .strip_prefix('"')
                    .or_else(|| after.strip_prefix('\''))
                    .unwrap_or(after)
                    .trim_start();
                (before.is_empty()
                    || before.ends_with(['{', ',', '"', '\''])
                    || (i == 0 && before.ends_with(']')))
                    && after.starts_with('=')
            })
            .map(|(at, _)| at);
        if let Some(at) = found {
            let at = if t[..at].ends_with(['"', '\'']) {
                at - 1
            } else {
                at
            };
            return (offset + (line.len() - t.len()) + at, message);
        }
        offset += line.len();
    }
    (start, message)
}

/// The value of a section or element, reporting its deserialization error.
pub(super) fn lenient<'v, T>(
    diag: &mut Diagnostics<'_>,
    item: &'v Spanned<Lenient<T>>,
    what: &str,
) -> Option<&'v T> {
    match item.get_ref() {
        Lenient::Ok(v) => Some(v),
        Lenient::Bad(e) => {
            let (at, message) = locate(diag.src, item.span().start, e);
            diag.at(at, format!("{what}: {message}"));
            None
        }
    }
}

/// The elements of an array-of-tables section that deserialized, reporting
/// the others (and the section itself when it is not an array of tables).
pub(super) fn elements<'v, T>(
    diag: &mut Diagnostics<'_>,
    section: &'v Option<Section<Tables<T>>>,
    name: &str,
) -> Vec<&'v T> {
    let Some(section) = section else {
        return Vec::new();
    };
    let Some(items) = lenient(diag, section, &format!("[[{name}]]")) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| lenient(diag, item, &format!("[[{name}]]")))
        .collect()
}

/// `[url_normalization]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUrlNormalization {
    #[serde(default)]
    pub(super) forward_normalized: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlood {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) per: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) expression: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) window: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) learn: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) factor: Option<Spanned<f64>>,
    pub(super) min_requests: Spanned<i64>,
    #[serde(default)]
    pub(super) action: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) duration: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) simulate: bool,
    #[serde(default)]
    pub(super) max_keys: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttackMode {
    #[serde(default)]
    pub(super) rate_limit_factor: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) flood_factor: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) source: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) kinds: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) threshold: Spanned<i64>,
    pub(super) window: Spanned<String>,
    #[serde(default)]
    pub(super) action: Option<Spanned<String>>,
    pub(super) duration: Spanned<String>,
    #[serde(default)]
    pub(super) simulate: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawListItem {
    Str(String),
    Int(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllowlist {
    #[serde(default)]
    pub(super) ips: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) expression: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
    pub(super) expression: Spanned<String>,
    pub(super) action: Spanned<String>,
    #[serde(default)]
    pub(super) simulate: bool,
    #[serde(default)]
    pub(super) status: Option<Spanned<u16>>,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) description: String,
    pub(super) expression: Spanned<String>,
    #[serde(default)]
    pub(super) characteristics: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) requests: Spanned<i64>,
    pub(super) period: Spanned<String>,
    #[serde(default)]
    pub(super) mitigation_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) action: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) simulate: bool,
    #[serde(default)]
    pub(super) status: Option<Spanned<u16>>,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) scope: Option<Spanned<String>>,
}

pub(super) fn yes() -> bool {
    true
}
