#!/usr/bin/env bash
# Footprint benchmark: the release forewarn-agent side by side with the peers
# Debian packages (prometheus-node-exporter, zabbix_agentd, collectd), all
# running at the same time on this machine, each on its default config.
#
# Per process (a process and all its children, for agents that fork) it
# records every SAMPLE_SECS:
#   - RSS: VmRSS and VmHWM from /proc/PID/status (summed over the tree), plus
#     Pss from /proc/PID/smaps_rollup (the fair sum: shared pages counted once)
#   - CPU: utime+stime+cutime+cstime from /proc/PID/stat, summed over the tree
#   - threads: Threads from /proc/PID/status, summed over the tree
# and once: the stripped size of the binary (a stripped copy is measured).
#
# The forewarn agent needs a collector, or it only reconnects: a release
# forewarn-collector is started on loopback with a temporary data dir, the
# agent is enrolled into it and then runs `forewarn-agent run` on its default
# config (only state_dir and interval_secs = 15 set). Only the agent process is
# measured; the collector is not part of the footprint.
#
# node_exporter is scraped with curl every SCRAPE_SECS (as Prometheus would;
# an unscraped exporter does nothing). zabbix_agentd and collectd work on their
# own schedules (zabbix: passive listeners + an active-checks process that
# retries its default ServerActive=127.0.0.1; collectd: its default plugins
# every 10 s, written to RRD files in the work dir).
#
# Usage (as root: it may apt-get install the peers, zabbix_agentd drops to
# the zabbix user):
#   tests/bench/footprint.sh
# Environment:
#   DURATION_SECS=300      measurement window (after the warm-up)
#   WARMUP_SECS=15         time between start and the first (baseline) sample
#   SAMPLE_SECS=15         sampling period
#   SCRAPE_SECS=15         node_exporter scrape period
#   FOREWARN_BIN_DIR=DIR   where forewarn-agent/forewarn-collector are
#                          (default: <repo>/target/release; if the binaries
#                          are missing there the script runs
#                          `cargo build --release --bins` to make them)
#   PEERS="node_exporter zabbix_agentd collectd"   which peers to run
#   NODE_EXPORTER_PORT=9100  ZABBIX_PORT=10050     loopback ports of the peers
#   BENCH_WORK_DIR=DIR     work dir (default: a new /tmp/forewarn-footprint.*);
#                          samples.csv, results.md and the logs stay there
#
# Missing peers are installed with
#   apt-get update && apt-get install -y --no-install-recommends \
#       prometheus-node-exporter zabbix-agent collectd
# (`collectd` pulls collectd-core and ships the default
# /etc/collectd/collectd.conf; collectd-core alone has no config.)
# None of them is started by the packages here (no systemd); on a host where
# they run as services, stop those first or the ports clash.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DURATION_SECS=${DURATION_SECS:-300}
WARMUP_SECS=${WARMUP_SECS:-15}
SAMPLE_SECS=${SAMPLE_SECS:-15}
SCRAPE_SECS=${SCRAPE_SECS:-15}
BIN_DIR=${FOREWARN_BIN_DIR:-$REPO/target/release}
PEERS=${PEERS:-node_exporter zabbix_agentd collectd}
NODE_EXPORTER_PORT=${NODE_EXPORTER_PORT:-9100}
ZABBIX_PORT=${ZABBIX_PORT:-10050}
WORK=${BENCH_WORK_DIR:-$(mktemp -d /tmp/forewarn-footprint.XXXXXX)}
CLK_TCK=$(getconf CLK_TCK)

step() { printf '==> %s\n' "$*"; }
die() { printf 'footprint: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
# Every process we start is recorded here and stopped by its PID on exit,
# Ctrl-C or error. Bulky state (RRD files, databases, keys) is removed;
# the logs, samples.csv and results.md stay in $WORK.
STARTED=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in "${STARTED[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK/collector/data" "$WORK/agent/state" "$WORK/collectd/rrd"
    [ "${#STARTED[@]}" -gt 0 ] && echo "footprint: stopped ${#STARTED[@]} processes; logs and samples in $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- binaries
mkdir -p "$WORK"
chmod 755 "$WORK" # zabbix_agentd runs as user zabbix and writes under it
echo "footprint: work dir $WORK"

if [ ! -x "$BIN_DIR/forewarn-agent" ] || [ ! -x "$BIN_DIR/forewarn-collector" ]; then
    case $BIN_DIR in
    */release) ;;
    *) die "no forewarn binaries in $BIN_DIR (and it is not a cargo */release dir to build into)" ;;
    esac
    step "forewarn binaries missing in $BIN_DIR: cargo build --release --bins (a few minutes)"
    (cd "$REPO" && CARGO_TARGET_DIR=${BIN_DIR%/release} cargo build --release --bins)
fi
AGENT_BIN=$BIN_DIR/forewarn-agent
COLLECTOR_BIN=$BIN_DIR/forewarn-collector

# Peer name -> binary, and the Debian package that provides it.
declare -A PEER_BIN=(
    [node_exporter]=/usr/bin/prometheus-node-exporter
    [zabbix_agentd]=/usr/sbin/zabbix_agentd
    [collectd]=/usr/sbin/collectd
)
declare -A PEER_PKG=(
    [node_exporter]=prometheus-node-exporter
    [zabbix_agentd]=zabbix-agent
    [collectd]=collectd
)
MISSING=()
for peer in $PEERS; do
    [ -n "${PEER_BIN[$peer]:-}" ] || die "unknown peer '$peer' (known: ${!PEER_BIN[*]})"
    [ -x "${PEER_BIN[$peer]}" ] || MISSING+=("${PEER_PKG[$peer]}")
done
case " $PEERS " in *" collectd "*)
    [ -f /etc/collectd/collectd.conf ] || MISSING+=(collectd) ;;
esac
command -v curl >/dev/null || MISSING+=(curl)
if [ "${#MISSING[@]}" -gt 0 ]; then
    mapfile -t MISSING < <(printf '%s\n' "${MISSING[@]}" | sort -u)
    step "peers missing, installing: apt-get install -y --no-install-recommends ${MISSING[*]}"
    [ "$(id -u)" = 0 ] || die "installing packages needs root"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >"$WORK/apt.log" 2>&1 ||
        { tail -20 "$WORK/apt.log"; die "apt-get install failed (log: $WORK/apt.log)"; }
fi

# Stripped file size of a binary: strip a copy (Debian's and our release
# binaries are already stripped, so this is normally the file size).
stripped_size() {
    local copy=$WORK/stripped.$$.bin
    if command -v strip >/dev/null && strip -o "$copy" "$1" 2>/dev/null; then
        stat -c %s "$copy"
        rm -f "$copy"
    else
        stat -c %s "$1"
    fi
}

# ---------------------------------------------------------------- start
declare -A PID BIN_SIZE
ORDER=()

start_collector() {
    mkdir -p "$WORK/collector"
    local cfg=$WORK/collector/collector.toml
    cat >"$cfg" <<TOML
data_dir = "$WORK/collector/data"
[grpc]
listen_addr = "127.0.0.1:0"
[http]
listen_addr = "127.0.0.1:0"
TOML
    step "starting forewarn-collector (not measured)"
    "$COLLECTOR_BIN" --config "$cfg" serve >"$WORK/collector/stdout" 2>"$WORK/collector/log" &
    STARTED+=($!)
    local cpid=$!
    for _ in $(seq 1 300); do
        grep -q '^forewarn-collector ready' "$WORK/collector/stdout" 2>/dev/null && break
        kill -0 "$cpid" 2>/dev/null || { cat "$WORK/collector/log"; die "collector exited"; }
        sleep 0.1
    done
    local ready
    ready=$(grep -m1 '^forewarn-collector ready' "$WORK/collector/stdout") || die "collector did not get ready"
    GRPC_ADDR=$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<<"$ready")
    HTTP_ADDR=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$ready")
    COLLECTOR_CFG=$cfg
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

start_agent() {
    mkdir -p "$WORK/agent"
    local cfg=$WORK/agent/agent.toml
    cat >"$cfg" <<TOML
state_dir = "$WORK/agent/state"
interval_secs = 15
TOML
    local tok
    tok=$("$COLLECTOR_BIN" --config "$COLLECTOR_CFG" token create --tenant default --json)
    step "enrolling forewarn-agent into https://$GRPC_ADDR"
    "$AGENT_BIN" --config "$cfg" enroll --collector "https://$GRPC_ADDR" \
        --token "$(json_field token <<<"$tok")" \
        --ca-fingerprint "$(json_field ca_fingerprint <<<"$tok")" >"$WORK/agent/enroll.log" 2>&1 ||
        { cat "$WORK/agent/enroll.log"; die "enrollment failed"; }
    step "starting forewarn-agent run"
    env -u RUST_LOG "$AGENT_BIN" --config "$cfg" run >"$WORK/agent/stdout" 2>"$WORK/agent/log" &
    STARTED+=($!)
    PID[forewarn-agent]=$!
    BIN_SIZE[forewarn-agent]=$(stripped_size "$AGENT_BIN")
    ORDER+=(forewarn-agent)
}

start_node_exporter() {
    port_free "$NODE_EXPORTER_PORT" || { echo "  127.0.0.1:$NODE_EXPORTER_PORT is in use: node_exporter skipped"; return; }
    step "starting node_exporter on 127.0.0.1:$NODE_EXPORTER_PORT (scraped every ${SCRAPE_SECS}s)"
    mkdir -p "$WORK/node_exporter"
    "${PEER_BIN[node_exporter]}" --web.listen-address="127.0.0.1:$NODE_EXPORTER_PORT" \
        >"$WORK/node_exporter/log" 2>&1 &
    STARTED+=($!)
    PID[node_exporter]=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$NODE_EXPORTER_PORT/" && break
        sleep 0.1
    done
    # The scraper: one GET /metrics every SCRAPE_SECS, like a Prometheus server.
    (
        while :; do
            if curl -sf -o /dev/null "http://127.0.0.1:$NODE_EXPORTER_PORT/metrics"; then
                echo ok
            else echo fail; fi >>"$WORK/node_exporter/scrapes"
            sleep "$SCRAPE_SECS"
        done
    ) &
    STARTED+=($!)
}

start_zabbix_agentd() {
    port_free "$ZABBIX_PORT" || { echo "  127.0.0.1:$ZABBIX_PORT is in use: zabbix_agentd skipped"; return; }
    step "starting zabbix_agentd -f on 127.0.0.1:$ZABBIX_PORT"
    # A copy of the package's config with only ListenIP/ListenPort and a
    # PidFile/LogFile the zabbix user can write changed.
    local dir=$WORK/zabbix
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && id zabbix >/dev/null 2>&1 && chown zabbix: "$dir"
    sed -e '/^PidFile=/d' -e '/^LogFile=/d' -e '/^ListenIP=/d' -e '/^ListenPort=/d' \
        /etc/zabbix/zabbix_agentd.conf >"$dir/zabbix_agentd.conf"
    printf 'PidFile=%s\nLogFile=%s\nListenIP=127.0.0.1\nListenPort=%s\n' \
        "$dir/zabbix_agentd.pid" "$dir/zabbix_agentd.log" "$ZABBIX_PORT" >>"$dir/zabbix_agentd.conf"
    "${PEER_BIN[zabbix_agentd]}" -f -c "$dir/zabbix_agentd.conf" >"$dir/stdout" 2>&1 &
    STARTED+=($!)
    PID[zabbix_agentd]=$!
}

start_collectd() {
    step "starting collectd -f (package default config)"
    # The package's /etc/collectd/collectd.conf with only the paths moved
    # into the work dir (BaseDir, PIDFile if set, rrdtool DataDir).
    local dir=$WORK/collectd
    mkdir -p "$dir/rrd"
    sed -e "s|^#*BaseDir .*|BaseDir \"$dir\"|" \
        -e "s|^#*PIDFile .*|PIDFile \"$dir/collectd.pid\"|" \
        -e "s|DataDir \"/var/lib/collectd/rrd\"|DataDir \"$dir/rrd\"|" \
        /etc/collectd/collectd.conf >"$dir/collectd.conf"
    "${PEER_BIN[collectd]}" -f -C "$dir/collectd.conf" >"$dir/log" 2>&1 &
    STARTED+=($!)
    PID[collectd]=$!
}

start_collector
start_agent
for peer in $PEERS; do
    "start_$peer"
    if [ -n "${PID[$peer]:-}" ]; then
        ORDER+=("$peer")
        BIN_SIZE[$peer]=$(stripped_size "${PEER_BIN[$peer]}")
    fi
done

# ---------------------------------------------------------------- sampling
# One line per measured process: "rss_kib hwm_kib pss_kib cpu_ticks threads procs",
# summed over ROOT and all its descendants (found through the ppid field of
# /proc/*/stat; the comm field may hold spaces, so fields are counted after
# the last ')').
tree_pids() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        { pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " "); ppid[pid] = f[2] }
        END {
            keep[root] = 1; changed = 1
            while (changed) {
                changed = 0
                for (p in ppid) if (!(p in keep) && (ppid[p] in keep)) { keep[p] = 1; changed = 1 }
            }
            for (p in keep) print p
        }'
}

tree_stats() {
    local root=$1 p stat r h n rss=0 hwm=0 pss=0 ticks=0 threads=0 procs=0
    kill -0 "$root" 2>/dev/null || { echo "dead"; return; }
    for p in $(tree_pids "$root"); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat # ${12} utime ${13} stime ${14} cutime ${15} cstime (fields 14-17 of stat)
        ticks=$((ticks + ${12} + ${13} + ${14} + ${15}))
        read -r r h n < <(awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^Threads:/{n=$2}
            END{print r+0, h+0, n+0}' "/proc/$p/status" 2>/dev/null || echo "0 0 0")
        rss=$((rss + r)) hwm=$((hwm + h)) threads=$((threads + n))
        pss=$((pss + $(awk '/^Pss:/{print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
        procs=$((procs + 1))
    done
    echo "$rss $hwm $pss $ticks $threads $procs"
}

mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

CSV=$WORK/samples.csv
echo "t_secs,process,rss_kib,hwm_kib,pss_kib,cpu_ticks,threads,procs" >"$CSV"
declare -A BASE_TICKS

step "warming up ${WARMUP_SECS}s, then sampling every ${SAMPLE_SECS}s for ${DURATION_SECS}s"
sleep "$WARMUP_SECS"
T0=$EPOCHREALTIME
k=0
while :; do
    now=$EPOCHREALTIME
    t=$(awk -v a="$T0" -v b="$now" 'BEGIN{printf "%.1f", b-a}')
    line=$(printf '[%5.0f/%s s]' "$t" "$DURATION_SECS")
    for name in "${ORDER[@]}"; do
        s=$(tree_stats "${PID[$name]}")
        if [ "$s" = dead ]; then
            line+=" | $name DIED"
            continue
        fi
        read -r rss hwm pss ticks threads procs <<<"$s"
        echo "$t,$name,$rss,$hwm,$pss,$ticks,$threads,$procs" >>"$CSV"
        [ -n "${BASE_TICKS[$name]:-}" ] || BASE_TICKS[$name]=$ticks
        cpu=$(awk -v d=$((ticks - BASE_TICKS[$name])) -v hz="$CLK_TCK" -v t="$t" \
            'BEGIN{ if (t > 0) printf "%.3f%%", 100*d/hz/t; else printf "-" }')
        line+=" | $name $(mib "$rss")M cpu $cpu thr $threads"
    done
    echo "$line"
    k=$((k + 1))
    [ "$((k * SAMPLE_SECS))" -le "$DURATION_SECS" ] || break
    # Sleep until the next tick (no drift from the time sampling took).
    sleep "$(awk -v a="$T0" -v k="$k" -v p="$SAMPLE_SECS" -v n="$EPOCHREALTIME" \
        'BEGIN{d = a + k*p - n; printf "%.3f", (d > 0 ? d : 0)}')"
done

# ---------------------------------------------------------------- results
# Sanity: the agent must have been reporting, not reconnecting.
API_KEY=$("$COLLECTOR_BIN" --config "$COLLECTOR_CFG" api-key create --name footprint --json | json_field key)
AGENTS_JSON=$(curl -sf -H "Authorization: Bearer $API_KEY" "http://$HTTP_ADDR/api/v1/agents" || echo "?")
SCRAPES_OK=$(grep -c '^ok' "$WORK/node_exporter/scrapes" 2>/dev/null || true)
SCRAPES_FAIL=$(grep -c '^fail' "$WORK/node_exporter/scrapes" 2>/dev/null || true)

RESULTS=$WORK/results.md
{
    echo "| process | RSS median (MiB) | RSS max (MiB) | VmHWM peak (MiB) | PSS median (MiB) | CPU % of one core | CPU s | threads (procs) | binary, stripped (MiB) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for name in "${ORDER[@]}"; do
        awk -F, -v n="$name" -v hz="$CLK_TCK" -v bin="${BIN_SIZE[$name]}" '
            $2 == n {
                i++; t[i] = $1; rss[i] = $3; pss[i] = $5; tk[i] = $6
                if ($3 > rmax) rmax = $3
                if ($4 > hmax) hmax = $4
                thr = $7; procs = $8
            }
            function median(a, m,   j, l, x, s) {
                # insertion sort of a[1..m] into s, then the middle value
                for (j = 1; j <= m; j++) {
                    x = a[j]; l = j - 1
                    while (l > 0 && s[l] > x) { s[l+1] = s[l]; l-- }
                    s[l+1] = x
                }
                return (m % 2) ? s[(m+1)/2] : (s[m/2] + s[m/2+1]) / 2
            }
            END {
                if (!i) { printf "| %s | (no samples) |||||||\n", n; exit }
                secs = (tk[i] - tk[1]) / hz; dur = t[i] - t[1]
                printf "| %s | %.1f | %.1f | %.1f | %.1f | %.3f | %.2f | %d (%d) | %.1f |\n", \
                    n, median(rss, i)/1024, rmax/1024, hmax/1024, median(pss, i)/1024, \
                    (dur > 0 ? 100*secs/dur : 0), secs, thr, procs, bin/1048576
            }' "$CSV"
    done
} >"$RESULTS"

# Targets (shared/DESIGN.md): agent RSS < 8 MiB, CPU < 0.1 % of a core,
# stripped binary < 10 MiB, and lower than every peer on each of the three.
verdict() {
    awk -F'|' '
        function v(x) { gsub(/[ ()%]/, "", x); return x + 0 }
        NR > 2 {
            n = $2; gsub(/ /, "", n)
            rss[n] = v($3); cpu[n] = v($7); bin[n] = v($10); names[++k] = n
        }
        END {
            a = "forewarn-agent"
            r = rss[a] < 8; c = cpu[a] < 0.1; b = bin[a] < 10
            rp = cp = bp = 1; lr = lc = lb = ""
            for (j = 1; j <= k; j++) {
                n = names[j]; if (n == a) continue
                if (rss[n] <= rss[a]) { rp = 0; lr = lr " " n }
                if (cpu[n] <= cpu[a]) { cp = 0; lc = lc " " n }
                if (bin[n] <= bin[a]) { bp = 0; lb = lb " " n }
            }
            printf "- RSS median %.1f MiB < 8 MiB: %s; below every peer: %s\n", rss[a], (r ? "met" : "NOT met"), (rp ? "met" : "NOT met (not above:" lr ")")
            printf "- CPU %.3f %% < 0.1 %% of one core: %s; below every peer: %s\n", cpu[a], (c ? "met" : "NOT met"), (cp ? "met" : "NOT met (not above:" lc ")")
            printf "- stripped binary %.1f MiB < 10 MiB: %s; below every peer: %s\n", bin[a], (b ? "met" : "NOT met"), (bp ? "met" : "NOT met (not above:" lb ")")
        }' "$RESULTS"
}
verdict >>"$RESULTS"

echo
step "results ($(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION_SECS}s at ${SAMPLE_SECS}s samples, $(nproc) cores, $(uname -r))"
cat "$RESULTS"
echo
echo "collector /api/v1/agents: $(head -c 300 <<<"$AGENTS_JSON")"
[ -n "${PID[node_exporter]:-}" ] && echo "node_exporter scrapes: ${SCRAPES_OK:-0} ok, ${SCRAPES_FAIL:-0} failed"
echo "agent log lines at level WARN/ERROR: $(grep -cE '^[^ ]+ +(WARN|ERROR) ' "$WORK/agent/log" || true) (log: $WORK/agent/log)"
echo "raw samples: $CSV"
