//! Client fingerprints (see the crate documentation).
//!
//! Three fingerprints, each computed from bytes the client sent, each pure
//! (no I/O, no clock) and bounded (caps on bytes read and entries kept; no
//! panic on any input):
//!
//! - [`headers`]: the names, order and case of a request's headers, on
//!   HTTP/1.x from the raw request head, on HTTP/2 from the names in arrival
//!   order — `h1n08c_3f2a9b0c1d4e` (our own format), plus the booleans a
//!   scorer needs (`Accept-Language`, `Sec-Fetch-*`, `Sec-CH-UA`, …).
//! - [`ja4`]: the TLS ClientHello fingerprint in the JA4 style
//!   (`t13d1516h2_8daaf6152771_e5627efa2ab1`), read by a
//!   [`ClientHelloCollector`] fed the first bytes of a TCP connection before
//!   any TLS library sees them.
//! - [`h2`]: the HTTP/2 connection preface fingerprint — SETTINGS,
//!   connection WINDOW_UPDATE, PRIORITY frames and the pseudo-header order of
//!   the first HEADERS frame (`1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p`),
//!   read by an [`H2PrefaceCollector`].

pub mod h2;
pub mod headers;
pub mod ja4;

pub use h2::{H2Collect, H2Fingerprint, H2PrefaceCollector};
pub use headers::{from_names, http1, HeaderFingerprint, HttpVersion};
pub use ja4::{ja4_from_client_hello, ClientHelloCollector, Collect, Ja4};
