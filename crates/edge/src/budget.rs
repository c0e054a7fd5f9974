//! A process-wide cap on the bytes held back for inspection.
//!
//! A request body is held until the WAF has said pass, and a response body
//! (up to its limit) until the response phases have run. Each held byte is
//! first reserved here, so that many concurrent uploads cannot exhaust
//! memory: when the cap is reached, a request body *waits* (its client is not
//! read, which is TCP back-pressure) for up to a bounded time and then gets
//! 503; a response body that finds no room is passed on uninspected and
//! counted. Never an out-of-memory.
//!
//! A body whose length is declared reserves all of it at once, before its
//! first byte is read, so two half-buffered uploads can never wait on each
//! other; a body of unknown length reserves as it grows.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetError {
    /// More than the whole cap was asked for.
    OverCap,
    /// The cap stayed full for the whole wait.
    Timeout,
}

/// The cap, shared by every request of a process.
#[derive(Debug, Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    cap: usize,
    wait: Duration,
}

/// Bytes held under a [`Budget`]; given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Bytes reserved.
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }
}

/// Permits are `u32` per acquisition; a body larger than that is refused by
/// its limit long before (limits are at most 1 GiB).
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Budget {
    /// A cap of `cap` bytes; a reservation waits at most `wait` for room.
    pub fn new(cap: usize, wait: Duration) -> Budget {
        let cap = cap.min(Semaphore::MAX_PERMITS);
        Budget {
            sem: Arc::new(Semaphore::new(cap)),
            cap,
            wait,
        }
    }

    /// The cap in bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> usize {
        self.cap.saturating_sub(self.sem.available_permits())
    }

    /// Adds `bytes` to `r`, waiting for room up to the budget's wait.
    /// Returns whether it had to wait (for the metric).
    pub async fn grow(&self, r: &mut Reservation, bytes: usize) -> Result<bool, BudgetError> {
        if bytes == 0 {
            return Ok(false);
        }
        if r.bytes() + bytes > self.cap {
            return Err(BudgetError::OverCap);
        }
        let n = permits(bytes);
        let (permit, waited) = match self.sem.clone().try_acquire_many_owned(n) {
            Ok(p) => (p, false),
            Err(_) => {
                match tokio::time::timeout(self.wait, self.sem.clone().acquire_many_owned(n)).await
                {
                    Ok(Ok(p)) => (p, true),
                    // The semaphore is never closed; treat it like a full cap.
                    Ok(Err(_)) | Err(_) => return Err(BudgetError::Timeout),
                }
            }
        };
        match &mut r.permit {
            Some(p) => p.merge(permit),
            None => r.permit = Some(permit),
        }
        Ok(waited)
    }

    /// Adds `bytes` to `r` only if there is room now.
    pub fn try_grow(&self, r: &mut Reservation, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        if r.bytes() + bytes > self.cap {
            return false;
        }
        match self.sem.clone().try_acquire_many_owned(permits(bytes)) {
            Ok(p) => {
                match &mut r.permit {
                    Some(held) => held.merge(p),
                    None => r.permit = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_and_give_it_back() {
        let b = Budget::new(100, Duration::from_millis(200));
        let mut a = Reservation::default();
        assert_eq!(b.grow(&mut a, 60).await, Ok(false));
        assert_eq!(b.in_use(), 60);
        let mut c = Reservation::default();
        // No room: waits, then times out.
        assert_eq!(b.grow(&mut c, 50).await, Err(BudgetError::Timeout));
        assert!(!b.try_grow(&mut c, 50));
        assert!(b.try_grow(&mut c, 40));
        assert_eq!(b.in_use(), 100);
        // Room comes back while it waits.
        let b2 = b.clone();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(a);
            b2.in_use()
        });
        let mut d = Reservation::default();
        assert_eq!(b.grow(&mut d, 50).await, Ok(true));
        // The freed room went straight to the waiting reservation.
        assert_eq!(release.await.unwrap(), 90);
        assert_eq!(d.bytes(), 50);
        drop((c, d));
        assert_eq!(b.in_use(), 0);
    }

    #[tokio::test]
    async fn more_than_the_cap_is_refused_at_once() {
        let b = Budget::new(100, Duration::from_secs(60));
        let mut r = Reservation::default();
        assert_eq!(b.grow(&mut r, 101).await, Err(BudgetError::OverCap));
        assert_eq!(b.grow(&mut r, 100).await, Ok(false));
        assert_eq!(b.grow(&mut r, 1).await, Err(BudgetError::OverCap));
        assert!(!b.try_grow(&mut r, 1));
    }
}
