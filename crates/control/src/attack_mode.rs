//! Under-attack mode per host, in one API call.
//!
//! A host is under attack while a decision of scope `host` and action
//! `attack_mode` is live: it reaches every edge through the decision stream
//! (and the edges' fail-static state), like any decision, and the policy's
//! `[attack_mode]` says what it tightens. These endpoints are shorthands for
//! adding and deleting that decision by host name; a flood entry of the
//! policy (`action = "attack_mode"`) issues the same decision on its own.

use crate::api::{api_error, deny, error, unauthorized, ApiConfig, NewDecision, Role};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_policy::decisions::{DecisionAction, Scope};
use palisade_policy::{Decision, DecisionSet};
use serde::Deserialize;

/// The optional body of `PUT /api/v1/attack-mode/{host}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackModeOn {
    /// How long it lasts (`30m`, `6h`); until turned off when absent.
    #[serde(default)]
    pub duration: Option<String>,
    /// Why (shown in the decision).
    #[serde(default)]
    pub reason: Option<String>,
    /// Logged by every edge, not enforced.
    #[serde(default)]
    pub simulated: bool,
}

fn is_attack_mode(d: &Decision) -> bool {
    d.scope == Scope::Host && d.action == DecisionAction::AttackMode
}

/// `GET /api/v1/attack-mode`: the hosts in under-attack mode.
pub async fn list(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    match cfg.backend.list_decisions().await {
        Ok(list) => {
            let mut hosts: Vec<Decision> = list.into_iter().filter(is_attack_mode).collect();
            hosts.sort_by(|a, b| a.value.cmp(&b.value));
            Json(hosts).into_response()
        }
        Err(e) => api_error(e),
    }
}

/// `PUT /api/v1/attack-mode/{host}`: on (replaces a previous one: new
/// duration and reason).
pub async fn on(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Path(host): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    let Some(role) = cfg.tokens.role_of(&headers) else {
        return unauthorized();
    };
    let req: AttackModeOn = if body.iter().all(u8::is_ascii_whitespace) {
        AttackModeOn::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
        }
    };
    let permanent = req.duration.as_deref().is_none_or(|d| d.trim().is_empty());
    let new = NewDecision {
        scope: "host".into(),
        value: host,
        action: Some("attack_mode".into()),
        duration: req.duration.filter(|_| !permanent),
        permanent,
        reason: req
            .reason
            .unwrap_or_else(|| "under-attack mode turned on".into()),
        origin: None,
        simulated: req.simulated,
        force: false,
    };
    let d = match new.into_decision((cfg.clock)(), &format!("api:{}", role.as_str())) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match cfg.backend.add_decision(d).await {
        Ok(d) => {
            tracing::warn!(host = %d.value, expires_at = ?d.expires_at, "under-attack mode on");
            (StatusCode::CREATED, Json(d)).into_response()
        }
        Err(e) => api_error(e),
    }
}

/// `DELETE /api/v1/attack-mode/{host}`: off.
pub async fn off(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Path(host): Path<String>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    let host = match DecisionSet::normalize(Scope::Host, &host) {
        Ok(h) => h,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let list = match cfg.backend.list_decisions().await {
        Ok(l) => l,
        Err(e) => return api_error(e),
    };
    let Some(d) = list
        .into_iter()
        .find(|d| is_attack_mode(d) && d.value == host)
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("{host} is not in under-attack mode"),
        );
    };
    match cfg.backend.delete_decision(d.id).await {
        Ok(Some(d)) => {
            tracing::warn!(host = %d.value, "under-attack mode off");
            Json(d).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{host} is not in under-attack mode"),
        ),
        Err(e) => api_error(e),
    }
}
