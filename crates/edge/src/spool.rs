//! The edge's event spool: a bounded write-ahead log of security events.
//!
//! Every event goes through the spool on its way to the mesh:
//!
//! 1. the **writer** (`sync::spool_events`) appends the events that arrived
//!    in the last group window (at most [`GROUP_WINDOW`]) in one write, off
//!    the request path;
//! 2. the **sender** (`sync::send_spooled`) reads them back in order,
//!    publishes them, and moves the spool's **cursor** past them only once
//!    the mesh acknowledged them.
//!
//! So an edge killed at any moment (`kill -9`) loses at most the events of
//! its last group window: those still in memory. Everything written is sent
//! after a restart, from the persisted cursor; an event may be sent twice
//! (acknowledged, then the edge died before saving the cursor), and the
//! control plane stores each event once (keyed by node, request id and
//! rule). Data is handed to the kernel at every group and flushed to the
//! disk (`fdatasync`) at most every [`SYNC_EVERY`]: a crash of the whole
//! machine may lose that much more.
//!
//! Events are JSON lines in numbered segment files. The total size is
//! bounded: when an append would pass the bound, whole oldest segments are
//! deleted and their unsent events counted as dropped — events are lost
//! only past the bound, oldest first.

use palisade_policy::SecurityEvent;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Events wait in memory at most this long before they are written.
pub const GROUP_WINDOW: Duration = Duration::from_millis(100);

/// Written events are flushed to the disk at least this often.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Bytes read from a segment at once by [`Spool::pending`].
const READ_CHUNK: usize = 1 << 20;

const CURSOR_FILE: &str = "cursor";

/// Where the sender is: the byte `offset` in segment `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    segment: u64,
    offset: u64,
}

#[derive(Debug)]
struct Segment {
    n: u64,
    size: u64,
}

#[derive(Debug)]
struct Inner {
    /// Segments on disk, oldest first.
    segments: VecDeque<Segment>,
    /// Everything before this was acknowledged by the mesh.
    cursor: Position,
    /// The open newest segment, for appends.
    file: Option<(u64, std::fs::File)>,
    last_sync: Instant,
    /// Lines skipped because they did not decode.
    undecodable: u64,
}

/// The spool of one edge. Shared by the writer and the sender.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    inner: Mutex<Inner>,
}

fn segment_name(n: u64) -> String {
    format!("spool-{n:06}.jsonl")
}

impl Spool {
    /// Opens (creating) the spool directory. `max_bytes` bounds the total
    /// size. The cursor saved by the last run is read back; a spool written
    /// by an older version (no cursor) is sent whole.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut segments: Vec<Segment> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n: u64 = name
                    .strip_prefix("spool-")?
                    .strip_suffix(".jsonl")?
                    .parse()
                    .ok()?;
                let size = e.metadata().ok()?.len();
                Some(Segment { n, size })
            })
            .collect();
        segments.sort_by_key(|s| s.n);
        // A crash in the middle of a write leaves a torn last line: cut it,
        // so that the sender does not wait for the rest of it forever.
        if let Some(last) = segments.last_mut() {
            let path = dir.join(segment_name(last.n));
            let bytes = std::fs::read(&path)?;
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            if whole < bytes.len() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(whole as u64)?;
                last.size = whole as u64;
            }
        }
        let first = segments.first().map_or(1, |s| s.n);
        let saved = std::fs::read_to_string(dir.join(CURSOR_FILE))
            .ok()
            .and_then(|t| {
                let (s, o) = t.trim().split_once(' ')?;
                Some(Position {
                    segment: s.parse().ok()?,
                    offset: o.parse().ok()?,
                })
            });
        let cursor = match saved {
            Some(c) if c.segment >= first => c,
            _ => Position {
                segment: first,
                offset: 0,
            },
        };
        let max_bytes = max_bytes.max(4096);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).max(1024),
            inner: Mutex::new(Inner {
                segments: segments.into(),
                cursor,
                file: None,
                last_sync: Instant::now(),
                undecodable: 0,
            }),
        })
    }

    /// Bytes written and not yet acknowledged by the mesh.
    pub fn backlog(&self) -> u64 {
        let inner = self.inner.lock();
        inner
            .segments
            .iter()
            .map(|s| match s.n.cmp(&inner.cursor.segment) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => s.size.saturating_sub(inner.cursor.offset),
                std::cmp::Ordering::Greater => s.size,
            })
            .sum()
    }

    /// Whether every written event was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.backlog() == 0
    }

    /// Lines skipped because they did not decode, since the spool was opened.
    pub fn undecodable(&self) -> u64 {
        self.inner.lock().undecodable
    }

    /// Appends a group of events in one write; returns how many unsent
    /// older events were dropped to stay within the bound.
    pub fn append(&self, events: &[SecurityEvent]) -> std::io::Result<u64> {
        let mut buf = Vec::new();
        for ev in events {
            serde_json::to_writer(&mut buf, ev).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len() as u64;
        let mut inner = self.inner.lock();
        let mut dropped = 0;
        // Room for the group: whole oldest segments go.
        let mut total: u64 = inner.segments.iter().map(|s| s.size).sum();
        while total + len > self.max_bytes {
            let Some(old) = inner.segments.pop_front() else {
                break;
            };
            if inner.file.as_ref().is_some_and(|(n, _)| *n == old.n) {
                inner.file = None;
            }
            let path = self.dir.join(segment_name(old.n));
            if old.n >= inner.cursor.segment {
                let skip = if old.n == inner.cursor.segment {
                    inner.cursor.offset
                } else {
                    0
                };
                dropped += count_lines(&path, skip);
            }
            std::fs::remove_file(&path).or_else(ignore_missing)?;
            total -= old.size;
            if inner.cursor.segment <= old.n {
                inner.cursor = Position {
                    segment: old.n + 1,
                    offset: 0,
                };
            }
        }
        let n = match inner.segments.back() {
            Some(s) if s.size + len <= self.segment_bytes || s.size == 0 => s.n,
            Some(s) => s.n + 1,
            None => inner.cursor.segment.max(1),
        };
        if inner.segments.back().is_none_or(|s| s.n != n) {
            inner.segments.push_back(Segment { n, size: 0 });
        }
        if inner.file.as_ref().is_none_or(|(m, _)| *m != n) {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(segment_name(n)))?;
            inner.file = Some((n, f));
        }
        let sync = inner.last_sync.elapsed() >= SYNC_EVERY;
        if let Some((_, f)) = inner.file.as_mut() {
            f.write_all(&buf)?;
            if sync {
                f.sync_data()?;
            }
        }
        if sync {
            inner.last_sync = Instant::now();
        }
        if let Some(s) = inner.segments.back_mut() {
            s.size += len;
        }
        Ok(dropped)
    }

    /// Flushes what was written to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        if let Some((_, f)) = inner.file.as_ref() {
            f.sync_data()?;
        }
        inner.last_sync = Instant::now();
        Ok(())
    }

    /// Up to `max` unsent events from the cursor on, oldest first, and the
    /// position after them (give it to [`Spool::ack`] once they are sent).
    pub fn pending(&self, max: usize) -> std::io::Result<(Vec<SecurityEvent>, Position)> {
        let mut inner = self.inner.lock();
        let mut pos = inner.cursor;
        let mut out = Vec::new();
        let mut undecodable = 0;
        let segments: Vec<(u64, u64)> = inner
            .segments
            .iter()
            .filter(|s| s.n >= pos.segment)
            .map(|s| (s.n, s.size))
            .collect();
        for (n, size) in segments {
            if n > pos.segment {
                pos = Position {
                    segment: n,
                    offset: 0,
                };
            }
            if pos.offset >= size {
                continue;
            }
            let mut f = match std::fs::File::open(self.dir.join(segment_name(n))) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            f.seek(SeekFrom::Start(pos.offset))?;
            let want = (size - pos.offset).min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0; want];
            f.read_exact(&mut buf)?;
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + nl];
                start += nl + 1;
                match serde_json::from_slice(line) {
                    Ok(ev) => out.push(ev),
                    Err(_) => undecodable += 1,
                }
                if out.len() >= max {
                    break;
                }
            }
            if start == 0 && want == READ_CHUNK {
                // A line longer than a chunk (events are bounded far below
                // it): skip it rather than stop the spool.
                let rest = (size - pos.offset) as usize;
                let mut more = vec![0; rest];
                f.seek(SeekFrom::Start(pos.offset))?;
                f.read_exact(&mut more)?;
                start = more
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest, |p| p + 1);
                undecodable += 1;
            }
            pos.offset += start as u64;
            if out.len() >= max || pos.offset < size {
                break;
            }
        }
        inner.undecodable += undecodable;
        Ok((out, pos))
    }

    /// Records that everything before `pos` was acknowledged: saves the
    /// cursor and deletes the segments entirely before it.
    pub fn ack(&self, pos: Position) -> std::io::Result<()> {
        let mut inner = self.inner.lock();
        if pos <= inner.cursor {
            return Ok(());
        }
        // The newest segment fully sent (and grown past a quarter of a
        // segment): the cursor moves to the next one, so that the spool
        // does not keep what was sent.
        let rotate = inner.segments.back().is_some_and(|s| {
            s.n == pos.segment && s.size == pos.offset && s.size >= self.segment_bytes / 4
        });
        let cursor = if rotate {
            Position {
                segment: pos.segment + 1,
                offset: 0,
            }
        } else {
            pos
        };
        // Saved before any segment is deleted: a crash in between leaves a
        // sent segment behind the cursor (deleted at the next ack), never a
        // cursor into a segment that is gone.
        let tmp = self.dir.join(format!("{CURSOR_FILE}.tmp"));
        std::fs::write(&tmp, format!("{} {}\n", cursor.segment, cursor.offset))?;
        std::fs::rename(&tmp, self.dir.join(CURSOR_FILE))?;
        inner.cursor = cursor;
        while inner.segments.front().is_some_and(|s| s.n < cursor.segment) {
            if let Some(old) = inner.segments.pop_front() {
                if inner.file.as_ref().is_some_and(|(n, _)| *n == old.n) {
                    inner.file = None;
                }
                std::fs::remove_file(self.dir.join(segment_name(old.n))).or_else(ignore_missing)?;
            }
        }
        Ok(())
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Lines of `path` after byte `skip` (0 when unreadable).
fn count_lines(path: &Path, skip: u64) -> u64 {
    std::fs::read(path)
        .map(|b| {
            b.get(skip as usize..)
                .unwrap_or_default()
                .iter()
                .filter(|&&c| c == b'\n')
                .count() as u64
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
