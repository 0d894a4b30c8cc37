#!/usr/bin/env bash
# What the browser tests need, installed when missing, a fast no-op when all
# is there (idempotent; safe to run from several processes, see the lock):
#
#   tests/browser.sh
#
#   - /usr/bin/chromium  Debian's `chromium` package (apt-get, as root);
#   - node and npm       Debian's `nodejs` and `npm` when either is missing;
#   - playwright-core    `npm ci` in tests/browser when tests/browser/node_modules
#                        lacks the version its package-lock.json pins. playwright-core downloads no browser: the
#                        tests drive /usr/bin/chromium.
#
# `apt-get update` runs only when a package has to be installed. Prints what
# it installs; fails (non-zero, with the reason) when something is missing
# and cannot be installed — the browser tests then fail, never skip.
# tests/run-all.sh runs it before the tests, and the test harness
# (tests/tests/common/browser.rs) runs it once per test process, so
# `cargo nextest run` works on a fresh machine too.
set -euo pipefail
cd "$(dirname "$0")"
browser_dir="$PWD/browser"

say() { printf '==> browser.sh: %s\n' "$*" >&2; }
fail() {
    printf '==> browser.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

# Several test processes may start at once (nextest runs each test in its
# own process): one installs, the others wait for it, then find all present.
# The lock is this script file itself.
if command -v flock >/dev/null 2>&1 && [ -z "${FOREWARN_BROWSER_LOCKED:-}" ]; then
    export FOREWARN_BROWSER_LOCKED=1
    exec flock "$PWD/browser.sh" "$PWD/browser.sh" "$@"
fi

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

if [ "${#packages[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "missing ${packages[*]} and not root: install them (Debian: apt-get install ${packages[*]})"
    command -v apt-get >/dev/null 2>&1 || fail "missing ${packages[*]} and no apt-get to install them"
    say "installing Debian packages: ${packages[*]} (after apt-get update)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || fail "apt-get update failed (see above)"
    apt-get install -y -q --no-install-recommends "${packages[@]}" >&2 ||
        fail "apt-get install ${packages[*]} failed (see above)"
    /usr/bin/chromium --version >&2 || fail "/usr/bin/chromium was installed but does not run"
fi

# The version installed must be the one package-lock.json pins (one node
# start: it is most of this script's time when all is present).
versions="$(cd "$browser_dir" && node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json")).packages["node_modules/playwright-core"]?.version ?? "";
    let have = "";
    try { have = JSON.parse(fs.readFileSync("node_modules/playwright-core/package.json")).version; } catch {}
    console.log(`${want} ${have}`);
')" || fail "node cannot read tests/browser/package-lock.json"
read -r want have <<<"$versions"
[ -n "$want" ] || fail "tests/browser/package-lock.json pins no playwright-core"
if [ "${have:-}" != "$want" ]; then
    say "installing playwright-core $want (npm ci in tests/browser${have:+, replacing $have})"
    (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        fail "npm ci in tests/browser failed (see above)"
fi
