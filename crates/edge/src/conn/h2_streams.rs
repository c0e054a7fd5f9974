//! The request deadlines of `[connections]`, per HTTP/2 stream: a request
//! header (HEADERS and its CONTINUATIONs) must be complete `header_timeout`
//! after it started, and a request body must end by `body_timeout` plus one
//! second per `body_min_rate` bytes received, as on HTTP/1. A stream past
//! its deadline closes the whole connection (the h2 library offers no way
//! to reset one stream from outside, and a client that holds one stream
//! open this slowly holds the others for the same purpose).
//!
//! Flow control: a client may only send what the server granted. While a
//! stream's window or the connection's is used up (the origin is reading
//! the body slowly, so the server grants nothing), the client cannot send,
//! and the stream's body clock stops until a WINDOW_UPDATE opens it again.
//! Windows start at the RFC's 65,535 bytes, the h2 library's and so the
//! edge's default (a server SETTINGS that changed them is not read).
//!
//! Everything is read off frame headers ([`super::h2::Frame`]); times are
//! milliseconds since the connection started, given by the caller.

use super::Reason;
use std::collections::HashMap;

/// Frame types and flags (RFC 9113, section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// The initial flow-control window of a stream and of the connection.
const INITIAL_WINDOW: i64 = 65_535;
/// Streams tracked at least (more when `h2_max_streams` allows more): past
/// the cap, new streams go untimed (the h2 library refuses streams past
/// `h2_max_streams` first, and each refusal is reset and forgotten here).
pub const MIN_TRACKED: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Still in its header (no END_HEADERS yet).
    header: bool,
    /// The HEADERS frame carried END_STREAM (no body follows the header).
    ends_with_header: bool,
    /// Start of the phase, moved later by the time the stream was blocked.
    since_ms: u64,
    /// Body bytes received.
    bytes: u64,
    /// What the client may still send on this stream.
    window: i64,
    /// When the stream ran out of window (its own or the connection's).
    blocked_at: Option<u64>,
    /// The server sent its whole response: it may read no more, so a shut
    /// window no longer stops the clock (else a client could hold the
    /// stream, and the connection, forever).
    answered: bool,
}

/// The open client streams of one HTTP/2 connection and their deadlines.
#[derive(Debug)]
pub struct StreamClocks {
    header_ms: u64,
    body_ms: u64,
    min_rate: u64,
    streams: HashMap<u32, Clock>,
    max_streams: usize,
    conn_window: i64,
}

/// One frame, as [`StreamClocks`] needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// Frame type.
    pub ty: u8,
    /// Flags.
    pub flags: u8,
    /// Stream id (0: the connection).
    pub stream: u32,
    /// Payload length.
    pub len: u32,
    /// A WINDOW_UPDATE's increment or a GOAWAY's error code (0 otherwise).
    pub value: u32,
}

impl StreamClocks {
    /// Deadlines of `[connections]`: `header_timeout`, `body_timeout`,
    /// `body_min_rate` (0: no extension), for up to twice `max_streams`
    /// (`h2_max_streams`) streams, at least [`MIN_TRACKED`].
    pub fn new(header_ms: u64, body_ms: u64, min_rate: u32, max_streams: u32) -> Self {
        StreamClocks {
            header_ms,
            body_ms,
            min_rate: u64::from(min_rate),
            streams: HashMap::new(),
            max_streams: (max_streams as usize).saturating_mul(2).max(MIN_TRACKED),
            conn_window: INITIAL_WINDOW,
        }
    }

    /// A frame from the client, at `now_ms`.
    pub fn client_frame(&mut self, f: FrameInfo, now_ms: u64) {
        match f.ty {
            HEADERS => {
                if let Some(c) = self.streams.get_mut(&f.stream) {
                    // Trailers: the body ends with them, once their header
                    // block does (CONTINUATIONs trickled after it are a
                    // header like any other).
                    if !c.header && f.flags & END_STREAM != 0 {
                        if f.flags & END_HEADERS != 0 {
                            self.streams.remove(&f.stream);
                        } else {
                            c.header = true;
                            c.ends_with_header = true;
                            c.since_ms = now_ms;
                            c.blocked_at = None;
                        }
                    }
                    return;
                }
                let done = f.flags & END_HEADERS != 0;
                let ends = f.flags & END_STREAM != 0;
                if done && ends {
                    return;
                }
                if self.streams.len() >= self.max_streams {
                    return;
                }
                self.streams.insert(
                    f.stream,
                    Clock {
                        header: !done,
                        ends_with_header: ends,
                        since_ms: now_ms,
                        bytes: 0,
                        window: INITIAL_WINDOW,
                        blocked_at: None,
                        answered: false,
                    },
                );
                // A body that starts while the connection's window is shut
                // cannot be sent yet.
                self.windows_changed(f.stream, None, now_ms);
            }
            CONTINUATION => {
                if f.flags & END_HEADERS == 0 {
                    return;
                }
                if let Some(c) = self.streams.get_mut(&f.stream) {
                    if c.header {
                        if c.ends_with_header {
                            self.streams.remove(&f.stream);
                        } else {
                            c.header = false;
                            c.since_ms = now_ms;
                        }
                    }
                }
                self.windows_changed(f.stream, None, now_ms);
            }
            DATA => {
                let len = i64::from(f.len);
                let was_open = self.conn_window > 0;
                self.conn_window -= len;
                if let Some(c) = self.streams.get_mut(&f.stream) {
                    c.bytes = c.bytes.saturating_add(u64::from(f.len));
                    c.window -= len;
                    if f.flags & END_STREAM != 0 {
                        self.streams.remove(&f.stream);
                    }
                }
                self.windows_changed(f.stream, Some(was_open), now_ms);
            }
            RST_STREAM => {
                self.streams.remove(&f.stream);
            }
            _ => {}
        }
    }

    /// A frame from the server, at `now_ms`.
    pub fn server_frame(&mut self, f: FrameInfo, now_ms: u64) {
        match f.ty {
            WINDOW_UPDATE => {
                let inc = i64::from(f.value & 0x7fff_ffff);
                let was_open = self.conn_window > 0;
                if f.stream == 0 {
                    self.conn_window = self.conn_window.saturating_add(inc);
                } else if let Some(c) = self.streams.get_mut(&f.stream) {
                    c.window = c.window.saturating_add(inc);
                }
                self.windows_changed(f.stream, Some(was_open), now_ms);
            }
            // A stream refused or reset by the server: the client stops.
            RST_STREAM => {
                self.streams.remove(&f.stream);
            }
            DATA | HEADERS if f.flags & END_STREAM != 0 => {
                let conn_open = self.conn_window > 0;
                if let Some(c) = self.streams.get_mut(&f.stream) {
                    c.answered = true;
                    settle(c, conn_open, now_ms);
                }
            }
            _ => {}
        }
    }

    /// After `stream`'s window changed (or the connection's, `conn_was_open`
    /// telling whether it was open before): settles that stream's clock,
    /// or every stream's when the connection's window opened or shut.
    fn windows_changed(&mut self, stream: u32, conn_was_open: Option<bool>, now_ms: u64) {
        let conn_open = self.conn_window > 0;
        if conn_was_open.is_some_and(|was| was != conn_open) {
            for c in self.streams.values_mut() {
                settle(c, conn_open, now_ms);
            }
        } else if let Some(c) = self.streams.get_mut(&stream) {
            settle(c, conn_open, now_ms);
        }
    }

    /// The earliest deadline of the open streams (ms since the connection
    /// started) and what passing it means; None when no clock runs.
    pub fn next_deadline(&self) -> Option<(u64, Reason)> {
        self.streams
            .values()
            .filter(|c| c.blocked_at.is_none())
            .map(|c| {
                if c.header {
                    (
                        c.since_ms.saturating_add(self.header_ms),
                        Reason::HeaderTimeout,
                    )
                } else {
                    let extra = match self.min_rate {
                        0 => 0,
                        rate => c.bytes.saturating_mul(1000) / rate,
                    };
                    (
                        c.since_ms
                            .saturating_add(self.body_ms)
                            .saturating_add(extra),
                        Reason::BodyRate,
                    )
                }
            })
            .min_by_key(|(due, _)| *due)
    }

    /// Streams timed now.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is timed.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

/// Stops or restarts a body clock as its stream's window, or the
/// connection's, closes and opens.
fn settle(c: &mut Clock, conn_open: bool, now_ms: u64) {
    if c.header {
        return;
    }
    let open = c.answered || (conn_open && c.window > 0);
    match (open, c.blocked_at) {
        (false, None) => c.blocked_at = Some(now_ms),
        (true, Some(at)) => {
            c.since_ms = c.since_ms.saturating_add(now_ms.saturating_sub(at));
            c.blocked_at = None;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(ty: u8, flags: u8, stream: u32, len: u32) -> FrameInfo {
        FrameInfo {
            ty,
            flags,
            stream,
            len,
            value: 0,
        }
    }

    fn window(stream: u32, inc: u32) -> FrameInfo {
        FrameInfo {
            ty: WINDOW_UPDATE,
            flags: 0,
            stream,
            len: 4,
            value: inc,
        }
    }

    #[test]
    fn a_get_is_never_timed_and_a_slow_header_is() {
        let mut c = StreamClocks::new(1000, 2000, 500, 100);
        c.client_frame(f(HEADERS, END_HEADERS | END_STREAM, 1, 30), 0);
        assert_eq!(c.next_deadline(), None);
        // A header split into CONTINUATIONs that never end.
        c.client_frame(f(HEADERS, END_STREAM, 3, 30), 100);
        assert_eq!(c.next_deadline(), Some((1100, Reason::HeaderTimeout)));
        c.client_frame(f(CONTINUATION, 0, 3, 30), 900);
        assert_eq!(c.next_deadline(), Some((1100, Reason::HeaderTimeout)));
        // The header ends (with END_STREAM on its HEADERS): nothing left.
        c.client_frame(f(CONTINUATION, END_HEADERS, 3, 30), 1000);
        assert_eq!(c.next_deadline(), None);
        assert!(c.is_empty());
    }

    #[test]
    fn a_body_is_timed_and_extended_by_what_it_brings() {
        let mut c = StreamClocks::new(1000, 2000, 500, 100);
        c.client_frame(f(HEADERS, END_HEADERS, 1, 30), 0);
        assert_eq!(c.next_deadline(), Some((2000, Reason::BodyRate)));
        c.client_frame(f(DATA, 0, 1, 1000), 500);
        assert_eq!(
            c.next_deadline(),
            Some((4000, Reason::BodyRate)),
            "+2 s for 1000 B at 500 B/s"
        );
        // Trailers end it.
        c.client_frame(f(HEADERS, END_HEADERS | END_STREAM, 1, 10), 600);
        assert_eq!(c.next_deadline(), None);
        // A body ended by DATA with END_STREAM; a stream reset by either side.
        c.client_frame(f(HEADERS, END_HEADERS, 3, 30), 0);
        c.client_frame(f(HEADERS, END_HEADERS, 5, 30), 0);
        c.client_frame(f(HEADERS, END_HEADERS, 7, 30), 0);
        c.client_frame(f(DATA, END_STREAM, 3, 10), 10);
        c.client_frame(f(RST_STREAM, 0, 5, 4), 10);
        c.server_frame(f(RST_STREAM, 0, 7, 4), 10);
        assert!(c.is_empty());
    }

    #[test]
    fn the_clock_stops_while_the_server_grants_no_window() {
        let mut c = StreamClocks::new(1000, 2000, 0, 100);
        c.client_frame(f(HEADERS, END_HEADERS, 1, 30), 0);
        // The whole initial window sent: the client must wait for the server.
        c.client_frame(f(DATA, 0, 1, 65_535), 100);
        assert_eq!(c.next_deadline(), None, "blocked: no deadline");
        // Blocked for 10 s (a slow origin), then the server opens the window.
        c.server_frame(window(1, 65_535), 10_100);
        assert_eq!(
            c.next_deadline(),
            None,
            "the connection's window is still shut"
        );
        c.server_frame(window(0, 65_535), 10_100);
        assert_eq!(
            c.next_deadline(),
            Some((12_000, Reason::BodyRate)),
            "the 10 s blocked do not count"
        );
    }

    #[test]
    fn a_stream_answered_in_full_cannot_hold_its_clock_by_a_shut_window() {
        let mut c = StreamClocks::new(1000, 2000, 0, 100);
        c.client_frame(f(HEADERS, END_HEADERS, 1, 30), 0);
        c.client_frame(f(DATA, 0, 1, 65_535), 10);
        assert_eq!(c.next_deadline(), None, "blocked");
        // The origin answered without reading the rest: no WINDOW_UPDATE will come.
        c.server_frame(f(HEADERS, END_HEADERS, 1, 20), 100);
        assert_eq!(
            c.next_deadline(),
            None,
            "a response header alone changes nothing"
        );
        c.server_frame(f(DATA, END_STREAM, 1, 20), 500);
        assert_eq!(c.next_deadline(), Some((2_490, Reason::BodyRate)));
    }

    #[test]
    fn streams_are_capped() {
        let mut c = StreamClocks::new(1000, 2000, 500, 100);
        for s in 0..(MIN_TRACKED as u32 + 10) {
            c.client_frame(f(HEADERS, END_HEADERS, 2 * s + 1, 30), 0);
        }
        assert_eq!(c.len(), MIN_TRACKED);
        let mut c = StreamClocks::new(1000, 2000, 500, 5000);
        for s in 0..12_000u32 {
            c.client_frame(f(HEADERS, END_HEADERS, 2 * s + 1, 30), 0);
        }
        assert_eq!(c.len(), 10_000, "twice h2_max_streams");
    }

    #[test]
    fn trailers_trickled_in_continuations_are_a_header_with_its_deadline() {
        let mut c = StreamClocks::new(1000, 2000, 500, 100);
        c.client_frame(f(HEADERS, END_HEADERS, 1, 30), 0);
        c.client_frame(f(DATA, 0, 1, 10), 100);
        // Trailers whose header block does not end.
        c.client_frame(f(HEADERS, END_STREAM, 1, 5), 500);
        assert_eq!(c.next_deadline(), Some((1500, Reason::HeaderTimeout)));
        c.client_frame(f(CONTINUATION, 0, 1, 5), 1400);
        assert_eq!(c.next_deadline(), Some((1500, Reason::HeaderTimeout)));
        c.client_frame(f(CONTINUATION, END_HEADERS, 1, 5), 1450);
        assert!(c.is_empty());
    }

    #[test]
    fn a_body_that_starts_while_the_connection_window_is_shut_waits_for_it() {
        let mut c = StreamClocks::new(1000, 2000, 0, 100);
        c.client_frame(f(HEADERS, END_HEADERS, 1, 30), 0);
        c.client_frame(f(DATA, 0, 1, 65_535), 10);
        // A second upload starts: the connection's window is used up.
        c.client_frame(f(HEADERS, END_HEADERS, 3, 30), 20);
        assert_eq!(c.next_deadline(), None, "neither can send");
        c.server_frame(window(0, 10_000), 5_000);
        assert_eq!(
            c.next_deadline(),
            Some((5_000 + 2_000, Reason::BodyRate)),
            "stream 3's clock counts from the window's opening"
        );
    }
}
