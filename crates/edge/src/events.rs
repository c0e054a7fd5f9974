//! Security events: one JSON line each, written by a background thread so the
//! request path never blocks on output. When the writer falls behind, events
//! are dropped and counted (`palisade_events_dropped_total`).

use palisade_policy::SecurityEvent;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

/// Where events go.
pub struct EventSink {
    tx: SyncSender<SecurityEvent>,
    subscribers: parking_lot::RwLock<Vec<SyncSender<SecurityEvent>>>,
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
        let (tx, rx) = sync_channel::<SecurityEvent>(65_536);
        std::thread::Builder::new()
            .name("palisade-events".into())
            .spawn(move || {
                while let Ok(ev) = rx.recv() {
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
    pub fn subscribe(&self, tx: SyncSender<SecurityEvent>) {
        self.subscribers.write().push(tx);
    }

    /// Queues an event. Returns false when it had to be dropped.
    pub fn emit(&self, mut ev: SecurityEvent) -> bool {
        // Every event leaves the edge bounded (MAX_EVENT_BYTES), whatever
        // the request quoted in it.
        ev.bound();
        {
            let subs = self.subscribers.read();
            for s in subs.iter() {
                let _ = s.try_send(ev.clone());
            }
        }
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
