//! What this binary was built with: the cargo features that leave parts out.
//!
//! `nats` (on by default; `cargo build`, `--release` and `--profile dist`
//! have it): `palisade edge` and `palisade control`, which join a cluster
//! over NATS JetStream. The quick start builds without it
//! (`--no-default-features`: `palisade up` runs on the in-process mesh), and
//! such a binary refuses those commands with [`without_nats`]'s message.

/// How to build a binary that has NATS.
pub const BUILD_WITH_NATS: &str = "cargo build --release -p palisade-cli";

/// Whether this binary has the NATS backend (`palisade edge`, `palisade control`).
pub const HAS_NATS: bool = cfg!(feature = "nats");

/// The error of `command`, which needs NATS, in a binary built without it.
#[cfg_attr(feature = "nats", allow(dead_code))]
pub fn without_nats(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{command} needs NATS, and this palisade was built without it (cargo feature `nats` \
         off, as in the quick start's build); build it with NATS: `{BUILD_WITH_NATS}` \
         (binary target/release/palisade)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_command_and_how_to_build_with_nats() {
        let msg = without_nats("palisade edge").to_string();
        assert!(msg.starts_with("palisade edge needs NATS"), "{msg}");
        assert!(msg.contains("built without it"), "{msg}");
        assert!(msg.contains(BUILD_WITH_NATS), "{msg}");
    }
}
