//! Account protection in the request path: a request to a declared login
//! endpoint (`[[bots.logins]]`) has its body copied (up to
//! [`palisade_bots::logins::MAX_BODY`]) while it streams to the origin; at
//! its end the username is read (a form field, or a JSON path), normalized
//! and hashed with the fleet's username key — the clear text is dropped at
//! once. A username the fleet marked as guessed is challenged (or refused,
//! by policy) before the body goes upstream. When the origin answers with
//! a failure (a status or a header of the policy), a report with the hash
//! goes to the fleet ([`super::share`]), where every node counts it.

use crate::state::EdgeState;
use palisade_bots::logins::{
    username_from_form, username_from_json, username_key_hash, Action, FailureReport, UserHash,
    MAX_BODY,
};
use palisade_policy::bots::BotsPolicy;
use std::net::IpAddr;

/// One login attempt in flight.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The endpoint's index in `[[bots.logins]]`.
    pub index: u16,
    body: Vec<u8>,
    json: bool,
    overflow: bool,
    /// The keyed hash of the username, once the body ended.
    pub user: Option<UserHash>,
}

impl LoginAttempt {
    /// The attempt, when the request is one on a declared endpoint.
    pub fn start(
        bots: &BotsPolicy,
        method: &str,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<LoginAttempt> {
        let index = bots.logins.iter().position(|l| l.matches(method, path))?;
        let json = headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| memchr::memmem::find(v.as_bytes(), b"json").is_some());
        Some(LoginAttempt {
            index: u16::try_from(index).ok()?,
            body: Vec::new(),
            json,
            overflow: false,
            user: None,
        })
    }

    /// Copies a chunk of the body (up to the cap).
    pub fn push(&mut self, chunk: &[u8]) {
        if self.body.len() + chunk.len() > MAX_BODY {
            self.overflow = true;
            return;
        }
        self.body.extend_from_slice(chunk);
    }

    /// The body ended: reads and hashes the username; returns what the
    /// fleet says of it (a marked, guessed username). Without the fleet's
    /// key, nothing is read.
    pub fn finish(&mut self, st: &EdgeState, bots: &BotsPolicy, now: u64) -> Option<Action> {
        let body = std::mem::take(&mut self.body);
        if self.overflow {
            return None;
        }
        let spec = bots.logins.get(usize::from(self.index))?;
        let keys = st.bots.clearances.keys()?;
        let name = if self.json {
            username_from_json(&body, &spec.username.name)
        } else {
            username_from_form(&body, &spec.username.name)
        }?;
        let user = username_key_hash(keys.username_key(), &name);
        drop(name);
        self.user = Some(user);
        st.bots.logins.username_state(&user, now)
    }

    /// The origin answered: a failure becomes a report for the fleet.
    pub fn answered(
        &self,
        st: &EdgeState,
        bots: &BotsPolicy,
        status: u16,
        headers: &http::HeaderMap,
        ip: IpAddr,
        asn: Option<u32>,
        now: u64,
    ) {
        let (Some(user), Some(spec)) = (self.user, bots.logins.get(usize::from(self.index))) else {
            return;
        };
        if !spec.is_failure(status, |h| headers.contains_key(h)) {
            return;
        }
        st.metrics
            .bots
            .login_failures
            .with_label_values(&[spec.path.as_str()])
            .inc();
        let report = FailureReport {
            node: st.node_id.clone(),
            time_ms: now,
            ip,
            asn,
            user,
            login: self.index,
        };
        if st.bots.reports.lock().push(report) {
            st.bots.reports_ready.notify_one();
        }
    }
}
