//! The control plane's embedded store (SQLite under the data dir): what only
//! queries need — security events from every node. Policy versions and
//! decisions live in the mesh.

use crate::correlate::{Incident, IncidentKind};
use palisade_mesh::PolicyVersion;
use palisade_policy::SecurityEvent;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

fn kind_str(k: IncidentKind) -> &'static str {
    match k {
        IncidentKind::SourceAcrossNodes => "source_across_nodes",
        IncidentKind::RuleAcrossNodes => "rule_across_nodes",
    }
}

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Events at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Events before this time.
    pub until: Option<u64>,
    /// Only from this node.
    pub node: Option<String>,
    /// Only for this client address.
    pub client_ip: Option<String>,
    /// Only for this rule, limit or decision id.
    pub rule: Option<String>,
    /// At most this many, newest first (default 100, at most 10,000).
    pub limit: Option<u32>,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// How long and how much the store keeps (`--event-retention`,
/// `--event-max-rows`, `--incident-max-rows`): events and incidents are
/// client-driven, so the store is bounded in age and in rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Events and incidents older than this are deleted.
    pub max_age_ms: u64,
    /// Events kept at most (the oldest go first).
    pub max_events: u64,
    /// Incidents kept at most.
    pub max_incidents: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_ms: 30 * 24 * 3600 * 1000,
            max_events: 1_000_000,
            max_incidents: 100_000,
        }
    }
}

/// Deletes the rows of `table` whose `time` is before `cutoff`, then the
/// first rows by `order` beyond `max`; returns how many went. Table and
/// column names are this module's constants, never input.
fn prune_table(
    conn: &Connection,
    table: &str,
    time: &str,
    order: &str,
    cutoff: i64,
    max: u64,
) -> Result<u64, StoreError> {
    let mut n = conn.execute(
        &format!("DELETE FROM {table} WHERE {time} < ?1"),
        params![cutoff],
    )? as u64;
    let rows: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })?;
    let over = rows - max.min(i64::MAX as u64) as i64;
    if over > 0 {
        n += conn.execute(
            &format!("DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {order} LIMIT ?1)"),
            params![over],
        )? as u64;
    }
    Ok(n)
}

/// Security events, queryable by time, node, client and rule.
pub struct EventStore {
    conn: Mutex<Connection>,
}

impl EventStore {
    /// Opens (or creates) `DIR/control.sqlite`.
    pub fn open(dir: &Path) -> Result<EventStore, StoreError> {
        let conn = Connection::open(dir.join("control.sqlite"))?;
        Self::init(conn)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<EventStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<EventStore, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS events (
                 node TEXT NOT NULL,
                 request_id TEXT NOT NULL,
                 rule_id TEXT NOT NULL,
                 time_ms INTEGER NOT NULL,
                 client_ip TEXT NOT NULL,
                 body TEXT NOT NULL,
                 PRIMARY KEY (node, request_id, rule_id)
             );
             CREATE INDEX IF NOT EXISTS events_time ON events (time_ms);
             CREATE INDEX IF NOT EXISTS events_client ON events (client_ip, time_ms);
             CREATE INDEX IF NOT EXISTS events_rule ON events (rule_id, time_ms);
             CREATE TABLE IF NOT EXISTS policy_versions (
                 version INTEGER PRIMARY KEY,
                 body TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS incidents (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind TEXT NOT NULL,
                 key TEXT NOT NULL,
                 nodes TEXT NOT NULL,
                 events INTEGER NOT NULL,
                 first_ms INTEGER NOT NULL,
                 last_ms INTEGER NOT NULL
             );",
        )?;
        Ok(EventStore {
            conn: Mutex::new(conn),
        })
    }

    /// Stores an event; a redelivered event (same node, request and rule) is stored once.
    pub fn insert(&self, ev: &SecurityEvent) -> Result<bool, StoreError> {
        let body = serde_json::to_string(ev).map_err(|e| StoreError(e.to_string()))?;
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let n = conn.execute(
            "INSERT OR IGNORE INTO events (node, request_id, rule_id, time_ms, client_ip, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![ev.node, ev.request_id, ev.rule_id, ev.time_ms as i64, ev.client_ip.to_string(), body],
        )?;
        Ok(n == 1)
    }

    /// Stores events in one transaction (a commit per event cannot keep up
    /// with a flood); for each, whether it was new. On an error nothing is
    /// stored.
    pub fn insert_batch(&self, evs: &[SecurityEvent]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let tx = conn.transaction()?;
        let mut out = Vec::with_capacity(evs.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (node, request_id, rule_id, time_ms, client_ip, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for ev in evs {
                let body = serde_json::to_string(ev).map_err(|e| StoreError(e.to_string()))?;
                let n = stmt.execute(params![
                    ev.node,
                    ev.request_id,
                    ev.rule_id,
                    ev.time_ms as i64,
                    ev.client_ip.to_string(),
                    body
                ])?;
                out.push(n == 1);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Events matching `f`, newest first.
    pub fn query(&self, f: &EventFilter) -> Result<Vec<SecurityEvent>, StoreError> {
        let mut sql = String::from("SELECT body FROM events WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = f.since {
            sql.push_str(" AND time_ms >= ?");
            args.push((s as i64).into());
        }
        if let Some(u) = f.until {
            sql.push_str(" AND time_ms < ?");
            args.push((u as i64).into());
        }
        if let Some(n) = &f.node {
            sql.push_str(" AND node = ?");
            args.push(n.clone().into());
        }
        if let Some(ip) = &f.client_ip {
            sql.push_str(" AND client_ip = ?");
            args.push(ip.clone().into());
        }
        if let Some(r) = &f.rule {
            sql.push_str(" AND rule_id = ?");
            args.push(r.clone().into());
        }
        sql.push_str(" ORDER BY time_ms DESC LIMIT ?");
        args.push(i64::from(f.limit.unwrap_or(100).min(10_000)).into());
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(ev) = serde_json::from_str(&body?) {
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// Archives a policy version (embedded mode: the in-process mesh keeps them in memory only).
    pub fn save_policy_version(&self, v: &PolicyVersion) -> Result<(), StoreError> {
        let body = serde_json::to_string(v).map_err(|e| StoreError(e.to_string()))?;
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        conn.execute(
            "INSERT OR REPLACE INTO policy_versions (version, body) VALUES (?1, ?2)",
            params![v.version as i64, body],
        )?;
        Ok(())
    }

    /// Every archived policy version, oldest first.
    pub fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let mut stmt = conn.prepare("SELECT body FROM policy_versions ORDER BY version")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(v) = serde_json::from_str(&body?) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Stores a new incident; returns its id.
    pub fn open_incident(&self, inc: &Incident) -> Result<u64, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        conn.execute(
            "INSERT INTO incidents (kind, key, nodes, events, first_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                kind_str(inc.kind),
                inc.key,
                serde_json::to_string(&inc.nodes).unwrap_or_default(),
                inc.events as i64,
                inc.first_ms as i64,
                inc.last_ms as i64
            ],
        )?;
        Ok(conn.last_insert_rowid() as u64)
    }

    /// Updates an open incident.
    pub fn update_incident(&self, id: u64, inc: &Incident) -> Result<(), StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        conn.execute(
            "UPDATE incidents SET nodes = ?1, events = ?2, last_ms = ?3 WHERE id = ?4",
            params![
                serde_json::to_string(&inc.nodes).unwrap_or_default(),
                inc.events as i64,
                inc.last_ms as i64,
                id as i64
            ],
        )?;
        Ok(())
    }

    /// The newest incidents.
    pub fn incidents(&self, limit: u32) -> Result<Vec<serde_json::Value>, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let mut stmt = conn.prepare(
            "SELECT id, kind, key, nodes, events, first_ms, last_ms FROM incidents ORDER BY last_ms DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![i64::from(limit.min(10_000))], |r| {
            let nodes: String = r.get(3)?;
            Ok(serde_json::json!({
                "id": r.get::<_, i64>(0)?,
                "kind": r.get::<_, String>(1)?,
                "key": r.get::<_, String>(2)?,
                "nodes": serde_json::from_str::<serde_json::Value>(&nodes).unwrap_or_default(),
                "events": r.get::<_, i64>(4)?,
                "first_ms": r.get::<_, i64>(5)?,
                "last_ms": r.get::<_, i64>(6)?,
            }))
        })?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    /// Applies `r`: deletes events older than `r.max_age_ms` (by event
    /// time), then the oldest events beyond `r.max_events`; the same for
    /// incidents (by last block). Returns (events, incidents) deleted.
    pub fn prune(&self, now_ms: u64, r: &Retention) -> Result<(u64, u64), StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let cutoff = now_ms.saturating_sub(r.max_age_ms) as i64;
        let events = prune_table(
            &conn,
            "events",
            "time_ms",
            "time_ms ASC",
            cutoff,
            r.max_events,
        )?;
        let incidents = prune_table(
            &conn,
            "incidents",
            "last_ms",
            "last_ms ASC, id ASC",
            cutoff,
            r.max_incidents,
        )?;
        Ok((events, incidents))
    }

    /// Number of stored events.
    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let n: Option<i64> = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::CheckKind;

    fn ev(node: &str, id: &str, rule: &str, t: u64, ip: &str) -> SecurityEvent {
        SecurityEvent {
            time_ms: t,
            node: node.into(),
            request_id: id.into(),
            client_ip: ip.parse().unwrap(),
            check: CheckKind::Rule,
            rule_id: rule.into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            status: Some(403),
            waf: None,
            bot: None,
        }
    }

    #[test]
    fn a_batch_is_stored_once_and_tells_what_was_new() {
        let s = EventStore::in_memory().unwrap();
        assert!(s.insert(&ev("e1", "a", "r1", 10, "192.0.2.1")).unwrap());
        let batch = [
            ev("e1", "a", "r1", 10, "192.0.2.1"), // redelivered
            ev("e1", "b", "r1", 20, "192.0.2.2"),
            ev("e1", "b", "r1", 20, "192.0.2.2"), // twice in one batch
            ev("e2", "c", "r2", 30, "192.0.2.3"),
        ];
        assert_eq!(
            s.insert_batch(&batch).unwrap(),
            vec![false, true, false, true]
        );
        assert_eq!(s.count().unwrap(), 3);
        let all = s.query(&EventFilter::default()).unwrap();
        assert_eq!(
            all.iter().map(|e| e.time_ms).collect::<Vec<_>>(),
            vec![30, 20, 10]
        );
        assert_eq!(s.insert_batch(&[]).unwrap(), Vec::<bool>::new());
    }

    #[test]
    fn stores_once_and_filters() {
        let s = EventStore::in_memory().unwrap();
        assert!(s.insert(&ev("e1", "a", "r1", 10, "192.0.2.1")).unwrap());
        assert!(
            !s.insert(&ev("e1", "a", "r1", 10, "192.0.2.1")).unwrap(),
            "redelivery stored twice"
        );
        s.insert(&ev("e2", "b", "r2", 20, "192.0.2.2")).unwrap();
        s.insert(&ev("e1", "c", "r1", 30, "192.0.2.2")).unwrap();
        assert_eq!(s.count().unwrap(), 3);
        let all = s.query(&EventFilter::default()).unwrap();
        assert_eq!(
            all.iter().map(|e| e.time_ms).collect::<Vec<_>>(),
            vec![30, 20, 10]
        );
        let f = EventFilter {
            node: Some("e1".into()),
            ..Default::default()
        };
        assert_eq!(s.query(&f).unwrap().len(), 2);
        let f = EventFilter {
            client_ip: Some("192.0.2.2".into()),
            rule: Some("r1".into()),
            ..Default::default()
        };
        assert_eq!(s.query(&f).unwrap().len(), 1);
        let f = EventFilter {
            since: Some(15),
            until: Some(30),
            ..Default::default()
        };
        assert_eq!(s.query(&f).unwrap()[0].request_id, "b");
        let f = EventFilter {
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(s.query(&f).unwrap().len(), 1);
    }

    #[test]
    fn waf_evidence_round_trips() {
        let s = EventStore::in_memory().unwrap();
        let mut e = ev("e1", "w", "949110", 10, "192.0.2.1");
        e.check = CheckKind::Waf;
        e.waf = Some(palisade_policy::WafEventDetail {
            anomaly_score: 10,
            rules: vec![palisade_policy::WafRuleHit {
                id: 942100,
                msg: "SQL Injection Attack Detected via libinjection".into(),
                data: "Matched Data: s&sos found within ARGS:q: 1' OR '1'='1".into(),
                var: "ARGS:q".into(),
                vars: Vec::new(),
            }],
            ..Default::default()
        });
        s.insert(&e).unwrap();
        s.insert(&ev("e1", "x", "r1", 20, "192.0.2.1")).unwrap();
        let f = EventFilter {
            rule: Some("949110".into()),
            ..Default::default()
        };
        assert_eq!(s.query(&f).unwrap(), vec![e]);
        let all = s.query(&EventFilter::default()).unwrap();
        assert_eq!(all[0].waf, None);
    }

    #[test]
    fn archives_policy_versions_in_order() {
        let s = EventStore::in_memory().unwrap();
        for v in [2u64, 1] {
            s.save_policy_version(&PolicyVersion {
                version: v,
                source: format!("# v{v}"),
                digest: "d".into(),
                author: "a".into(),
                created_at: v,
            })
            .unwrap();
        }
        let vs = s.policy_versions().unwrap();
        assert_eq!(vs.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn retention_prunes_by_age_then_by_rows() {
        use crate::correlate::{Incident, IncidentKind};
        let s = EventStore::in_memory().unwrap();
        for t in 0..100u64 {
            s.insert(&ev("n1", &format!("r{t}"), "x", t * 1000, "192.0.2.1"))
                .unwrap();
        }
        for t in 0..10u64 {
            s.open_incident(&Incident {
                kind: IncidentKind::SourceAcrossNodes,
                key: format!("192.0.2.{t}"),
                nodes: Default::default(),
                events: 1,
                first_ms: t * 10_000,
                last_ms: t * 10_000,
            })
            .unwrap();
        }
        let r = Retention {
            max_age_ms: 50_000,
            max_events: 30,
            max_incidents: 3,
        };
        // At t = 99 s: events before 49 s go by age (49), then the oldest
        // beyond 30 rows (21); incidents before 49 s (5), then beyond 3 (2).
        assert_eq!(s.prune(99_000, &r).unwrap(), (70, 7));
        assert_eq!(s.count().unwrap(), 30);
        let newest = s.query(&EventFilter::default()).unwrap();
        assert_eq!(newest.first().unwrap().time_ms, 99_000);
        assert_eq!(newest.last().unwrap().time_ms, 70_000, "the oldest went");
        assert_eq!(s.incidents(100).unwrap().len(), 3);
        // Nothing more to do.
        assert_eq!(s.prune(99_000, &r).unwrap(), (0, 0));
    }
}
