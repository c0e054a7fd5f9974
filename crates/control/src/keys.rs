//! The fleet's challenge keys (`palisade_bots::clearance::KeyRing`): made
//! by the control plane, stored in the mesh, read by every edge.
//!
//! [`keep_keys`] makes the ring when the mesh has none, and rotates it every
//! `rotate_every`: the new key signs from then on, and the previous ones
//! keep verifying for `keep_for` (the longest a clearance may live), so a
//! rotation logs nobody out. [`rotate`] does the same on demand (the API's
//! `POST /api/v1/keys/rotate`). Seeds come from the operating system's
//! random source. The ring holds secrets: only key ids and times leave
//! this module ([`KeyView`]).

use palisade_bots::clearance::KeyRing;
use palisade_mesh::{Mesh, MeshError};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long old keys verify after a rotation by default (the longest
/// clearance lifetime a rotation keeps valid).
pub const DEFAULT_KEEP_FOR: Duration = Duration::from_secs(7 * 86_400);
/// How often keys rotate by default.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(86_400);

/// What the API shows of a key (no secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyView {
    pub id: u32,
    pub created_ms: u64,
    pub signs: bool,
    pub verify_until_ms: Option<u64>,
}

/// The keys of a ring, for the API.
pub fn view(ring: &KeyRing, now_ms: u64) -> Vec<KeyView> {
    let signing = ring.signing(now_ms).map(|k| k.id);
    ring.keys
        .iter()
        .map(|k| KeyView {
            id: k.id,
            created_ms: k.created_ms,
            signs: Some(k.id) == signing,
            verify_until_ms: (k.verify_until_ms != u64::MAX).then_some(k.verify_until_ms),
        })
        .collect()
}

fn seed() -> [u8; 32] {
    rand::random()
}

/// The ring in the mesh (None: none yet, or unreadable — then it is
/// replaced only by [`ensure`] when absent, never when unreadable).
pub async fn read<M: Mesh + ?Sized>(mesh: &M) -> Result<Option<KeyRing>, MeshError> {
    match mesh.keyring().await? {
        None => Ok(None),
        Some(bytes) => KeyRing::from_json(&bytes)
            .map(Some)
            .map_err(|e| MeshError::Invalid(e.to_string())),
    }
}

/// Makes the ring when the mesh has none; returns it.
pub async fn ensure<M: Mesh + ?Sized>(mesh: &M, now_ms: u64) -> Result<KeyRing, MeshError> {
    if let Some(ring) = read(mesh).await? {
        return Ok(ring);
    }
    let ring = KeyRing::new(seed(), seed(), now_ms);
    mesh.put_keyring(ring.to_json()).await?;
    tracing::info!("made the challenge key ring");
    Ok(ring)
}

/// Adds a new signing key now; the others verify for `keep_for` more.
pub async fn rotate<M: Mesh + ?Sized>(
    mesh: &M,
    now_ms: u64,
    keep_for: Duration,
) -> Result<KeyRing, MeshError> {
    let mut ring = ensure(mesh, now_ms).await?;
    ring.rotate(seed(), now_ms, keep_for.as_millis() as u64);
    mesh.put_keyring(ring.to_json()).await?;
    tracing::info!(
        key = ring.keys.last().map_or(0, |k| k.id),
        "rotated the challenge keys"
    );
    Ok(ring)
}

/// Keeps a ring in the mesh and rotates it every `rotate_every`, for as
/// long as the control plane runs.
pub async fn keep_keys<M: Mesh + ?Sized>(
    mesh: Arc<M>,
    rotate_every: Duration,
    keep_for: Duration,
    now: fn() -> u64,
) {
    loop {
        let t = now();
        match ensure(&*mesh, t).await {
            Ok(ring)
                if ring
                    .newest_ms()
                    .saturating_add(rotate_every.as_millis() as u64)
                    <= t =>
            {
                if let Err(e) = rotate(&*mesh, t, keep_for).await {
                    tracing::warn!(error = %e, "could not rotate the challenge keys");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not keep the challenge key ring"),
        }
        tokio::time::sleep(Duration::from_secs(30).min(rotate_every)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_mesh::memory::MemoryMesh;

    #[tokio::test]
    async fn the_ring_is_made_once_and_rotates() {
        let m = MemoryMesh::new();
        let a = ensure(&m, 1_000).await.unwrap();
        let b = ensure(&m, 2_000).await.unwrap();
        assert_eq!(a, b, "made once");
        let r = rotate(&m, 3_000, Duration::from_secs(60)).await.unwrap();
        let v = view(&r, 3_001);
        assert_eq!(v.len(), 2);
        assert!(v[1].signs && !v[0].signs);
        assert_eq!(v[0].verify_until_ms, Some(63_000));
        assert_eq!(r.username_key, a.username_key, "the username key stays");
        assert_eq!(read(&m).await.unwrap(), Some(r));
    }
}
