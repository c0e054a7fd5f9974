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
        bot: None,
    }
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("palisade-spool-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn times(evs: &[SecurityEvent]) -> Vec<u64> {
    evs.iter().map(|e| e.time_ms).collect()
}

/// Everything unsent, acknowledging it group by group of `max`.
fn drain(s: &Spool, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let (evs, pos) = s.pending(max).unwrap();
        s.ack(pos).unwrap();
        if evs.is_empty() {
            return out;
        }
        out.extend(times(&evs));
    }
}

#[test]
fn only_acknowledged_events_leave_and_the_cursor_survives_a_restart() {
    let d = dir("cursor");
    let s = Spool::open(&d, 1 << 20).unwrap();
    assert!(s.is_empty());
    s.append(&[ev(1), ev(2)]).unwrap();
    s.append(&[ev(3)]).unwrap();
    let (evs, pos) = s.pending(2).unwrap();
    assert_eq!(times(&evs), vec![1, 2]);
    // Read but not acknowledged (the publish failed): read again.
    let (again, _) = s.pending(10).unwrap();
    assert_eq!(times(&again), vec![1, 2, 3]);
    s.ack(pos).unwrap();
    assert!(!s.is_empty());
    // A restart (kill -9: nothing flushed by hand) resumes at the cursor.
    drop(s);
    let s = Spool::open(&d, 1 << 20).unwrap();
    s.append(&[ev(4)]).unwrap();
    assert_eq!(drain(&s, 10), vec![3, 4]);
    assert!(s.is_empty());
    assert_eq!(s.backlog(), 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_spool_of_an_older_version_without_cursor_is_sent_whole() {
    let d = dir("old");
    std::fs::create_dir_all(&d).unwrap();
    let mut text = String::new();
    for i in 1..=3 {
        text += &serde_json::to_string(&ev(i)).unwrap();
        text.push('\n');
    }
    std::fs::write(d.join("spool-000001.jsonl"), text).unwrap();
    let s = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(drain(&s, 2), vec![1, 2, 3]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_torn_last_line_is_cut_and_undecodable_lines_are_skipped() {
    let d = dir("torn");
    let s = Spool::open(&d, 1 << 20).unwrap();
    s.append(&[ev(1)]).unwrap();
    drop(s);
    let seg = d.join("spool-000001.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"not json\n{\"time_ms\":").unwrap();
    drop(f);
    let s = Spool::open(&d, 1 << 20).unwrap();
    s.append(&[ev(2)]).unwrap();
    assert_eq!(drain(&s, 10), vec![1, 2]);
    assert_eq!(s.undecodable(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bounded_dropping_the_oldest_unsent_and_counting_them() {
    let d = dir("bound");
    let s = Spool::open(&d, 8192).unwrap();
    let mut dropped = 0;
    for i in 0..500 {
        dropped += s.append(&[ev(i)]).unwrap();
    }
    let on_disk: u64 = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("spool-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 8192, "{on_disk}");
    let kept = drain(&s, 1000);
    assert_eq!(kept.len() as u64 + dropped, 500);
    assert!(dropped > 0);
    // The newest are kept, in order.
    assert_eq!(*kept.last().unwrap(), 499);
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sent_events_are_not_counted_as_dropped_and_sent_segments_are_deleted() {
    let d = dir("sent");
    let s = Spool::open(&d, 8192).unwrap();
    let mut dropped = 0;
    let mut sent = Vec::new();
    for i in 0..2000 {
        dropped += s.append(&[ev(i)]).unwrap();
        if i % 7 == 0 {
            sent.extend(drain(&s, 3));
        }
    }
    sent.extend(drain(&s, 100));
    assert_eq!(dropped, 0, "everything was sent in time");
    assert_eq!(sent, (0..2000).collect::<Vec<_>>());
    let segments = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("spool-"))
        .count();
    assert!(segments <= 2, "{segments} segments left");
    let _ = std::fs::remove_dir_all(&d);
}
