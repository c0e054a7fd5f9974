//! The edge's decision table on disk (fail-static), kept incrementally: a
//! snapshot plus an append-only log of the updates applied since, so that a
//! change costs its own size rather than a rewrite of the whole table.
//!
//! - `DATA_DIR/decisions.snap`: a header line `{"last_seq":N,"count":M}` then
//!   one decision per line (JSON), written to a temporary file and renamed;
//! - `DATA_DIR/decisions.log`: one applied update per line
//!   (`{"seq":…,"op":…}`), appended as updates are applied.
//!
//! Compaction writes a new snapshot from a copy of the table and empties the
//! log once the log outgrows the snapshot (and [`MIN_COMPACT_BYTES`]): the
//! disk holds at most about twice the table, and writing costs at most twice
//! each update's size. Loading reads the snapshot then replays the log; an
//! update the snapshot already holds (`seq <= last_seq`) is skipped, so a
//! crash between the snapshot's rename and the log's truncation loses
//! nothing. A torn last line (a crash during an append) ends the replay.
//!
//! What it must not do: decide what is persisted when (the sync loop does).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use palisade_mesh::replica::DecisionReplica;
use palisade_mesh::DecisionUpdate;
use palisade_policy::{Decision, DecisionSet};
use serde::{Deserialize, Serialize};

/// The log is compacted once it is larger than this and than the snapshot.
pub const MIN_COMPACT_BYTES: u64 = 16 << 20;

const SNAP: &str = "decisions.snap";
const LOG: &str = "decisions.log";

#[derive(Serialize, Deserialize)]
struct Header {
    last_seq: u64,
    count: u64,
}

/// The snapshot and log of one data directory, open for appending.
#[derive(Debug)]
pub struct DecisionFiles {
    dir: PathBuf,
    log: Option<BufWriter<File>>,
    log_bytes: u64,
    snap_bytes: u64,
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The table, or `None` when neither file exists.
    pub replica: Option<DecisionReplica>,
    /// Log updates replayed.
    pub replayed: usize,
    /// Problems met (a torn log tail, a decision that did not load), each with its place.
    pub warnings: Vec<String>,
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

impl DecisionFiles {
    /// The files of `dir` (created on first write).
    pub fn open(dir: &Path) -> DecisionFiles {
        DecisionFiles {
            dir: dir.to_path_buf(),
            log: None,
            log_bytes: size(&dir.join(LOG)),
            snap_bytes: size(&dir.join(SNAP)),
        }
    }

    /// Whether the files exist (a table was persisted this way).
    pub fn exist(dir: &Path) -> bool {
        dir.join(SNAP).exists() || dir.join(LOG).exists()
    }

    /// Appends applied updates to the log (and flushes it).
    pub fn append(&mut self, updates: &[DecisionUpdate]) -> std::io::Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        if self.log.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(LOG))?;
            self.log = Some(BufWriter::with_capacity(1 << 16, f));
        }
        let Some(w) = self.log.as_mut() else {
            return Ok(());
        };
        let mut line = Vec::with_capacity(256);
        for u in updates {
            line.clear();
            serde_json::to_writer(&mut line, u).map_err(std::io::Error::other)?;
            line.push(b'\n');
            w.write_all(&line)?;
            self.log_bytes += line.len() as u64;
        }
        w.flush()
    }

    /// Whether the log has outgrown the snapshot.
    pub fn compaction_due(&self) -> bool {
        self.log_bytes > MIN_COMPACT_BYTES.max(self.snap_bytes)
    }

    /// Bytes of the log.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Writes `replica` as the snapshot and empties the log. Every update in
    /// the log must be in `replica` (appended before it was copied).
    pub fn compact(&mut self, replica: &DecisionReplica) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(".decisions.snap.tmp");
        let f = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let header = Header {
            last_seq: replica.last_seq(),
            count: replica.set().len() as u64,
        };
        serde_json::to_writer(&mut w, &header).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        for d in replica.set().iter() {
            serde_json::to_writer(&mut w, &d.to_decision()).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.dir.join(SNAP))?;
        self.snap_bytes = size(&self.dir.join(SNAP));
        // The snapshot holds everything the log did.
        self.log = None;
        File::create(self.dir.join(LOG))?;
        self.log_bytes = 0;
        Ok(())
    }
}

/// Reads the snapshot and replays the log of `dir`.
pub fn load(dir: &Path) -> Result<Loaded, String> {
    let mut out = Loaded::default();
    let snap = dir.join(SNAP);
    let mut set = DecisionSet::new();
    let mut last_seq = 0;
    let mut found = false;
    match File::open(&snap) {
        Ok(f) => {
            found = true;
            let mut lines = BufReader::with_capacity(1 << 16, f).lines();
            let header: Header = match lines.next() {
                Some(Ok(l)) => serde_json::from_str(&l)
                    .map_err(|e| format!("{}:1: header: {e}", snap.display()))?,
                Some(Err(e)) => return Err(format!("{}: {e}", snap.display())),
                None => return Err(format!("{}: empty", snap.display())),
            };
            last_seq = header.last_seq;
            for (i, line) in lines.enumerate() {
                let line = line.map_err(|e| format!("{}: {e}", snap.display()))?;
                let d: Decision = serde_json::from_str(&line)
                    .map_err(|e| format!("{}:{}: {e}", snap.display(), i + 2))?;
                if let Err(e) = set.insert(d) {
                    out.warnings.push(format!(
                        "{}:{}: decision skipped: {e}",
                        snap.display(),
                        i + 2
                    ));
                }
            }
            if set.len() as u64 + out.warnings.len() as u64 != header.count {
                return Err(format!(
                    "{}: {} decisions, the header says {} (truncated?)",
                    snap.display(),
                    set.len(),
                    header.count
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", snap.display())),
    }
    let mut replica = DecisionReplica::with_set(set, last_seq);
    let log = dir.join(LOG);
    match File::open(&log) {
        Ok(f) => {
            found = true;
            let mut r = BufReader::with_capacity(1 << 16, f);
            let (mut line, mut offset, mut n) = (Vec::new(), 0u64, 0usize);
            loop {
                line.clear();
                let read = r
                    .read_until(b'\n', &mut line)
                    .map_err(|e| format!("{}: {e}", log.display()))?;
                if read == 0 {
                    break;
                }
                n += 1;
                let parsed = if line.last() == Some(&b'\n') {
                    serde_json::from_slice::<DecisionUpdate>(&line).map_err(|e| e.to_string())
                } else {
                    Err("incomplete line".to_string())
                };
                match parsed {
                    Ok(u) => {
                        if u.seq > replica.last_seq() {
                            replica.apply(u);
                            out.replayed += 1;
                        }
                        offset += read as u64;
                    }
                    Err(e) => {
                        // A torn tail after a crash: cut it, so that appends start on a
                        // line of their own; nothing after it is trusted.
                        out.warnings.push(format!(
                            "{}:{n}: {e}; replay stopped there and the log cut",
                            log.display()
                        ));
                        OpenOptions::new()
                            .write(true)
                            .open(&log)
                            .and_then(|f| f.set_len(offset))
                            .map_err(|e| format!("{}: {e}", log.display()))?;
                        break;
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", log.display())),
    }
    out.replica = found.then_some(replica);
    Ok(out)
}

#[cfg(test)]
mod tests;
