//! Assembles an edge: state, upstream pool, Pingora services, background tasks.

use crate::client_ip::TrustedProxies;
use crate::config::EdgeConfig;
use crate::conn::{AppKey, ConnFilter, ConnGuard};
use crate::events::EventSink;
use crate::geoip::GeoIp;
use crate::now_ms;
use crate::proxy::EdgeProxy;
use crate::reload::{load_policy_file, spawn_watcher};
use crate::state::EdgeState;
use crate::upstream::UpstreamPool;
use anyhow::{bail, Context};
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::Policy;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

/// A built edge, ready to run.
pub struct EdgeServer {
    server: Server,
    /// The shared state (for the management API and tests).
    pub state: Arc<EdgeState>,
}

impl EdgeServer {
    /// Validates the configuration, loads the policy and builds every service.
    pub fn build(cfg: EdgeConfig) -> anyhow::Result<EdgeServer> {
        if cfg.upstreams.is_empty() {
            bail!("at least one upstream is required");
        }
        if cfg.listen.is_empty() && cfg.tls.is_none() {
            bail!("at least one listener is required");
        }
        let policy = match &cfg.policy_path {
            Some(p) => load_policy_file(p).map_err(|e| anyhow::anyhow!("invalid policy:\n{e}"))?,
            None => Policy::empty(),
        };
        let geo = GeoIp::open(cfg.geoip_country.as_deref(), cfg.geoip_asn.as_deref())
            .map_err(anyhow::Error::msg)?;
        let events =
            EventSink::new(cfg.events_path.as_deref()).context("opening the events output")?;
        let policy_name = cfg
            .policy_path
            .as_ref()
            .map_or_else(|| "the policy".to_string(), |p| p.display().to_string());
        let state = Arc::new(
            EdgeState::new(
                cfg.node_id.clone(),
                policy,
                RateLimiter::new(cfg.ratelimit_max_keys),
                geo,
                events,
                TrustedProxies::new(cfg.trusted_proxies.clone()),
                cfg.limits.clone(),
            )
            .map_err(|e| anyhow::anyhow!("{policy_name}: cannot start the WAF: {e}"))?
            .with_rule_roots(cfg.rule_roots.clone()),
        );

        let conf = ServerConf {
            threads: cfg.threads.max(1),
            work_stealing: false,
            grace_period_seconds: Some(0),
            graceful_shutdown_timeout_seconds: Some(1),
            upstream_keepalive_pool_size: 1024,
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();

        let lb = UpstreamPool::load_balancer(&cfg.upstreams, cfg.health_check_interval)
            .map_err(anyhow::Error::msg)?;
        let health = background_service("upstream health check", lb);
        let pool = Arc::new(UpstreamPool::new(
            health.task(),
            &cfg.upstreams,
            cfg.passive_eject,
            cfg.connect_timeout,
            cfg.upstream_timeout,
        ));

        // One proxy speaks HTTP/1 (and h2 by ALPN on TLS), one h2c; the plain
        // listener picks by the first bytes (see `crate::h2c`). The connection
        // guard (`crate::conn`) counts, caps and wraps every connection first,
        // and rebuilds the apps for new connections when `[connections]`
        // changes their HTTP/2 settings.
        let make_app = {
            let conf = server.configuration.clone();
            let state = state.clone();
            let pool = pool.clone();
            move |key: &AppKey, h2c: bool| {
                let mut app =
                    pingora_proxy::http_proxy(&conf, EdgeProxy::new(state.clone(), pool.clone()));
                let mut options = HttpServerOptions::default();
                options.h2c = h2c;
                options.h2_idle_timeout = Some(Duration::from_millis(key.idle_timeout_ms));
                app.server_options = Some(options);
                app.h2_options = Some(key.h2_options());
                app
            }
        };
        let mut proxy = Service::new(
            "palisade edge".to_string(),
            ConnGuard::new(state.clone(), Box::new(make_app)),
        );
        proxy.set_connection_filter(Arc::new(ConnFilter::new(state.clone())));
        crate::conn::spawn_sweeper(&state).context("starting the connection sweeper")?;
        for addr in &cfg.listen {
            proxy.add_tcp(addr);
        }
        if let Some(tls) = &cfg.tls {
            let cert = tls
                .cert
                .to_str()
                .context("TLS certificate path is not UTF-8")?;
            let key = tls.key.to_str().context("TLS key path is not UTF-8")?;
            for p in [&tls.cert, &tls.key] {
                std::fs::metadata(p).with_context(|| format!("TLS file {}", p.display()))?;
            }
            let mut settings = TlsSettings::intermediate(cert, key)
                .map_err(|e| anyhow::anyhow!("TLS certificate {cert} / key {key}: {e}"))?;
            settings.enable_h2();
            // The ClientHello's fingerprint, read before rustls (crate::conn::hello).
            proxy
                .endpoints()
                .set_pre_tls_callback(Arc::new(crate::conn::hello::HelloReader::new(
                    state.clone(),
                )));
            proxy.add_tls_with_settings(&tls.listen, None, settings);
        }
        server.add_service(proxy);
        server.add_service(health);

        // Housekeeping: expiry, gauges, upstream health metric.
        {
            let state = state.clone();
            let pool = pool.clone();
            std::thread::Builder::new()
                .name("palisade-housekeeping".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let now = now_ms();
                    let purged = state.purge_expired(now);
                    if purged > 0 {
                        tracing::info!(purged, "expired decisions removed");
                    }
                    crate::flood::roll(&state, now);
                    state.refresh_gauges();
                    pool.publish_health(&state.metrics, now);
                })
                .context("starting the housekeeping thread")?;
        }

        match &cfg.policy_path {
            Some(path) => {
                spawn_watcher(state.clone(), path.clone()).context("watching the policy file")?
            }
            // Without a policy file SIGHUP has nothing to reload, but must not end the process.
            None => crate::reload::ignore_sighup().context("installing the SIGHUP handler")?,
        }
        Ok(EdgeServer { server, state })
    }

    /// Runs until SIGTERM/SIGINT; never returns.
    pub fn run_forever(self) -> ! {
        self.server.run_forever()
    }
}
