use super::*;
use palisade_mesh::DecisionOp;
use palisade_policy::decisions::Scope;
use palisade_policy::DecisionAction;

fn upsert(seq: u64, i: u32) -> DecisionUpdate {
    DecisionUpdate {
        seq,
        op: DecisionOp::Upsert {
            decision: Decision {
                id: u64::from(i) + 1,
                scope: Scope::Ip,
                value: format!("10.0.{}.{}", i >> 8, i & 0xff),
                action: DecisionAction::Ban,
                reason: "test".into(),
                origin: "api".into(),
                simulated: false,
                created_at: 1,
                expires_at: None,
            },
        },
    }
}

fn delete(seq: u64, i: u32) -> DecisionUpdate {
    DecisionUpdate {
        seq,
        op: DecisionOp::Delete {
            scope: Scope::Ip,
            value: format!("10.0.{}.{}", i >> 8, i & 0xff),
        },
    }
}

/// A fresh directory of its own (removed when dropped).
struct Dir(PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("palisade-decfiles-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

fn keys(r: &DecisionReplica) -> Vec<String> {
    let mut v: Vec<String> = r.set().iter().map(|d| d.value()).collect();
    v.sort();
    v
}

#[test]
fn snapshot_plus_log_round_trips() {
    let dir = tempdir("roundtrip");
    assert!(load(dir.path()).unwrap().replica.is_none());
    let mut live = DecisionReplica::new();
    let mut files = DecisionFiles::open(dir.path());
    let mut batch = Vec::new();
    for i in 0..100 {
        let u = upsert(u64::from(i) + 1, i);
        live.apply(u.clone());
        batch.push(u);
    }
    files.append(&batch).unwrap();
    files.compact(&live).unwrap();
    assert_eq!(files.log_bytes(), 0);
    // After the snapshot: deletes and new keys, in the log only.
    let more = vec![delete(101, 3), upsert(102, 200), delete(103, 50)];
    for u in &more {
        live.apply(u.clone());
    }
    files.append(&more).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.replayed, 3);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let back = loaded.replica.unwrap();
    assert_eq!(back.last_seq(), 103);
    assert_eq!(keys(&back), keys(&live));
    assert!(back.set().get_key(Scope::Ip, "10.0.0.3").is_none());
}

#[test]
fn a_log_written_before_the_snapshot_is_not_replayed_twice() {
    // A crash between the snapshot's rename and the log's truncation.
    let dir = tempdir("twice");
    let mut live = DecisionReplica::new();
    let mut files = DecisionFiles::open(dir.path());
    let batch: Vec<DecisionUpdate> = vec![upsert(1, 1), delete(2, 1), upsert(3, 1)];
    for u in &batch {
        live.apply(u.clone());
    }
    files.append(&batch).unwrap();
    let log = std::fs::read(dir.path().join(LOG)).unwrap();
    files.compact(&live).unwrap();
    std::fs::write(dir.path().join(LOG), log).unwrap();
    let back = load(dir.path()).unwrap();
    assert_eq!(back.replayed, 0);
    assert_eq!(keys(&back.replica.unwrap()), ["10.0.0.1"]);
}

#[test]
fn a_torn_tail_is_cut_and_appends_continue() {
    let dir = tempdir("torn");
    let mut files = DecisionFiles::open(dir.path());
    files.append(&[upsert(1, 1), upsert(2, 2)]).unwrap();
    drop(files);
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join(LOG))
        .unwrap();
    f.write_all(br#"{"seq":3,"op":{"op":"ups"#).unwrap();
    drop(f);
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.replayed, 2);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let mut files = DecisionFiles::open(dir.path());
    files.append(&[upsert(4, 4)]).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.replayed, 3);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_truncated_snapshot_is_refused() {
    let dir = tempdir("truncated");
    let mut live = DecisionReplica::new();
    for i in 0..10 {
        live.apply(upsert(u64::from(i) + 1, i));
    }
    DecisionFiles::open(dir.path()).compact(&live).unwrap();
    let text = std::fs::read_to_string(dir.path().join(SNAP)).unwrap();
    let cut: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join(SNAP), cut).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(err.contains("the header says 10"), "{err}");
}

#[test]
fn compaction_is_due_when_the_log_outgrows_the_snapshot() {
    let dir = tempdir("due");
    let mut files = DecisionFiles::open(dir.path());
    assert!(!files.compaction_due());
    let batch: Vec<DecisionUpdate> = (0..200_000)
        .map(|i| upsert(u64::from(i) + 1, i % 1000))
        .collect();
    files.append(&batch).unwrap();
    assert!(files.log_bytes() > MIN_COMPACT_BYTES);
    assert!(files.compaction_due());
}
