//! HTTP/1.1 or prior-knowledge HTTP/2 on the plain listener.
//!
//! Pingora tells the two apart by reading exactly the 24 bytes of the HTTP/2
//! connection preface before it parses anything. A request shorter than that
//! (`GET / HTTP/1.1\r\n\r\n` is 18 bytes) is then never answered: the read
//! waits for bytes the client will not send, with no deadline. This app reads
//! only as far as needed instead — usually one byte tells, since every HTTP/1
//! method differs from `PRI` — puts the bytes back, and the connection guard
//! (`crate::conn::ConnGuard`) hands the connection to an HTTP/1-only or an
//! h2c proxy. A connection that sends nothing at all is closed after the
//! policy's `header_timeout` ([`FIRST_BYTES_TIMEOUT`] when none is given).
//!
//! TLS connections are not sniffed: ALPN chooses (the HTTP/1 proxy follows it).

use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a connection may stay silent before its first request byte
/// (also between requests on a kept-alive connection).
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// What the first bytes of a plain connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Not the preface: HTTP/1.x.
    Http1,
    /// The whole preface: HTTP/2 with prior knowledge.
    H2c,
    /// A prefix of the preface so far: read more.
    Undecided,
}

/// Classifies the bytes read so far.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let n = bytes.len().min(PREFACE.len());
    if bytes[..n] != PREFACE[..n] {
        Sniffed::Http1
    } else if n == PREFACE.len() {
        Sniffed::H2c
    } else {
        Sniffed::Undecided
    }
}

/// Reads the first bytes of a plain connection, as far as needed to tell
/// HTTP/1 from h2c, and puts them back. TLS (or any stream that is not a
/// plain TCP one) is left untouched and reported as `Http1` (ALPN decides).
/// None: the connection closed, failed or stayed silent for
/// [`FIRST_BYTES_TIMEOUT`] (`timeout`, when given, instead).
pub async fn sniff_stream(stream: Stream, timeout: Option<Duration>) -> Option<(Stream, Sniffed)> {
    if stream.get_ssl_digest().is_some() || !stream.as_any().is::<L4Stream>() {
        return Some((stream, Sniffed::Http1));
    }
    let Ok(mut l4) = stream.into_any().downcast::<L4Stream>() else {
        return None; // checked just above
    };
    let mut buf = [0u8; PREFACE.len()];
    let mut got = 0;
    let read_all = async {
        loop {
            match l4.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
            match sniff(&buf[..got]) {
                Sniffed::Undecided => continue,
                decided => return Some(decided),
            }
        }
    };
    let kind = match tokio::time::timeout(timeout.unwrap_or(FIRST_BYTES_TIMEOUT), read_all).await {
        Ok(Some(k)) => k,
        // Closed, failed or silent: nothing to answer.
        Ok(None) | Err(_) => return None,
    };
    l4.rewind(&buf[..got]);
    Some((l4, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_usually_tells() {
        assert_eq!(sniff(b"G"), Sniffed::Http1);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n\r\n"), Sniffed::Http1);
        assert_eq!(sniff(b"P"), Sniffed::Undecided);
        assert_eq!(sniff(b"POST"), Sniffed::Http1);
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n"), Sniffed::Undecided);
        assert_eq!(sniff(PREFACE), Sniffed::H2c);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(b"\x00\x00");
        assert_eq!(sniff(&more), Sniffed::H2c);
        assert_eq!(sniff(b"PRI * HTTP/1.1\r\n"), Sniffed::Http1);
    }
}
