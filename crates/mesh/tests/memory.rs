//! The shared behaviour suite against the in-process backend.

mod suite;

use palisade_mesh::MemoryMesh;

#[tokio::test]
async fn decisions_replay_follow_compaction() -> anyhow::Result<()> {
    suite::decisions_replay_follow_compaction(&MemoryMesh::new()).await
}

#[tokio::test]
async fn decisions_resync_from_snapshot() -> anyhow::Result<()> {
    suite::decisions_resync_from_snapshot(&MemoryMesh::new()).await
}

#[tokio::test]
async fn policy_versions_and_watch() -> anyhow::Result<()> {
    let m = MemoryMesh::new();
    suite::policy_versions_and_watch(&m, &m.clone()).await
}

#[tokio::test]
async fn events_durable() -> anyhow::Result<()> {
    let m = MemoryMesh::new();
    suite::events_durable(&m, &m.clone()).await
}

#[tokio::test]
async fn heartbeats() -> anyhow::Result<()> {
    suite::heartbeats(&MemoryMesh::new()).await
}

#[tokio::test]
async fn compaction_keeps_one_op_per_key_and_bounded_events() -> anyhow::Result<()> {
    use palisade_mesh::Mesh;
    use palisade_policy::decisions::Scope;
    let m = MemoryMesh::with_event_capacity(3);
    for i in 0..100 {
        m.publish_decision(suite::upsert(suite::ban(i, Scope::Ip, "192.0.2.9")))
            .await?;
    }
    m.publish_decision(suite::delete(Scope::Ip, "192.0.2.9"))
        .await?;
    assert_eq!(m.decisions_retained(), 1);
    for i in 0..5 {
        m.publish_event(&suite::event(i)).await?;
    }
    assert_eq!(m.events_dropped(), 2);
    let mut s = m.consume_events("x").await?;
    let first = suite::within("event", s.next()).await?.unwrap()?;
    assert_eq!(first.event.time_ms, 2);
    Ok(())
}

#[tokio::test]
async fn stats_latest_per_node() -> anyhow::Result<()> {
    let m = MemoryMesh::new();
    suite::stats_latest_per_node(&m, &m.clone()).await
}
