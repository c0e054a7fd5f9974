//! `--nats-replicas`: how many copies of each JetStream stream and bucket a
//! cluster keeps (`palisade control`, `palisade edge`), and the control
//! plane's reconciliation of existing objects to that count.

/// The replication flag.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplicaArgs {
    /// Replicas of each JetStream stream and bucket (1 to 5). Default: 3
    /// where the NATS cluster can place them, else 1 with a warning and
    /// `palisade_mesh_redundant 0`. Given explicitly, creating an object
    /// with a count the cluster cannot place is an error. The control plane
    /// sets existing objects to it (in place, nothing else changes; when
    /// the cluster refuses, it warns and tries again every 30 s); edges only
    /// create missing objects with it, never change existing ones.
    #[arg(long, env = "PALISADE_NATS_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: Option<u8>,
}

/// The replica count a control plane asks for when none is given.
pub const DEFAULT_REPLICAS: usize = 3;

#[cfg(feature = "nats")]
impl ReplicaArgs {
    /// What the flag asks for.
    pub fn policy(&self) -> palisade_mesh::ReplicaPolicy {
        match self.nats_replicas {
            Some(n) => palisade_mesh::ReplicaPolicy::Exactly(usize::from(n)),
            None => palisade_mesh::ReplicaPolicy::Prefer(DEFAULT_REPLICAS),
        }
    }
}

/// Says once how the mesh is replicated (a warning when not redundant).
#[cfg(feature = "nats")]
pub fn report(r: &palisade_mesh::Replication) {
    let counts: Vec<String> = r
        .objects
        .iter()
        .map(|o| format!("{}={}", o.stream, o.replicas))
        .collect();
    if r.redundant() {
        tracing::info!(wanted = r.wanted, objects = %counts.join(" "), "mesh replication");
    } else {
        tracing::warn!(
            wanted = r.wanted,
            objects = %counts.join(" "),
            reason = r.shortfall.as_deref().unwrap_or("1 replica asked for"),
            "the mesh runs WITHOUT redundancy: losing the NATS server that holds a stream loses its writes until it returns (palisade_mesh_redundant 0); run 3 nats-server in one JetStream cluster"
        );
    }
}

/// How often a control plane whose objects are short of the wanted count
/// tries again (a cluster still forming, a server down at start).
#[cfg(feature = "nats")]
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The control plane's loop: while the objects are short of the wanted
/// count, reconcile again every [`RECONCILE_EVERY`]; reports each change.
#[cfg(feature = "nats")]
pub async fn keep_reconciling(mesh: std::sync::Arc<palisade_mesh::NatsMesh>) {
    let mut last = mesh.replication();
    loop {
        if last.at_target() {
            return;
        }
        tokio::time::sleep(RECONCILE_EVERY).await;
        match mesh.reconcile_replicas().await {
            Ok(r) => {
                if r.objects != last.objects {
                    report(&r);
                }
                last = r;
            }
            Err(e) => tracing::debug!(error = %e, "replica reconciliation failed; will retry"),
        }
    }
}

#[cfg(all(test, feature = "nats"))]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        r: ReplicaArgs,
    }

    #[test]
    fn the_default_prefers_three_and_a_count_is_exact() {
        let p = |args: &[&str]| Cmd::try_parse_from(args).map(|c| c.r.policy());
        assert_eq!(p(&["x"]).unwrap(), palisade_mesh::ReplicaPolicy::Prefer(3));
        assert_eq!(
            p(&["x", "--nats-replicas", "1"]).unwrap(),
            palisade_mesh::ReplicaPolicy::Exactly(1)
        );
        assert!(p(&["x", "--nats-replicas", "0"]).is_err());
        assert!(p(&["x", "--nats-replicas", "6"]).is_err());
    }
}
