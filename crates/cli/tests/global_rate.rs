//! Global rate limits across real edges joined over a real NATS: a limit
//! with `scope = "global"` holds for the fleet whichever edges the requests
//! reach, a local one beside it admits its limit per edge, and an edge cut
//! off from NATS in the middle of the load falls back to its share.
//!
//! The edge that gets cut reaches NATS through a TCP relay of the test's own,
//! which it can sever (open connections closed, new ones refused) and restore.

mod common;

use common::*;
use palisade_mesh::nats::{NatsMesh, NatsOptions};
use palisade_mesh::Mesh;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// L = 30 per hour (one window for the whole test).
const L: usize = 30;

const POLICY: &str = r#"
[[rate_limits]]
id = "fleet"
expression = 'http.request.uri.path eq "/fleet"'
requests = 30
period = "1h"
scope = "global"

[[rate_limits]]
id = "per-node"
expression = 'http.request.uri.path eq "/node"'
requests = 30
period = "1h"
"#;

/// A TCP relay to `target` that can be cut and restored.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                {
                    let mut o = o.lock().unwrap();
                    o.push(client.try_clone().unwrap());
                    o.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, open }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn sever(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn metric(e: &Edge, name: &str) -> Option<f64> {
    let text = client()
        .get(format!("{}/metrics", e.metrics))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `n` requests of `client_ip` to `path`, round-robin over `edges`; how many got a 200.
fn admitted(edges: &[&Edge], path: &str, client_ip: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| edges[i % edges.len()].status(path, client_ip) == 200)
        .count()
}

#[test]
fn a_partition_during_a_global_limit() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("global-rate");
    let nats = Nats::start(&dir.path().join("nats"));
    let relay = Relay::start(nats.port);
    let (_origin, origin_url) = demo_origin();
    let a = Edge::start("edge-a", dir.path(), &nats.url(), &origin_url);
    let b = Edge::start("edge-b", dir.path(), &nats.url(), &origin_url);
    let c = Edge::start("edge-c", dir.path(), &relay.url(), &origin_url);
    let edges = [&a, &b, &c];
    let mesh = rt
        .block_on(NatsMesh::connect(
            &nats.url(),
            NatsOptions {
                node_id: "test".into(),
                ..NatsOptions::default()
            },
        ))
        .unwrap();
    let digest = palisade_policy::Policy::from_toml(POLICY, "p")
        .unwrap()
        .digest;
    rt.block_on(mesh.put_policy(POLICY.into(), digest, "test".into()))
        .unwrap();
    // Every edge knows the other two, and the policy is in force everywhere.
    assert!(
        eventually(Duration::from_secs(30), || edges.iter().all(|e| metric(
            e,
            "palisade_ratelimit_global_nodes"
        ) == Some(
            3.0
        ))),
        "the edges did not find each other:\n{}",
        c.log()
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let mut all = true;
            for (i, e) in edges.iter().enumerate() {
                // Over the limit at once on every edge means the policy is there.
                let ip = format!("192.0.2.{}", 200 + i);
                all &= (0..=L).filter(|_| e.status("/node", &ip) == 429).count() > 0;
            }
            all
        }),
        "the policy did not reach every edge"
    );

    // Spread over three edges: the global limit holds, the local one admits
    // it once per edge.
    let global = admitted(&edges, "/fleet", "198.51.100.1", 10 * L);
    let local = admitted(&edges, "/node", "198.51.100.1", 10 * L);
    eprintln!("spread: global {global}, local {local} (L = {L})");
    assert!(
        (L * 9 / 10..=L * 11 / 10).contains(&global),
        "global: {global}"
    );
    assert_eq!(local, 3 * L);
    // All on one edge.
    let global = admitted(&[&b], "/fleet", "198.51.100.2", 10 * L);
    eprintln!("one edge: global {global}");
    assert!(
        (L * 9 / 10..=L * 11 / 10).contains(&global),
        "global: {global}"
    );

    // The load is under way when edge C is cut off from NATS.
    let ip = "198.51.100.3";
    let mut total = admitted(&edges, "/fleet", ip, 6);
    relay.sever();
    total += admitted(&edges, "/fleet", ip, 3 * L);
    assert!(
        eventually(Duration::from_secs(30), || metric(
            &c,
            "palisade_ratelimit_global_partitioned"
        ) == Some(1.0)),
        "edge C did not notice the partition:\n{}",
        c.log()
    );
    total += admitted(&edges, "/fleet", ip, 7 * L);
    let partitioned = metric(&c, "palisade_ratelimit_partitioned_total").unwrap_or(0.0);
    eprintln!("partitioned: global {total}, edge C judged {partitioned} alone");
    // The bound (docs/ratelimit.md): L, plus C's share L / 3, plus what C
    // spent of its allowance (at most its share) before the others knew.
    // Local limits would admit 3 L.
    assert!(total >= L * 9 / 10, "global: {total}");
    assert!(total <= L + 2 * L / 3, "global: {total}");
    assert!(partitioned > 0.0);
    assert_eq!(
        metric(&a, "palisade_ratelimit_partitioned_total"),
        Some(0.0)
    );
    assert!(
        eventually(Duration::from_secs(30), || metric(
            &a,
            "palisade_ratelimit_global_nodes"
        ) == Some(2.0)),
        "edge A still counts edge C"
    );

    // Restored: C rejoins and leaves the fallback.
    relay.restore();
    assert!(
        eventually(Duration::from_secs(60), || metric(
            &c,
            "palisade_ratelimit_global_partitioned"
        ) == Some(0.0)
            && metric(&c, "palisade_ratelimit_global_nodes") == Some(3.0)),
        "edge C did not rejoin:\n{}",
        c.log()
    );
}
