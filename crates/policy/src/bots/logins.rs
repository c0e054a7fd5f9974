//! `[[bots.logins]]`: the login endpoints and their thresholds.
//!
//! ```toml
//! [[bots.logins]]
//! path = "/login"                 # exact, normalized
//! method = "POST"                 # default POST
//! username_field = "user.email"   # form field, or JSON key path (≤ 4 levels)
//! failure_status = [401, 403]     # default [401, 403] (unless failure_header alone is set)
//! failure_header = "x-login-failed"
//! stuffing = { usernames = 10, cidr_usernames = 30, asn_usernames = 200, window = "10m", action = "challenge", duration = "1h" }
//! guessing = { failures = 20, sources = 5, window = "10m", action = "challenge", duration = "15m" }
//! ```
//!
//! Every field of `stuffing` and `guessing` has a default (the values above,
//! except `asn_usernames`, which is off unless set: an AS holds many honest
//! users, so one is only escalated when the policy asks for it). Numbers are
//! read as `i64` so that a negative or huge value is reported with the others
//! rather than stopping the parse at the first.

use crate::duration::{format_duration_ms, parse_duration_ms};
use crate::normalize_path;
use serde::{Deserialize, Serialize};

/// What a login escalation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Show the challenge (proof of work / clearance) before letting through.
    Challenge,
    /// Refuse.
    Ban,
}

impl Action {
    /// Parses `challenge` or `ban`.
    pub fn parse(s: &str) -> Result<Action, String> {
        match s {
            "challenge" => Ok(Action::Challenge),
            "ban" => Ok(Action::Ban),
            other => Err(format!(
                "unknown action `{other}` (expected challenge or ban)"
            )),
        }
    }

    /// The name used in the policy and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Challenge => "challenge",
            Action::Ban => "ban",
        }
    }
}

/// Largest threshold accepted: an entry keeps up to a threshold's worth of
/// hashes, so this bounds memory per entry (16 bytes per hash).
pub const MAX_THRESHOLD: u64 = 1_000;
/// Most login endpoints in a policy (a report names one by a `u16` index).
pub const MAX_LOGINS: usize = 256;
/// Deepest JSON path for `username_field`.
pub const MAX_JSON_DEPTH: usize = 4;
/// Longest window accepted.
const MAX_WINDOW_MS: u64 = 86_400_000;
/// Longest escalation duration accepted.
const MAX_DURATION_MS: u64 = 30 * 86_400_000;

/// One `[[bots.logins]]` table, as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Exact normalized path, e.g. `/login`.
    pub path: String,
    /// HTTP method; default `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// Form field, or JSON key (dotted path for nested objects).
    pub username_field: String,
    /// Statuses that mean a failed login.
    #[serde(default)]
    pub failure_status: Option<Vec<i64>>,
    /// A response header whose presence means a failed login.
    #[serde(default)]
    pub failure_header: Option<String>,
    /// Credential stuffing thresholds.
    #[serde(default)]
    pub stuffing: Option<StuffingConfig>,
    /// Password guessing thresholds.
    #[serde(default)]
    pub guessing: Option<GuessingConfig>,
}

/// `stuffing = { … }`: one source failing for many distinct usernames.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StuffingConfig {
    /// Distinct failed usernames per address (default 10).
    #[serde(default)]
    pub usernames: Option<i64>,
    /// Distinct failed usernames per /24 (IPv6 /64) (default 30).
    #[serde(default)]
    pub cidr_usernames: Option<i64>,
    /// Distinct failed usernames per AS (default: not counted).
    #[serde(default)]
    pub asn_usernames: Option<i64>,
    /// Counting window (default `10m`).
    #[serde(default)]
    pub window: Option<String>,
    /// `challenge` (default) or `ban`.
    #[serde(default)]
    pub action: Option<String>,
    /// The decision's duration (default `1h`).
    #[serde(default)]
    pub duration: Option<String>,
}

/// `guessing = { … }`: one username failing from many sources.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuessingConfig {
    /// Failures for the username within the window (default 20).
    #[serde(default)]
    pub failures: Option<i64>,
    /// ... from at least this many distinct addresses (default 5).
    #[serde(default)]
    pub sources: Option<i64>,
    /// Counting window (default `10m`).
    #[serde(default)]
    pub window: Option<String>,
    /// `challenge` (default) or `ban` (refuses the account's logins: anyone
    /// can then lock an account out, so prefer `challenge`).
    #[serde(default)]
    pub action: Option<String>,
    /// How long the username stays marked (default `15m`).
    #[serde(default)]
    pub duration: Option<String>,
}

/// Where the username is in the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameField {
    /// The name as written: the form field name.
    pub name: String,
    /// The JSON path: `name` split at dots (1 to [`MAX_JSON_DEPTH`] keys).
    pub json_path: Vec<String>,
}

/// Compiled credential stuffing thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuffingSpec {
    /// Distinct usernames per address.
    pub ip_usernames: u64,
    /// Distinct usernames per /24 (IPv6 /64).
    pub cidr_usernames: u64,
    /// Distinct usernames per AS, if counted.
    pub asn_usernames: Option<u64>,
    /// Counting window.
    pub window_ms: u64,
    /// The decision's action.
    pub action: Action,
    /// The decision's duration.
    pub duration_ms: u64,
}

/// Compiled password guessing thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuessingSpec {
    /// Failures within the window.
    pub failures: u64,
    /// Distinct addresses among them.
    pub sources: u64,
    /// Counting window.
    pub window_ms: u64,
    /// What attempts for the username get.
    pub action: Action,
    /// How long the mark lasts after the latest failure.
    pub duration_ms: u64,
}

/// One login endpoint, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSpec {
    /// Exact normalized path.
    pub path: String,
    /// Upper-case method.
    pub method: String,
    /// Where the username is.
    pub username: UsernameField,
    /// Statuses meaning failure (may be empty when `failure_header` is set).
    pub failure_status: Vec<u16>,
    /// Lower-case header name whose presence means failure.
    pub failure_header: Option<String>,
    /// Credential stuffing thresholds.
    pub stuffing: StuffingSpec,
    /// Password guessing thresholds.
    pub guessing: GuessingSpec,
}

impl LoginSpec {
    /// Whether a request is an attempt on this endpoint (`path` normalized).
    /// The path matches whatever its case and trailing slash (`/LOGIN/` is
    /// `/login`: many frameworks route them alike).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let trim = |p: &str| -> usize { p.trim_end_matches('/').len() };
        let (a, b) = (&self.path[..trim(&self.path)], &path[..trim(path)]);
        a.eq_ignore_ascii_case(b) && self.method.eq_ignore_ascii_case(method)
    }

    /// Whether the origin's answer means a failed login. `has_header` is
    /// asked for the lower-case header name.
    pub fn is_failure(&self, status: u16, has_header: impl Fn(&str) -> bool) -> bool {
        self.failure_status.contains(&status)
            || self.failure_header.as_deref().is_some_and(has_header)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn threshold(v: Option<i64>, default: u64, what: &str, errs: &mut Vec<String>) -> u64 {
    match v {
        None => default,
        Some(n) if n >= 1 && n as u64 <= MAX_THRESHOLD => n as u64,
        Some(n) => {
            errs.push(format!(
                "{what} = {n}: must be between 1 and {MAX_THRESHOLD}"
            ));
            default
        }
    }
}

fn duration(v: Option<&str>, default: u64, max: u64, what: &str, errs: &mut Vec<String>) -> u64 {
    let Some(s) = v else { return default };
    match parse_duration_ms(s) {
        Ok(ms) if ms >= 1000 && ms <= max => ms,
        Ok(_) => {
            errs.push(format!(
                "{what} = \"{s}\": must be between 1s and {}",
                format_duration_ms(max)
            ));
            default
        }
        Err(e) => {
            errs.push(format!("{what}: {e}"));
            default
        }
    }
}

fn action(v: Option<&str>, what: &str, errs: &mut Vec<String>) -> Action {
    match v.map(Action::parse) {
        None => Action::Challenge,
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            errs.push(format!("{what}: {e}"));
            Action::Challenge
        }
    }
}

fn username_field(s: &str, errs: &mut Vec<String>) -> UsernameField {
    let json_path: Vec<String> = s.split('.').map(str::to_owned).collect();
    if s.is_empty() {
        errs.push("username_field is empty".into());
    } else if s.len() > 128 || s.chars().any(char::is_control) {
        errs.push("username_field: at most 128 bytes, no control characters".into());
    } else if json_path.iter().any(String::is_empty) {
        errs.push(format!(
            "username_field `{s}`: empty key in the dotted path"
        ));
    } else if json_path.len() > MAX_JSON_DEPTH {
        errs.push(format!(
            "username_field `{s}`: {} levels, at most {MAX_JSON_DEPTH}",
            json_path.len()
        ));
    }
    UsernameField {
        name: s.to_owned(),
        json_path,
    }
}

/// Validates one `[[bots.logins]]` table; every problem is reported.
pub fn validate(raw: &LoginConfig) -> Result<LoginSpec, Vec<String>> {
    let mut errs = Vec::new();

    if !raw.path.starts_with('/') {
        errs.push(format!("path `{}` must start with `/`", raw.path));
    } else if normalize_path(raw.path.as_bytes()) != raw.path.as_str() {
        errs.push(format!(
            "path `{}` is not normalized (it would match `{}`)",
            raw.path,
            normalize_path(raw.path.as_bytes())
        ));
    }

    let method = raw.method.as_deref().unwrap_or("POST");
    if !is_token(method) || method.len() > 16 {
        errs.push(format!("method `{method}` is not an HTTP method"));
    }

    let username = username_field(&raw.username_field, &mut errs);

    let failure_header = match raw.failure_header.as_deref() {
        None => None,
        Some(h) if is_token(h) && h.len() <= 128 => Some(h.to_ascii_lowercase()),
        Some(h) => {
            errs.push(format!("failure_header `{h}` is not a header name"));
            None
        }
    };
    let failure_status = match &raw.failure_status {
        None if raw.failure_header.is_some() => Vec::new(),
        None => vec![401, 403],
        Some(list) => {
            if list.is_empty() && raw.failure_header.is_none() {
                errs.push(
                    "failure_status is empty and there is no failure_header: no answer would be a failure"
                        .into(),
                );
            }
            let mut out = Vec::new();
            for &s in list {
                if (100..=599).contains(&s) {
                    out.push(s as u16);
                } else {
                    errs.push(format!(
                        "failure_status {s} is not an HTTP status (100 to 599)"
                    ));
                }
            }
            out
        }
    };

    let st = raw.stuffing.clone().unwrap_or_default();
    let stuffing = StuffingSpec {
        ip_usernames: threshold(st.usernames, 10, "stuffing.usernames", &mut errs),
        cidr_usernames: threshold(st.cidr_usernames, 30, "stuffing.cidr_usernames", &mut errs),
        asn_usernames: st
            .asn_usernames
            .map(|n| threshold(Some(n), 1, "stuffing.asn_usernames", &mut errs)),
        window_ms: duration(
            st.window.as_deref(),
            600_000,
            MAX_WINDOW_MS,
            "stuffing.window",
            &mut errs,
        ),
        action: action(st.action.as_deref(), "stuffing.action", &mut errs),
        duration_ms: duration(
            st.duration.as_deref(),
            3_600_000,
            MAX_DURATION_MS,
            "stuffing.duration",
            &mut errs,
        ),
    };

    let gu = raw.guessing.clone().unwrap_or_default();
    let guessing = GuessingSpec {
        failures: threshold(gu.failures, 20, "guessing.failures", &mut errs),
        sources: threshold(gu.sources, 5, "guessing.sources", &mut errs),
        window_ms: duration(
            gu.window.as_deref(),
            600_000,
            MAX_WINDOW_MS,
            "guessing.window",
            &mut errs,
        ),
        action: action(gu.action.as_deref(), "guessing.action", &mut errs),
        duration_ms: duration(
            gu.duration.as_deref(),
            900_000,
            MAX_DURATION_MS,
            "guessing.duration",
            &mut errs,
        ),
    };
    if guessing.sources > guessing.failures {
        errs.push(format!(
            "guessing.sources ({}) is more than guessing.failures ({}): every source fails at least once",
            guessing.sources, guessing.failures
        ));
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(LoginSpec {
        path: raw.path.clone(),
        method: method.to_ascii_uppercase(),
        username,
        failure_status,
        failure_header,
        stuffing,
        guessing,
    })
}

/// Validates the whole `[[bots.logins]]` list: every table's problems
/// (prefixed `bots.logins[i]`), duplicate endpoints, and the count.
pub fn validate_all(raw: &[LoginConfig]) -> Result<Vec<LoginSpec>, Vec<String>> {
    let mut errs = Vec::new();
    let mut specs: Vec<LoginSpec> = Vec::new();
    let mut seen: Vec<(usize, String, String)> = Vec::new();
    if raw.len() > MAX_LOGINS {
        errs.push(format!(
            "bots.logins: {} endpoints, at most {MAX_LOGINS}",
            raw.len()
        ));
    }
    for (i, r) in raw.iter().enumerate() {
        match validate(r) {
            Ok(spec) => {
                if let Some((j, _, _)) = seen
                    .iter()
                    .find(|(_, m, p)| *p == spec.path && *m == spec.method)
                {
                    errs.push(format!(
                        "bots.logins[{i}]: {} {} is already declared (bots.logins[{j}])",
                        spec.method, spec.path
                    ));
                }
                seen.push((i, spec.method.clone(), spec.path.clone()));
                specs.push(spec);
            }
            Err(es) => {
                errs.extend(es.into_iter().map(|e| format!("bots.logins[{i}]: {e}")));
            }
        }
    }
    if errs.is_empty() {
        Ok(specs)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LoginConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_fill_a_minimal_table() {
        let s = validate(&parse(
            r#"{"path": "/login", "username_field": "user.email"}"#,
        ))
        .unwrap();
        assert_eq!(
            (s.method.as_str(), s.failure_status.as_slice()),
            ("POST", &[401, 403][..])
        );
        assert_eq!(s.username.json_path, ["user", "email"]);
        assert_eq!(
            s.stuffing,
            StuffingSpec {
                ip_usernames: 10,
                cidr_usernames: 30,
                asn_usernames: None,
                window_ms: 600_000,
                action: Action::Challenge,
                duration_ms: 3_600_000,
            }
        );
        assert_eq!(
            (
                s.guessing.failures,
                s.guessing.sources,
                s.guessing.duration_ms
            ),
            (20, 5, 900_000)
        );
        // Case and a trailing slash do not escape the endpoint (frameworks
        // route `/LOGIN/` to `/login`); another method or path does.
        assert!(
            s.matches("post", "/login")
                && s.matches("POST", "/login/")
                && s.matches("POST", "/LOGIN")
                && !s.matches("GET", "/login")
                && !s.matches("POST", "/login2")
        );
        assert!(s.is_failure(401, |_| false) && !s.is_failure(200, |_| true));
    }

    #[test]
    fn a_header_alone_replaces_the_default_statuses() {
        let raw = parse(
            r#"{"path": "/api/session", "method": "put", "username_field": "login",
                "failure_header": "X-Login-Failed",
                "stuffing": {"usernames": 5, "window": "5m", "action": "ban", "duration": "2h"},
                "guessing": {"failures": 10, "sources": 3, "window": "1h", "action": "ban"}}"#,
        );
        let s = validate(&raw).unwrap();
        assert_eq!((s.method.as_str(), s.failure_status.len()), ("PUT", 0));
        assert!(s.is_failure(200, |h| h == "x-login-failed"));
        assert!(!s.is_failure(401, |_| false));
        assert_eq!(
            (
                s.stuffing.ip_usernames,
                s.stuffing.action,
                s.stuffing.duration_ms
            ),
            (5, Action::Ban, 7_200_000)
        );
        assert_eq!(
            (s.guessing.window_ms, s.guessing.action),
            (3_600_000, Action::Ban)
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let raw = parse(
            r#"{"path": "/a/../login", "method": "PO ST", "username_field": "a..b",
                "failure_status": [200, 99, 700], "failure_header": "bad header",
                "stuffing": {"usernames": 0, "cidr_usernames": 5000, "window": "10x",
                             "action": "shout", "duration": "100d"},
                "guessing": {"failures": 3, "sources": 9, "window": "0s", "action": "ban",
                             "duration": ""}}"#,
        );
        let errs = validate(&raw).unwrap_err();
        let expect = [
            "path `/a/../login` is not normalized",
            "method `PO ST`",
            "username_field `a..b`: empty key",
            "failure_header `bad header`",
            "failure_status 99 ",
            "failure_status 700 ",
            "stuffing.usernames = 0",
            "stuffing.cidr_usernames = 5000",
            "stuffing.window: invalid duration",
            "stuffing.action: unknown action `shout`",
            "stuffing.duration = \"100d\"",
            "guessing.window = \"0s\"",
            "guessing.duration: empty duration",
            "guessing.sources (9) is more than guessing.failures (3)",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|x| x.contains(e)),
                "missing `{e}` in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        let deep =
            parse(r#"{"path": "login", "username_field": "a.b.c.d.e", "failure_status": []}"#);
        let errs = validate(&deep).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:#?}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<LoginConfig>(
            r#"{"path": "/l", "username_field": "u", "usrname": 1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<LoginConfig>(
            r#"{"path": "/l", "username_field": "u", "stuffing": {"users": 1}}"#
        )
        .is_err());
    }

    #[test]
    fn the_list_is_checked_as_a_whole() {
        let ok = parse(r#"{"path": "/login", "username_field": "u"}"#);
        let bad = parse(r#"{"path": "", "username_field": ""}"#);
        let errs = validate_all(&[ok.clone(), bad, ok.clone()]).unwrap_err();
        assert_eq!(
            errs,
            [
                "bots.logins[1]: path `` must start with `/`",
                "bots.logins[1]: username_field is empty",
                "bots.logins[2]: POST /login is already declared (bots.logins[0])",
            ]
        );
        assert_eq!(validate_all(&[ok]).unwrap().len(), 1);
        let many = vec![parse(r#"{"path": "/x", "username_field": "u"}"#); MAX_LOGINS + 1];
        assert!(validate_all(&many).unwrap_err()[0].contains("endpoints, at most"));
    }
}
