//! The shared behaviour suite against the in-process backend.

mod suite;

use palisade_mesh::MemoryMesh;

#[tokio::test]
async fn decisions_replay_follow_compaction() -> anyhow::Result<()> {
    suite::decisions_replay_follow_compaction(&MemoryMesh::new()).await
}

#[tokio::test]
async fn decisions_bulk_publish() -> anyhow::Result<()> {
    suite::decisions_bulk_publish(&MemoryMesh::new()).await
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

/// The in-process event log is bounded in bytes as well as in count, and
/// keeps every event it stores bounded (`SecurityEvent::bound`) whatever
/// the publisher sent.
#[tokio::test]
async fn the_event_log_is_bounded_in_bytes() -> anyhow::Result<()> {
    use palisade_mesh::Mesh;
    use palisade_policy::event::MAX_EVENT_BYTES;
    let m = MemoryMesh::with_event_limits(1_000, 64 * 1024);
    for i in 0..200 {
        let mut ev = suite::event(i);
        ev.path = format!("/{}", "p".repeat(100_000));
        m.publish_event(&ev).await?;
    }
    let dropped = m.events_dropped();
    assert!(
        (100..200).contains(&dropped),
        "64 KiB hold fewer than 100 events of about 700 bytes: {dropped} dropped"
    );
    let mut s = m.consume_events("x").await?;
    let first = suite::within("event", s.next()).await?.unwrap()?;
    assert_eq!(first.event.time_ms, dropped, "the oldest went first");
    assert!(first.event.json_len() <= MAX_EVENT_BYTES);
    assert!(first.event.path.len() <= palisade_policy::event::field_limits::PATH);
    Ok(())
}

/// With interest retention (`palisade up`), acknowledged events leave the
/// log: it holds only what is in flight, whatever the traffic.
#[tokio::test]
async fn interest_retention_drops_acknowledged_events() -> anyhow::Result<()> {
    use palisade_mesh::Mesh;
    let m = MemoryMesh::new().with_interest_retention();
    for i in 0..100 {
        m.publish_event(&suite::event(i)).await?;
    }
    assert_eq!(m.events_retained(), 100);
    let mut s = m.consume_events("control").await?;
    let mut kept = None;
    for i in 0..100 {
        let d = suite::within("event", s.next()).await?.unwrap()?;
        assert_eq!(d.event.time_ms, i);
        if i == 50 {
            kept = Some(d); // in flight: not acknowledged yet
        } else {
            d.ack().await?;
        }
    }
    // 0..50 are gone; 50 holds the rest back until it is acknowledged.
    assert_eq!(m.events_retained(), 50);
    kept.unwrap().ack().await?;
    assert_eq!(m.events_retained(), 0);
    // Without interest retention the log keeps them (up to its caps).
    let plain = MemoryMesh::new();
    plain.publish_event(&suite::event(1)).await?;
    let mut s = plain.consume_events("control").await?;
    suite::within("event", s.next())
        .await?
        .unwrap()?
        .ack()
        .await?;
    assert_eq!(plain.events_retained(), 1);
    Ok(())
}

#[tokio::test]
async fn counts_broadcast() -> anyhow::Result<()> {
    let m = MemoryMesh::new();
    suite::counts_broadcast(&m, &m.clone()).await
}
