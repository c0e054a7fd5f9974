//! A bounded on-disk spool of security events, for while the mesh is down.
//!
//! Events are appended as JSON lines to numbered segment files in the spool
//! directory. The total size is bounded: when it would pass the bound, whole
//! oldest segments are deleted and their events counted as dropped — so events
//! are lost only past the bound, oldest first. The spool survives restarts.

use palisade_policy::SecurityEvent;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The spool of one edge.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
}

impl Spool {
    /// Opens (creating) the spool directory. `max_bytes` bounds the total size.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(4096),
            segment_bytes: (max_bytes / 8).max(1024),
        })
    }

    /// Segment files, oldest first, with their sizes.
    fn segments(&self) -> Vec<(u64, PathBuf, u64)> {
        let mut out: Vec<(u64, PathBuf, u64)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n: u64 = name
                    .strip_prefix("spool-")?
                    .strip_suffix(".jsonl")?
                    .parse()
                    .ok()?;
                let size = e.metadata().ok()?.len();
                Some((n, e.path(), size))
            })
            .collect();
        out.sort_by_key(|s| s.0);
        out
    }

    /// Whether nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.segments().iter().all(|s| s.2 == 0)
    }

    /// Appends events; returns how many older events were dropped to stay in bounds.
    pub fn append(&self, events: &[SecurityEvent]) -> std::io::Result<u64> {
        let mut buf = Vec::new();
        for ev in events {
            serde_json::to_writer(&mut buf, ev).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let mut segs = self.segments();
        let mut dropped = 0;
        let total: u64 = segs.iter().map(|s| s.2).sum();
        let mut excess = (total + buf.len() as u64).saturating_sub(self.max_bytes);
        while excess > 0 && !segs.is_empty() {
            let (_, path, size) = segs.remove(0);
            dropped += std::fs::read_to_string(&path)
                .map(|t| t.lines().count() as u64)
                .unwrap_or(0);
            std::fs::remove_file(&path)?;
            excess = excess.saturating_sub(size);
        }
        let (n, path) = match segs.last() {
            Some((n, p, size)) if *size + (buf.len() as u64) <= self.segment_bytes => {
                (*n, p.clone())
            }
            Some((n, _, _)) => (n + 1, self.dir.join(format!("spool-{:06}.jsonl", n + 1))),
            None => (1, self.dir.join("spool-000001.jsonl")),
        };
        let _ = n;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(&buf)?;
        f.sync_data()?;
        Ok(dropped)
    }

    /// Every spooled event, oldest first (unreadable lines are skipped).
    pub fn load(&self) -> Vec<SecurityEvent> {
        self.segments()
            .iter()
            .filter_map(|(_, p, _)| std::fs::read_to_string(p).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Replaces the spool's content with `remaining` (after a partial replay).
    pub fn replace(&self, remaining: &[SecurityEvent]) -> std::io::Result<()> {
        for (_, p, _) in self.segments() {
            std::fs::remove_file(p)?;
        }
        if !remaining.is_empty() {
            self.append(remaining)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::CheckKind;

    fn ev(i: u64) -> SecurityEvent {
        SecurityEvent {
            time_ms: i,
            node: "n".into(),
            request_id: format!("r{i}"),
            client_ip: "192.0.2.1".parse().unwrap(),
            check: CheckKind::Rule,
            rule_id: "x".into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            status: Some(403),
            waf: None,
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("palisade-spool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn keeps_order_across_reopen_and_replace() {
        let d = dir("order");
        let s = Spool::open(&d, 1 << 20).unwrap();
        assert!(s.is_empty());
        s.append(&[ev(1), ev(2)]).unwrap();
        s.append(&[ev(3)]).unwrap();
        let s = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(
            s.load().iter().map(|e| e.time_ms).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        s.replace(&[ev(3)]).unwrap();
        assert_eq!(s.load().len(), 1);
        s.replace(&[]).unwrap();
        assert!(s.is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bounded_dropping_oldest_and_counting() {
        let d = dir("bound");
        let s = Spool::open(&d, 8192).unwrap();
        let mut dropped = 0;
        for i in 0..500 {
            dropped += s.append(&[ev(i)]).unwrap();
        }
        let kept = s.load();
        let total: u64 = s.segments().iter().map(|x| x.2).sum();
        assert!(total <= 8192, "{total}");
        assert_eq!(kept.len() as u64 + dropped, 500);
        assert!(dropped > 0);
        // The newest are kept, in order.
        assert_eq!(kept.last().unwrap().time_ms, 499);
        assert!(kept.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        let _ = std::fs::remove_dir_all(&d);
    }
}
