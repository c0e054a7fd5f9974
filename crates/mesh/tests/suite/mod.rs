//! Behaviour every `Mesh` backend must show, run against each of them.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use palisade_mesh::{DecisionOp, DecisionReplica, DecisionStream, DecisionUpdate, Heartbeat, Mesh};
use palisade_policy::decisions::Scope;
use palisade_policy::{CheckKind, Decision, DecisionAction, SecurityEvent};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(WAIT, fut)
        .await
        .with_context(|| format!("timed out waiting for {what}"))
}

pub fn ban(id: u64, scope: Scope, value: &str) -> Decision {
    Decision {
        id,
        scope,
        value: value.into(),
        action: DecisionAction::Ban,
        reason: "test".into(),
        origin: "suite".into(),
        simulated: false,
        created_at: 1,
        expires_at: None,
    }
}

pub fn upsert(d: Decision) -> DecisionOp {
    DecisionOp::Upsert { decision: d }
}

pub fn delete(scope: Scope, value: &str) -> DecisionOp {
    DecisionOp::Delete {
        scope,
        value: value.into(),
    }
}

pub fn event(i: u64) -> SecurityEvent {
    SecurityEvent {
        time_ms: i,
        node: "edge-test".into(),
        request_id: format!("req-{i}"),
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 250) as u8)),
        check: CheckKind::Rule,
        rule_id: "r1".into(),
        action: "block".into(),
        simulate: false,
        method: "GET".into(),
        host: "example.test".into(),
        path: "/".into(),
        status: Some(403),
        waf: None,
        bot: None,
    }
}

pub async fn next_update(s: &mut DecisionStream) -> Result<DecisionUpdate> {
    match within("a decision update", s.next()).await? {
        Some(Ok(u)) => Ok(u),
        Some(Err(e)) => bail!("decision stream error: {e}"),
        None => bail!("decision stream ended"),
    }
}

/// Follows the log into `replica` until it reaches `head`, resubscribing
/// from `last_seq` whenever the subscription ends (as an edge does).
pub async fn catch_up(mesh: &impl Mesh, replica: &mut DecisionReplica, head: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while replica.last_seq() < head {
        if tokio::time::Instant::now() > deadline {
            bail!("replica stuck at {} < {head}", replica.last_seq());
        }
        let Ok(mut s) = mesh.decisions_since(replica.last_seq()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while replica.last_seq() < head {
            match tokio::time::timeout(Duration::from_secs(2), s.next()).await {
                Ok(Some(Ok(u))) => {
                    replica.apply(u);
                }
                _ => break,
            }
        }
    }
    Ok(())
}

/// Replay then follow, with compaction: only the latest op per key is replayed.
pub async fn decisions_replay_follow_compaction(mesh: &impl Mesh) -> Result<()> {
    let s1 = mesh
        .publish_decision(upsert(ban(1, Scope::Ip, "192.0.2.1")))
        .await?;
    let s2 = mesh
        .publish_decision(upsert(ban(2, Scope::Cidr, "10.1.2.3/8")))
        .await?;
    // Same key as s1, spelled differently: replaces it.
    let mut again = ban(3, Scope::Ip, "::ffff:192.0.2.1");
    again.reason = "again".into();
    let s3 = mesh.publish_decision(upsert(again)).await?;
    let s4 = mesh
        .publish_decision(delete(Scope::Cidr, "10.0.0.0/8"))
        .await?;
    assert!(s1 < s2 && s2 < s3 && s3 < s4, "{s1} {s2} {s3} {s4}");
    assert_eq!(mesh.decisions_head().await?, s4);
    assert!(mesh
        .publish_decision(upsert(ban(9, Scope::Country, "France")))
        .await
        .is_err());

    let mut all = mesh.decisions_since(0).await?;
    let u = next_update(&mut all).await?;
    assert_eq!(u.seq, s3);
    match &u.op {
        DecisionOp::Upsert { decision } => {
            assert_eq!(decision.value, "192.0.2.1");
            assert_eq!(decision.reason, "again");
        }
        op => bail!("unexpected {op:?}"),
    }
    let u = next_update(&mut all).await?;
    assert_eq!(u.seq, s4);
    assert_eq!(u.op.key(), "cidr:10.0.0.0/8");

    // Live: a subscriber from the middle and the replaying one both follow.
    let mut mid = mesh.decisions_since(s3).await?;
    let s5 = mesh
        .publish_decision(upsert(ban(5, Scope::Asn, "AS64500")))
        .await?;
    assert_eq!(next_update(&mut all).await?.seq, s5);
    assert_eq!(next_update(&mut mid).await?.seq, s4);
    let u = next_update(&mut mid).await?;
    assert_eq!((u.seq, u.op.key()), (s5, "asn:64500".to_owned()));

    // Subscribing at the head delivers only what comes next.
    let mut at_head = mesh.decisions_since(s5).await?;
    let s6 = mesh.publish_decision(delete(Scope::Asn, "64501")).await?;
    assert_eq!(next_update(&mut at_head).await?.seq, s6);
    assert_eq!(next_update(&mut all).await?.seq, s6);

    // A replica built from the log holds exactly the live decisions.
    let mut replica = DecisionReplica::new();
    catch_up(mesh, &mut replica, s6).await?;
    let mut keys: Vec<String> = replica
        .set()
        .iter()
        .map(|d| format!("{}:{}", d.scope, d.value()))
        .collect();
    keys.sort();
    assert_eq!(keys, ["asn:64500", "ip:192.0.2.1"]);
    Ok(())
}

/// Resync: a replica restored from a snapshot catches up from its last_seq.
pub async fn decisions_resync_from_snapshot(mesh: &impl Mesh) -> Result<()> {
    let mut replica = DecisionReplica::new();
    let mut head = 0;
    for i in 0..20u8 {
        head = mesh
            .publish_decision(upsert(ban(
                u64::from(i) + 100,
                Scope::Ip,
                &format!("198.51.100.{i}"),
            )))
            .await?;
    }
    catch_up(mesh, &mut replica, head).await?;
    let saved = serde_json::to_string(&replica.snapshot())?;
    // While the edge is away: deletes, replacements, new keys.
    for i in 0..10u8 {
        mesh.publish_decision(delete(Scope::Ip, &format!("198.51.100.{i}")))
            .await?;
    }
    for i in 20..25u8 {
        head = mesh
            .publish_decision(upsert(ban(
                u64::from(i) + 100,
                Scope::Ip,
                &format!("198.51.100.{i}"),
            )))
            .await?;
    }
    let mut back = DecisionReplica::restore(serde_json::from_str(&saved)?)?;
    assert_eq!(back.set().len(), 20);
    catch_up(mesh, &mut back, head).await?;
    let mut fresh = DecisionReplica::new();
    catch_up(mesh, &mut fresh, head).await?;
    let ids = |r: &DecisionReplica| r.set().iter().map(|d| d.id).collect::<BTreeSet<_>>();
    assert_eq!(ids(&back), ids(&fresh));
    assert_eq!(ids(&back), (110..125).collect::<BTreeSet<u64>>());
    Ok(())
}

/// A bulk publish appends every op in order (later ops of a key win), refuses
/// a batch with one invalid op as a whole, and followers see the result.
pub async fn decisions_bulk_publish(mesh: &impl Mesh) -> Result<()> {
    let before = mesh.decisions_head().await?;
    let mut ops: Vec<DecisionOp> = (0..3000u32)
        .map(|i| {
            upsert(ban(
                u64::from(i) + 1,
                Scope::Ip,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff),
            ))
        })
        .collect();
    // A later op of the same key wins, as with single publishes.
    ops.push(delete(Scope::Ip, "10.0.0.5"));
    let bad = vec![
        upsert(ban(1, Scope::Ip, "10.0.0.1")),
        upsert(ban(2, Scope::Ip, "nope")),
    ];
    assert!(mesh.publish_decisions(bad).await.is_err());
    assert_eq!(
        mesh.decisions_head().await?,
        before,
        "nothing of an invalid batch is appended"
    );
    let head = mesh.publish_decisions(ops).await?;
    assert!(head >= before + 3001, "head {head} before {before}");
    assert_eq!(mesh.publish_decisions(Vec::new()).await?, head);
    let mut replica = DecisionReplica::new();
    catch_up(mesh, &mut replica, head).await?;
    assert_eq!(replica.set().len(), 2999);
    assert!(replica.set().get_key(Scope::Ip, "10.0.0.5").is_none());
    assert!(replica.set().get_key(Scope::Ip, "10.0.11.183").is_some());
    Ok(())
}

/// Versions are numbered, kept, and every watcher converges on the newest.
pub async fn policy_versions_and_watch(a: &impl Mesh, b: &impl Mesh) -> Result<()> {
    assert_eq!(a.current_policy().await?, None);
    let mut wa = a.watch_policy().await?;
    let mut wb = b.watch_policy().await?;
    for i in 1..=3u64 {
        let v = a
            .put_policy(format!("# v{i}"), format!("d{i}"), "tester".into())
            .await?;
        assert_eq!(v.version, i);
    }
    for w in [&mut wa, &mut wb] {
        loop {
            match within("policy watch", w.next()).await? {
                Some(Ok(v)) if v.version == 3 => {
                    assert_eq!(v.source, "# v3");
                    break;
                }
                Some(Ok(v)) => assert!(v.version < 3),
                other => bail!("policy watch: {other:?}"),
            }
        }
    }
    // Concurrent writers through both handles get distinct, contiguous versions.
    let (ra, rb) = tokio::join!(
        async {
            let mut v = Vec::new();
            for i in 0..5 {
                v.push(
                    a.put_policy(format!("a{i}"), "x".into(), "a".into())
                        .await?
                        .version,
                );
            }
            anyhow::Ok(v)
        },
        async {
            let mut v = Vec::new();
            for i in 0..5 {
                v.push(
                    b.put_policy(format!("b{i}"), "x".into(), "b".into())
                        .await?
                        .version,
                );
            }
            anyhow::Ok(v)
        }
    );
    let mut got: Vec<u64> = ra?.into_iter().chain(rb?).collect();
    got.sort_unstable();
    assert_eq!(got, (4..=13).collect::<Vec<_>>());
    let history = b.policy_history().await?;
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        (1..=13).collect::<Vec<_>>()
    );
    assert_eq!(history[1].source, "# v2");
    assert_eq!(a.current_policy().await?.map(|v| v.version), Some(13));
    // A late watcher starts with the current version.
    let mut late = b.watch_policy().await?;
    match within("late watcher", late.next()).await? {
        Some(Ok(v)) => assert_eq!(v.version, 13),
        other => bail!("late watcher: {other:?}"),
    }
    Ok(())
}

/// At least once per durable consumer: what was not acknowledged comes back
/// to the next consumer with the same name (`b` may be another connection).
pub async fn events_durable(a: &impl Mesh, b: &impl Mesh) -> Result<()> {
    for i in 0..10 {
        a.publish_event(&event(i)).await?;
    }
    let mut acked = BTreeSet::new();
    {
        let mut s = a.consume_events("control").await?;
        for _ in 0..10 {
            let d = match within("event", s.next()).await? {
                Some(Ok(d)) => d,
                other => bail!("event stream: {other:?}"),
            };
            if d.event.time_ms < 4 {
                acked.insert(d.event.time_ms);
                d.ack().await?;
            }
        }
    }
    // The consumer "restarts" (stream dropped, possibly another process).
    b.publish_event(&event(10)).await?;
    let mut s = b.consume_events("control").await?;
    let mut seen = BTreeSet::new();
    while seen.len() < 7 {
        let d = match within("redelivered event", s.next()).await? {
            Some(Ok(d)) => d,
            other => bail!("event stream: {other:?}"),
        };
        assert!(
            !acked.contains(&d.event.time_ms),
            "acked event {} redelivered",
            d.event.time_ms
        );
        seen.insert(d.event.time_ms);
        d.ack().await?;
    }
    assert_eq!(seen, (4..=10).collect::<BTreeSet<u64>>());
    // Another durable name sees everything from the start.
    let mut other = a.consume_events("archive").await?;
    let mut n = 0;
    while n < 11 {
        match within("archive event", other.next()).await? {
            Some(Ok(_)) => n += 1,
            x => bail!("archive: {x:?}"),
        }
    }
    Ok(())
}

pub fn hb(node: &str, seq: u64, t: u64) -> Heartbeat {
    Heartbeat {
        node_id: node.into(),
        address: format!("{node}:8080"),
        policy_version: Some(1),
        decisions: 3,
        decisions_seq: seq,
        time_ms: t,
        crs_version: Some("4.28.0".into()),
        crs_digest: Some(format!("sha256:{node}")),
        policy_refused: None,
    }
}

/// The latest heartbeat per node.
pub async fn heartbeats(mesh: &impl Mesh) -> Result<()> {
    assert!(mesh.nodes().await?.is_empty());
    mesh.heartbeat(&hb("edge-2", 1, 100)).await?;
    mesh.heartbeat(&hb("edge-1", 1, 100)).await?;
    mesh.heartbeat(&hb("edge-1", 7, 200)).await?;
    mesh.heartbeat(&hb("edge 3.eu", 2, 150)).await?;
    let nodes = mesh.nodes().await?;
    assert_eq!(
        nodes,
        vec![
            hb("edge 3.eu", 2, 150),
            hb("edge-1", 7, 200),
            hb("edge-2", 1, 100)
        ]
    );
    Ok(())
}

/// Learned statistics: the latest state per node and name, over a limit refused.
pub async fn stats_latest_per_node(a: &impl Mesh, b: &impl Mesh) -> Result<()> {
    assert!(a.stats("waf_model").await?.is_empty());
    a.publish_stats("waf_model", "edge-1", b"one".to_vec())
        .await?;
    b.publish_stats("waf_model", "edge 2.eu", b"two".to_vec())
        .await?;
    a.publish_stats("waf_model", "edge-1", b"one, later".to_vec())
        .await?;
    b.publish_stats("other", "edge-1", b"x".to_vec()).await?;
    let got = b.stats("waf_model").await?;
    let tokens = (
        palisade_mesh::mesh::token("edge 2.eu"),
        palisade_mesh::mesh::token("edge-1"),
    );
    let mut want = vec![
        (tokens.0, b"two".to_vec()),
        (tokens.1, b"one, later".to_vec()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(a.stats("other").await?.len(), 1);
    let big = vec![b'x'; palisade_mesh::MAX_STATS_BYTES + 1];
    assert!(matches!(
        a.publish_stats("waf_model", "edge-1", big).await,
        Err(palisade_mesh::MeshError::Invalid(_))
    ));
    // A refused state leaves the previous one.
    assert_eq!(a.stats("waf_model").await?, want);
    // The largest allowed state goes through.
    let max = vec![b'y'; palisade_mesh::MAX_STATS_BYTES];
    a.publish_stats("waf_model", "edge-1", max.clone()).await?;
    assert!(a.stats("waf_model").await?.iter().any(|(_, v)| *v == max));
    Ok(())
}

/// Count reports reach every subscriber, the sender's own subscription
/// included; an oversized one is refused.
pub async fn counts_broadcast(a: &impl Mesh, b: &impl Mesh) -> Result<()> {
    use palisade_policy::ratelimit::global::{decode, encode, CountEntry};
    let mut sa = a.subscribe_counts().await?;
    let mut sb = b.subscribe_counts().await?;
    let entry = CountEntry {
        key: 7,
        window_start: 10_000,
        period_ms: 10_000,
        count: 3,
        demand: 4,
        left: 5,
    };
    let report = encode("edge-b", &[entry]).remove(0);
    // Over NATS a subscription takes effect when the server has read it:
    // publish until both streams have the report.
    let got = within("count reports on both subscriptions", async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let (mut got_a, mut got_b) = (None, None);
        while got_a.is_none() || got_b.is_none() {
            tokio::select! {
                _ = tick.tick() => b.publish_counts(report.clone()).await?,
                Some(r) = sa.next(), if got_a.is_none() => got_a = Some(r),
                Some(r) = sb.next(), if got_b.is_none() => got_b = Some(r),
            }
        }
        Ok::<_, anyhow::Error>((got_a, got_b))
    })
    .await??;
    for r in [got.0, got.1].into_iter().flatten() {
        let d = decode(&r).map_err(anyhow::Error::msg)?;
        assert_eq!(d.node, "edge-b");
        assert_eq!(d.entries, vec![entry]);
    }
    let huge = vec![0u8; palisade_mesh::MAX_COUNTS_BYTES + 1];
    assert!(a.publish_counts(huge).await.is_err());
    Ok(())
}
