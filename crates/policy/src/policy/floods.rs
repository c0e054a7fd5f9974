//! Compiles `[[floods]]` and `[attack_mode]` (see [`crate::flood`]).

use super::raw::{RawAttackMode, RawFlood};
use super::{compile_expr, valid_id, Diagnostics};
use crate::duration::parse_duration_ms;
use crate::expr::Lists;
use crate::flood::{AttackModeSettings, Flood, FloodAction, FloodKey};
use std::collections::HashSet;
use toml::Spanned;

/// Keys a flood entry tracks by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// The most keys a flood entry may track.
const MAX_MAX_KEYS: i64 = 10_000_000;

fn duration(
    diag: &mut Diagnostics<'_>,
    v: Option<&Spanned<String>>,
    default_ms: u64,
    range: std::ops::RangeInclusive<u64>,
    what: &str,
    id: &str,
) -> Option<u64> {
    let Some(v) = v else {
        return Some(default_ms);
    };
    match parse_duration_ms(v.get_ref()) {
        Ok(ms) if range.contains(&ms) => Some(ms),
        Ok(_) => {
            diag.span(
                v.span(),
                format!(
                    "flood `{id}`: {what} must be between {} and {}",
                    crate::duration::format_duration_ms(*range.start()),
                    crate::duration::format_duration_ms(*range.end())
                ),
            );
            None
        }
        Err(msg) => {
            diag.span(v.span(), format!("flood `{id}`: {what}: {msg}"));
            None
        }
    }
}

/// Compiles every `[[floods]]` entry; problems go to `diag`.
pub(super) fn compile_floods(
    diag: &mut Diagnostics<'_>,
    src: &str,
    raw: &[&RawFlood],
    lists: &Lists,
    ids: &mut HashSet<String>,
) -> Vec<Flood> {
    let mut out = Vec::with_capacity(raw.len());
    for f in raw {
        let id = f.id.get_ref();
        let _ = &f.description;
        let mut ok = true;
        if !valid_id(id) {
            diag.span(
                f.id.span(),
                format!("flood id `{id}` must be 1-128 characters of letters, digits, `-_.:`"),
            );
            ok = false;
        } else if !ids.insert(id.clone()) {
            diag.span(
                f.id.span(),
                format!("duplicate id `{id}` (rule, rate-limit, escalation and flood ids must be unique)"),
            );
            ok = false;
        }
        let per = match &f.per {
            None => Some(FloodKey::Source(crate::escalation::Source::Ip)),
            Some(p) => match FloodKey::parse(p.get_ref()) {
                Ok(k) => Some(k),
                Err(msg) => {
                    diag.span(p.span(), format!("flood `{id}`: {msg}"));
                    None
                }
            },
        };
        let expression = match &f.expression {
            None => Some(None),
            Some(e) => compile_expr(diag, src, e, lists, id).map(Some),
        };
        let window_ms = duration(diag, f.window.as_ref(), 1_000, 100..=60_000, "window", id);
        let learn_ms = duration(
            diag,
            f.learn.as_ref(),
            600_000,
            1_000..=604_800_000,
            "learn",
            id,
        );
        let duration_ms = duration(
            diag,
            f.duration.as_ref(),
            600_000,
            1_000..=604_800_000,
            "duration",
            id,
        );
        if let (Some(w), Some(l)) = (window_ms, learn_ms) {
            if l < w {
                let span = f.learn.as_ref().map_or(f.id.span(), |l| l.span());
                diag.span(
                    span,
                    format!("flood `{id}`: learn must be at least one window"),
                );
                ok = false;
            }
        }
        let factor = match &f.factor {
            None => 10.0,
            Some(x) if x.get_ref().is_finite() && (1.0..=1000.0).contains(x.get_ref()) => {
                *x.get_ref()
            }
            Some(x) => {
                diag.span(
                    x.span(),
                    format!("flood `{id}`: factor must be between 1 and 1000"),
                );
                ok = false;
                1.0
            }
        };
        let min_requests = *f.min_requests.get_ref();
        if !(1..=10_000_000).contains(&min_requests) {
            diag.span(
                f.min_requests.span(),
                format!("flood `{id}`: min_requests must be between 1 and 10000000 (requests per window)"),
            );
            ok = false;
        }
        let max_keys = match &f.max_keys {
            None => DEFAULT_MAX_KEYS,
            Some(m) if (1..=MAX_MAX_KEYS).contains(m.get_ref()) => *m.get_ref() as usize,
            Some(m) => {
                diag.span(
                    m.span(),
                    format!("flood `{id}`: max_keys must be between 1 and {MAX_MAX_KEYS}"),
                );
                ok = false;
                1
            }
        };
        let action = match (&f.action, per) {
            (None, Some(FloodKey::Source(_))) => Some(FloodAction::Ban),
            (None, _) => Some(FloodAction::Log),
            (Some(a), per) => {
                let source = matches!(per, Some(FloodKey::Source(_)));
                match a.get_ref().as_str() {
                    "ban" if source || per.is_none() => Some(FloodAction::Ban),
                    "challenge" if source || per.is_none() => Some(FloodAction::Challenge),
                    "challenge" => {
                        diag.span(a.span(), format!("flood `{id}`: action challenge needs a source: per = \"ip\", \"cidr\" or \"asn\""));
                        None
                    }
                    "attack_mode" if !source => Some(FloodAction::AttackMode),
                    "log" => Some(FloodAction::Log),
                    "ban" => {
                        diag.span(a.span(), format!("flood `{id}`: action ban needs a source to ban: per = \"ip\", \"cidr\" or \"asn\""));
                        None
                    }
                    "attack_mode" => {
                        diag.span(a.span(), format!("flood `{id}`: action attack_mode is for per = \"host\" or \"path\""));
                        None
                    }
                    other => {
                        diag.span(
                            a.span(),
                            format!("flood `{id}`: unknown action `{other}` (expected ban, challenge, attack_mode or log)"),
                        );
                        None
                    }
                }
            }
        };
        if let (
            true,
            Some(per),
            Some(expression),
            Some(window_ms),
            Some(learn_ms),
            Some(duration_ms),
            Some(action),
        ) = (
            ok,
            per,
            expression,
            window_ms,
            learn_ms,
            duration_ms,
            action,
        ) {
            out.push(Flood {
                id: id.clone(),
                per,
                expression,
                window_ms,
                learn_ms,
                factor,
                min_requests: min_requests as u64,
                action,
                duration_ms,
                simulate: f.simulate,
                max_keys,
            });
        }
    }
    out
}

/// Compiles `[attack_mode]` (defaults when absent).
pub(super) fn compile_attack_mode(
    diag: &mut Diagnostics<'_>,
    raw: Option<&RawAttackMode>,
) -> AttackModeSettings {
    let mut s = AttackModeSettings::default();
    let Some(raw) = raw else {
        return s;
    };
    let mut factor = |v: &Option<Spanned<f64>>, name: &str, into: &mut f64| {
        if let Some(x) = v {
            if x.get_ref().is_finite() && *x.get_ref() > 0.0 && *x.get_ref() <= 1.0 {
                *into = *x.get_ref();
            } else {
                diag.span(
                    x.span(),
                    format!("[attack_mode]: {name} must be above 0 and at most 1 (it tightens)"),
                );
            }
        }
    };
    factor(
        &raw.rate_limit_factor,
        "rate_limit_factor",
        &mut s.rate_limit_factor,
    );
    factor(&raw.flood_factor, "flood_factor", &mut s.flood_factor);
    s
}
