//! End-to-end tests of the WAF's positive model (`[waf.model]`) in
//! `palisade up`: the real binary, the real OWASP CRS (see
//! `common::crs_dir`), the demo origin, clients of several networks
//! through a trusted proxy (`X-Forwarded-For`).

mod common;

use common::*;
use std::time::Duration;

const SQLI: &str = "?id=1%20UNION%20SELECT%20username%2C%20password%20FROM%20users--";

/// The policy of these tests. Its `[waf.tx]` sets a content-type list
/// (CRS' own, without XML): Palisade's default allows any well-formed type,
/// which would leave `extend` nothing to add.
fn policy(mode: &str, apply: &str) -> String {
    format!(
        "[waf]\ncrs_dir = \"{}\"\nmode = \"{mode}\"\n\n[waf.tx]\nallowed_request_content_type = \"|application/x-www-form-urlencoded| |multipart/form-data| |application/json|\"\n\n[waf.model]\napply = \"{apply}\"\nmin_sources = 3\nmin_requests = 3\nshare_every = \"200ms\"\n",
        crs_dir().display()
    )
}

/// A request as a browser on network `net` (198.51.<net>.7) would send it.
fn send(up: &Up, method: &str, path: &str, ct: Option<&str>, net: u8) -> u16 {
    let mut r = client()
        .request(method.parse().unwrap(), format!("{}{path}", up.proxy))
        .header("Host", "shop.example")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        )
        .header("Accept", "text/html,application/json")
        .header("x-forwarded-for", format!("198.51.{net}.7"));
    if let Some(ct) = ct {
        r = r.header("Content-Type", ct).body("hello");
    }
    r.send().unwrap().status().as_u16()
}

/// The fleet's model, through the API.
fn model(up: &Up) -> serde_json::Value {
    client()
        .get(format!("{}/api/v1/waf/model?limit=100", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn route<'a>(m: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    m["routes"]
        .as_array()?
        .iter()
        .find(|r| r["route"].as_str() == Some(name))
}

fn values(r: &serde_json::Value, key: &str) -> Vec<(String, bool)> {
    r[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    (
                        v["value"].as_str().unwrap_or("").to_string(),
                        v["trusted"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value of an unlabelled metric in a Prometheus text page (-1: absent).
fn metric_in(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(-1.0)
}

fn metric(up: &Up, name: &str) -> f64 {
    metric_in(&up.metrics(), name)
}

/// Detect mode on day one: a content type CRS' list lacks is learned from
/// the networks that send it (a request that only the list rule flagged
/// still teaches); then, in block mode with `apply = "extend"`, it passes
/// on that route while everything else CRS refuses is still refused.
#[test]
fn detect_mode_teaches_the_model_and_block_mode_applies_it() {
    let (_origin, origin_url) = demo_origin();
    let mut up = Up::start(
        std::slice::from_ref(&origin_url),
        Some(&policy("detect", "extend")),
        &["--trusted-proxy", "127.0.0.1/32"],
    );
    for net in 1..=3 {
        assert_eq!(
            send(&up, "POST", "/api/notes/7", Some("text/csv"), net),
            200
        );
        // Attacks pass in detect mode but never teach: text/tab-separated-values with SQL
        // injection, from as many networks.
        let attack = format!("/api/notes/7{SQLI}");
        assert_eq!(
            send(&up, "POST", &attack, Some("text/tab-separated-values"), net),
            200
        );
    }
    // One network alone: seen, not trusted.
    for _ in 0..5 {
        assert_eq!(
            send(&up, "PUT", "/api/notes/9", Some("text/markdown"), 9),
            200
        );
    }
    let learned = eventually(Duration::from_secs(10), || {
        // Learning follows the response (logging phase), sharing every 200 ms.
        route(&model(&up), "shop.example/api/notes/{n}").is_some_and(|r| r["requests"] == 8)
    });
    let m = model(&up);
    assert!(learned, "{m:#}\n{}", up.log());
    let r = route(&m, "shop.example/api/notes/{n}").unwrap();
    let types = values(r, "content_types");
    assert!(types.contains(&("text/csv".into(), true)), "{types:?}");
    assert!(
        !types.iter().any(|(t, _)| t == "text/tab-separated-values"),
        "learned from an attack: {types:?}"
    );
    assert!(
        types.contains(&("text/markdown".into(), false)),
        "{types:?}"
    );
    assert_eq!(r["requests"], 8, "{r:#}");
    assert_eq!(metric(&up, "palisade_waf_model_learned_total"), 8.0);

    // Block mode, the model applied: the policy file is reloaded in place.
    std::fs::write(up.dir.path().join("policy.toml"), policy("block", "extend")).unwrap();
    let sqli = format!("/{SQLI}");
    assert!(
        eventually(Duration::from_secs(15), || send(&up, "GET", &sqli, None, 1)
            == 403),
        "block mode never came: {}",
        up.log()
    );
    let before = metric(&up, "palisade_waf_model_learned_total");
    assert_eq!(
        send(&up, "POST", "/api/notes/8", Some("text/csv"), 4),
        200,
        "learned"
    );
    assert_eq!(
        send(
            &up,
            "POST",
            "/api/notes/8",
            Some("text/tab-separated-values"),
            4
        ),
        403,
        "not learned"
    );
    assert_eq!(
        send(&up, "PUT", "/api/notes/8", Some("text/markdown"), 9),
        403,
        "not trusted"
    );
    assert_eq!(
        send(&up, "POST", "/other", Some("text/csv"), 4),
        403,
        "other route"
    );
    let attack = format!("/api/notes/7{SQLI}");
    assert_eq!(
        send(&up, "POST", &attack, Some("text/csv"), 4),
        403,
        "still inspected"
    );
    // Blocked requests never teach: text/tab-separated-values from five networks, all refused.
    for net in 10..15 {
        assert_eq!(
            send(
                &up,
                "POST",
                "/api/notes/7",
                Some("text/tab-separated-values"),
                net
            ),
            403
        );
    }
    // (Learning follows the response: wait for the one that passed.)
    eventually(Duration::from_secs(5), || {
        metric(&up, "palisade_waf_model_learned_total") == before + 1.0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(&up, "palisade_waf_model_learned_total"),
        before + 1.0,
        "only the one request that passed taught the model"
    );
    std::thread::sleep(Duration::from_millis(600));
    let m = model(&up);
    let r = route(&m, "shop.example/api/notes/{n}").unwrap();
    assert!(
        !values(r, "content_types")
            .iter()
            .any(|(t, _)| t == "text/tab-separated-values"),
        "{r:#}"
    );
    assert!(metric(&up, "palisade_waf_model_applied_total") >= 2.0);

    // What the node learned survives a restart (DATA_DIR/waf-model.json).
    up.restart();
    assert_eq!(
        send(&up, "POST", "/api/notes/3", Some("text/csv"), 5),
        200,
        "{}",
        up.log()
    );
    assert_eq!(
        send(
            &up,
            "POST",
            "/api/notes/3",
            Some("text/tab-separated-values"),
            5
        ),
        403
    );

    // The CLI shows it (once the restarted node shared its model).
    let cli = || {
        let out = std::process::Command::new(BIN)
            .args(["waf", "model", "--api", &up.api, "--token", &up.token])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    eventually(Duration::from_secs(10), || cli().contains("shop.example"));
    let text = cli();
    assert!(text.contains("shop.example/api/notes/{n}"), "{text}");
    // 3 networks in detect mode, 1 in block mode, 1 after the restart.
    assert!(text.contains("text/csv 5/5"), "{text}");
    assert!(text.contains("text/markdown? 5/1"), "{text}");
    assert!(text.contains("from 1 node(s)"), "{text}");
}

/// Fleet merge over a real NATS JetStream: two edges each see a content type
/// from two networks; with `min_sources = 4` neither trusts it alone, the
/// fleet's merge does, and both edges apply it in block mode (each to
/// clients it never saw). The control plane's API shows the merge.
#[test]
fn edges_merge_what_they_learned_through_nats() {
    use palisade_mesh::nats::{NatsMesh, NatsOptions};
    use palisade_mesh::Mesh;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("model-fleet");
    let nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    // Pushed policies may only name rule files in the edges' rule directories.
    let crs = crs_dir().canonicalize().unwrap();
    let crs_root = crs.parent().unwrap().display().to_string();
    let rules_dir = ["--rules-dir", crs_root.as_str()];
    let edges = [
        Edge::start_with("edge-1", dir.path(), &nats.url(), &origin_url, &rules_dir),
        Edge::start_with("edge-2", dir.path(), &nats.url(), &origin_url, &rules_dir),
    ];
    let control = Control::start(dir.path(), "control", &nats.url());
    let mesh = rt
        .block_on(NatsMesh::connect(
            &nats.url(),
            NatsOptions {
                node_id: "test".into(),
                ..NatsOptions::default()
            },
        ))
        .unwrap();
    let put = |mode: &str| {
        let src = policy(mode, "extend").replace("min_sources = 3", "min_sources = 4");
        let digest = palisade_policy::Policy::from_toml(&src, "p")
            .unwrap()
            .digest;
        rt.block_on(mesh.put_policy(src, digest, "test".into()))
            .unwrap();
    };
    let post = |e: &Edge, ct: &str, path: &str, net: u8| -> u16 {
        client()
            .post(format!("{}{path}", e.proxy))
            .header("Host", "shop.example")
            .header(
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            )
            .header("Accept", "text/html")
            .header("x-forwarded-for", format!("198.51.{net}.7"))
            .header("Content-Type", ct)
            .body("hello")
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let sqli = format!("/{SQLI}");
    let get = |e: &Edge| e.status(&sqli, "192.0.2.1");

    let metric_of = |e: &Edge, name: &str| -> f64 {
        let page = client()
            .get(format!("{}/metrics", e.metrics))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        metric_in(&page, name)
    };
    put("detect");
    assert!(
        eventually(Duration::from_secs(30), || edges
            .iter()
            .all(|e| metric_of(e, "palisade_waf_rules") > 0.0)),
        "the detect-mode policy did not reach both edges"
    );
    for (i, e) in edges.iter().enumerate() {
        for net in [1 + 2 * i as u8, 2 + 2 * i as u8] {
            assert_eq!(post(e, "text/csv", "/api/notes/1", net), 200);
        }
    }
    let fleet_model = || -> serde_json::Value {
        client()
            .get(format!("{}/api/v1/waf/model", control.api))
            .bearer_auth(&control.token)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default()
    };
    let merged = eventually(Duration::from_secs(15), || {
        let m = fleet_model();
        m["nodes"] == 2
            && route(&m, "shop.example/api/notes/{n}").is_some_and(|r| {
                values(r, "content_types").contains(&("text/csv".into(), true)) && r["sources"] == 4
            })
    });
    assert!(merged, "{:#}\n{}", fleet_model(), edges[0].log());
    for e in &edges {
        assert_eq!(metric_of(e, "palisade_waf_model_learned_total"), 2.0);
        assert!(eventually(Duration::from_secs(5), || metric_of(
            e,
            "palisade_waf_model_peers"
        ) == 1.0));
    }

    put("block");
    assert!(
        eventually(Duration::from_secs(20), || edges
            .iter()
            .all(|e| get(e) == 403)),
        "the block-mode policy did not reach both edges"
    );
    for e in &edges {
        // Clients of networks this edge never saw; the type the fleet trusts.
        assert_eq!(post(e, "text/csv", "/api/notes/2", 77), 200, "{}", e.log());
        assert_eq!(
            post(e, "text/tab-separated-values", "/api/notes/2", 77),
            403
        );
    }
}
