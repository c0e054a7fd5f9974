//! `palisade up` restarted on its data dir: what the node enforced before is
//! in force from its first request, without waiting for a replay.
//!
//! The in-process mesh starts empty at every start, so the persisted table
//! must be written into it again for the control plane and the edge's sync
//! loop to agree with it. Replaying it through the mesh to the edge (one
//! update at a time, then a snapshot) took 9 s for a million decisions;
//! instead the edge gets the loaded table at once ([`install`]), numbered as
//! the fresh mesh will number the replay (`1..=n`), and the replay runs in
//! the background ([`replay`]) before the sync loop and the API start. The
//! sync loop then finds the edge at the mesh's head: nothing to apply,
//! nothing to resync (it writes a snapshot, as after any start, so that the
//! files carry the new numbering).
//!
//! What it owns: that ordering. What it must not do: publish anything into
//! the mesh before [`replay`] (a write in between would shift the numbering;
//! the sync loop would then rebuild the edge's table from the mesh, which is
//! still correct, only slower).

use palisade_edge::state::EdgeState;
use palisade_edge::sync::Restored;
use palisade_mesh::{DecisionOp, DecisionReplica, Mesh, MeshError, PolicyVersion};
use palisade_policy::{DecisionSet, Policy};

/// Decisions per publish while replaying (bounds the copies held at once).
const REPLAY_CHUNK: usize = 65_536;

/// What [`install`] leaves for [`replay`].
#[derive(Default)]
pub struct Pending {
    /// The table to write into the mesh (a copy of what the edge enforces).
    pub decisions: Option<DecisionSet>,
    /// The policy version the edge enforced (written when the archive is empty).
    pub policy: Option<PolicyVersion>,
}

/// Puts the persisted table (expired decisions dropped) and, unless
/// `policy_file` (the file rules then), the persisted policy version in
/// force in the edge. Returns what the mesh must be given.
pub fn install(state: &EdgeState, restored: Restored, policy_file: bool, now: u64) -> Pending {
    let mut pending = Pending::default();
    if let Some(mut replica) = restored.decisions {
        let mut set = std::mem::take(replica.set_mut());
        set.purge_expired(now);
        let n = set.len() as u64;
        pending.decisions = Some(set.clone());
        state.replace_decisions(DecisionReplica::with_set(set, n));
        tracing::info!(decisions = n, "restored the persisted decision table");
    }
    if policy_file {
        return pending;
    }
    if let Some(pv) = restored.policy {
        match Policy::from_toml(&pv.source, &format!("policy v{}", pv.version)) {
            Ok(policy) => match state.set_cluster_policy(policy, pv.version) {
                Ok(()) => tracing::info!(version = pv.version, "restored the persisted policy"),
                Err(e) => {
                    tracing::error!(version = pv.version, "persisted policy not applied: {e}")
                }
            },
            Err(e) => tracing::error!(
                "persisted policy v{} does not compile, ignored:\n{e}",
                pv.version
            ),
        }
        pending.policy = Some(pv);
    }
    pending
}

/// Writes the table [`install`] gave the edge into the fresh mesh (sequences
/// `1..=n`), then the policy history: the `archived` versions in order, else
/// the version the edge enforced, which is returned (to be archived).
pub async fn replay<M: Mesh>(
    mesh: &M,
    pending: Pending,
    archived: Vec<PolicyVersion>,
) -> Result<Option<PolicyVersion>, MeshError> {
    let mut last = mesh.decisions_head().await?;
    if let Some(set) = pending.decisions {
        let expected = last + set.len() as u64;
        let mut ops = set.iter().map(|d| DecisionOp::Upsert {
            decision: d.to_decision(),
        });
        loop {
            let chunk: Vec<DecisionOp> = ops.by_ref().take(REPLAY_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            last = mesh.publish_decisions(chunk).await?;
        }
        if last != expected {
            // The edge's numbering is off: its sync loop rebuilds the table from the mesh.
            tracing::warn!(
                last,
                expected,
                "the decision replay was numbered unexpectedly"
            );
        }
    }
    if !archived.is_empty() {
        for pv in archived {
            mesh.put_policy(pv.source, pv.digest, pv.author).await?;
        }
    } else if let Some(pv) = pending.policy {
        let v = mesh
            .put_policy(
                pv.source,
                pv.digest,
                format!("restored v{} at start", pv.version),
            )
            .await?;
        return Ok(Some(v));
    }
    Ok(None)
}
