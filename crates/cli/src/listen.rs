//! Listener addresses checked before anything starts.
//!
//! Pingora binds its listeners only once its services run, retries a busy
//! port for about 30 s, and then panics on a thread of its own while the rest
//! of the process keeps running. So every address given on the command line
//! is bound here first: a busy, invalid or forbidden address ends the process
//! at once with one line naming the flag, before any service has started.

use anyhow::Context;
use std::net::TcpListener;

/// Binds `addr` (for the listener of `flag`); the caller keeps the listener
/// (the API, the demo origin) or drops it and hands the address to Pingora.
pub fn bind(flag: &str, addr: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is already in use (another process listens there)".to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need privileges)".to_string()
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "the address is not one of this machine's".to_string()
            }
            _ => e.to_string(),
        };
        anyhow::anyhow!("cannot listen on {addr} ({flag}): {why}")
    })?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("{flag} {addr}"))?;
    Ok(listener)
}

/// Checks that Pingora will be able to bind `addr`: binds it, then releases it.
pub fn check(flag: &str, addr: &str) -> anyhow::Result<()> {
    drop(bind(flag, addr)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_one_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = check("--listen", &addr).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("cannot listen on {addr} (--listen): the address is already in use (another process listens there)")
        );
        drop(taken);
        check("--listen", &addr).unwrap();
        assert!(check("--api", "not an address").is_err());
    }
}
