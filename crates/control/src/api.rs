//! The management API.
//!
//! | method | path | auth | what |
//! |---|---|---|---|
//! | GET | `/healthz` | no | liveness |
//! | GET | `/metrics` | no | Prometheus metrics |
//! | GET | `/api/v1/openapi.json` | no | the OpenAPI 3 document of this API (`assets/openapi.json`) |
//! | POST | `/api/v1/decisions` | bearer | add a decision (201) |
//! | GET | `/api/v1/decisions` | bearer | list active decisions |
//! | POST | `/api/v1/decisions/import` | bearer | bulk import (`crate::import`): CrowdSec JSON or CSV exports, or one ip/network per line; all or nothing unless `on_error=skip`; every invalid entry reported with its line |
//! | GET | `/api/v1/decisions/{id}` | bearer | one decision |
//! | DELETE | `/api/v1/decisions/{id}` | bearer | delete a decision |
//! | PUT | `/api/v1/policy` | bearer | new policy version (body: the TOML); 201 with the version and `warnings` (what the control plane could not check); 400 with every error when invalid, 422 when its `[waf]` names files outside the rule directories or does not compile (see `policy_check`) |
//! | GET | `/api/v1/policy` | bearer | the current version, with its source |
//! | GET | `/api/v1/policy/versions` | bearer | every version, oldest first |
//! | POST | `/api/v1/policy/rollback/{version}` | bearer | make an old version current again (as a new version) |
//! | GET | `/api/v1/nodes` | bearer | nodes: id, address, policy version, decisions, last heartbeat, health, CRS version and digest (`crs_differs`: not the rule set most nodes run), `policy_refused` (the newest version the node refused and why) |
//! | GET | `/api/v1/incidents` | bearer | incidents (one source blocked on several nodes, one rule blocking on many), newest first |
//! | GET | `/api/v1/events` | bearer | security events, newest first; filters `since`, `until` (ms), `node`, `client_ip`, `rule`, `limit` |
//! | GET | `/api/v1/attack-mode` | bearer | hosts in under-attack mode (their `attack_mode` decisions) |
//! | PUT | `/api/v1/attack-mode/{host}` | bearer | under-attack mode on for a host, fleet-wide (optional body `{"duration": "1h", "reason": "..."}`; without a duration it lasts until turned off); 201 with the decision |
//! | DELETE | `/api/v1/attack-mode/{host}` | bearer | under-attack mode off (404 when it was not on) |
//! | GET | `/api/v1/waf/model` | bearer | the WAF's positive model merged over every node: per route, methods, content types (trusted or not) and parameter shapes, busiest first; `limit` (default 50) |
//!
//! Roles: a `viewer` token reads; an `operator` token also adds and deletes
//! decisions; an `admin` token also writes policy versions.
//!
//! Errors are JSON `{"error": "..."}` with 400 (invalid input; an invalid
//! policy adds `"errors": [{"line", "column", "message"}]`), 422 (a policy
//! whose `[waf]` does not load: `"errors": [{"section": "waf", "message"}]`), 401 (missing or
//! wrong token), 403 (the token's role is too low), 404 (unknown id), 501 (not offered by this deployment), 503
//! (the mesh is unreachable).

use crate::backend::{ApiError, Backend};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use palisade_policy::decisions::{DecisionAction, Scope};
use palisade_policy::duration::parse_duration_ms;
use palisade_policy::Decision;
use serde::Deserialize;
use std::sync::Arc;

/// What the API serves.
#[derive(Clone)]
pub struct ApiConfig {
    /// What the API operates on.
    pub backend: Arc<dyn Backend>,
    /// The bearer tokens and their roles.
    pub tokens: Arc<Tokens>,
    /// Renders the Prometheus text for `/metrics`.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// The wall clock, in ms since the Unix epoch.
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// The body of `POST /api/v1/decisions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// `ip`, `cidr`, `country` or `asn`.
    pub scope: String,
    /// The address, network, country code or AS number.
    pub value: String,
    /// `ban` (default) or `allow`.
    #[serde(default)]
    pub action: Option<String>,
    /// How long it lasts (`10m`, `1h`, ...). Required unless `permanent`.
    #[serde(default)]
    pub duration: Option<String>,
    /// A decision that lasts until deleted says so (never by an absent or
    /// empty `duration`).
    #[serde(default)]
    pub permanent: bool,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// A label of the caller's (`cli`, a ticket number: letters, digits,
    /// `.`, `_`, `-`, at most 32). The decision's `origin` is set by the
    /// server from the token's role: `api:<role>` or `api:<role>:<label>`,
    /// so no caller can pass a decision off as an escalation's or an
    /// incident's.
    #[serde(default)]
    pub origin: Option<String>,
    /// Shadow mode: log matches, do not enforce.
    #[serde(default)]
    pub simulated: bool,
    /// Accept a ban broader than the minimum prefix ([`MIN_BAN_PREFIX_V4`],
    /// [`MIN_BAN_PREFIX_V6`]).
    #[serde(default)]
    pub force: bool,
}

/// The broadest IPv4 network a ban may cover without `force` (a /8: 16.7
/// million addresses). `0.0.0.0/0` would block every client of every edge.
pub const MIN_BAN_PREFIX_V4: u8 = 8;
/// The broadest IPv6 network a ban may cover without `force`.
pub const MIN_BAN_PREFIX_V6: u8 = 32;

/// The origin recorded for a decision that came through `base` (`api:<role>`
/// for the API, `file` for `palisade up --decisions`), with the caller's
/// label (checked).
fn origin_for(base: &str, label: Option<&str>) -> Result<String, String> {
    match label.map(str::trim).filter(|l| !l.is_empty()) {
        None => Ok(base.to_string()),
        Some(l)
            if l.len() <= 32
                && l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
        {
            Ok(format!("{base}:{l}"))
        }
        Some(l) => Err(format!(
            "origin {l:?}: a label of at most 32 letters, digits, `.`, `_` or `-` (the server sets the decision's origin from the token)"
        )),
    }
}

impl NewDecision {
    /// Validates and turns the request into a decision (id 0: the store assigns one).
    /// `origin` is where it came from (`api:<role>`, `file`): the caller's
    /// `origin` field can only add a label to it.
    pub fn into_decision(self, now_ms: u64, origin: &str) -> Result<Decision, String> {
        let scope: Scope = match self.scope.as_str() {
            "ip" => Scope::Ip,
            "cidr" | "range" => Scope::Cidr,
            "country" => Scope::Country,
            "asn" | "as" => Scope::Asn,
            "host" => Scope::Host,
            "fingerprint" | "ja4" => Scope::Fingerprint,
            other => {
                return Err(format!(
                    "unknown scope `{other}` (expected ip, cidr, country, asn, host or fingerprint)"
                ))
            }
        };
        let action = match self.action.as_deref() {
            None if scope == Scope::Host => DecisionAction::AttackMode,
            None | Some("ban") | Some("block") => DecisionAction::Ban,
            Some("allow") => DecisionAction::Allow,
            Some("attack_mode") => DecisionAction::AttackMode,
            Some("challenge") => DecisionAction::Challenge,
            Some(other) => {
                return Err(format!(
                    "unknown action `{other}` (expected ban, challenge, allow or attack_mode)"
                ))
            }
        };
        palisade_policy::decisions::check_action_scope(action, scope).map_err(|e| e.to_string())?;
        let value = palisade_policy::DecisionSet::normalize(scope, &self.value)
            .map_err(|e| e.to_string())?;
        let expires_at = match (self.duration.as_deref().map(str::trim), self.permanent) {
            (None | Some(""), false) => {
                return Err("duration is required (e.g. \"10m\", \"24h\"); a decision that lasts until deleted says \"permanent\": true".into())
            }
            (None | Some(""), true) => None,
            (Some(_), true) => {
                return Err("a decision is either permanent or has a duration, not both".into())
            }
            (Some(d), false) => {
                let ms = parse_duration_ms(d).map_err(|e| format!("duration: {e}"))?;
                if ms == 0 {
                    return Err("duration must be longer than 0".into());
                }
                Some(now_ms.saturating_add(ms))
            }
        };
        if scope == Scope::Cidr && action == DecisionAction::Ban && !self.force {
            if let Some((addr, len)) = value.split_once('/') {
                let len: u8 = len.parse().unwrap_or(0);
                let min = if addr.contains(':') {
                    MIN_BAN_PREFIX_V6
                } else {
                    MIN_BAN_PREFIX_V4
                };
                if len < min {
                    return Err(format!(
                        "a ban of {value} is broader than /{min}, the broadest a ban may be without \"force\": true (it would block every client in it on every edge)"
                    ));
                }
            }
        }
        let origin = origin_for(origin, self.origin.as_deref())?;
        if self.reason.len() > 1024 {
            return Err("reason is longer than 1024 bytes".into());
        }
        Ok(Decision {
            id: 0,
            scope,
            value,
            action,
            reason: self.reason,
            origin,
            simulated: self.simulated,
            created_at: now_ms,
            expires_at,
        })
    }
}

pub(crate) fn api_error(e: ApiError) -> Response {
    match e {
        ApiError::BadRequest(m) => error(StatusCode::BAD_REQUEST, m),
        ApiError::InvalidPolicy(errors) => {
            let list: Vec<serde_json::Value> = errors
                .0
                .iter()
                .map(|e| serde_json::json!({"line": e.line, "column": e.column, "message": e.message}))
                .collect();
            (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid policy", "errors": list})),
            )
                .into_response()
        }
        ApiError::InvalidWaf(errors) => {
            let list: Vec<serde_json::Value> = errors
                .iter()
                .map(|m| serde_json::json!({"section": "waf", "message": m}))
                .collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"error": "invalid policy: the [waf] section does not load", "errors": list})),
            )
                .into_response()
        }
        ApiError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        ApiError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
        ApiError::Full(m) => error(StatusCode::INSUFFICIENT_STORAGE, m),
        ApiError::NotSupported(m) => error(StatusCode::NOT_IMPLEMENTED, m),
    }
}

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// What a token may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads, and adds or deletes decisions.
    Operator,
    /// Everything, including policy versions.
    Admin,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The API's bearer tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<(String, Role)>);

impl Tokens {
    /// One admin token.
    pub fn admin(token: impl Into<String>) -> Tokens {
        Tokens(vec![(token.into(), Role::Admin)])
    }

    /// An admin token plus optional operator and viewer tokens.
    pub fn with_roles(
        admin: impl Into<String>,
        operator: Option<String>,
        viewer: Option<String>,
    ) -> Tokens {
        Tokens::admin(admin)
            .with(operator.unwrap_or_default(), Role::Operator)
            .with(viewer.unwrap_or_default(), Role::Viewer)
    }

    /// Adds a token (empty tokens are ignored).
    pub fn with(mut self, token: impl Into<String>, role: Role) -> Tokens {
        let t = token.into();
        if !t.trim().is_empty() {
            self.0.push((t.trim().to_string(), role));
        }
        self
    }

    /// The role of the presented token (compared in constant time).
    pub(crate) fn role_of(&self, headers: &HeaderMap) -> Option<Role> {
        self.0
            .iter()
            .filter(|(t, _)| token_ok(headers, t))
            .map(|(_, r)| *r)
            .max()
    }
}

/// The refusal for a request: 401 without a valid token, 403 when its role is
/// below `need`; `None` when the request may proceed.
pub(crate) fn deny(headers: &HeaderMap, tokens: &Tokens, need: Role) -> Option<Response> {
    match tokens.role_of(headers) {
        None => Some(unauthorized()),
        Some(r) if r < need => Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "this token's role ({}) may not do this; it needs {}",
                r.as_str(),
                need.as_str()
            ),
        )),
        Some(_) => None,
    }
}

/// Constant-time comparison of the presented token with the expected one.
fn token_ok(headers: &HeaderMap, expected: &str) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let (a, b) = (presented.trim().as_bytes(), expected.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn unauthorized() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

async fn add_decision(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    let Some(role) = cfg.tokens.role_of(&headers) else {
        return unauthorized();
    };
    let req: NewDecision = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    let d = match req.into_decision((cfg.clock)(), &format!("api:{}", role.as_str())) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match cfg.backend.add_decision(d).await {
        Ok(d) => {
            tracing::info!(id = d.id, scope = d.scope.as_str(), value = %d.value, "decision added");
            (StatusCode::CREATED, Json(d)).into_response()
        }
        Err(e) => api_error(e),
    }
}

/// Query of `GET /api/v1/decisions`: a page (`limit`, `after` an id) of
/// the active decisions that match every filter given, by id.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// At most this many (default [`DECISIONS_PAGE`], at most
    /// [`DECISIONS_PAGE_MAX`]).
    pub limit: Option<usize>,
    /// Only ids above this one (the previous page's `X-Next-After`).
    pub after: Option<u64>,
    /// `ip`, `cidr`, `country` or `asn`.
    pub scope: Option<String>,
    /// Values containing this text (`203.0.113.`, `/24`).
    pub value: Option<String>,
    /// Origins starting with this (`api:`, `escalation:`, `incident:`).
    pub origin: Option<String>,
    /// `ban` or `allow`.
    pub action: Option<String>,
}

/// Decisions a page holds by default.
pub const DECISIONS_PAGE: usize = 1_000;
/// Decisions a page holds at most.
pub const DECISIONS_PAGE_MAX: usize = 10_000;

impl DecisionQuery {
    fn matches(&self, d: &Decision) -> bool {
        self.after.is_none_or(|a| d.id > a)
            && self.scope.as_deref().is_none_or(|s| d.scope.as_str() == s)
            && self.value.as_deref().is_none_or(|v| d.value.contains(v))
            && self
                .origin
                .as_deref()
                .is_none_or(|o| d.origin.starts_with(o))
            && self.action.as_deref().is_none_or(|a| match d.action {
                DecisionAction::Ban => a == "ban",
                DecisionAction::Allow => a == "allow",
                DecisionAction::AttackMode => a == "attack_mode",
                DecisionAction::Challenge => a == "challenge",
            })
    }
}

/// One page of `list` (sorted by id): the page, how many match in all,
/// and the id to ask `after` for the next page when there is one.
pub fn decisions_page(
    list: Vec<Decision>,
    q: &DecisionQuery,
) -> (Vec<Decision>, usize, Option<u64>) {
    let limit = q
        .limit
        .unwrap_or(DECISIONS_PAGE)
        .clamp(1, DECISIONS_PAGE_MAX);
    let all: Vec<Decision> = list.into_iter().filter(|d| q.matches(d)).collect();
    let total = all.len();
    let next = (total > limit).then(|| all[limit - 1].id);
    let page = all.into_iter().take(limit).collect();
    (page, total, next)
}

async fn list_decisions(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<DecisionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let q = match query {
        Ok(q) => q.0,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid query: {e}")),
    };
    match cfg.backend.list_decisions().await {
        Ok(list) => {
            let (page, total, next) = decisions_page(list, &q);
            let mut r = Json(page).into_response();
            let h = r.headers_mut();
            h.insert("x-total-count", header::HeaderValue::from(total as u64));
            if let Some(n) = next {
                h.insert("x-next-after", header::HeaderValue::from(n));
            }
            r
        }
        Err(e) => api_error(e),
    }
}

fn parse_id(id: &str) -> Result<u64, Box<Response>> {
    id.parse().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid decision id `{id}`"),
        ))
    })
}

async fn get_decision(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match cfg.backend.list_decisions().await {
        Ok(list) => match list.into_iter().find(|d| d.id == id) {
            Some(d) => Json(d).into_response(),
            None => error(StatusCode::NOT_FOUND, format!("no decision {id}")),
        },
        Err(e) => api_error(e),
    }
}

async fn delete_decision(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match cfg.backend.delete_decision(id).await {
        Ok(Some(d)) => {
            tracing::info!(id, "decision deleted");
            Json(d).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no decision {id}")),
        Err(e) => api_error(e),
    }
}

async fn put_policy(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Admin) {
        return r;
    }
    let Ok(source) = String::from_utf8(body.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "the policy must be UTF-8 text");
    };
    let author = headers
        .get("x-palisade-author")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("api")
        .to_string();
    match cfg.backend.put_policy(source, author).await {
        Ok(v) => {
            tracing::info!(version = v.version.version, digest = %v.version.digest, warnings = v.warnings.len(), "policy version stored");
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(e) => api_error(e),
    }
}

async fn get_policy(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    match cfg.backend.current_policy().await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no policy has been stored yet"),
        Err(e) => api_error(e),
    }
}

async fn policy_versions(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    match cfg.backend.policy_versions().await {
        Ok(list) => Json(list).into_response(),
        Err(e) => api_error(e),
    }
}

async fn rollback(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Admin) {
        return r;
    }
    let Ok(version) = version.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid version `{version}`"),
        );
    };
    let old = match cfg.backend.policy_versions().await {
        Ok(list) => list.into_iter().find(|v| v.version == version),
        Err(e) => return api_error(e),
    };
    let Some(old) = old else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no policy version {version}"),
        );
    };
    match cfg
        .backend
        .put_policy(old.source, format!("rollback to v{version}"))
        .await
    {
        Ok(v) => {
            tracing::info!(
                to = version,
                new_version = v.version.version,
                "policy rolled back"
            );
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(e) => api_error(e),
    }
}

async fn nodes(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let now = (cfg.clock)();
    match cfg.backend.nodes().await {
        Ok(list) => {
            let views = crate::nodes::views(list, now);
            Json(views).into_response()
        }
        Err(e) => api_error(e),
    }
}

async fn events(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    query: Result<
        axum::extract::Query<crate::store::EventFilter>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let filter = match query {
        Ok(q) => q.0,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid filter: {e}")),
    };
    match cfg.backend.events(filter).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => api_error(e),
    }
}

#[derive(serde::Deserialize)]
struct Limit {
    limit: Option<u32>,
}

async fn incidents(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let limit = match query {
        Ok(q) => q.0.limit.unwrap_or(100),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid query: {e}")),
    };
    match cfg.backend.incidents(limit).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => api_error(e),
    }
}

/// Query of `GET /api/v1/waf/model`.
#[derive(Debug, serde::Deserialize)]
struct ModelQuery {
    limit: Option<usize>,
}

async fn waf_model(
    State(cfg): State<ApiConfig>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ModelQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use palisade_policy::learn::model::{ModelSettings, PositiveModel, STATS_NAME};
    use palisade_policy::learn::Mergeable;
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    let limit = match query {
        Ok(q) => q.limit.unwrap_or(50).clamp(1, 10_000),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let states = match cfg.backend.stats(STATS_NAME).await {
        Ok(s) => s,
        Err(e) => return api_error(e),
    };
    // Judged with the settings in force (the defaults without any).
    let settings = cfg
        .backend
        .model_settings()
        .await
        .unwrap_or_else(ModelSettings::default);
    let mut merged = PositiveModel::new(palisade_policy::waf::MAX_MODEL_ROUTES);
    let mut nodes = 0;
    for (node, bytes) in states {
        match serde_json::from_slice::<PositiveModel>(&bytes) {
            Ok(mut m) => {
                m.sanitize(palisade_policy::waf::MAX_MODEL_ROUTES);
                merged.merge(&m);
                nodes += 1;
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "a node's positive model did not decode")
            }
        }
    }
    Json(merged.view(&settings, nodes, limit)).into_response()
}

async fn keys(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Viewer) {
        return r;
    }
    match cfg.backend.keys((cfg.clock)()).await {
        Ok(k) => Json(k).into_response(),
        Err(e) => api_error(e),
    }
}

async fn rotate_keys(State(cfg): State<ApiConfig>, headers: HeaderMap) -> Response {
    if let Some(r) = deny(&headers, &cfg.tokens, Role::Operator) {
        return r;
    }
    match cfg.backend.rotate_keys((cfg.clock)()).await {
        Ok(k) => Json(k).into_response(),
        Err(e) => api_error(e),
    }
}

async fn metrics(State(cfg): State<ApiConfig>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (cfg.metrics)(),
    )
        .into_response()
}

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

/// The API router.
pub fn router(cfg: ApiConfig) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/v1/decisions", get(list_decisions).post(add_decision))
        .route(
            "/api/v1/decisions/import",
            axum::routing::post(crate::import::import_decisions).layer(
                axum::extract::DefaultBodyLimit::max(crate::import::MAX_IMPORT_BYTES),
            ),
        )
        .route(
            "/api/v1/decisions/{id}",
            get(get_decision).delete(delete_decision),
        )
        .route("/api/v1/policy", get(get_policy).put(put_policy))
        .route("/api/v1/policy/versions", get(policy_versions))
        .route(
            "/api/v1/policy/rollback/{version}",
            axum::routing::post(rollback),
        )
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/events", get(events))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/waf/model", get(waf_model))
        .route("/api/v1/keys", get(keys))
        .route("/api/v1/keys/rotate", axum::routing::post(rotate_keys))
        .route("/api/v1/attack-mode", get(crate::attack_mode::list))
        .route(
            "/api/v1/attack-mode/{host}",
            axum::routing::put(crate::attack_mode::on).delete(crate::attack_mode::off),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::sync::Mutex;
    use tower::ServiceExt;

    #[derive(Default)]
    struct MemStore(Mutex<Vec<Decision>>);

    #[async_trait::async_trait]
    impl Backend for MemStore {
        async fn add_decision(&self, mut d: Decision) -> Result<Decision, ApiError> {
            let mut v = self.0.lock().unwrap();
            d.id = v.len() as u64 + 1;
            v.push(d.clone());
            Ok(d)
        }
        async fn list_decisions(&self) -> Result<Vec<Decision>, ApiError> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn delete_decision(&self, id: u64) -> Result<Option<Decision>, ApiError> {
            let mut v = self.0.lock().unwrap();
            Ok(v.iter().position(|d| d.id == id).map(|i| v.remove(i)))
        }
    }

    fn app() -> Router {
        router(ApiConfig {
            backend: Arc::new(MemStore::default()),
            tokens: Arc::new(
                Tokens::admin("secret")
                    .with("look-only", Role::Viewer)
                    .with("ops", Role::Operator),
            ),
            metrics: Arc::new(|| "m 1\n".into()),
            clock: Arc::new(|| 1_000),
        })
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(b.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn writes_need_the_token() {
        let app = app();
        let body = r#"{"scope":"ip","value":"203.0.113.9","duration":"1h"}"#;
        assert_eq!(
            call(&app, "POST", "/api/v1/decisions", None, body).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "POST", "/api/v1/decisions", Some("wrong!"), body)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "DELETE", "/api/v1/decisions/1", None, "")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn openapi_documents_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let src = include_str!("api.rs");
        // Every `.route("...")` of the router is documented, and nothing else is.
        let routes: std::collections::BTreeSet<&str> = src
            .split(".route(")
            .skip(1)
            .filter_map(|r| r.trim_start().strip_prefix('"'))
            .filter_map(|r| r.split('"').next())
            .filter(|r| r.starts_with('/'))
            .collect();
        let documented: std::collections::BTreeSet<&str> =
            paths.keys().map(String::as_str).collect();
        assert_eq!(routes, documented);
        let (s, served) = call(&app(), "GET", "/api/v1/openapi.json", None, "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(served["openapi"], "3.0.3");
    }

    #[tokio::test]
    async fn roles_limit_what_a_token_may_do() {
        let app = app();
        let body = r#"{"scope":"ip","value":"203.0.113.9","duration":"1h"}"#;
        assert_eq!(
            call(&app, "POST", "/api/v1/decisions", Some("look-only"), body)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(&app, "GET", "/api/v1/decisions", Some("look-only"), "")
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "POST", "/api/v1/decisions", Some("ops"), body)
                .await
                .0,
            StatusCode::CREATED
        );
        let (s, e) = call(&app, "PUT", "/api/v1/policy", Some("ops"), "").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(e["error"].as_str().unwrap().contains("needs admin"), "{e}");
        // The admin passes the role check (this test backend has no policy store: 501).
        assert_eq!(
            call(&app, "PUT", "/api/v1/policy", Some("secret"), "")
                .await
                .0,
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[tokio::test]
    async fn add_list_delete() {
        let app = app();
        let (s, d) = call(
            &app,
            "POST",
            "/api/v1/decisions",
            Some("secret"),
            r#"{"scope":"ip","value":"203.0.113.9","action":"ban","duration":"10m","reason":"test"}"#,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(d["value"], "203.0.113.9");
        assert_eq!(d["expires_at"], 1_000 + 600_000);
        let (s, list) = call(&app, "GET", "/api/v1/decisions", Some("secret"), "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(
            call(&app, "DELETE", "/api/v1/decisions/1", Some("secret"), "")
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "DELETE", "/api/v1/decisions/1", Some("secret"), "")
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn bad_input_is_a_clear_400() {
        let app = app();
        for (body, needle) in [
            (r#"{"scope":"planet","value":"x"}"#, "unknown scope"),
            (r#"{"scope":"ip","value":"999.1.1.1"}"#, "999.1.1.1"),
            (
                r#"{"scope":"ip","value":"1.2.3.4","duration":"5x"}"#,
                "duration",
            ),
            (r#"not json"#, "invalid JSON"),
        ] {
            let (s, e) = call(&app, "POST", "/api/v1/decisions", Some("secret"), body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
            assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
        }
    }

    /// Guardrails of decision writes: a duration or an explicit
    /// `permanent`, no ban broader than /8 (/32) without `force`, and an
    /// origin the server sets from the token.
    #[tokio::test]
    async fn decision_writes_have_guardrails() {
        let app = app();
        let post = |body: &'static str, token: &'static str| {
            let app = app.clone();
            async move { call(&app, "POST", "/api/v1/decisions", Some(token), body).await }
        };
        for (body, needle) in [
            (
                r#"{"scope":"ip","value":"192.0.2.1"}"#,
                "duration is required",
            ),
            (
                r#"{"scope":"ip","value":"192.0.2.1","duration":""}"#,
                "duration is required",
            ),
            (
                r#"{"scope":"ip","value":"192.0.2.1","duration":"1h","permanent":true}"#,
                "not both",
            ),
            (
                r#"{"scope":"cidr","value":"0.0.0.0/0","duration":"1h"}"#,
                "broader than /8",
            ),
            (
                r#"{"scope":"cidr","value":"10.0.0.0/7","duration":"1h"}"#,
                "broader than /8",
            ),
            (
                r#"{"scope":"cidr","value":"::/0","permanent":true}"#,
                "broader than /32",
            ),
            (
                r#"{"scope":"ip","value":"192.0.2.1","duration":"1h","origin":"escalation:x"}"#,
                "label",
            ),
        ] {
            let (s, e) = post(body, "secret").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
            assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
        }
        for body in [
            r#"{"scope":"cidr","value":"10.0.0.0/8","duration":"1h"}"#,
            r#"{"scope":"cidr","value":"0.0.0.0/0","duration":"1m","force":true}"#,
            r#"{"scope":"cidr","value":"0.0.0.0/0","action":"allow","duration":"1m"}"#,
            r#"{"scope":"ip","value":"192.0.2.2","permanent":true}"#,
        ] {
            let (s, e) = post(body, "secret").await;
            assert_eq!(s, StatusCode::CREATED, "{body}: {e}");
        }
        let (_, d) = post(
            r#"{"scope":"ip","value":"192.0.2.3","duration":"1h"}"#,
            "ops",
        )
        .await;
        assert_eq!(d["origin"], "api:operator", "{d}");
        let (_, d) = post(
            r#"{"scope":"ip","value":"192.0.2.4","duration":"1h","origin":"ticket-42"}"#,
            "secret",
        )
        .await;
        assert_eq!(d["origin"], "api:admin:ticket-42", "{d}");
        let (_, d) = post(
            r#"{"scope":"ip","value":"192.0.2.5","permanent":true}"#,
            "secret",
        )
        .await;
        assert!(d["expires_at"].is_null(), "{d}");
    }

    #[test]
    fn decision_listing_pages_and_filters() {
        let list: Vec<Decision> = (1..=25u64)
            .map(|i| Decision {
                id: i,
                scope: if i % 5 == 0 { Scope::Cidr } else { Scope::Ip },
                value: if i % 5 == 0 {
                    format!("198.51.{i}.0/24")
                } else {
                    format!("203.0.113.{i}")
                },
                action: DecisionAction::Ban,
                reason: String::new(),
                origin: if i > 20 {
                    "escalation:x".into()
                } else {
                    "api:admin".into()
                },
                simulated: false,
                created_at: 0,
                expires_at: None,
            })
            .collect();
        let q = |s: &str| -> DecisionQuery {
            serde_json::from_value(serde_json::from_str(s).unwrap()).unwrap()
        };
        let (p, total, next) = decisions_page(list.clone(), &q(r#"{"limit":10}"#));
        assert_eq!((p.len(), total, next), (10, 25, Some(10)));
        let (p, _, next) = decisions_page(list.clone(), &q(r#"{"limit":10,"after":20}"#));
        assert_eq!((p.first().unwrap().id, p.len(), next), (21, 5, None));
        let (p, total, _) = decisions_page(list.clone(), &q(r#"{"scope":"cidr"}"#));
        assert_eq!((p.len(), total), (5, 5));
        assert!(p.iter().all(|d| d.scope == Scope::Cidr));
        let (p, _, _) = decisions_page(list.clone(), &q(r#"{"origin":"escalation:"}"#));
        assert_eq!(
            p.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![21, 22, 23, 24, 25]
        );
        let (p, _, _) = decisions_page(list.clone(), &q(r#"{"value":"203.0.113.1"}"#));
        assert_eq!(p.len(), 9, "1, 11-14, 16-19 (10, 15 are cidr): {p:?}");
        let (p, _, _) = decisions_page(list.clone(), &q(r#"{"limit":0}"#));
        assert_eq!(p.len(), 1, "a page holds at least one");
        let (p, _, _) = decisions_page(list, &q(r#"{"action":"allow"}"#));
        assert!(p.is_empty());
    }

    #[tokio::test]
    async fn decision_listing_rejects_a_bad_query() {
        let (s, e) = call(
            &app(),
            "GET",
            "/api/v1/decisions?limit=lots",
            Some("secret"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, e) = call(
            &app(),
            "GET",
            "/api/v1/decisions?colour=red",
            Some("secret"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, _) = call(
            &app(),
            "GET",
            "/api/v1/decisions?limit=5&scope=ip",
            Some("secret"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
}
