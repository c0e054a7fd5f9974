//! The deadlines on a real in-memory stream, on tokio's paused clock: the
//! times asserted are the virtual clock's, exact and independent of load.

use super::*;
use crate::client_ip::TrustedProxies;
use crate::config::Limits;
use crate::events::EventSink;
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn state(connections: &str) -> Arc<EdgeState> {
    let policy = Policy::from_toml(connections, "p.toml").unwrap();
    Arc::new(
        EdgeState::new(
            "test".into(),
            policy,
            RateLimiter::new(1000),
            None,
            EventSink::new(None).unwrap(),
            TrustedProxies::new(Vec::new()),
            Limits::default(),
        )
        .unwrap(),
    )
}

/// A guarded server side and the client side of one connection.
fn pair(st: &Arc<EdgeState>, h2: bool) -> (GuardedStream, DuplexStream) {
    let (server, client) = tokio::io::duplex(1 << 16);
    let conn = st
        .conns
        .registry
        .register("192.0.2.1".parse().unwrap(), 0)
        .unwrap();
    let limits = st.policy().connections;
    let g = GuardedStream::new(
        Box::new(server),
        Instant::now(),
        conn,
        st.clone(),
        limits,
        h2,
    );
    (g, client)
}

/// Reads until an error; returns its message and when it came.
async fn read_until_closed(g: &mut GuardedStream) -> (String, Instant) {
    let mut buf = [0u8; 1024];
    loop {
        match g.read(&mut buf).await {
            Ok(0) => panic!("end of file, not a close by the guard"),
            Ok(_) => continue,
            Err(e) => return (e.to_string(), Instant::now()),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_header_must_be_complete_within_its_deadline() {
    let st = state("[connections]\nheader_timeout = \"2s\"\n");
    let (mut g, mut c) = pair(&st, false);
    let start = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let (e, at) = read_until_closed(&mut g).await;
    assert_eq!(e, "header_timeout");
    assert_eq!(at - start, Duration::from_secs(2));
    assert_eq!(st.metrics.conn.dropped(Reason::HeaderTimeout), 1);
}

#[tokio::test(start_paused = true)]
async fn the_idle_deadline_moves_with_each_request() {
    let st = state("[connections]\nheader_timeout = \"2s\"\nidle_timeout = \"10s\"\n");
    let (mut g, mut c) = pair(&st, false);
    let mut buf = [0u8; 64];
    // Request 1 at once, then idle for 6 s: under the idle timeout.
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(g.read(&mut buf).await.unwrap() > 0);
    g.request_started(false);
    g.request_done();
    let read = tokio::time::timeout(Duration::from_secs(6), g.read(&mut buf)).await;
    assert!(read.is_err(), "closed before the idle timeout");
    // Request 2 (its header in two parts, 1 s apart: under the header deadline).
    c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    assert!(g.read(&mut buf).await.unwrap() > 0);
    let more = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.write_all(b"\r\n").await.unwrap();
        c
    };
    let (n, mut c) = tokio::join!(g.read(&mut buf), more);
    assert!(n.unwrap() > 0);
    g.request_started(false);
    g.request_done();
    let idle_from = Instant::now();
    // Closed 10 s after request 2, not 10 s after request 1 (the timer armed
    // for the first deadline fired early and was re-armed).
    let (e, at) = read_until_closed(&mut g).await;
    assert_eq!(e, "idle_timeout");
    assert_eq!(at - idle_from, Duration::from_secs(10));
    assert_eq!(st.metrics.conn.dropped(Reason::IdleTimeout), 1);
    assert_eq!(st.metrics.conn.dropped(Reason::HeaderTimeout), 0);
    AsyncWriteExt::shutdown(&mut c).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_body_gets_more_time_for_each_minimum_rate_of_bytes() {
    let st = state("[connections]\nbody_timeout = \"2s\"\nbody_min_rate = 100\n");
    let (mut g, mut c) = pair(&st, false);
    let mut buf = [0u8; 1024];
    c.write_all(b"POST / HTTP/1.1\r\nContent-Length: 9999\r\n\r\n")
        .await
        .unwrap();
    assert!(g.read(&mut buf).await.unwrap() > 0);
    g.request_started(true);
    // 100 bytes every 0.5 s (200 B/s, over the minimum) for 10 s: kept.
    let start = Instant::now();
    let client = async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.write_all(&[b'a'; 100]).await.unwrap();
        }
        c // then silence, the connection kept open
    };
    let reader = async {
        let mut got = 0;
        while got < 2000 {
            got += g.read(&mut buf).await.unwrap();
        }
        read_until_closed(&mut g).await
    };
    let (_c, (e, at)) = tokio::join!(client, reader);
    assert_eq!(e, "body_rate");
    // The body's first wait started at once: 2 s + 2,000 bytes / 100 B/s.
    assert_eq!(at - start, Duration::from_secs(22));
    assert_eq!(st.metrics.conn.dropped(Reason::BodyRate), 1);
}

#[tokio::test(start_paused = true)]
async fn a_ban_closes_a_waiting_connection() {
    let st = state("");
    let (mut g, _c) = pair(&st, false);
    let mut buf = [0u8; 64];
    let shared = g.conn.clone();
    let closer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        shared.close(Reason::BanClosed);
    };
    let (r, ()) = tokio::join!(g.read(&mut buf), closer);
    assert_eq!(r.unwrap_err().to_string(), "ban_closed");
    assert_eq!(st.conns.registry.open(), 1);
    drop(g);
    assert_eq!(st.conns.registry.open(), 0, "unregistered when dropped");
}

#[tokio::test(start_paused = true)]
async fn h2_resets_past_the_limit_fail_the_read() {
    let st = state("[connections]\nh2_max_resets = 2\n");
    let (mut g, mut c) = pair(&st, true);
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    for id in [1u8, 3, 5] {
        bytes.extend_from_slice(&[0, 0, 4, 0x3, 0, 0, 0, 0, id, 0, 0, 0, 8]);
    }
    c.write_all(&bytes).await.unwrap();
    let (e, _) = read_until_closed(&mut g).await;
    assert_eq!(e, "h2_resets");
    assert_eq!(st.metrics.conn.dropped(Reason::H2Resets), 1);
}
