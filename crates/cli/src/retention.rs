//! `--event-retention`, `--event-max-rows`, `--incident-max-rows`: how long
//! and how much the control plane's store keeps (`palisade control`,
//! `palisade up`).

use palisade_control::store::Retention;

/// The store's retention flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Events and incidents older than this are deleted (pruned every
    /// minute in the background).
    #[arg(long, default_value = "30d", env = "PALISADE_EVENT_RETENTION")]
    pub event_retention: String,
    /// Events kept at most; the oldest go first.
    #[arg(long, default_value_t = 1_000_000, env = "PALISADE_EVENT_MAX_ROWS")]
    pub event_max_rows: u64,
    /// Incidents kept at most; the oldest go first.
    #[arg(long, default_value_t = 100_000, env = "PALISADE_INCIDENT_MAX_ROWS")]
    pub incident_max_rows: u64,
}

impl RetentionArgs {
    /// The retention, or which flag is wrong.
    pub fn retention(&self) -> anyhow::Result<Retention> {
        let max_age_ms = palisade_policy::duration::parse_duration_ms(&self.event_retention)
            .map_err(|e| anyhow::anyhow!("--event-retention: {e}"))?;
        if max_age_ms == 0 {
            anyhow::bail!("--event-retention must be longer than 0");
        }
        if self.event_max_rows == 0 || self.incident_max_rows == 0 {
            anyhow::bail!("--event-max-rows and --incident-max-rows must be at least 1");
        }
        Ok(Retention {
            max_age_ms,
            max_events: self.event_max_rows,
            max_incidents: self.incident_max_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_a_retention_or_a_clear_error() {
        let a = RetentionArgs {
            event_retention: "7d".into(),
            event_max_rows: 10,
            incident_max_rows: 5,
        };
        let r = a.retention().unwrap();
        assert_eq!(
            (r.max_age_ms, r.max_events, r.max_incidents),
            (7 * 86_400_000, 10, 5)
        );
        for bad in ["0s", "soon"] {
            let e = RetentionArgs {
                event_retention: bad.into(),
                ..a.clone()
            }
            .retention()
            .unwrap_err();
            assert!(e.to_string().contains("--event-retention"), "{e}");
        }
        assert!(RetentionArgs {
            event_max_rows: 0,
            ..a
        }
        .retention()
        .is_err());
    }
}
