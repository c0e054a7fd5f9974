//! Security events: one JSON line each, written by a background thread so the
//! request path never blocks on output. When the writer falls behind, events
//! are dropped and counted (`palisade_events_dropped_total`).
//!
//! The queues are tokio's bounded channels: their slots are allocated in
//! small blocks as events arrive, not up front. (`std`'s `sync_channel`
//! allocates and touches every slot when it is made: 18 MiB resident for
//! the 65,536 events of the writer's queue, and 1.1 MiB per subscriber,
//! in every process, before any event.)

use palisade_policy::SecurityEvent;
use std::io::Write;
use std::path::Path;
use tokio::sync::mpsc::{channel, error::TrySendError, Sender};

/// How many events may wait for the writer before new ones are dropped.
pub const QUEUE_EVENTS: usize = 65_536;

/// Where events go.
pub struct EventSink {
    tx: Sender<SecurityEvent>,
    subscribers: parking_lot::RwLock<Vec<Sender<SecurityEvent>>>,
}

impl EventSink {
    /// Events to standard output (`path` = None) or appended to a file.
    pub fn new(path: Option<&Path>) -> std::io::Result<EventSink> {
        let mut out: Box<dyn Write + Send> = match path {
            None => Box::new(std::io::stdout()),
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
        };
        let (tx, mut rx) = channel::<SecurityEvent>(QUEUE_EVENTS);
        std::thread::Builder::new()
            .name("palisade-events".into())
            .spawn(move || {
                // A plain thread, outside any runtime: blocking_recv is allowed.
                while let Some(ev) = rx.blocking_recv() {
                    let mut line = serde_json::to_vec(&ev).unwrap_or_default();
                    line.push(b'\n');
                    // Drain what is queued before flushing, to batch writes.
                    while let Ok(ev) = rx.try_recv() {
                        if let Ok(more) = serde_json::to_vec(&ev) {
                            line.extend_from_slice(&more);
                            line.push(b'\n');
                        }
                    }
                    if out.write_all(&line).and_then(|_| out.flush()).is_err() {
                        // Nowhere to report to; keep consuming so senders never block.
                    }
                }
            })?;
        Ok(EventSink {
            tx,
            subscribers: parking_lot::RwLock::new(Vec::new()),
        })
    }

    /// Also delivers every event to `tx` (used by the control plane and tests). Full subscribers miss events.
    pub fn subscribe(&self, tx: Sender<SecurityEvent>) {
        self.subscribers.write().push(tx);
    }

    /// Queues an event. Returns false when it had to be dropped (by the
    /// queue or a subscriber).
    pub fn emit(&self, mut ev: SecurityEvent) -> bool {
        // Every event leaves the edge bounded (MAX_EVENT_BYTES), whatever
        // the request quoted in it.
        ev.bound();
        // A full subscriber (the mesh spool writer far behind) misses the
        // event: counted as dropped like a full queue.
        let mut delivered = true;
        {
            let subs = self.subscribers.read();
            for s in subs.iter() {
                if let Err(TrySendError::Full(_)) = s.try_send(ev.clone()) {
                    delivered = false;
                }
            }
        }
        match self.tx.try_send(ev) {
            Ok(()) => delivered,
            Err(TrySendError::Full(_)) | Err(TrySendError::Closed(_)) => false,
        }
    }
}
