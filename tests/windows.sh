#!/usr/bin/env bash
# Everything the Windows tests need (tests/tests/windows_agent.rs and
# windows_msi.rs), installed or built when missing, a fast no-op when all is
# there (idempotent; safe to run from several processes, see the lock):
#
#   tests/windows.sh
#
#   - the Rust target x86_64-pc-windows-gnu (rustup) and Debian's
#     gcc-mingw-w64-x86-64 (its linker), wine64 (to run the .exe), wixl and
#     msitools (to build the MSI and read its tables), with apt-get as root;
#   - forewarn-agent.exe, cross-built in the same target dir as the rest
#     ($CARGO_TARGET_DIR, default target/):
#       <target>/x86_64-pc-windows-gnu/debug/forewarn-agent.exe
#   - in <target>/windows-test/:
#       bcryptprimitives.dll   TEST SCAFFOLDING (tests/windows/bcryptprimitives.c):
#                              Debian's Wine 8.0 lacks ProcessPrng, without
#                              which no Rust .exe starts; never shipped
#       flag-plugin.exe        a test plugin (tests/windows/flag_plugin.c)
#       prefix/                a private WINEPREFIX (wineboot once, reused),
#                              the stand-in DLL in its system32; tests copy it
#       forewarn-agent-<version>-x64.msi   built by deploy/windows/build-msi.sh
#
# `apt-get update` runs only when an install fails. Quiet on success; on a
# failure it says what failed and exits non-zero: the Windows tests then
# fail, never skip (only FOREWARN_SKIP_WINE=1 skips them, loudly).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { printf '==> windows.sh: %s\n' "$*" >&2; }
fail() {
    printf '==> windows.sh: FAILED: %s\n' "$*" >&2
    exit 1
}
# Runs a command quietly; shows its output only when it fails.
quiet() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
out=$target/windows-test
mkdir -p "$out"

# Several test processes may start at once: one builds, the others wait.
if command -v flock >/dev/null 2>&1 && [ -z "${FOREWARN_WINDOWS_LOCKED:-}" ]; then
    export FOREWARN_WINDOWS_LOCKED=1
    exec flock "$out/.lock" "$0" "$@"
fi

# --- tools ---
packages=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || packages+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || packages+=(wine64)
command -v wixl >/dev/null 2>&1 || packages+=(wixl)
command -v msiinfo >/dev/null 2>&1 || packages+=(msitools)
if [ ${#packages[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "missing ${packages[*]} and not root to install them"
    say "installing Debian's ${packages[*]}"
    install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}")
    quiet "${install[@]}" || { quiet env DEBIAN_FRONTEND=noninteractive apt-get update -q && quiet "${install[@]}"; } \
        || fail "apt-get install ${packages[*]}"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
    say "adding the Rust target x86_64-pc-windows-gnu"
    quiet rustup target add x86_64-pc-windows-gnu || fail "rustup target add x86_64-pc-windows-gnu"
fi

# --- test scaffolding built with mingw (only when its source changed) ---
src=$repo/tests/windows
if [ ! "$out/bcryptprimitives.dll" -nt "$src/bcryptprimitives.c" ] \
    || [ ! "$out/bcryptprimitives.dll" -nt "$src/bcryptprimitives.def" ]; then
    quiet x86_64-w64-mingw32-gcc -O2 -s -shared -o "$out/bcryptprimitives.dll" \
        "$src/bcryptprimitives.c" "$src/bcryptprimitives.def" -ladvapi32 \
        || fail "building the stand-in bcryptprimitives.dll"
fi
if [ ! "$out/flag-plugin.exe" -nt "$src/flag_plugin.c" ]; then
    quiet x86_64-w64-mingw32-gcc -O2 -s -o "$out/flag-plugin.exe" "$src/flag_plugin.c" \
        || fail "building flag-plugin.exe"
fi

# --- the Wine prefix, made once ---
export WINEPREFIX=$out/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/.forewarn-ready" ]; then
    say "creating the Wine prefix $WINEPREFIX (once)"
    rm -rf "$WINEPREFIX"
    quiet /usr/lib/wine/wine64 wineboot --init || fail "wineboot in $WINEPREFIX"
    quiet /usr/lib/wine/wineserver -w || true
    touch "$WINEPREFIX/.forewarn-ready"
fi
sys32=$WINEPREFIX/drive_c/windows/system32
cmp -s "$out/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll" \
    || cp "$out/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"

# --- the agent, cross-built (a no-op when up to date) ---
export CARGO_TARGET_DIR=$target
quiet cargo build --target x86_64-pc-windows-gnu -p forewarn-agent --bin forewarn-agent \
    || fail "cross-building forewarn-agent.exe"
exe=$target/x86_64-pc-windows-gnu/debug/forewarn-agent.exe
[ -f "$exe" ] || fail "$exe missing after the build"

# --- the MSI (rebuilt when the exe or the recipe is newer) ---
# The agent's version is the workspace's ([workspace.package] in Cargo.toml).
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || fail "cannot read the workspace version"
msi=$out/forewarn-agent-$version-x64.msi
if [ ! "$msi" -nt "$exe" ] || [ ! "$msi" -nt deploy/windows/forewarn-agent.wxs ] \
    || [ ! "$msi" -nt deploy/windows/build-msi.sh ]; then
    deploy/windows/build-msi.sh "$version" "$exe" "$msi" || fail "building the MSI"
fi
