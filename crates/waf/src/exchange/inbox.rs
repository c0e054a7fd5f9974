//! A body being received ([`Inbox`]): its limit, what happens to the
//! chunk that crosses it, and what is kept to inspect and to forward.

use super::*;

/// How far a body has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// Under the limit.
    Open,
    /// The limit was crossed; the rest is not inspected.
    Full,
    /// The limit was crossed with `reject` in block mode.
    TooLarge,
}

/// A request or response body being received.
#[derive(Debug)]
pub(super) struct Inbox {
    pub(super) limit: usize,
    /// Reject (in block mode) or inspect the prefix.
    pub(super) reject: bool,
    /// Keep the whole chunk that crosses the limit (to forward it).
    keep_crossing: bool,
    pub(super) raw: Vec<u8>,
    pub(super) fill: Fill,
    /// The declared length (`Content-Length`, not chunked; at most the
    /// limit): allocated exactly, once, on the first push.
    pub(super) expected: usize,
}

impl Inbox {
    pub(super) fn new(limit: usize, reject: bool, keep_crossing: bool) -> Inbox {
        Inbox {
            limit,
            reject,
            keep_crossing,
            raw: Vec::new(),
            fill: Fill::Open,
            expected: 0,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) -> BodyPush {
        match self.fill {
            Fill::TooLarge => return BodyPush::TooLarge,
            Fill::Full => return BodyPush::Full,
            Fill::Open => {}
        }
        let len = self.raw.len().saturating_add(chunk.len());
        if len > self.limit {
            if self.reject {
                self.fill = Fill::TooLarge;
                self.raw = Vec::new();
                return BodyPush::TooLarge;
            }
            self.fill = Fill::Full;
            let keep = if self.keep_crossing {
                chunk
            } else {
                &chunk[..self.limit - self.raw.len()]
            };
            self.reserve(self.raw.len() + keep.len());
            self.raw.extend_from_slice(keep);
            return BodyPush::Full;
        }
        self.reserve(len);
        self.raw.extend_from_slice(chunk);
        BodyPush::Continue
    }

    /// Grows the buffer geometrically, but not past the limit (or `len`).
    fn reserve(&mut self, len: usize) {
        if self.raw.capacity() >= len {
            return;
        }
        if self.raw.capacity() == 0 && self.expected >= len {
            self.raw.reserve_exact(self.expected);
            return;
        }
        let target = self
            .raw
            .capacity()
            .saturating_mul(2)
            .max(4096)
            .min(self.limit)
            .max(len);
        self.raw.reserve_exact(target - self.raw.len());
    }

    pub(super) fn over_limit(&self) -> bool {
        self.fill != Fill::Open
    }
}
