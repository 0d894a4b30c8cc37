#!/usr/bin/env bash
# Starts Forewarn on embedded defaults: a collector (embedded SQLite,
# self-generated CA, tenant "default") and one agent on this machine,
# enrolled into it and reporting. Ctrl-C stops both.
#
# State lives in ./.forewarn-dev (override with FOREWARN_DEV_DIR); run the
# script again to pick up where you left off. Ports: FOREWARN_GRPC_PORT
# (default 4443) and FOREWARN_HTTP_PORT (default 8080), on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=${FOREWARN_DEV_DIR:-$PWD/.forewarn-dev}
GRPC_PORT=${FOREWARN_GRPC_PORT:-4443}
HTTP_PORT=${FOREWARN_HTTP_PORT:-8080}
PROFILE=${FOREWARN_PROFILE:-release}

echo "==> building forewarn-collector and forewarn-agent ($PROFILE; the first build takes a few minutes)"
if [ "$PROFILE" = release ]; then cargo build --release --bins; else cargo build --bins; fi
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET_DIR/$PROFILE
if [ "$PROFILE" = dev ]; then BIN=$TARGET_DIR/debug; fi

mkdir -p "$DEV"
chmod 700 "$DEV"
COLLECTOR_CFG=$DEV/collector.toml
AGENT_CFG=$DEV/agent.toml
if [ -f "$COLLECTOR_CFG" ]; then
    # Kept from an earlier run (with any edits); only the ports follow this run.
    sed -i -E "/^\[grpc\]/,/^\[/ s|^listen_addr = .*|listen_addr = \"127.0.0.1:$GRPC_PORT\"|; /^\[http\]/,/^\[/ s|^listen_addr = .*|listen_addr = \"127.0.0.1:$HTTP_PORT\"|" "$COLLECTOR_CFG"
else
    cat > "$COLLECTOR_CFG" <<TOML
data_dir = "$DEV/collector"
[grpc]
listen_addr = "127.0.0.1:$GRPC_PORT"
[http]
listen_addr = "127.0.0.1:$HTTP_PORT"
TOML
fi
if [ -f "$AGENT_CFG" ]; then
    sed -i -E "s|^url = \"https://127.0.0.1:[0-9]+\"|url = \"https://127.0.0.1:$GRPC_PORT\"|" "$AGENT_CFG"
else
    cat > "$AGENT_CFG" <<TOML
state_dir = "$DEV/agent"
interval_secs = 15
[collector]
url = "https://127.0.0.1:$GRPC_PORT"
TOML
fi
echo "==> configs: $COLLECTOR_CFG and $AGENT_CFG (ports: gRPC $GRPC_PORT, HTTP $HTTP_PORT)"

collector() { "$BIN/forewarn-collector" --config "$COLLECTOR_CFG" "$@"; }
agent() { "$BIN/forewarn-agent" --config "$AGENT_CFG" "$@"; }

PIDS=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "==> stopping"
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    exit 0
}
trap cleanup INT TERM EXIT

echo "==> starting the collector (log: $DEV/collector.log)"
# Started directly (not through the shell functions) so $! is the process itself.
"$BIN/forewarn-collector" --config "$COLLECTOR_CFG" serve > "$DEV/collector.out" 2> "$DEV/collector.log" &
PIDS+=($!)
for _ in $(seq 1 300); do
    grep -q "forewarn-collector ready" "$DEV/collector.out" 2>/dev/null && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$DEV/collector.log"; exit 1; }
    sleep 0.1
done
grep -q "forewarn-collector ready" "$DEV/collector.out" || { echo "collector did not start"; cat "$DEV/collector.log"; exit 1; }

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

if [ ! -f "$DEV/agent/identity.json" ]; then
    echo "==> enrolling the local agent into tenant \"default\""
    TOKEN_JSON=$(collector token create --tenant default --json)
    agent enroll --collector "https://127.0.0.1:$GRPC_PORT" \
        --token "$(echo "$TOKEN_JSON" | json_field token)" \
        --ca-fingerprint "$(echo "$TOKEN_JSON" | json_field ca_fingerprint)"
fi
if [ ! -f "$DEV/api-key" ]; then
    (umask 077; collector api-key create --name quickstart --role msp-admin --json | json_field key > "$DEV/api-key")
fi
API_KEY=$(cat "$DEV/api-key")

# The first start made operator "admin" and printed a one-time setup link;
# set a random password through it (never a default one) and keep it here.
SETUP=$(sed -n 's/^forewarn-collector first-admin user=admin setup=//p' "$DEV/collector.out")
if [ -n "$SETUP" ] && [ ! -f "$DEV/admin-password" ]; then
    PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
    TOKEN=${SETUP#*token=}
    if curl -fsS -o /dev/null --data-urlencode "token=$TOKEN" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "confirm=$PASSWORD" "http://127.0.0.1:$HTTP_PORT/setup"; then
        (umask 077; echo "$PASSWORD" > "$DEV/admin-password")
    else
        echo "could not set the admin password; open the setup link instead: $SETUP"
    fi
fi
LOGIN="admin / $(cat "$DEV/admin-password" 2>/dev/null || echo "(see the setup link in $DEV/collector.out)")"

echo "==> starting the agent (log: $DEV/agent.log)"
"$BIN/forewarn-agent" --config "$AGENT_CFG" run 2> "$DEV/agent.log" &
PIDS+=($!)

cat <<INFO

Forewarn is running.
  Dashboard:  http://127.0.0.1:$HTTP_PORT/   (sign in as $LOGIN; password also in $DEV/admin-password)
  API:        http://127.0.0.1:$HTTP_PORT/api/v1   (health: http://127.0.0.1:$HTTP_PORT/healthz)
  API key:    $API_KEY   (also in $DEV/api-key)
  try:        curl -H "Authorization: Bearer $API_KEY" http://127.0.0.1:$HTTP_PORT/api/v1/agents
              curl -H "Authorization: Bearer $API_KEY" 'http://127.0.0.1:$HTTP_PORT/api/v1/tickets?state=open'
  CLI:        $BIN/forewarn-collector --config $COLLECTOR_CFG tickets list
  configs:    $COLLECTOR_CFG  $AGENT_CFG
  logs:       $DEV/collector.log  $DEV/agent.log

Press Ctrl-C to stop the collector and the agent.
INFO
wait -n "${PIDS[@]}" || true
echo "a process exited unexpectedly; see $DEV/collector.log and $DEV/agent.log"
exit 1
