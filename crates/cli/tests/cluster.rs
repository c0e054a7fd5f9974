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

[[escalations]]
id = "repeat-offender"
source = "ip"
kinds = ["rule"]
threshold = 5
window = "1m"
duration = "10m"
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

/// A client address never used before in this process: polling with
/// requests that get blocked must not add up to an escalation (5 blocks of
/// one source ban it), which on a slow machine, where polls repeat, they did.
fn fresh_ip() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("198.19.{}.{}", n / 250 % 250, n % 250 + 1)
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
        all_edges(&[&e1, &e2, &e3], |e| e.status("/admin", &fresh_ip()) == 403),
        "policy did not reach every edge"
    );

    // An escalation on edge 1 (5 blocks from one source) blocks the source on every edge.
    assert_eq!(e2.status("/", "198.51.100.99"), 200);
    for _ in 0..5 {
        assert_eq!(e1.status("/admin/probe", "198.51.100.99"), 403);
    }
    assert_eq!(
        e1.status("/", "198.51.100.99"),
        403,
        "no local decision after the escalation:\n{}",
        e1.log()
    );
    assert!(
        all_edges(&[&e2, &e3], |e| e.status("/", "198.51.100.99") == 403),
        "escalation did not reach the other edges"
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
    // Events while the bus is down are spooled to disk and delivered later,
    // also by an edge that restarts in between.
    for i in 0..3 {
        // A different client each time, so that no escalation fires.
        assert_eq!(
            e1.status(
                &format!("/admin/outage-{i}"),
                &format!("192.0.2.{}", 20 + i)
            ),
            403
        );
        assert_eq!(
            e2.status(
                &format!("/admin/outage-{}", i + 3),
                &format!("192.0.2.{}", 30 + i)
            ),
            403
        );
    }
    // Let the edges notice the outage and spool (a publish slower than 500 ms counts as failed).
    std::thread::sleep(Duration::from_millis(1500));

    // An escalation while NATS is down: enforced on edge 1 at once, published later.
    for _ in 0..5 {
        assert_eq!(e1.status("/admin/again", "198.51.100.200"), 403);
    }
    assert_eq!(e1.status("/", "198.51.100.200"), 403);

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

    // The decision made by the escalation during the outage reaches the others.
    assert!(
        all_edges(&[&e2, &e3], |e| e.status("/", "198.51.100.200") == 403),
        "the outage's escalation did not reach the other edges"
    );

    // The events of the outage reach the mesh: none lost.
    let outage = rt.block_on(async {
        let mut stream = mesh.consume_events("test-consumer").await.unwrap();
        let mut seen = std::collections::HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seen.len() < 6 {
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
        seen
    });
    assert_eq!(
        outage.len(),
        6,
        "events from the outage lost (got {outage:?}); edge-1 log:\n{}\nedge-2 log:\n{}",
        e1.log()
            .lines()
            .filter(|l| !l.contains("IO error"))
            .collect::<Vec<_>>()
            .join("\n"),
        e2.log()
            .lines()
            .filter(|l| !l.contains("IO error"))
            .collect::<Vec<_>>()
            .join("\n")
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

#[test]
fn control_plane_policy_versions_decisions_and_failover() {
    let dir = TempDir::new("control");
    let mut nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let mut c1 = Control::start(dir.path(), "control-1", &nats.url());
    let mut c2 = Control::start(dir.path(), "control-2", &nats.url());
    let e1 = Edge::start("edge-a", dir.path(), &nats.url(), &origin_url);
    let e2 = Edge::start("edge-b", dir.path(), &nats.url(), &origin_url);
    let e3 = Edge::start("edge-c", dir.path(), &nats.url(), &origin_url);
    let edges = [&e1, &e2, &e3];

    // v1 through the CLI becomes active on every edge.
    let v1 = dir.write("v1.toml", POLICY);
    let out = c1.cli(&["policy", "apply", v1.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all_edges(&edges, |e| e.status("/admin", &fresh_ip()) == 403));

    // v2 adds a rule; diff shows it; apply; active everywhere.
    let v2 = dir.write("v2.toml", &format!("{POLICY}\n[[rules]]\nid = \"secret\"\nexpression = 'http.request.uri.path eq \"/secret\"'\naction = \"block\"\n"));
    let out = c1.cli(&["policy", "diff", v2.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+id = \"secret\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(c1
        .cli(&["policy", "apply", v2.to_str().unwrap()])
        .status
        .success());
    assert!(all_edges(&edges, |e| e.status("/secret", &fresh_ip()) == 403));

    // An invalid policy is rejected with every error, and no edge changes.
    let r = client()
        .put(format!("{}/api/v1/policy", c2.api))
        .bearer_auth(&c2.token)
        .body("[[rules]]\nid = \"x\"\nexpression = 'http.host eq'\naction = \"nope\"\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    let history = c1.cli(&["policy", "history", "--json"]);
    let versions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    assert_eq!(e1.status("/secret", &fresh_ip()), 403);

    // Rollback to v1 restores it everywhere (as v3).
    let out = c2.cli(&["policy", "rollback", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all_edges(&edges, |e| e.status("/secret", &fresh_ip())
        == 200
        && e.status("/admin", &fresh_ip()) == 403));

    // A decision through either control plane is enforced on every edge.
    let out = c2.cli(&[
        "decisions",
        "add",
        "--scope",
        "ip",
        "--value",
        "203.0.113.50",
        "--duration",
        "1h",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(all_edges(&edges, |e| e.status("/", "203.0.113.50") == 403));
    let list = c1.cli(&["decisions", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("203.0.113.50"));
    let id = d["id"].as_u64().unwrap().to_string();
    let del = c1.cli(&["decisions", "delete", &id]);
    assert!(
        del.status.success(),
        "delete {id}: {} {}",
        String::from_utf8_lossy(&del.stderr),
        String::from_utf8_lossy(&c1.cli(&["decisions", "list"]).stdout)
    );
    assert!(all_edges(&edges, |e| e.status("/", "203.0.113.50") == 200));

    // A viewer token reads but may not write.
    let viewer = std::process::Command::new(BIN)
        .args([
            "decisions",
            "add",
            "--scope",
            "ip",
            "--value",
            "203.0.113.51",
            "--duration",
            "1h",
        ])
        .env("PALISADE_API", &c1.api)
        .env("PALISADE_TOKEN", "viewer-token-0123456789")
        .output()
        .unwrap();
    assert!(!viewer.status.success());
    assert!(
        String::from_utf8_lossy(&viewer.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let viewer = std::process::Command::new(BIN)
        .args(["policy", "history"])
        .env("PALISADE_API", &c1.api)
        .env("PALISADE_TOKEN", "viewer-token-0123456789")
        .output()
        .unwrap();
    assert!(viewer.status.success());

    // Nodes report in, with the policy they enforce.
    assert!(eventually(Duration::from_secs(10), || {
        let out = c1.cli(&["nodes", "--json"]);
        let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        nodes.as_array().is_some_and(|n| {
            n.len() == 3
                && n.iter()
                    .all(|n| n["policy_version"] == 3 && n["healthy"] == true)
        })
    }));

    // Security events of every edge are stored by every control plane and queryable.
    assert_eq!(e1.status("/admin/evt", "192.0.2.77"), 403);
    assert_eq!(e2.status("/admin/evt", "192.0.2.77"), 403);
    for c in [&c1, &c2] {
        assert!(
            eventually(Duration::from_secs(10), || {
                let out = c.cli(&[
                    "events",
                    "--client-ip",
                    "192.0.2.77",
                    "--rule",
                    "block-admin",
                    "--json",
                ]);
                let list: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                let nodes: std::collections::BTreeSet<String> = list
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|e| e["node"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                nodes.len() == 2
            }),
            "events did not reach {}",
            c.api
        );
    }

    // The same source blocked on both edges opens an incident, and the
    // incident bans the source on every edge.
    assert!(eventually(Duration::from_secs(10), || {
        let list: serde_json::Value = client()
            .get(format!("{}/api/v1/incidents", c1.api))
            .bearer_auth(&c1.token)
            .send()
            .ok()
            .and_then(|r| r.json().ok())
            .unwrap_or_default();
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i["kind"] == "source_across_nodes" && i["key"] == "192.0.2.77")
        })
    }));
    assert!(
        all_edges(&edges, |e| e.status("/", "192.0.2.77") == 403),
        "incident ban not enforced"
    );

    // One control plane dies: the other keeps working.
    c1.proc.kill();
    let out = c2.cli(&[
        "decisions",
        "add",
        "--scope",
        "cidr",
        "--value",
        "198.51.100.0/24",
        "--duration",
        "1h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all_edges(&edges, |e| e.status("/", "198.51.100.7") == 403));

    // The control plane and NATS both die: every edge keeps serving and enforcing.
    c2.proc.kill();
    nats.stop();
    for e in edges {
        assert_eq!(e.status("/", &e.own_ip()), 200);
        assert_eq!(e.status("/admin", &e.own_ip()), 403);
        assert_eq!(e.status("/", "198.51.100.7"), 403);
    }
    // Events of the outage (distinct clients: no escalation, no incident).
    for (k, e) in edges.iter().enumerate() {
        for i in 0..3 {
            assert_eq!(
                e.status(
                    &format!("/admin/late-{k}-{i}"),
                    &format!("203.0.113.{}", 100 + k * 10 + i)
                ),
                403
            );
        }
    }
    std::thread::sleep(Duration::from_millis(1500));

    // Both come back: the spooled events reach the control plane's store, none lost.
    nats.restart();
    let c2 = Control::start(dir.path(), "control-2", &nats.url());
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = c2.cli(&["events", "--limit", "1000", "--json"]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let late = list
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter(|e| {
                            e["path"]
                                .as_str()
                                .is_some_and(|p| p.starts_with("/admin/late-"))
                        })
                        .count()
                })
                .unwrap_or(0);
            late == 9
        }),
        "outage events did not all reach the control plane"
    );
}

/// A bulk import travels as a few batch messages and reaches the edges; a
/// delete of one imported decision, once older than the tombstone retention,
/// is compacted away together with the decision's op in the batch (rewritten
/// without it): an edge that replays the whole log afterwards holds the
/// same table as the one that followed along, without the deleted decision.
#[test]
fn bulk_import_reaches_the_edges_and_survives_compaction() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("bulk");
    let nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let c = Control::start_with(
        dir.path(),
        "control",
        &nats.url(),
        &["--tombstone-retention", "2s"],
    );
    let e1 = Edge::start("edge-1", dir.path(), &nats.url(), &origin_url);
    let ip = |i: u32| format!("198.18.{}.{}", i / 250, i % 250 + 1);
    let list: String = (0..3000).map(|i| format!("{}\n", ip(i))).collect();
    let file = dir.write("list.txt", &list);
    let out = c.cli(&[
        "decisions",
        "import",
        file.to_str().unwrap(),
        "--duration",
        "1h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all_edges(&[&e1], |e| e.status("/", &ip(2999)) == 403
        && e.status("/", &ip(7)) == 403));

    let opts = NatsOptions {
        node_id: "test".into(),
        ..NatsOptions::default()
    };
    let mesh = rt.block_on(NatsMesh::connect(&nats.url(), opts)).unwrap();
    let client = mesh.client().clone();
    let messages = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let js = async_nats::jetstream::new(client.clone());
            let mut s = js.get_stream("PALISADE_DECISIONS").await.unwrap();
            s.info().await.unwrap().state.messages
        })
    };
    assert_eq!(messages(&rt), 1, "3000 decisions in one batch message");

    rt.block_on(mesh.publish_decision(DecisionOp::Delete {
        scope: Scope::Ip,
        value: ip(7),
    }))
    .unwrap();
    assert!(all_edges(&[&e1], |e| e.status("/", &ip(7)) == 200));
    // The control plane compacts every 500 ms; the delete is old after 2 s.
    assert!(
        eventually(Duration::from_secs(20), || rt
            .block_on(mesh.decisions_floor())
            .unwrap()
            > 0),
        "the delete was never compacted:\n{}",
        std::fs::read_to_string(dir.path().join("control.log")).unwrap_or_default()
    );
    assert_eq!(
        messages(&rt),
        1,
        "the batch, rewritten without the deleted decision"
    );

    let e2 = Edge::start("edge-2", dir.path(), &nats.url(), &origin_url);
    assert!(all_edges(&[&e2], |e| e.status("/", &ip(2999)) == 403));
    for e in [&e1, &e2] {
        assert_eq!(e.status("/", &ip(7)), 200, "{}", e.log());
        assert_eq!(e.status("/", &ip(8)), 403);
    }
}
