//! What a connection guard needs to know of HTTP/2: the frames a client
//! sends, read off the bytes on their way to the h2 library without copying
//! them — only each frame's 9-byte header is looked at, payloads are
//! skipped (but for the 4 or 8 bytes of a WINDOW_UPDATE or GOAWAY) — the
//! stream resets among them (rapid reset, CVE-2023-44487, is many streams
//! opened and reset at once), and each stream's request deadlines
//! ([`super::h2_streams`]).

use super::h2_streams::{FrameInfo, StreamClocks};
use super::Reason;
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113, section 3.4).
const PREFACE_LEN: usize = 24;
/// Frame type RST_STREAM.
const RST_STREAM: u8 = 0x3;

/// Frame type GOAWAY.
const GOAWAY: u8 = 0x7;
/// Frame type WINDOW_UPDATE.
const WINDOW_UPDATE: u8 = 0x8;
/// Error code ENHANCE_YOUR_CALM: the h2 library's answer to a peer past its limits.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Splits one direction of a connection into frames. The payload of a
/// GOAWAY is looked at (its first 8 bytes: last stream id, error code), and
/// that of a WINDOW_UPDATE (4 bytes: the increment); other payloads are
/// skipped.
#[derive(Debug)]
pub struct FrameScanner {
    preface_left: usize,
    header: [u8; 9],
    header_len: usize,
    skip: usize,
    /// The first payload bytes of the current GOAWAY or WINDOW_UPDATE.
    peek: [u8; 8],
    peek_len: usize,
    /// How many payload bytes to look at (0: none).
    peek_want: usize,
    /// The frame waiting for its peeked bytes.
    pending: FrameInfo,
}

impl FrameScanner {
    /// The client's side: the connection preface, then frames.
    pub fn client() -> Self {
        FrameScanner {
            preface_left: PREFACE_LEN,
            ..FrameScanner::server()
        }
    }

    /// The server's side: frames from the first byte.
    pub fn server() -> Self {
        FrameScanner {
            preface_left: 0,
            header: [0; 9],
            header_len: 0,
            skip: 0,
            peek: [0; 8],
            peek_len: 0,
            peek_want: 0,
            pending: FrameInfo::default(),
        }
    }

    /// Whether the whole preface has gone by.
    pub fn past_preface(&self) -> bool {
        self.preface_left == 0
    }

    /// Feeds the next bytes; calls `frame` for each frame once its header
    /// has arrived (a GOAWAY or WINDOW_UPDATE once its value has: a GOAWAY's
    /// error code, a WINDOW_UPDATE's increment; a shorter one is malformed
    /// and not reported).
    pub fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(FrameInfo)) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if self.peek_want > 0 {
                    let m = n.min(self.peek_want - self.peek_len);
                    self.peek[self.peek_len..self.peek_len + m].copy_from_slice(&bytes[..m]);
                    self.peek_len += m;
                    if self.peek_len == self.peek_want {
                        let p = &self.peek;
                        let at = self.peek_want - 4;
                        let mut f = self.pending;
                        f.value = u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
                        self.peek_want = 0;
                        frame(f);
                    }
                }
                self.skip -= n;
                bytes = &bytes[n..];
            } else {
                let n = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == 9 {
                    let h = &self.header;
                    self.skip =
                        (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    self.header_len = 0;
                    let f = FrameInfo {
                        ty: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                        len: self.skip as u32,
                        value: 0,
                    };
                    let want = match f.ty {
                        GOAWAY => 8,
                        WINDOW_UPDATE => 4,
                        _ => 0,
                    };
                    if want == 0 {
                        frame(f);
                    } else if self.skip >= want {
                        self.peek_want = want;
                        self.peek_len = 0;
                        self.pending = f;
                    }
                }
            }
        }
    }
}

/// Counts a client's stream resets in fixed windows.
#[derive(Debug)]
pub struct ResetWatch {
    max: u32,
    window: Duration,
    started: Option<Instant>,
    count: u32,
}

impl ResetWatch {
    /// At most `max` resets per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        ResetWatch {
            max,
            window,
            started: None,
            count: 0,
        }
    }

    /// Counts one reset at `now`; false when it is one too many.
    pub fn reset(&mut self, now: Instant) -> bool {
        match self.started {
            Some(s) if now.duration_since(s) < self.window => {}
            _ => {
                self.started = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= self.max
    }
}

/// The frames of one HTTP/2 connection: whether the client went past its
/// reset limit, and whether the h2 library ended the connection for a
/// client past its own limits (GOAWAY ENHANCE_YOUR_CALM: streams refused
/// past `h2_max_streams`, more than `h2_max_resets` times).
#[derive(Debug)]
pub struct H2Watch {
    scanner: FrameScanner,
    resets: ResetWatch,
    sent: FrameScanner,
    clocks: StreamClocks,
}

impl H2Watch {
    /// A new connection: at most `max_resets` per `window`; each stream's
    /// header and body deadlines as `clocks` says.
    pub fn new(max_resets: u32, window: Duration, clocks: StreamClocks) -> Self {
        H2Watch {
            scanner: FrameScanner::client(),
            resets: ResetWatch::new(max_resets, window),
            sent: FrameScanner::server(),
            clocks,
        }
    }

    /// Feeds bytes read from the client at `now_ms` (since the connection
    /// started); false when they carried one reset too many.
    pub fn feed(&mut self, bytes: &[u8], now_ms: u64) -> bool {
        let mut ok = true;
        let (resets, clocks) = (&mut self.resets, &mut self.clocks);
        self.scanner.feed(bytes, |f| {
            if f.ty == RST_STREAM && ok {
                ok = resets.reset(Instant::now());
            }
            clocks.client_frame(f, now_ms);
        });
        ok
    }

    /// Feeds bytes written to the client at `now_ms`; true when they
    /// carried a GOAWAY with ENHANCE_YOUR_CALM.
    pub fn sent(&mut self, bytes: &[u8], now_ms: u64) -> bool {
        let mut calm = false;
        let clocks = &mut self.clocks;
        self.sent.feed(bytes, |f| {
            calm |= f.ty == GOAWAY && f.value == ENHANCE_YOUR_CALM;
            clocks.server_frame(f, now_ms);
        });
        calm
    }

    /// The earliest request deadline of the connection's streams (ms
    /// since it started), and the reason to close it past that.
    pub fn next_deadline(&self) -> Option<(u64, Reason)> {
        self.clocks.next_deadline()
    }

    /// Whether the connection preface has gone by.
    pub fn past_preface(&self) -> bool {
        self.scanner.past_preface()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(max: u32, window: Duration) -> H2Watch {
        H2Watch::new(max, window, StreamClocks::new(1000, 1000, 500, 100))
    }

    #[test]
    fn window_updates_and_stream_ids_are_read_whatever_the_read_boundaries() {
        let mut bytes = frame(0x4, &[0; 6]);
        // WINDOW_UPDATE on stream 1 (the frame helper's stream), increment 70000.
        bytes.extend(frame(WINDOW_UPDATE, &70_000u32.to_be_bytes()));
        for chunk in [1, 2, 5, bytes.len()] {
            let mut s = FrameScanner::server();
            let mut got = Vec::new();
            for c in bytes.chunks(chunk) {
                s.feed(c, |f| got.push((f.ty, f.stream, f.value)));
            }
            assert_eq!(
                got,
                vec![(0x4, 1, 0), (WINDOW_UPDATE, 1, 70_000)],
                "chunk {chunk}"
            );
        }
    }

    fn frame(ty: u8, payload: &[u8]) -> Vec<u8> {
        let l = payload.len();
        let mut f = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, ty, 0, 0, 0, 0, 1];
        f.extend_from_slice(payload);
        f
    }

    fn client(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut b = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for f in frames {
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn frames_are_found_whatever_the_read_boundaries() {
        let bytes = client(&[
            frame(0x4, &[0; 12]),
            frame(0x1, &[7; 300]),
            frame(RST_STREAM, &[0, 0, 0, 8]),
            frame(0x0, &[1; 70_000]),
            frame(RST_STREAM, &[0, 0, 0, 8]),
        ]);
        for chunk in [1, 2, 5, 9, 10, 4096, bytes.len()] {
            let mut s = FrameScanner::client();
            let mut types = Vec::new();
            for c in bytes.chunks(chunk) {
                s.feed(c, |f| types.push(f.ty));
            }
            assert_eq!(
                types,
                vec![0x4, 0x1, RST_STREAM, 0x0, RST_STREAM],
                "chunk {chunk}"
            );
            assert!(s.past_preface());
        }
    }

    #[test]
    fn a_goaway_enhance_your_calm_from_the_server_is_seen() {
        let mut bytes = frame(0x4, &[0; 6]);
        bytes.extend(frame(GOAWAY, &[0, 0, 0, 9, 0, 0, 0, 0]));
        let mut calm = frame(GOAWAY, &[0, 0, 0, 9, 0, 0, 0, 0xb]);
        calm.extend_from_slice(b"too_many_internal_resets");
        bytes.extend(calm);
        for chunk in [1, 3, 8, bytes.len()] {
            let mut w = watch(1, Duration::from_secs(1));
            let seen = bytes.chunks(chunk).filter(|c| w.sent(c, 0)).count();
            assert_eq!(seen, 1, "chunk {chunk}");
        }
        let mut w = watch(1, Duration::from_secs(1));
        assert!(!w.sent(&frame(GOAWAY, &[0, 0, 0, 9, 0, 0, 0, 0]), 0));
    }

    #[test]
    fn one_reset_past_the_limit_is_refused() {
        let mut w = watch(3, Duration::from_secs(60));
        let rst = frame(RST_STREAM, &[0, 0, 0, 8]);
        assert!(w.feed(&client(&[rst.clone(), rst.clone(), rst.clone()]), 0));
        assert!(!w.feed(&rst, 0));
    }

    #[test]
    fn the_window_starts_over() {
        let mut r = ResetWatch::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert!(r.reset(t));
        assert!(r.reset(t));
        assert!(!r.reset(t + Duration::from_secs(9)));
        assert!(r.reset(t + Duration::from_secs(10)));
    }
}
