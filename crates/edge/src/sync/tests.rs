use super::*;
use crate::client_ip::TrustedProxies;
use crate::config::Limits;
use crate::events::EventSink;
use palisade_mesh::{DecisionOp, MemoryMesh};
use palisade_policy::decisions::Scope;
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::{Decision, DecisionAction};

fn state() -> Arc<EdgeState> {
    Arc::new(
        EdgeState::new(
            "test".into(),
            Policy::empty(),
            RateLimiter::new(1000),
            None,
            EventSink::new(None).unwrap(),
            TrustedProxies::new(Vec::new()),
            Limits::default(),
        )
        .unwrap(),
    )
}

fn ban(id: u64, value: &str) -> DecisionOp {
    DecisionOp::Upsert {
        decision: Decision {
            id,
            scope: Scope::Ip,
            value: value.into(),
            action: DecisionAction::Ban,
            reason: "test".into(),
            origin: "api".into(),
            simulated: false,
            created_at: 1,
            expires_at: None,
        },
    }
}

fn delete(value: &str) -> DecisionOp {
    DecisionOp::Delete {
        scope: Scope::Ip,
        value: value.into(),
    }
}

/// Waits (up to 30 s) until the edge applied `seq`.
async fn applied(state: &EdgeState, seq: u64) {
    for _ in 0..3000 {
        if state.decisions_seq() >= seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the edge did not reach {seq} (at {})",
        state.decisions_seq()
    );
}

fn has(state: &EdgeState, ip: &str) -> bool {
    state.with_decisions(|d| d.get_key(Scope::Ip, ip).is_some())
}

#[tokio::test]
async fn an_edge_offline_past_the_tombstone_retention_resyncs() {
    let mesh = Arc::new(MemoryMesh::new().with_tombstone_retention(60_000));
    let st = state();
    let pending = Arc::new(parking_lot::Mutex::new(Pending::default()));
    for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        mesh.publish_decision(ban(i as u64 + 1, ip)).await.unwrap();
    }
    let head = mesh.decisions_head().await.unwrap();
    let follow = tokio::spawn(follow_decisions(st.clone(), mesh.clone(), pending.clone()));
    applied(&st, head).await;
    assert!(has(&st, "192.0.2.1"));
    // The edge goes away; meanwhile a decision is deleted, another added, and
    // the log drops the delete once past its retention.
    follow.abort();
    let _ = follow.await;
    let away_at = st.decisions_seq();
    mesh.publish_decision(delete("192.0.2.1")).await.unwrap();
    mesh.publish_decision(ban(9, "192.0.2.9")).await.unwrap();
    assert_eq!(
        mesh.compact_decisions(now_ms() + 3_600_000),
        1,
        "the tombstone is dropped"
    );
    let floor = mesh.decisions_floor().await.unwrap();
    assert!(floor > away_at, "floor {floor}, edge at {away_at}");
    // It returns: the table is rebuilt, the deleted decision is gone.
    let head = mesh.decisions_head().await.unwrap();
    let follow = tokio::spawn(follow_decisions(st.clone(), mesh.clone(), pending.clone()));
    applied(&st, head).await;
    assert!(
        !has(&st, "192.0.2.1"),
        "a delete missed while away must not survive"
    );
    assert!(has(&st, "192.0.2.2") && has(&st, "192.0.2.9"));
    assert_eq!(st.metrics.decision_resyncs.get(), 1);
    assert!(
        pending.lock().snapshot,
        "the rebuilt table is persisted whole"
    );
    // Afterwards it follows live as usual.
    let seq = mesh.publish_decision(delete("192.0.2.2")).await.unwrap();
    applied(&st, seq).await;
    assert!(!has(&st, "192.0.2.2"));
    assert_eq!(st.metrics.decision_resyncs.get(), 1);
    follow.abort();
}

#[tokio::test]
async fn an_edge_ahead_of_a_restarted_log_resyncs() {
    // A log that restarted below the edge (a new stream): rebuilt, not ignored.
    let old = Arc::new(MemoryMesh::new());
    let st = state();
    let pending = Arc::new(parking_lot::Mutex::new(Pending::default()));
    for i in 0..10u8 {
        old.publish_decision(ban(u64::from(i) + 1, &format!("198.51.100.{i}")))
            .await
            .unwrap();
    }
    let follow = tokio::spawn(follow_decisions(st.clone(), old.clone(), pending.clone()));
    applied(&st, 10).await;
    follow.abort();
    let _ = follow.await;
    let new = Arc::new(MemoryMesh::new());
    new.publish_decision(ban(1, "203.0.113.1")).await.unwrap();
    let follow = tokio::spawn(follow_decisions(st.clone(), new.clone(), pending.clone()));
    for _ in 0..3000 {
        if has(&st, "203.0.113.1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(has(&st, "203.0.113.1"));
    assert!(!has(&st, "198.51.100.1"));
    assert_eq!(st.decisions_seq(), 1);
    follow.abort();
}
