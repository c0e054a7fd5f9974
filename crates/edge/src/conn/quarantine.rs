//! The quarantine thread: a tokio runtime of its own that serves the
//! connections of networks the edge does not know yet
//! ([`super::familiar`]).
//!
//! Why: an edge thread serves its connections in turn. When five hundred
//! new sources flood it with pipelined requests, a request of a client that
//! was there before waits for a whole round of theirs (about 200 ms on one
//! thread before the flood is detected and banned, `bench/flood`). With
//! the new sources on a thread of their own, the operating system shares
//! the CPU between that thread and the edge's threads, and the known
//! clients' requests wait only for each other. New clients lose nothing
//! while the quarantine thread is idle; during a flood of new sources they
//! share its capacity with the flood, which is the price of not knowing
//! them. The proxy apps of the quarantine have their own upstream
//! connection pools, so that a busy quarantine thread never delays the
//! upstream connections of the others.
//!
//! Connections through a trusted proxy are never quarantined (the clients
//! behind it are known only once a request is parsed).

use std::sync::OnceLock;
use tokio::runtime::Handle;

/// The quarantine runtime, started on first use.
#[derive(Default)]
pub struct Quarantine {
    handle: OnceLock<Option<Handle>>,
}

impl Quarantine {
    /// The runtime's handle; None when its thread could not be started
    /// (logged once; connections are then served where they were accepted).
    pub fn handle(&self) -> Option<&Handle> {
        self.handle
            .get_or_init(|| match start() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the quarantine thread; serving every connection on the edge threads");
                    None
                }
            })
            .as_ref()
    }
}

fn start() -> std::io::Result<Handle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("palisade-quarantine")
        .build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("palisade-quarantine".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}
