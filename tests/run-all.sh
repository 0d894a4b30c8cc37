#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and end-to-end test.
# End-to-end tests start real forewarn-collector / forewarn-agent processes and
# mount small tmpfs filesystems, so run as root (CI machines are).
# Last, a short fuzz run of every cargo-fuzz target (tests/fuzz.sh; installs
# nightly + cargo-fuzz when missing): FOREWARN_FUZZ_SECS per target,
# default 20; FOREWARN_FUZZ_SECS=0 skips it.
# The PostgreSQL backend's tests get a private server (tests/postgres.sh:
# installs Debian's postgresql when missing, exports
# FOREWARN_TEST_POSTGRES_URL, stops it on exit); no server fails the run.
# The replica test (tests/tests/replicas.rs) makes network namespaces with
# `ip`: Debian's iproute2 is installed when missing; no `ip` fails the run.
# The browser tests drive Debian's chromium with playwright-core
# (tests/browser.sh installs both, and node, when missing).
# tests/schemathesis.sh runs schemathesis (PyPI) against a live collector's
# /api/v1/openapi.json (no 5xx, no answer breaking the schema); it installs
# it in a venv under ~/.cache/forewarn when missing. tests/tests/schemathesis.rs
# calls it, so the nextest step below runs it.
# The email sink's test (tests/tests/email.rs) runs a real SMTP server,
# aiosmtpd (tests/smtp/server.py): tests/smtp.sh installs Debian's
# python3-aiosmtpd (or, failing that, aiosmtpd from PyPI in a venv under
# ~/.cache/forewarn) when missing.
# The package tests (tests/tests/packages.rs) build .deb and .rpm files and
# dpkg-install them into this machine's root: tests/packages.sh installs
# cargo-deb, cargo-generate-rpm (cargo install, ~10 min cold) and Debian's
# rpm when missing.
# The Windows agent runs under Wine (tests/tests/windows_agent.rs,
# windows_msi.rs): tests/windows.sh adds the x86_64-pc-windows-gnu target,
# installs Debian's gcc-mingw-w64-x86-64, wine64 and wixl/msitools when
# missing, cross-builds forewarn-agent.exe and builds the MSI.
# The plugin perfdata test (tests/tests/plugin_net.rs) runs real Nagios
# plugins: tests/plugins.sh installs Debian's monitoring-plugins-basic when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "private PostgreSQL for the tests (stopped when this script exits)"
# Sets an EXIT trap that stops the server, whether the run passes or fails.
source tests/postgres.sh

step "iproute2 for the replica tests (network namespaces)"
if ! command -v ip >/dev/null 2>&1; then
    install_ip=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends iproute2)
    "${install_ip[@]}" || { env DEBIAN_FRONTEND=noninteractive apt-get update -q && "${install_ip[@]}"; }
fi
ip netns list >/dev/null

step "chromium and playwright-core for the browser tests"
# Installed here, once, rather than by the first browser test under its
# time limit (the tests run it too, and find everything present).
./tests/browser.sh

step "aiosmtpd for the email sink's test (a real SMTP server)"
./tests/smtp.sh >/dev/null

step "cargo-deb, cargo-generate-rpm and rpm for the package tests"
./tests/packages.sh tools

step "Windows: cross-built agent, Wine prefix and MSI (tests/windows.sh)"
./tests/windows.sh

step "monitoring-plugins-basic for the plugin perfdata test (real Nagios plugins)"
./tests/plugins.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "the agent at version 0.99.0 for the self-update tests (before the main build)"
./tests/update.sh >/dev/null

step "build the binaries the end-to-end tests run"
cargo build --workspace --bins

if ! cargo nextest --version >/dev/null 2>&1; then
    step "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

step "cargo nextest run --workspace"
cargo nextest run --workspace --no-fail-fast

step "short fuzz run (FOREWARN_FUZZ_SECS=${FOREWARN_FUZZ_SECS:-20} s per target)"
./tests/fuzz.sh "${FOREWARN_FUZZ_SECS:-20}"
