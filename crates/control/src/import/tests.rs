use super::*;
use palisade_policy::DecisionAction;

const NOW: u64 = 1_700_000_000_000;

fn q() -> ImportQuery {
    ImportQuery {
        duration: Some("24h".into()),
        ..ImportQuery::default()
    }
}

fn run(format: Format, body: &str, q: &ImportQuery) -> Parsed {
    parse(format, body, q, NOW, "api:operator")
}

#[test]
fn lines_with_comments_scopes_and_defaults() {
    let body =
        "# a blocklist\n192.0.2.1\n\n  198.51.100.0/24   # a network\n2001:db8::1 trailing words\n";
    let p = run(Format::Lines, body, &q());
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let got: Vec<(Scope, &str)> = p
        .decisions
        .iter()
        .map(|d| (d.scope, d.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Scope::Ip, "192.0.2.1"),
            (Scope::Cidr, "198.51.100.0/24"),
            (Scope::Ip, "2001:db8::1")
        ]
    );
    let d = &p.decisions[0];
    assert_eq!(d.expires_at, Some(NOW + 86_400_000));
    assert_eq!(d.origin, "api:operator:import");
    assert_eq!(d.reason, "import");
    assert_eq!(d.action, DecisionAction::Ban);
}

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let body = "192.0.2.1\nnot-an-ip\n10.0.0.0/4\n192.0.2.300\n";
    let p = run(Format::Lines, body, &q());
    let lines: Vec<usize> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert!(
        p.rejected[1].error.contains("broader than /8"),
        "{:?}",
        p.rejected[1]
    );
    // `force` lifts the prefix guardrail, as for a single decision.
    let p = run(
        Format::Lines,
        "10.0.0.0/4\n",
        &ImportQuery { force: true, ..q() },
    );
    assert!(p.rejected.is_empty() && p.decisions.len() == 1);
}

#[test]
fn a_duration_or_permanent_is_required() {
    let p = run(Format::Lines, "192.0.2.1\n", &ImportQuery::default());
    assert_eq!(p.rejected.len(), 1);
    assert!(p.rejected[0].error.contains("duration is required"));
    let p = run(
        Format::Lines,
        "192.0.2.1\n",
        &ImportQuery {
            permanent: true,
            ..ImportQuery::default()
        },
    );
    assert_eq!(p.decisions[0].expires_at, None);
}

#[test]
fn the_last_entry_of_a_key_wins_and_repeats_are_counted() {
    let body = "192.0.2.1\n::ffff:192.0.2.1\n192.0.2.2\n";
    let p = run(Format::Lines, body, &q());
    assert_eq!(p.duplicates, 1);
    assert_eq!(p.decisions.len(), 2);
}

#[test]
fn crowdsec_raw_csv() {
    // As `cscli decisions list -o raw` writes it.
    let body = "id,source,ip,reason,action,country,as,events_count,expiration,simulated,alert_id\n\
        1,crowdsec,Ip:192.0.2.7,crowdsecurity/ssh-bf,ban,FR,1234 Some AS,6,3h59m45.100387557s,false,1\n\
        2,cscli,Range:198.51.100.0/24,\"manual, with a comma\",ban,,,1,1h,true,2\n\
        3,crowdsec,Ip:2001:db8::7,crowdsecurity/http-probing,ban,,,3,-5m,false,3\n\
        4,crowdsec,Ip:192.0.2.8,crowdsecurity/http-probing,captcha,,,3,4h,false,4\n";
    let p = run(Format::Csv, body, &ImportQuery::default());
    assert_eq!(p.skipped_expired, 1);
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 5);
    assert!(
        p.rejected[0].error.contains("unknown action"),
        "{:?}",
        p.rejected
    );
    assert_eq!(p.decisions.len(), 2);
    let a = &p.decisions[0];
    assert_eq!((a.scope, a.value.as_str()), (Scope::Ip, "192.0.2.7"));
    assert_eq!(a.reason, "crowdsecurity/ssh-bf");
    assert_eq!(
        a.expires_at,
        Some(NOW + (3 * 3600 + 59 * 60 + 45) * 1000 + 100)
    );
    let b = &p.decisions[1];
    assert_eq!(
        (b.scope, b.value.as_str()),
        (Scope::Cidr, "198.51.100.0/24")
    );
    assert_eq!(b.reason, "manual, with a comma");
    assert!(b.simulated);
}

#[test]
fn cscli_import_csv_and_bad_rows() {
    let body = "value,duration,reason,scope,type\n192.0.2.9,2h,scan,ip,ban\n192.0.2.10,2h,scan\nAS64500,1h,bad asn,as,ban\n\"open,1h\n";
    let p = run(Format::Csv, body, &ImportQuery::default());
    let lines: Vec<usize> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 5], "{:?}", p.rejected);
    assert_eq!(p.decisions.len(), 2);
    assert_eq!(p.decisions[1].scope, Scope::Asn);
    assert_eq!(p.decisions[1].value, "64500");
}

#[test]
fn crowdsec_json_alerts_and_flat_decisions() {
    // As `cscli decisions list -o json` writes it (trimmed).
    let body = r#"[
  {
    "id": 1,
    "scenario": "crowdsecurity/ssh-bf",
    "decisions": [
      {"duration": "3h58m", "id": 11, "origin": "crowdsec", "scenario": "crowdsecurity/ssh-bf",
       "scope": "Ip", "simulated": false, "type": "ban", "value": "192.0.2.20"},
      {"duration": "1h", "scope": "Range", "type": "ban", "value": "203.0.113.0/24", "scenario": "x"}
    ]
  },
  {
    "id": 2,
    "decisions": [
      {"duration": "1h", "scope": "Ip", "type": "ban", "value": "nope"}
    ]
  },
  {"value": "192.0.2.21", "duration": "10m", "reason": "flat", "scope": "ip", "type": "ban"}
]"#;
    let p = run(Format::CrowdsecJson, body, &ImportQuery::default());
    assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
    assert_eq!(p.rejected[0].line, 11, "the line where the alert starts");
    assert_eq!(p.rejected[0].entry.as_deref(), Some("[1].decisions[0]"));
    let got: Vec<&str> = p.decisions.iter().map(|d| d.value.as_str()).collect();
    assert_eq!(got, ["192.0.2.20", "203.0.113.0/24", "192.0.2.21"]);
    assert_eq!(p.decisions[0].reason, "crowdsecurity/ssh-bf");
    assert_eq!(p.decisions[2].reason, "flat");
    // JSON lines, and a syntax error with its line.
    let body = "{\"value\":\"192.0.2.30\",\"duration\":\"1h\"}\n{\"value\":\n";
    let p = run(Format::CrowdsecJson, body, &ImportQuery::default());
    assert_eq!(p.decisions.len(), 1);
    assert_eq!(p.rejected[0].line, 2);
    let p = run(
        Format::CrowdsecJson,
        "[{\"value\":\"192.0.2.1\",\"duration\":\"1h\"},\n  oops]",
        &ImportQuery::default(),
    );
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 2);
}

#[test]
fn go_durations() {
    assert_eq!(
        go_duration_ms("3h59m45.5s"),
        Ok(((3 * 60 + 59) * 60 + 45) * 1000 + 500)
    );
    assert_eq!(go_duration_ms("-2m"), Ok(-120_000));
    assert_eq!(go_duration_ms("150ms"), Ok(150));
    assert_eq!(go_duration_ms("0"), Ok(0));
    for bad in ["", "-", "h", "1x", "1.2.3s", "99999999999999999h"] {
        assert!(go_duration_ms(bad).is_err(), "{bad}");
    }
}

#[test]
fn formats() {
    assert_eq!(Format::parse(None), Ok(Format::Lines));
    assert_eq!(Format::parse(Some("csv")), Ok(Format::Csv));
    assert_eq!(
        Format::parse(Some("crowdsec-json")),
        Ok(Format::CrowdsecJson)
    );
    assert!(Format::parse(Some("xml")).is_err());
}

mod api {
    use crate::api::{router, ApiConfig, Role, Tokens};
    use crate::backend::MeshBackend;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use http_body_util::BodyExt;
    use palisade_mesh::{MemoryMesh, Mesh};
    use palisade_policy::decisions::Scope;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn app(mesh: &MemoryMesh, max: usize) -> Router {
        let backend = MeshBackend::new(Arc::new(mesh.clone()), Arc::new(|| super::NOW))
            .with_max_decisions(max);
        router(ApiConfig {
            backend: Arc::new(backend),
            tokens: Arc::new(Tokens::admin("adm").with("view", Role::Viewer)),
            metrics: Arc::new(String::new),
            clock: Arc::new(|| super::NOW),
        })
    }

    async fn post(
        app: &Router,
        uri: &str,
        token: &str,
        body: String,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn list(n: u32) -> String {
        (0..n)
            .map(|i| format!("10.{}.{}.{}\n", i >> 16, (i >> 8) & 0xff, i & 0xff))
            .collect()
    }

    #[tokio::test]
    async fn import_writes_everything_or_nothing() {
        let mesh = MemoryMesh::new();
        let app = app(&mesh, 1_000_000);
        let uri = "/api/v1/decisions/import?duration=1h";
        // A viewer may not import.
        assert_eq!(
            post(&app, uri, "view", list(3)).await.0,
            StatusCode::FORBIDDEN
        );
        // One bad line: nothing is written, the line is reported.
        let mut body = list(5000);
        body.push_str("10.0.0.0/2\n");
        let (status, report) = post(&app, uri, "adm", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{report}");
        assert_eq!(report["rejected_total"], 1);
        assert_eq!(report["rejected"][0]["line"], 5001);
        assert_eq!(report["imported"], 0);
        assert_eq!(mesh.decisions_head().await.unwrap(), 0);
        // on_error=skip imports the rest.
        let mut body = list(5000);
        body.push_str("10.0.0.0/2\n");
        let (status, report) = post(&app, &format!("{uri}&on_error=skip"), "adm", body).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["imported"], 5000);
        assert_eq!(report["rejected_total"], 1);
        assert_eq!(mesh.decisions_retained(), 5000);
        let mut replica = palisade_mesh::DecisionReplica::new();
        let mut s = mesh.decisions_since(0).await.unwrap();
        while replica.last_seq() < report["seq"].as_u64().unwrap() {
            replica.apply(s.next().await.unwrap().unwrap());
        }
        let d = replica.set().get_key(Scope::Ip, "10.0.19.135").unwrap();
        assert_eq!(d.origin, "api:admin:import");
        assert_eq!(d.expires_at, Some(super::NOW + 3_600_000));
        // Unknown parameters and formats are refused.
        assert_eq!(
            post(&app, "/api/v1/decisions/import?format=xml", "adm", list(1))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            post(&app, "/api/v1/decisions/import?bogus=1", "adm", list(1))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn an_import_past_the_cap_is_refused_whole() {
        let mesh = MemoryMesh::new();
        let app = app(&mesh, 100);
        let uri = "/api/v1/decisions/import?duration=1h";
        assert_eq!(post(&app, uri, "adm", list(60)).await.0, StatusCode::OK);
        // Re-importing the same keys fits (they replace), 41 new ones do not.
        assert_eq!(post(&app, uri, "adm", list(100)).await.0, StatusCode::OK);
        let head = mesh.decisions_head().await.unwrap();
        let (status, body) = post(&app, uri, "adm", list(101)).await;
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
        assert_eq!(
            mesh.decisions_head().await.unwrap(),
            head,
            "nothing written"
        );
    }
}
