//! Policies pushed through the API or the mesh name rule files only inside
//! the rule directories (`--rules-dir`), no error shows a file's content,
//! the control plane compiles `[waf]` before storing a version, and each
//! edge reports the version it refused and why.

mod common;

use common::*;
use palisade_mesh::nats::{NatsMesh, NatsOptions};
use palisade_mesh::Mesh;
use palisade_policy::Policy;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A minimal CRS layout (one rule file) and a rule file of our own inside
/// `root`; returns (crs_dir, custom rules file).
fn rule_files(root: &Path) -> (String, String) {
    let crs = root.join("crs");
    std::fs::create_dir_all(crs.join("rules")).unwrap();
    std::fs::write(
        crs.join("rules/REQUEST-901-INITIALIZATION.conf"),
        "SecAction \"id:901001,phase:1,pass,nolog,ver:'OWASP_CRS/4.28.0'\"\n",
    )
    .unwrap();
    let custom = root.join("custom.conf");
    std::fs::write(
        &custom,
        "SecRule ARGS:q \"@streq evil\" \"id:10001,phase:2,deny,status:403,log,msg:'evil'\"\n",
    )
    .unwrap();
    (crs.display().to_string(), custom.display().to_string())
}

fn waf_policy(crs: &str, extra: &str) -> String {
    format!("[waf]\ncrs_dir = {crs:?}\nextra_rules = [{extra:?}]\n")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn up_refuses_files_outside_the_rules_dir_and_enforces_rules_inside() {
    // The fixture this test is about: a file that is not a rule file.
    assert!(
        std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .contains("root:"),
        "/etc/passwd with a root entry is this test's fixture"
    );
    let rules = TempDir::new("rules");
    let root = rules.path().canonicalize().unwrap();
    let (crs, custom) = rule_files(&root);
    let link = root.join("link.conf");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let up = Up::start(&[], None, &["--rules-dir", root.to_str().unwrap()]);
    let put = |src: String| {
        client()
            .put(format!("{}/api/v1/policy", up.api))
            .bearer_auth(&up.token)
            .body(src)
            .send()
            .unwrap()
    };

    // Outside the directory, through `..`, through a symlink: refused by the
    // control plane with the key and the path, never the file's content.
    let dotdot = format!("{}/../../../../etc/passwd", root.display());
    for (path, says) in [
        ("/etc/passwd", "outside the rule directories"),
        (dotdot.as_str(), "`..`"),
        (link.to_str().unwrap(), "symbolic link"),
    ] {
        let r = put(waf_policy(&crs, path));
        assert_eq!(r.status(), 422, "{path}");
        let body = r.text().unwrap();
        assert!(!body.contains("root:"), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let errors = v["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}");
        let m = errors[0]["message"].as_str().unwrap();
        assert!(m.contains("[waf] extra_rules") && m.contains(says), "{m}");
    }
    // The CLI says the same, with every error.
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("PALISADE_API", &up.api)
            .env("PALISADE_TOKEN", &up.token)
            .output()
            .unwrap()
    };
    let bad = up.dir.write("bad.toml", &waf_policy(&crs, "/etc/passwd"));
    let out = cli(&["policy", "apply", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("422") && t.contains("extra_rules") && !t.contains("root:"),
        "{t}"
    );
    // A local policy file is the operator's own and is not confined, but
    // its errors do not show the file's lines either.
    let out = cli(&["policy", "validate", bad.to_str().unwrap()]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("/etc/passwd:") && !t.contains("root:"), "{t}");
    let history: serde_json::Value = client()
        .get(format!("{}/api/v1/policy/versions", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 0, "{history}");

    // Inside the directory: stored, applied by the edge, enforced.
    let good = up.dir.write("good.toml", &waf_policy(&crs, &custom));
    let out = cli(&["policy", "apply", good.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("policy version 1 stored"), "{t}");
    assert!(t.contains("edge-1") && t.contains("applied"), "{t}");
    assert_eq!(up.get("/?q=evil", None).status(), 403);
    assert_eq!(up.get("/?q=fine", None).status(), 200);
    assert!(!up.log().contains("root:"));
}

#[test]
fn an_edge_refuses_a_pushed_version_and_the_cluster_is_told() {
    let dir = TempDir::new("pushed");
    let mut nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    // The control plane's rule directory holds the files; the edge's does not.
    let control_rules = dir.path().join("control-rules");
    let edge_rules = dir.path().join("edge-rules");
    std::fs::create_dir_all(&control_rules).unwrap();
    std::fs::create_dir_all(&edge_rules).unwrap();
    let (crs, custom) = rule_files(&control_rules.canonicalize().unwrap());
    let c = Control::start_with(
        dir.path(),
        "control-1",
        &nats.url(),
        &["--rules-dir", control_rules.to_str().unwrap()],
    );
    let edge = Edge::start_with(
        "edge-r",
        dir.path(),
        &nats.url(),
        &origin_url,
        &["--rules-dir", edge_rules.to_str().unwrap()],
    );

    // A version published to the mesh directly (past any control plane)
    // naming /etc/passwd: the edge refuses it and says why, in its heartbeat.
    let src = waf_policy(&crs, "/etc/passwd");
    let digest = Policy::from_toml(&src, "p").unwrap().digest;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mesh = rt
        .block_on(NatsMesh::connect(
            &nats.url(),
            NatsOptions {
                node_id: "test".into(),
                ..NatsOptions::default()
            },
        ))
        .unwrap();
    let v1 = rt
        .block_on(mesh.put_policy(src, digest, "test".into()))
        .unwrap();
    let refusal = |version: u64| {
        let mut found = serde_json::Value::Null;
        let seen = eventually(Duration::from_secs(20), || {
            let out = c.cli(&["nodes", "--json"]);
            let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            found = nodes[0]["policy_refused"].clone();
            found["version"].as_u64() == Some(version)
        });
        assert!(seen, "no refusal of v{version}: {found}");
        found["reason"].as_str().unwrap().to_string()
    };
    let reason = refusal(v1.version);
    assert!(
        reason.contains("[waf] extra_rules \"/etc/passwd\"") && reason.contains("outside"),
        "{reason}"
    );
    assert!(!reason.contains("root:"), "{reason}");
    let out = c.cli(&["nodes"]);
    let t = text(&out);
    assert!(
        t.contains("-, refused v1 !")
            && t.contains("! edge-r refused policy v1: [waf] crs_dir")
            && t.contains("| [waf] extra_rules \"/etc/passwd\": outside"),
        "{t}"
    );
    assert!(!edge.log().contains("root:"), "{}", edge.log());
    // It keeps serving (with no policy: everything passes).
    assert_eq!(edge.status("/?q=evil", &edge.own_ip()), 200);

    // Through the control plane: it compiles there (its rule directory has
    // the files), the edge refuses it (its own does not), and `policy
    // apply` says so and exits 1.
    let p = dir.write("p.toml", &waf_policy(&crs, &custom));
    let out = c.cli(&["policy", "apply", p.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("policy version 2 stored") && t.contains("REFUSED v2") && t.contains("crs_dir"),
        "{t}"
    );
    assert!(t.contains("1 edge(s) refused version 2"), "{t}");
    assert!(refusal(2).contains("[waf] crs_dir"));
    assert_eq!(edge.status("/?q=evil", &edge.own_ip()), 200);
    nats.stop();
}
