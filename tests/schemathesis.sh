#!/usr/bin/env bash
# Runs schemathesis (PyPI), an independent OpenAPI client, against a live
# collector: every /api/v1 operation in its OpenAPI document, with generated
# valid and invalid inputs; fails on any 5xx or any response that breaks the
# documented schema (status code, content type, body).
#
#   tests/schemathesis.sh BASE_URL API_KEY [MAX_EXAMPLES]
#
# e.g. tests/schemathesis.sh http://127.0.0.1:8080 fwk_... 25
# Installs schemathesis into a virtualenv under
# ${FOREWARN_SCHEMATHESIS_VENV:-$HOME/.cache/forewarn/schemathesis-venv} when it
# is missing (Debian's python3-venv is installed first if venv is missing).
# tests/tests/schemathesis.rs starts a real collector and calls this script.
set -euo pipefail

base=${1:?usage: schemathesis.sh BASE_URL API_KEY [MAX_EXAMPLES]}
key=${2:?usage: schemathesis.sh BASE_URL API_KEY [MAX_EXAMPLES]}
max_examples=${3:-25}
# Pinned major version: its CLI options are what this script uses.
spec="schemathesis>=4,<5"
venv=${FOREWARN_SCHEMATHESIS_VENV:-$HOME/.cache/forewarn/schemathesis-venv}

if [ ! -x "$venv/bin/schemathesis" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        install_venv=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv)
        "${install_venv[@]}" || { env DEBIAN_FRONTEND=noninteractive apt-get update -q && "${install_venv[@]}"; }
    fi
    mkdir -p "$(dirname "$venv")"
    # Build into a temporary directory first: an interrupted install never
    # leaves a half-made venv that looks ready.
    tmp="$venv.tmp.$$"
    rm -rf "$tmp"
    python3 -m venv "$tmp"
    "$tmp/bin/pip" install --quiet --disable-pip-version-check "$spec"
    rm -rf "$venv"
    mv "$tmp" "$venv"
    # A moved venv keeps absolute paths in its scripts: rewrite them.
    grep -rl "$tmp" "$venv/bin" | xargs -r sed -i "s#$tmp#$venv#g"
fi

# Reproducible across runs (same seed, no example database), bounded in
# time, and strict: the checks below are the ones this suite promises.
exec "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$max_examples" \
    --seed 1 \
    --generation-database none \
    --workers 1 \
    --no-color
