# A private, throwaway PostgreSQL server for the test suite. Source it (bash):
#
#   source tests/postgres.sh    # starts the server (pg_start), or fails
#   ...                         # tests use $FOREWARN_TEST_POSTGRES_URL
#   pg_stop                     # stops it and removes its files
#
# Functions:
#   pg_start   install Debian's `postgresql` when `initdb` is missing, initdb a
#              temp data dir as the `postgres` user, start the server with
#              `pg_ctl -w` on a free 127.0.0.1 port and export
#              FOREWARN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:<port>/postgres
#              (tests create their own databases from it) plus FOREWARN_PG_PORT,
#              FOREWARN_PG_DIR (data dir, log, socket) and FOREWARN_PG_BIN.
#              Returns non-zero with the reason (and the server log tail) on
#              any failure; sourcing this file then fails too — never a skip.
#   pg_stop    `pg_ctl stop -m fast`, then remove the temp dir. Idempotent.
#   pg_psql    psql on that server as `postgres` (extra args passed on), e.g.
#              `pg_psql -d mydb -v ON_ERROR_STOP=1 -f schema.sql`.
#
# Sourcing sets `trap pg_stop EXIT` (replacing an EXIT trap you had), so the
# server goes away when the sourcing script or shell ends, passed or failed;
# in a non-interactive shell INT and TERM exit through that trap too.
# The server: trust auth for loopback and its own Unix socket only,
# listen_addresses=127.0.0.1, unix_socket_directories in the temp dir,
# max_connections=300 (tests run in parallel, each with its own database),
# fsync on, C locale (byte-wise text order, like SQLite's BINARY) and UTF8.
# As root the server runs as `postgres` (runuser); as another user, as that user.

if [ -z "${BASH_VERSION:-}" ] || [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "tests/postgres.sh: source it from bash (source tests/postgres.sh), don't run it" >&2
    exit 2
fi

_pg_say() { printf '==> postgres: %s\n' "$*" >&2; }
_pg_err() { printf '==> postgres: FAILED: %s\n' "$*" >&2; }

# Run a command as the server's owner, from / (the caller's cwd may be
# unreadable to `postgres`).
_pg_as() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# The newest /usr/lib/postgresql/<ver>/bin holding initdb, else the one on PATH.
_pg_find_bin() {
    local d best=""
    for d in "${FOREWARN_PG_LIBDIR:-/usr/lib/postgresql}"/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
        best="$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V | tail -n 1)"
    done
    if [ -z "$best" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        best="$(dirname "$(command -v initdb)")"
    fi
    [ -n "$best" ] && printf '%s\n' "$best"
}

_pg_install() {
    if [ "$(id -u)" != 0 ]; then
        _pg_err "initdb not found and not root: cannot install Debian's postgresql package"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _pg_err "initdb not found and no apt-get to install the postgresql package"
        return 1
    fi
    _pg_say "initdb not found: installing Debian's postgresql package"
    # Keep the package from starting its default cluster (no service starts
    # during the install) unless the machine already has a policy.
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql)
    if ! "${apt[@]}"; then
        _pg_say "install failed; running apt-get update and retrying"
        if ! env DEBIAN_FRONTEND=noninteractive apt-get update -q || ! "${apt[@]}"; then
            _pg_err "apt-get install postgresql failed (see above)"
            rc=1
        fi
    fi
    [ "$made_policy" = 1 ] && rm -f "$policy"
    return "$rc"
}

_pg_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return 0
    fi
    echo $((20000 + RANDOM % 40000))
}

# Show why the server did not come up, then tear down what exists.
_pg_fail() {
    _pg_err "$*"
    local f
    for f in "${FOREWARN_PG_DIR:-}/pg_ctl.out" "${FOREWARN_PG_DIR:-}/initdb.out" "${FOREWARN_PG_DIR:-}/server.log"; do
        if [ -s "$f" ]; then
            echo "---- tail of $f" >&2
            tail -n 40 "$f" >&2
        fi
    done
    pg_stop
    return 1
}

pg_start() {
    if [ -n "${FOREWARN_PG_DIR:-}" ] && [ -f "$FOREWARN_PG_DIR/data/postmaster.pid" ]; then
        _pg_say "already running on port ${FOREWARN_PG_PORT:-?}"
        return 0
    fi
    local bin
    bin="$(_pg_find_bin)"
    if [ -z "$bin" ]; then
        _pg_install || return 1
        bin="$(_pg_find_bin)"
        if [ -z "$bin" ]; then
            _pg_err "postgresql installed but no initdb/pg_ctl under ${FOREWARN_PG_LIBDIR:-/usr/lib/postgresql}/*/bin or on PATH"
            return 1
        fi
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        _pg_err "running as root but there is no 'postgres' user to run the server as"
        return 1
    fi
    FOREWARN_PG_BIN="$bin"

    local dir
    if ! dir="$(mktemp -d /tmp/forewarn-pg.XXXXXX)"; then
        _pg_err "cannot create a temp dir under /tmp"
        return 1
    fi
    FOREWARN_PG_DIR="$dir"
    if [ "$(id -u)" = 0 ] && ! chown postgres: "$dir"; then
        _pg_fail "cannot chown $dir to postgres"
        return 1
    fi

    if ! _pg_as "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
        >"$dir/initdb.out" 2>&1; then
        _pg_fail "initdb failed ($bin/initdb)"
        return 1
    fi
    rm -f "$dir/initdb.out"
    # Trust, but only over loopback and the private socket.
    if ! _pg_as sh -c "cat >'$dir/data/pg_hba.conf'" <<'EOF'
# forewarn test server: loopback and its own socket only
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
    then
        _pg_fail "cannot write pg_hba.conf"
        return 1
    fi
    if ! _pg_as sh -c "cat >>'$dir/data/postgresql.conf'" <<EOF

# forewarn test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = on
timezone = 'UTC'
logging_collector = off
EOF
    then
        _pg_fail "cannot write postgresql.conf"
        return 1
    fi

    # A port free now may be taken before the server binds it: retry then.
    local port attempt
    for attempt in 1 2 3 4 5; do
        port="$(_pg_free_port)"
        if ! _pg_as sh -c "echo 'port = $port' >>'$dir/data/postgresql.conf'"; then
            _pg_fail "cannot write postgresql.conf"
            return 1
        fi
        if _pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            >"$dir/pg_ctl.out" 2>&1; then
            break
        fi
        if [ "$attempt" -lt 5 ] && grep -qiE 'could not bind|address already in use' "$dir/server.log" 2>/dev/null; then
            _pg_say "port $port taken, trying another"
            continue
        fi
        _pg_fail "pg_ctl start failed (port $port)"
        return 1
    done

    FOREWARN_PG_PORT="$port"
    FOREWARN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export FOREWARN_PG_BIN FOREWARN_PG_DIR FOREWARN_PG_PORT FOREWARN_TEST_POSTGRES_URL
    # pg_ctl -w waited for "ready"; one query over TCP proves the URL works.
    local out
    if ! out="$("$bin/psql" "$FOREWARN_TEST_POSTGRES_URL" -X -At -c 'SHOW server_version' 2>&1)"; then
        _pg_fail "server started but $FOREWARN_TEST_POSTGRES_URL does not answer: $out"
        return 1
    fi
    _pg_say "PostgreSQL $out on 127.0.0.1:$port (data $dir/data)"
    _pg_say "FOREWARN_TEST_POSTGRES_URL=$FOREWARN_TEST_POSTGRES_URL"
}

pg_stop() {
    local dir="${FOREWARN_PG_DIR:-}"
    [ -n "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        if ! _pg_as "${FOREWARN_PG_BIN:-}/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            # Not stopping: kill the postmaster we started, by its pid.
            local pid
            pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
            if [ -n "$pid" ]; then
                _pg_say "pg_ctl stop failed; killing postmaster $pid"
                kill -9 "$pid" 2>/dev/null || true
            fi
        fi
    fi
    rm -rf -- "$dir" || true
    unset FOREWARN_PG_DIR FOREWARN_PG_PORT FOREWARN_TEST_POSTGRES_URL
    return 0
}

pg_psql() {
    if [ -z "${FOREWARN_PG_PORT:-}" ]; then
        _pg_err "no server running (pg_start first)"
        return 1
    fi
    "$FOREWARN_PG_BIN/psql" -X -h 127.0.0.1 -p "$FOREWARN_PG_PORT" -U postgres "$@"
}

trap pg_stop EXIT
case $- in
    *i*) ;;
    *)
        trap 'exit 130' INT
        trap 'exit 143' TERM
        ;;
esac

if ! pg_start; then
    _pg_err "no private PostgreSQL: the tests need one"
    # shellcheck disable=SC2317
    return 1 2>/dev/null || exit 1
fi
