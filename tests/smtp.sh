#!/usr/bin/env bash
# A real SMTP server for the email sink's end-to-end test: aiosmtpd
# (STARTTLS, AUTH), installed when missing, a fast no-op when present
# (idempotent). Prints the path of a python3 that can `import aiosmtpd`
# on stdout, and nothing else there:
#
#   python=$(tests/smtp.sh) && "$python" tests/smtp/server.py --help
#
#   1. Debian's python3-aiosmtpd (1.4.x: STARTTLS, AUTH, auth_require_tls)
#      with /usr/bin/python3, installed with apt-get when missing;
#   2. else aiosmtpd from PyPI in a venv under
#      ${FOREWARN_SMTP_VENV:-$HOME/.cache/forewarn/smtp-venv}.
#
# `apt-get update` runs only when a package has to be installed. Fails
# (non-zero, with the reason) when neither works: the email test then
# fails, never skips. tests/run-all.sh runs it before the tests, and
# tests/tests/email.rs runs it too, so `cargo nextest run` works alone.
set -euo pipefail

say() { printf '==> smtp.sh: %s\n' "$*" >&2; }
has() { "$1" -c 'import aiosmtpd.controller, aiosmtpd.smtp' >/dev/null 2>&1; }
apt_install() {
    local cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
    "${cmd[@]}" >&2 || { env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && "${cmd[@]}" >&2; }
}

venv=${FOREWARN_SMTP_VENV:-$HOME/.cache/forewarn/smtp-venv}
if [ -x /usr/bin/python3 ] && has /usr/bin/python3; then
    echo /usr/bin/python3
    exit 0
fi
if [ -x "$venv/bin/python3" ] && has "$venv/bin/python3"; then
    echo "$venv/bin/python3"
    exit 0
fi

# Several test processes may start at once: one installs, the others wait.
mkdir -p "$(dirname "$venv")"
exec 9>"$(dirname "$venv")/smtp.lock"
flock 9
if [ -x /usr/bin/python3 ] && has /usr/bin/python3; then
    echo /usr/bin/python3
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's python3-aiosmtpd"
    if apt_install python3-aiosmtpd && has /usr/bin/python3; then
        echo /usr/bin/python3
        exit 0
    fi
    say "python3-aiosmtpd did not work; trying PyPI"
fi
if ! has "$venv/bin/python3" 2>/dev/null; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    say "installing aiosmtpd from PyPI into $venv"
    # Built aside first: an interrupted install never looks ready.
    tmp="$venv.tmp.$$"
    rm -rf "$tmp"
    python3 -m venv "$tmp"
    "$tmp/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd>=1.4,<2" >&2
    rm -rf "$venv"
    mv "$tmp" "$venv"
    grep -rl "$tmp" "$venv/bin" | xargs -r sed -i "s#$tmp#$venv#g"
fi
has "$venv/bin/python3" || { say "FAILED: aiosmtpd is not importable"; exit 1; }
echo "$venv/bin/python3"
