//! `palisade demo-origin`: a small site to protect in quick starts, tests and benchmarks.

use axum::extract::Request;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;

#[derive(Args, Clone)]
pub struct OriginArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

const INDEX: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Palisade demo origin</title></head>
<body><h1>Palisade demo origin</h1>
<p>This site is protected by Palisade. Try <a href="/api/status">/api/status</a>, <a href="/login">/login</a> or <a href="/admin">/admin</a>.</p>
</body></html>
"#;

const LOGIN: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Log in</title></head>
<body><form method="post" action="/login">
<label>User <input name="user"></label> <label>Password <input name="password" type="password"></label>
<button>Log in</button></form></body></html>
"#;

/// The demo site's routes.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/api/status",
            get(|| async {
                Json(serde_json::json!({"status": "ok", "service": "palisade-demo-origin"}))
            }),
        )
        .route("/login", get(|| async { Html(LOGIN) }).post(login))
        .fallback(|req: Request| async move {
            format!("demo origin: {} {}\n", req.method(), req.uri().path()).into_response()
        })
}

/// `POST /login`: user `demo`, password `demo` logs in (200); anything else
/// is refused with 401, as a real login form would (account protection
/// counts these).
async fn login(body: axum::body::Bytes) -> axum::response::Response {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let ok = form.get("user").map(String::as_str) == Some("demo")
        && form.get("password").map(String::as_str) == Some("demo");
    if ok {
        Html("<p>Welcome, demo.</p>\n").into_response()
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            Html("<p>Wrong user or password.</p>\n"),
        )
            .into_response()
    }
}

/// Serves the demo site on an already bound listener until the runtime stops.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, app()).await
}

pub fn run(args: OriginArgs) -> anyhow::Result<i32> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.enable_all().build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        tracing::info!(listen = %listener.local_addr()?, "demo origin listening");
        serve(listener).await?;
        Ok(0)
    })
}
