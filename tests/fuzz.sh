#!/usr/bin/env bash
# A short run of every cargo-fuzz target: the collector's decoding and
# validation of agent messages (`report`), the agent's config parser
# (`config`) and the plugin perfdata parser (`perfdata`).
#
#   tests/fuzz.sh [SECONDS]     # per target; default $FOREWARN_FUZZ_SECS or 20
#
# Needs the nightly toolchain and cargo-fuzz; installs both when missing
# (rustup and crates.io only). The targets share one build dir,
# target/fuzz. A crash fails the run and leaves the input under
# <crate>/fuzz/artifacts/<target>/ — reproduce it with
# `cd <crate> && cargo +nightly fuzz run <target> <that file>`.
# For a long run of one target: `cd collector && cargo +nightly fuzz run report`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FOREWARN_FUZZ_SECS:-20}}"
root="$PWD"
if [ "$secs" = 0 ]; then
    echo "==> fuzz run skipped (0 seconds asked)"
    exit 0
fi

# Tooling trouble (no nightly, cargo-fuzz or a fuzz build failing on a
# toolchain change) skips the run with a warning; only a finding — a crash
# or a panic in a target — fails it.
skip() {
    echo "==> WARNING: fuzz run skipped: $*" >&2
    exit 0
}
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "==> installing the nightly toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal || skip "cannot install the nightly toolchain"
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked || skip "cannot install cargo-fuzz"
fi

for entry in "collector report" "agent config" "agent perfdata"; do
    set -- $entry
    crate="$1" target="$2"
    echo "==> fuzz $crate/$target for ${secs}s"
    mkdir -p "$crate/fuzz/corpus/$target"
    log="$root/target/fuzz-$target.log"
    mkdir -p "$root/target"
    # No sanitizer: the code under test is safe Rust, so a panic is the
    # finding; skipping ASan roughly halves the build and doubles the
    # executions per second. Debug assertions and overflow checks stay on.
    flags=(--sanitizer none --target-dir "$root/target/fuzz")
    (cd "$crate" && cargo +nightly fuzz build "${flags[@]}" "$target") >"$log" 2>&1 ||
        { tail -n 30 "$log"; skip "building $crate/$target failed (log: $log)"; }
    status=0
    (cd "$crate" && cargo +nightly fuzz run "${flags[@]}" "$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1 || status=$?
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "==> fuzz $crate/$target FAILED (exit $status); full log: $log" >&2
        exit "$status"
    fi
done
echo "==> fuzz: no crashes"
