//! The TLS ClientHello, read before the TLS library sees it: Pingora's
//! pre-TLS hook hands over the accepted TCP stream; the bytes of the
//! ClientHello are read (at most 16 KiB, within `header_timeout`), put back
//! for the handshake, and their JA4 fingerprint
//! ([`palisade_bots::fingerprint::ja4`]) recorded under the client's
//! address and port ([`super::Prints`]) for the bot defence to read per
//! request. rustls does not expose the extension list, hence this.
//!
//! The deadline also bounds the start of a handshake: a client that opens
//! a TLS connection and sends nothing (or a ClientHello a byte at a time)
//! is cut at `header_timeout`, where Pingora alone waits 60 s.

use crate::state::EdgeState;
use async_trait::async_trait;
use palisade_bots::fingerprint::{ClientHelloCollector, Collect};
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::GetSocketDigest;
use pingora_error::{Error, ErrorType};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The pre-TLS hook.
pub struct HelloReader {
    state: Arc<EdgeState>,
}

impl HelloReader {
    /// A hook recording into `state`.
    pub fn new(state: Arc<EdgeState>) -> Self {
        HelloReader { state }
    }
}

#[async_trait]
impl PreTlsProcess for HelloReader {
    async fn process(&self, stream: &mut L4Stream) -> pingora_error::Result<()> {
        let limits = self.state.policy().connections;
        let deadline = Duration::from_millis(limits.header_timeout_ms.max(1));
        let mut collector = ClientHelloCollector::new();
        let mut seen = Vec::with_capacity(2048);
        let mut buf = [0u8; 4096];
        let read = async {
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => n,
                };
                seen.extend_from_slice(&buf[..n]);
                match collector.push(&buf[..n]) {
                    Collect::NeedMore => continue,
                    other => return Some(other),
                }
            }
        };
        let outcome = tokio::time::timeout(deadline, read).await;
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        match outcome {
            Ok(Some(c)) => {
                if let (Collect::Done(ja4), Some(peer)) = (c, peer) {
                    self.state
                        .conns
                        .prints
                        .set_ja4(peer, Arc::from(ja4.as_str()));
                }
                // Not a ClientHello: the handshake says so.
                stream.rewind(&seen);
                Ok(())
            }
            Ok(None) => {
                Error::e_explain(ErrorType::ConnectionClosed, "closed before the ClientHello")
            }
            Err(_) => {
                if let Some(peer) = peer {
                    self.state
                        .conn_dropped(super::Reason::HeaderTimeout, peer.ip());
                }
                Error::e_explain(
                    ErrorType::ReadTimedout,
                    "no ClientHello within header_timeout",
                )
            }
        }
    }
}
