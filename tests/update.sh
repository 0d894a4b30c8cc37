#!/usr/bin/env bash
# Builds the agent a second time as version 0.99.0 (FOREWARN_VERSION) and
# keeps that binary aside for the self-update tests (tests/tests/self_update.rs):
# $CARGO_TARGET_DIR/update-test/forewarn-agent-0.99.0. Only the agent crate
# (and what links it) is recompiled; run it BEFORE `cargo build --workspace
# --bins`, which then rebuilds the agent at its own version.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
version=0.99.0
out="$target/update-test/forewarn-agent-$version"
FOREWARN_VERSION=$version cargo build -q -p forewarn-agent --bin forewarn-agent
mkdir -p "$target/update-test"
cp "$target/debug/forewarn-agent" "$out.tmp"
mv "$out.tmp" "$out"
"$out" --version | grep -q " $version\$" || { echo "update.sh: $out does not say $version" >&2; exit 1; }
echo "$out"
