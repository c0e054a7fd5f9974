//! Security events: one structured record each time a check acts (or would act, in simulate mode).

use crate::verdict::CheckKind;
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One security event, emitted as one JSON line by the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// When it happened (ms since the Unix epoch).
    pub time_ms: UnixMillis,
    /// The node that saw the request.
    #[serde(default)]
    pub node: String,
    /// The request id also sent in `X-Request-Id`.
    pub request_id: String,
    /// The client address the pipeline used.
    pub client_ip: IpAddr,
    /// Which check produced it.
    pub check: CheckKind,
    /// The rule id, rate-limit id, or decision id that matched.
    pub rule_id: String,
    /// `block`, `log`, `allow` or `skip`.
    pub action: String,
    /// Whether the match was in simulate (shadow) mode: logged, not enforced.
    pub simulate: bool,
    /// Method, host and path of the request, for context.
    pub method: String,
    /// Host header.
    pub host: String,
    /// Path of the request.
    pub path: String,
    /// The status sent when the request was blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}
