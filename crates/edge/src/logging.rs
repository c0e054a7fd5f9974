//! Bridges Pingora's `log` records into `tracing`, and surfaces what Pingora
//! only logs at debug level: a malformed request (answered 400 by Pingora
//! before any of our phases run) becomes a warning and a count in
//! `palisade_bad_requests_total{reason="malformed"}`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Malformed requests Pingora rejected with 400 (read into the metric on render).
pub static MALFORMED_REQUESTS: AtomicU64 = AtomicU64::new(0);

struct Bridge {
    inner: tracing_log::LogTracer,
}

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
            || (m.level() == log::Level::Debug && m.target() == "pingora_proxy")
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Debug {
            // Only the top module's formatted debug messages can be the one we want;
            // static messages (`as_str()` is Some) are skipped without formatting.
            if record.module_path() == Some("pingora_proxy") && record.args().as_str().is_none() {
                let msg = record.args().to_string();
                if msg.starts_with("Fail to proxy") && msg.contains("InvalidHTTPHeader") {
                    MALFORMED_REQUESTS.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "palisade::edge", reason = "malformed", status = 400, "rejected request: {msg}");
                }
            }
            return;
        }
        self.inner.log(record);
    }

    fn flush(&self) {}
}

/// Installs the bridge as the `log` logger. Call once, before the tracing subscriber is set.
pub fn install_log_bridge() -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(Bridge {
        inner: tracing_log::LogTracer::new(),
    }))?;
    log::set_max_level(log::LevelFilter::Debug);
    Ok(())
}
