#!/usr/bin/env bash
# One capacity measurement end to end: collector(s) + forewarn-loadgen, release
# binaries, on this machine.
#
#   tests/bench/capacity.sh sqlite|postgres|replicas [forewarn-loadgen args…]
#   tests/bench/capacity.sh sqlite --agents 20000 --warmup-secs 60 --duration-secs 180
#   tests/bench/capacity.sh replicas --ramp 2000,2000,20000 --p99-ms 100
#
# Modes: sqlite (one collector, SQLite), postgres (one collector on a private
# PostgreSQL from tests/postgres.sh), replicas (two collectors on that
# PostgreSQL, each its own data_dir and ports; agent i reports to replica
# i mod 2). Steady and --ramp runs; --reconnect needs someone to restart the
# collector and is not supported here.
#
# Files under $CAPACITY_ROOT (default /var/tmp/fw-capacity):
#   <mode>/            fresh each run: configs, data dirs, logs, loadgen output
#   agents-<mode>/     the loadgen's --state (kept: agents enroll once per mode)
#   baseline-<mode>/   the store right after the last enrollment (SQLite data
#                      dir with its CA; or a pg_dump and the KEK): every run
#                      starts from a copy of it, so the agents in agents-<mode>
#                      exist and their CA is the one they pinned. Delete both
#                      directories to start a mode over.
#
# Settings: FOREWARN_BIN_DIR (release binaries; default <repo>/target/release,
# where `cargo build --release --bins` runs first: a no-op when up to date),
# CAPACITY_ROOT, READY_TIMEOUT_SECS (60).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODE="${1:-}"
case "$MODE" in
    sqlite | postgres | replicas) shift ;;
    *)
        echo "usage: $0 sqlite|postgres|replicas [forewarn-loadgen args…]" >&2
        exit 2
        ;;
esac
ROOT="${CAPACITY_ROOT:-/var/tmp/fw-capacity}"
WORK="$ROOT/$MODE"
AGENTS="$ROOT/agents-$MODE"
BASE="$ROOT/baseline-$MODE"
READY_TIMEOUT_SECS="${READY_TIMEOUT_SECS:-60}"

say() { printf '==> %s\n' "$*"; }
die() {
    printf '==> FAILED: %s\n' "$*" >&2
    exit 1
}

# --- machine and command, first, so every figure carries them -------------
echo "=== forewarn capacity run: mode $MODE"
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:   $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(awk '/^MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min); open files: hard limit $(ulimit -Hn)"
echo "command:  $0 $MODE $*"

# --- binaries ---------------------------------------------------------------
if [ -n "${FOREWARN_BIN_DIR:-}" ]; then
    B="$FOREWARN_BIN_DIR"
else
    B="$REPO/target/release"
    say "cargo build --release --bins"
    (cd "$REPO" && cargo build --release --bins)
fi
for b in forewarn-collector forewarn-loadgen; do
    [ -x "$B/$b" ] || die "$B/$b missing"
done

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- cleanup: only what this script started ----------------------------------
COLLECTOR_PIDS=()
stop_collector() { # pid
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${COLLECTOR_PIDS[@]}"; do
        stop_collector "$pid"
    done
    COLLECTOR_PIDS=()
    if declare -F pg_stop >/dev/null; then
        pg_stop
    fi
}

rm -rf -- "$WORK"
mkdir -p "$WORK" "$AGENTS"
if [ ! -d "$BASE" ] && [ -n "$(ls -A "$AGENTS")" ]; then
    say "no $BASE: the agents in $AGENTS belong to a store that is gone; enrolling anew"
    rm -rf -- "$AGENTS"
    mkdir -p "$AGENTS"
fi

# --- the store ---------------------------------------------------------------
if [ "$MODE" = sqlite ]; then
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    REPLICAS=1
    mkdir -p "$WORK/data-1"
    if [ -d "$BASE" ]; then
        cp -a "$BASE/data/." "$WORK/data-1/"
        say "store restored from $BASE"
    fi
else
    # Starts a private PostgreSQL (sets its own EXIT trap, replaced below).
    # shellcheck source=tests/postgres.sh
    source "$REPO/tests/postgres.sh"
    trap cleanup EXIT
    REPLICAS=1
    [ "$MODE" = replicas ] && REPLICAS=2
    pg_psql -d postgres -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE forewarn' ||
        die "CREATE DATABASE forewarn"
    DB_URL="postgres://postgres@127.0.0.1:$FOREWARN_PG_PORT/forewarn"
    if [ -d "$BASE" ]; then
        install -m 600 "$BASE/kek" "$WORK/kek"
        "$FOREWARN_PG_BIN/pg_restore" -h 127.0.0.1 -p "$FOREWARN_PG_PORT" -U postgres \
            -d forewarn --no-owner --exit-on-error "$BASE/db.dump" || die "pg_restore $BASE/db.dump"
        say "store restored from $BASE"
    else
        "$B/forewarn-collector" ca kek-create "$WORK/kek" >/dev/null
    fi
fi

# --- collectors ---------------------------------------------------------------
URLS=()
for i in $(seq 1 "$REPLICAS"); do
    grpc_port="$(free_port)"
    http_port="$(free_port)"
    mkdir -p "$WORK/data-$i"
    {
        echo "data_dir = \"$WORK/data-$i\""
        if [ "$MODE" != sqlite ]; then
            printf '[store]\nurl = "%s"\n[pki]\nkek_file = "%s"\n' "$DB_URL" "$WORK/kek"
        fi
        cat <<TOML
[grpc]
listen_addr = "127.0.0.1:$grpc_port"
[http]
listen_addr = "127.0.0.1:$http_port"
[limits]
# Every (check, item) of every agent is a series: 20,000 agents x 12 checks
# is over the default cap of 200,000 per tenant.
max_series_per_tenant = 0
TOML
    } >"$WORK/collector-$i.toml"
    URLS+=("https://127.0.0.1:$grpc_port")
done

# One socket per agent: 65536 open files for the collector, or the hard
# limit if that is lower (and cannot be raised here).
NOFILE=65536
if ! (ulimit -n "$NOFILE") 2>/dev/null; then
    NOFILE="$(ulimit -Hn)"
    say "warning: cannot raise the open-file limit to 65536 (hard limit $NOFILE): the collector gets $NOFILE"
fi

# Starts replica $1 (one at a time: the first stores the CA) and waits for
# its "forewarn-collector ready" line.
start_collector() {
    local i="$1" pid deadline
    : >"$WORK/collector-$i.out"
    (ulimit -n "$NOFILE" && exec "$B/forewarn-collector" --config "$WORK/collector-$i.toml" serve) \
        >>"$WORK/collector-$i.out" 2>>"$WORK/collector-$i.log" &
    pid=$!
    COLLECTOR_PIDS[i - 1]=$pid
    deadline=$((SECONDS + READY_TIMEOUT_SECS))
    until grep -q '^forewarn-collector ready' "$WORK/collector-$i.out"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$WORK/collector-$i.log" >&2
            die "collector $i exited before it was ready (log: $WORK/collector-$i.log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$WORK/collector-$i.log" >&2
            die "collector $i not ready within ${READY_TIMEOUT_SECS}s"
        fi
        sleep 0.1
    done
    say "collector $i (pid $pid): $(grep -m 1 '^forewarn-collector ready' "$WORK/collector-$i.out")"
}
for i in $(seq 1 "$REPLICAS"); do
    start_collector "$i"
done

URL_LIST="$(IFS=,; echo "${URLS[*]}")"
LOADGEN_BASE=("$B/forewarn-loadgen" --collector "$URL_LIST" --state "$AGENTS")

# --- enrollment: once per mode, then the store is kept as the baseline --------
say "enrolling the agents missing from $AGENTS"
"${LOADGEN_BASE[@]}" --collector-config "$WORK/collector-1.toml" \
    --collector-bin "$B/forewarn-collector" "$@" --enroll-only | tee "$WORK/enroll.out"
enrolled="$(sed -n 's/^loadgen-result //p' "$WORK/enroll.out" | jq -r .enrolled_now)"
[ -n "$enrolled" ] || die "no loadgen-result from the enrollment"
n_agents="$(sed -n 's/^loadgen-result //p' "$WORK/enroll.out" | jq -r .agents)"
if [ $((n_agents + 1024)) -gt "$NOFILE" ]; then
    say "warning: $n_agents agents need about $((n_agents + 1024)) open files in the collector and in the loadgen; the limit here is $NOFILE: expect connect errors"
fi
if [ "$enrolled" != 0 ]; then
    say "saving the store with its $enrolled new agents as $BASE"
    rm -rf -- "$BASE.tmp"
    mkdir -p "$BASE.tmp"
    if [ "$MODE" = sqlite ]; then
        # A clean stop checkpoints the WAL; copy, then start again.
        stop_collector "${COLLECTOR_PIDS[0]}"
        cp -a "$WORK/data-1" "$BASE.tmp/data"
        start_collector 1
    else
        "$FOREWARN_PG_BIN/pg_dump" -h 127.0.0.1 -p "$FOREWARN_PG_PORT" -U postgres \
            -Fc -f "$BASE.tmp/db.dump" forewarn || die "pg_dump"
        install -m 600 "$WORK/kek" "$BASE.tmp/kek"
    fi
    rm -rf -- "$BASE"
    mv "$BASE.tmp" "$BASE"
fi

# --- the run -------------------------------------------------------------------
PID_LIST="$(IFS=,; echo "${COLLECTOR_PIDS[*]}")"
CMD=("${LOADGEN_BASE[@]}" --collector-pid "$PID_LIST")
if [ "$MODE" != sqlite ]; then
    POSTMASTER="$(head -n 1 "$FOREWARN_PG_DIR/data/postmaster.pid")"
    CMD+=(--watch-comm postgres --watch-parent "$POSTMASTER")
fi
CMD+=("$@")
echo "loadgen:  ${CMD[*]}"
set +e
"${CMD[@]}" | tee "$WORK/loadgen.out"
rc=${PIPESTATUS[0]}
set -e

# --- afterwards: store size, tickets ---------------------------------------------
if [ "$MODE" = sqlite ]; then
    db_bytes=0
    for f in "$WORK/data-1/forewarn.db" "$WORK/data-1/forewarn.db-wal"; do
        if [ -f "$f" ]; then db_bytes=$((db_bytes + $(stat -c %s "$f"))); fi
    done
    db_what="SQLite forewarn.db + forewarn.db-wal"
else
    db_bytes="$(pg_psql -d forewarn -At -c 'SELECT pg_database_size(current_database())')"
    db_what="pg_database_size(forewarn)"
fi
CLI=("$B/forewarn-collector" --config "$WORK/collector-1.toml")
opened="$("${CLI[@]}" kpis --days 1 --json | jq '[.[].opened] | add // 0')"
open_now="$("${CLI[@]}" tickets list --state open --json | jq length)"
agents_known="$("${CLI[@]}" agents list --json 2>/dev/null | jq length 2>/dev/null || echo '?')"

echo
echo "=== capacity result ($MODE)"
echo "command:  $0 $MODE $*"
echo "loadgen:  ${CMD[*]}"
echo "store:    $db_what = $db_bytes bytes ($(awk -v b="$db_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB)"
echo "tickets:  $opened opened in the last day (kpis), $open_now open now; $agents_known agents enrolled"
grep '^loadgen-result ' "$WORK/loadgen.out" || echo "no loadgen-result line (exit $rc)"
echo "files:    $WORK"
exit "$rc"
