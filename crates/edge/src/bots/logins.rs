//! Account protection in the request path: the body of a request to a
//! declared login endpoint (`[[bots.logins]]`) is **held** at the edge (up
//! to [`palisade_bots::logins::MAX_BODY`]) until it ends; then the username
//! is read (a JSON path when the media type is JSON, else a form field;
//! the other format is tried when the first finds nothing), normalized and
//! hashed with the fleet's username key — the clear text is dropped at
//! once — and checked against the usernames the fleet marked as guessed
//! before the body goes upstream. When the origin answers with a failure
//! (a status or a header of the policy), a report with the hash goes to
//! the fleet ([`super::share`]), where every node counts it.
//!
//! Evasions it closes: a form that repeats the field is counted under each
//! value (up to [`MAX_VALUES`]); a body without a readable username (a
//! padded or oddly typed one, a multipart form) counts as the *unknown*
//! username (the hash of the empty name), so its source still adds up; the
//! first 64 KiB of a longer body are still read; the path matches whatever
//! its case and trailing slash.

use crate::state::EdgeState;
use bytes::{Bytes, BytesMut};
use palisade_bots::logins::{
    username_from_json, username_key_hash, usernames_from_form, Action, FailureReport, UserHash,
    MAX_BODY,
};
use palisade_policy::bots::BotsPolicy;
use std::net::IpAddr;

/// The most values of a repeated username field counted.
pub const MAX_VALUES: usize = 4;

/// One login attempt in flight.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The endpoint's index in `[[bots.logins]]`.
    pub index: u16,
    held: BytesMut,
    json: bool,
    /// The body went past the cap: the rest streams, the head was read.
    overflow: bool,
    /// The keyed hashes of the usernames tried, once the body ended.
    pub users: Vec<UserHash>,
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
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let media = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                media == "application/json" || media.ends_with("+json")
            })
            .unwrap_or(false);
        Some(LoginAttempt {
            index: u16::try_from(index).ok()?,
            held: BytesMut::new(),
            json,
            overflow: false,
            users: Vec::new(),
        })
    }

    /// Takes a chunk of the body: held (the upstream gets an empty chunk)
    /// until the end or the cap; past the cap, what was held and the rest
    /// go on.
    pub fn hold(&mut self, body: &mut Option<Bytes>) {
        let Some(chunk) = body.take() else {
            return;
        };
        if self.overflow {
            *body = Some(chunk);
            return;
        }
        if self.held.len() + chunk.len() > MAX_BODY {
            self.overflow = true;
            let mut all = std::mem::take(&mut self.held);
            all.extend_from_slice(&chunk);
            // Keep the head for the username; release everything.
            self.held.extend_from_slice(&all[..MAX_BODY.min(all.len())]);
            *body = Some(all.freeze());
            return;
        }
        self.held.extend_from_slice(&chunk);
        *body = Some(Bytes::new());
    }

    /// The body ended: reads and hashes the username(s); returns what the
    /// fleet says of them (the strongest mark) and, at the end of a held
    /// body, puts the body back for the upstream.
    pub fn finish(
        &mut self,
        st: &EdgeState,
        bots: &BotsPolicy,
        body: &mut Option<Bytes>,
        now: u64,
    ) -> Option<(Action, u64)> {
        let head = if self.overflow {
            std::mem::take(&mut self.held).freeze()
        } else {
            let mut all = std::mem::take(&mut self.held);
            if let Some(last) = body.take() {
                all.extend_from_slice(&last);
            }
            let all = all.freeze();
            *body = Some(all.clone());
            all
        };
        let spec = bots.logins.get(usize::from(self.index))?;
        let keys = st.bots.clearances.keys()?;
        let head = &head[..head.len().min(MAX_BODY)];
        let field = &spec.username.name;
        let from_json = || {
            username_from_json(head, field)
                .into_iter()
                .collect::<Vec<_>>()
        };
        let from_form = || usernames_from_form(head, field, MAX_VALUES);
        let mut names = if self.json { from_json() } else { from_form() };
        if names.is_empty() {
            names = if self.json { from_form() } else { from_json() };
        }
        if names.is_empty() {
            // No readable username: the unknown one.
            names.push(String::new());
        }
        self.users = names
            .iter()
            .map(|n| username_key_hash(keys.username_key(), n))
            .collect();
        drop(names);
        let guard = &st.bots.logins;
        self.users
            .iter()
            .filter_map(|u| Some((guard.username_state(u, now)?, guard.username_until(u, now)?)))
            .max_by_key(|(a, _)| matches!(a, Action::Ban))
            .map(|(a, until)| (a, until.saturating_sub(spec.guessing.duration_ms)))
    }

    /// The origin answered: a failure becomes reports for the fleet.
    #[allow(clippy::too_many_arguments)]
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
        let Some(spec) = bots.logins.get(usize::from(self.index)) else {
            return;
        };
        if self.users.is_empty() || !spec.is_failure(status, |h| headers.contains_key(h)) {
            return;
        }
        st.metrics
            .bots
            .login_failures
            .with_label_values(&[spec.path.as_str()])
            .inc();
        let mut queued = false;
        {
            let mut reports = st.bots.reports.lock();
            for user in &self.users {
                queued |= reports.push(FailureReport {
                    node: st.node_id.clone(),
                    time_ms: now,
                    ip,
                    asn,
                    user: *user,
                    login: self.index,
                });
            }
        }
        if queued {
            st.bots.reports_ready.notify_one();
        }
    }
}
