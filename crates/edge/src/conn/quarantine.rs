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
//! The thread runs at a lower CPU priority ([`NICE`]): when the machine's
//! cores are all busy, the operating system runs the edge's threads first.
//!
//! Connections through a trusted proxy are never quarantined (the clients
//! behind it are known only once a request is parsed).

use std::sync::OnceLock;
use tokio::runtime::Handle;

/// The quarantine thread's nice value (the edge's threads keep theirs,
/// usually 0): under CPU contention the kernel gives it about a third of
/// the weight of a thread at 0. (At 10, a tenth, the flood bench's
/// detection slowed past 1 s in two runs of five: the flood's requests are
/// what the detector counts, and they are served on this thread.)
pub const NICE: i32 = 5;

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
        .spawn(move || {
            lower_priority();
            rt.block_on(std::future::pending::<()>())
        })?;
    Ok(handle)
}

/// Sets this thread's nice value to [`NICE`] (Linux: per thread). Raising
/// one's own nice value needs no privilege; a failure is only logged.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread, no memory shared.
        let tid = unsafe { libc::gettid() };
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) };
        if done != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower the quarantine thread's priority");
        }
    }
}
