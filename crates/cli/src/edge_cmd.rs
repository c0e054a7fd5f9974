//! `palisade edge`: a node that joins a cluster over NATS JetStream (cargo
//! feature `nats`; without it the command says how to build a binary with it).

use crate::up::EdgeArgs;
#[cfg(feature = "nats")]
use anyhow::{bail, Context};
use clap::Args;
#[cfg(feature = "nats")]
use palisade_edge::sync::{self, SyncConfig};
#[cfg(feature = "nats")]
use palisade_edge::EdgeServer;
#[cfg(feature = "nats")]
use palisade_mesh::nats::{NatsMesh, NatsOptions};
use std::path::PathBuf;
#[cfg(feature = "nats")]
use std::sync::Arc;
#[cfg(feature = "nats")]
use std::time::Duration;

#[derive(Args)]
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub struct EdgeCmdArgs {
    #[command(flatten)]
    edge: EdgeArgs,
    /// Directory for the fail-static state (last policy and decisions).
    #[arg(long, default_value = "palisade-edge-data")]
    data_dir: PathBuf,
    /// NATS server URL (several: comma-separated).
    #[arg(long, env = "PALISADE_NATS")]
    nats: String,
    /// NATS credentials file (.creds), when the server requires one.
    #[arg(long)]
    nats_creds: Option<PathBuf>,
    /// CA certificates (PEM) to verify the NATS server's TLS certificate.
    #[arg(long)]
    nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS with NATS.
    #[arg(long, requires = "nats_tls_key")]
    nats_tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS with NATS.
    #[arg(long, requires = "nats_tls_cert")]
    nats_tls_key: Option<PathBuf>,
    /// Prefix of the cluster's subjects, streams and buckets.
    #[arg(long, default_value = "palisade")]
    nats_prefix: String,
    #[command(flatten)]
    replicas: crate::replicas::ReplicaArgs,
    /// Address serving /metrics and /healthz (optional).
    #[arg(long)]
    metrics: Option<String>,
}

#[cfg(not(feature = "nats"))]
pub fn run(_args: EdgeCmdArgs) -> anyhow::Result<i32> {
    Err(crate::features::without_nats("palisade edge"))
}

#[cfg(feature = "nats")]
pub fn run(args: EdgeCmdArgs) -> anyhow::Result<i32> {
    let upstreams = args.edge.upstream_specs()?;
    if upstreams.is_empty() {
        bail!("palisade edge needs at least one --upstream");
    }
    // Pingora would retry a busy port for 30 s, then panic on a thread of its own.
    crate::listen::check("--listen", &args.edge.listen)?;
    if let Some(tls) = &args.edge.tls_listen {
        crate::listen::check("--tls-listen", tls)?;
    }
    let metrics_listener = match &args.metrics {
        Some(addr) => Some(crate::listen::bind("--metrics", addr)?),
        None => None,
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let cfg = args.edge.config(upstreams, None)?;
    let edge = EdgeServer::build(cfg)?;
    let state = edge.state.clone();

    // Fail-static: start from what this node enforced last.
    match sync::restore(&state, &args.data_dir) {
        Ok((version, decisions)) => {
            tracing::info!(policy_version = ?version, decisions, "restored the persisted edge state")
        }
        Err(e) => tracing::error!("could not restore the persisted edge state: {e}"),
    }

    // Security events also go to the mesh.
    let rx = sync::event_feed(&state)?;

    let opts = NatsOptions {
        prefix: args.nats_prefix.clone(),
        node_id: args.edge.node_id.clone(),
        credentials_file: args.nats_creds.clone(),
        tls_root_ca: args.nats_tls_ca.clone(),
        tls_client_cert: args.nats_tls_cert.clone().zip(args.nats_tls_key.clone()),
        // Only for objects this edge creates: it never changes existing ones.
        replicas: args.replicas.policy(),
        reconcile_replicas: false,
        ..NatsOptions::default()
    };
    let replication = Arc::new(std::sync::Mutex::new(None::<palisade_mesh::Replication>));
    let sync_cfg = SyncConfig {
        node_id: args.edge.node_id.clone(),
        address: args.edge.listen.clone(),
        data_dir: args.data_dir.clone(),
        heartbeat_interval: Duration::from_secs(2),
        spool_max_bytes: 64 * 1024 * 1024,
    };
    let url = args.nats.clone();
    let metrics_state = state.clone();
    crate::runtime::spawn_runtime_thread("palisade-sync", None, move || async move {
        if let Some(listener) = metrics_listener {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    let st = metrics_state.clone();
                    let rep = replication.clone();
                    let app = axum::Router::new()
                        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
                        .route(
                            "/metrics",
                            axum::routing::get(move || {
                                let st = st.clone();
                                let mesh = rep
                                    .lock()
                                    .ok()
                                    .and_then(|r| r.as_ref().map(|r| r.render_metrics()))
                                    .unwrap_or_default();
                                async move { format!("{}{mesh}", st.metrics.render()) }
                            }),
                        );
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::error!(error = %e, "metrics endpoint stopped");
                        }
                    });
                }
                Err(e) => tracing::error!(error = %e, "metrics endpoint listener"),
            }
        }
        let opts = Arc::new(opts);
        sync::run(
            metrics_state,
            sync_cfg,
            || {
                let (url, opts, replication) = (url.clone(), opts.clone(), replication.clone());
                async move {
                    let mesh = NatsMesh::connect(&url, (*opts).clone()).await?;
                    let r = mesh.replication();
                    crate::replicas::report(&r);
                    if let Ok(mut slot) = replication.lock() {
                        *slot = Some(r);
                    }
                    Ok(mesh)
                }
            },
            rx,
        )
        .await;
    })?;

    tracing::info!(node = %args.edge.node_id, listen = %args.edge.listen, nats = %args.nats, "palisade edge");
    edge.run_forever()
}
