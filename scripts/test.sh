#!/usr/bin/env bash
# The full test command: installs what it needs, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh
cargo test --workspace --all-targets --locked 2>&1
