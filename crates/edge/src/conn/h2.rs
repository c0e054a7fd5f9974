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

/// Splits the client's byte stream into frames.
#[derive(Debug)]
pub struct FrameScanner {
    preface_left: usize,
    header: [u8; 9],
    header_len: usize,
    skip: usize,
}

impl Default for FrameScanner {
    fn default() -> Self {
        FrameScanner {
            preface_left: PREFACE_LEN,
            header: [0; 9],
            header_len: 0,
            skip: 0,
        }
    }
}

impl FrameScanner {
    /// Whether the whole preface has gone by.
    pub fn past_preface(&self) -> bool {
        self.preface_left == 0
    }

    /// Feeds the next bytes; calls `frame(type)` for each frame header completed.
    pub fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8)) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.skip > 0 {
                let n = self.skip.min(bytes.len());
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
                    frame(h[3]);
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

/// The frames of one client connection, and whether it went past its reset limit.
#[derive(Debug)]
pub struct H2Watch {
    scanner: FrameScanner,
    resets: ResetWatch,
}

impl H2Watch {
    /// A new connection: at most `max_resets` per `window`.
    pub fn new(max_resets: u32, window: Duration) -> Self {
        H2Watch {
            scanner: FrameScanner::default(),
            resets: ResetWatch::new(max_resets, window),
        }
    }

    /// Feeds bytes read from the client; false when they carried one reset too many.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut ok = true;
        let resets = &mut self.resets;
        self.scanner.feed(bytes, |ty| {
            if ty == RST_STREAM && ok {
                ok = resets.reset(Instant::now());
            }
        });
        ok
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
            let mut s = FrameScanner::default();
            let mut types = Vec::new();
            for c in bytes.chunks(chunk) {
                s.feed(c, |t| types.push(t));
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
