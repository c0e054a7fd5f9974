//! What a connection guard needs to know of HTTP/2: the frames a client
//! sends, read off the bytes on their way to the h2 library without copying
//! them — only each frame's 9-byte header is looked at, payloads are
//! skipped — and the stream resets among them (rapid reset,
//! CVE-2023-44487, is many streams opened and reset at once).

use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113, section 3.4).
const PREFACE_LEN: usize = 24;
/// Frame type RST_STREAM.
const RST_STREAM: u8 = 0x3;

/// Frame type GOAWAY.
const GOAWAY: u8 = 0x7;
/// Error code ENHANCE_YOUR_CALM: the h2 library's answer to a peer past its limits.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Splits one direction of a connection into frames. The payload of a
/// GOAWAY is looked at (its first 8 bytes: last stream id, error code);
/// other payloads are skipped.
#[derive(Debug)]
pub struct FrameScanner {
    preface_left: usize,
    header: [u8; 9],
    header_len: usize,
    skip: usize,
    /// The first payload bytes of the current GOAWAY, while they come.
    peek: [u8; 8],
    peek_len: usize,
    peeking: bool,
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
            peeking: false,
        }
    }

    /// Whether the whole preface has gone by.
    pub fn past_preface(&self) -> bool {
        self.preface_left == 0
    }

    /// Feeds the next bytes; calls `frame(type, code)` for each frame:
    /// `code` is a GOAWAY's error code (0 for other frames), given once
    /// it has arrived, the others when their header has.
    pub fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u32)) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if self.peeking {
                    let m = n.min(8 - self.peek_len);
                    self.peek[self.peek_len..self.peek_len + m].copy_from_slice(&bytes[..m]);
                    self.peek_len += m;
                    if self.peek_len == 8 {
                        self.peeking = false;
                        let p = &self.peek;
                        frame(GOAWAY, u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
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
                    // A GOAWAY shorter than 8 bytes is malformed: not reported.
                    if h[3] == GOAWAY && self.skip >= 8 {
                        self.peeking = true;
                        self.peek_len = 0;
                    } else if h[3] != GOAWAY {
                        frame(h[3], 0);
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
}

impl H2Watch {
    /// A new connection: at most `max_resets` per `window`.
    pub fn new(max_resets: u32, window: Duration) -> Self {
        H2Watch {
            scanner: FrameScanner::client(),
            resets: ResetWatch::new(max_resets, window),
            sent: FrameScanner::server(),
        }
    }

    /// Feeds bytes read from the client; false when they carried one reset too many.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut ok = true;
        let resets = &mut self.resets;
        self.scanner.feed(bytes, |ty, _| {
            if ty == RST_STREAM && ok {
                ok = resets.reset(Instant::now());
            }
        });
        ok
    }

    /// Feeds bytes written to the client; true when they carried a GOAWAY
    /// with ENHANCE_YOUR_CALM.
    pub fn sent(&mut self, bytes: &[u8]) -> bool {
        let mut calm = false;
        self.sent.feed(bytes, |ty, code| {
            calm |= ty == GOAWAY && code == ENHANCE_YOUR_CALM;
        });
        calm
    }

    /// Whether the connection preface has gone by.
    pub fn past_preface(&self) -> bool {
        self.scanner.past_preface()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                s.feed(c, |t, _| types.push(t));
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
            let mut w = H2Watch::new(1, Duration::from_secs(1));
            let seen = bytes.chunks(chunk).filter(|c| w.sent(c)).count();
            assert_eq!(seen, 1, "chunk {chunk}");
        }
        let mut w = H2Watch::new(1, Duration::from_secs(1));
        assert!(!w.sent(&frame(GOAWAY, &[0, 0, 0, 9, 0, 0, 0, 0])));
    }

    #[test]
    fn one_reset_past_the_limit_is_refused() {
        let mut w = H2Watch::new(3, Duration::from_secs(60));
        let rst = frame(RST_STREAM, &[0, 0, 0, 8]);
        assert!(w.feed(&client(&[rst.clone(), rst.clone(), rst.clone()])));
        assert!(!w.feed(&rst));
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
