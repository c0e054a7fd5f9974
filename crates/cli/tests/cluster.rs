//! Edges joined over a real NATS JetStream: decisions and policy reach every
//! edge, edges keep enforcing when NATS is gone (also across a restart), and
//! catch up — decisions and spooled events — when it returns.

mod common;

use common::*;
use palisade_mesh::nats::{NatsMesh, NatsOptions};
use palisade_mesh::{DecisionOp, Mesh};
use palisade_policy::decisions::{Decision, DecisionAction, Scope};
use std::time::Duration;

const POLICY: &str = r#"
[[rules]]
id = "block-admin"
expression = 'http.request.uri.path starts_with "/admin"'
action = "block"
"#;

fn ban(value: &str) -> DecisionOp {
    DecisionOp::Upsert {
        decision: Decision {
            id: 0,
            scope: Scope::Ip,
            value: value.into(),
            action: DecisionAction::Ban,
            reason: "test".into(),
            origin: "test".into(),
            simulated: false,
            created_at: 0,
            expires_at: None,
        },
    }
}

fn all_edges(edges: &[&Edge], f: impl Fn(&Edge) -> bool) -> bool {
    eventually(Duration::from_secs(10), || edges.iter().all(|e| f(e)))
}

#[test]
fn edges_follow_the_cluster_and_fail_static() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("cluster");
    let mut nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let e1 = Edge::start("edge-1", dir.path(), &nats.url(), &origin_url);
    let mut e2 = Edge::start("edge-2", dir.path(), &nats.url(), &origin_url);
    let e3 = Edge::start("edge-3", dir.path(), &nats.url(), &origin_url);
    let opts = NatsOptions {
        node_id: "test".into(),
        ..NatsOptions::default()
    };
    let mesh = rt
        .block_on(NatsMesh::connect(&nats.url(), opts.clone()))
        .unwrap();

    // Never received a policy: everything passes.
    assert_eq!(e1.status("/admin", "192.0.2.1"), 200);

    // A policy version reaches every edge.
    let digest = palisade_policy::Policy::from_toml(POLICY, "p")
        .unwrap()
        .digest;
    rt.block_on(mesh.put_policy(POLICY.into(), digest, "test".into()))
        .unwrap();
    assert!(
        all_edges(&[&e1, &e2, &e3], |e| e.status("/admin", "192.0.2.1") == 403),
        "policy did not reach every edge"
    );

    // A decision reaches every edge; deleting it unblocks everywhere.
    rt.block_on(mesh.publish_decision(ban("203.0.113.9")))
        .unwrap();
    assert!(all_edges(&[&e1, &e2, &e3], |e| e
        .status("/", "203.0.113.9")
        == 403));
    rt.block_on(mesh.publish_decision(DecisionOp::Delete {
        scope: Scope::Ip,
        value: "203.0.113.9".into(),
    }))
    .unwrap();
    assert!(all_edges(&[&e1, &e2, &e3], |e| e
        .status("/", "203.0.113.9")
        == 200));
    rt.block_on(mesh.publish_decision(ban("203.0.113.10")))
        .unwrap();
    assert!(all_edges(&[&e1, &e2, &e3], |e| e
        .status("/", "203.0.113.10")
        == 403));
    drop(mesh);
    // Give the persister a moment to write the latest state.
    std::thread::sleep(Duration::from_millis(500));

    // NATS goes away: every edge keeps serving and enforcing.
    nats.stop();
    for e in [&e1, &e2, &e3] {
        assert_eq!(e.status("/", "192.0.2.1"), 200);
        assert_eq!(e.status("/admin", "192.0.2.1"), 403);
        assert_eq!(e.status("/", "203.0.113.10"), 403);
    }
    // Events while the bus is down are kept and delivered later.
    for i in 0..3 {
        assert_eq!(e1.status(&format!("/admin/outage-{i}"), "192.0.2.1"), 403);
    }

    // An edge restarted while NATS is down comes up from its data dir and enforces.
    e2.restart();
    assert_eq!(
        e2.status("/admin", "192.0.2.1"),
        403,
        "policy not restored:\n{}",
        e2.log()
    );
    assert_eq!(
        e2.status("/", "203.0.113.10"),
        403,
        "decisions not restored:\n{}",
        e2.log()
    );

    // NATS returns (same store): a decision made now reaches every edge, the restarted one too.
    nats.restart();
    let mesh = rt.block_on(async {
        for _ in 0..50 {
            if let Ok(m) = NatsMesh::connect(&nats.url(), opts.clone()).await {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot reconnect to nats")
    });
    rt.block_on(mesh.publish_decision(ban("203.0.113.11")))
        .unwrap();
    let ok = all_edges(&[&e1, &e2, &e3], |e| e.status("/", "203.0.113.11") == 403);
    assert!(
        ok,
        "after NATS returned: edge-1 {}, edge-2 {}, edge-3 {}; edge-1 log:\n{}",
        e1.status("/", "203.0.113.11"),
        e2.status("/", "203.0.113.11"),
        e3.status("/", "203.0.113.11"),
        e1.log()
    );

    // The events of the outage reach the mesh: none lost.
    let outage = rt.block_on(async {
        let mut stream = mesh.consume_events("test-consumer").await.unwrap();
        let mut seen = std::collections::HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while seen.len() < 3 {
            let next = tokio::time::timeout_at(deadline, stream.next()).await;
            match next {
                Ok(Some(Ok(d))) => {
                    if d.event.path.starts_with("/admin/outage-") {
                        seen.insert(d.event.path.clone());
                    }
                    d.ack().await.unwrap();
                }
                _ => break,
            }
        }
        seen.len()
    });
    assert_eq!(
        outage,
        3,
        "events from the outage lost; edge-1 log:\n{}",
        e1.log()
    );

    // Heartbeats report every node with its policy version.
    let nodes = rt.block_on(async {
        for _ in 0..50 {
            let n = mesh.nodes().await.unwrap();
            if n.len() == 3 && n.iter().all(|h| h.policy_version == Some(1)) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        mesh.nodes().await.unwrap()
    });
    assert_eq!(nodes.len(), 3, "{nodes:?}");
}
