#!/bin/sh
# Forewarn agent installer for Linux and macOS (POSIX sh), served by the
# collector at https://COLLECTOR:PORT/install.sh. Run as root:
#
#   sh install.sh --url https://COLLECTOR:PORT --fingerprint sha256:HEX --token fwt_...
#
# Order, so that a mistake stops it before anything is installed:
#   1. fetch the collector's CA (/ca.pem) and check its SHA-256 against
#      --fingerprint; every later request trusts that CA only (curl --cacert);
#   2. an agent already installed and enrolled here: nothing is installed or
#      enrolled again (the service is started if it is not running);
#   3. ask the collector whether the token may enroll (/enroll/check; uses
#      nothing up);
#   4. pick the newest signed package for this OS, CPU and package manager
#      (/download/index.txt), download it and its .minisig, and verify the
#      signature (minisign, or openssl 3: Ed25519 over the BLAKE2b-512
#      prehash) against the release public key (--release-key, else the
#      collector's [releases] public_key at /download/release.pub) and its
#      trusted comment naming the file;
#   5. install it (dpkg, dnf/yum/rpm, or the plain binary), enroll with the
#      token, and start the service (systemd or launchd when running).
# See docs/install.md for the trust model.
set -eu

# Everything runs inside main, which sh parses whole before it runs: piped
# into `sh -s`, a command that reads stdin cannot eat the rest of the script.
main() {
URL=
FINGERPRINT=
TOKEN=${FOREWARN_ENROLL_TOKEN:-}
RELEASE_KEY=
KIND=
CONFIG=/etc/forewarn/agent.toml

say() { printf 'forewarn install: %s\n' "$*"; }
die() {
    printf 'forewarn install: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'USAGE'
Installs the Forewarn agent from a Forewarn collector, enrolls it and starts it.

usage: sh install.sh --url https://COLLECTOR:PORT --fingerprint sha256:HEX --token TOKEN [options]

  --url URL            the collector's agent port (the address agents report to)
  --fingerprint FP     SHA-256 of the collector CA certificate (sha256:HEX), as
                       printed by `forewarn-collector token create`
  --token TOKEN        enrollment token (or the FOREWARN_ENROLL_TOKEN variable)
  --release-key KEY    minisign public key (RW...) the package must be signed
                       with [default: the collector's [releases] public_key]
  --package KIND       deb, rpm or binary [default: from the package manager]
  --config PATH        agent config file [default: /etc/forewarn/agent.toml]
  -h, --help           this help

Runs as root. Needs curl and openssl (minisign is used when installed).
Running it again on an enrolled machine installs and enrolls nothing.
USAGE
}

need_value() {
    [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
    case $1 in
    --url) need_value "$@"; URL=$2; shift 2 ;;
    --fingerprint) need_value "$@"; FINGERPRINT=$2; shift 2 ;;
    --token) need_value "$@"; TOKEN=$2; shift 2 ;;
    --release-key) need_value "$@"; RELEASE_KEY=$2; shift 2 ;;
    --package) need_value "$@"; KIND=$2; shift 2 ;;
    --config) need_value "$@"; CONFIG=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

# === arguments ===
[ -n "$URL" ] || die "--url is required: the collector's agent port, https://HOST:PORT"
case $URL in
https://*) URL=${URL%/} ;;
*) die "--url must start with https://, not $URL" ;;
esac
[ -n "$FINGERPRINT" ] || die "--fingerprint is required: the collector CA's sha256:HEX"
PIN=$(printf '%s' "$FINGERPRINT" | sed 's/^[Ss][Hh][Aa]256://' | tr -d ':' | tr 'A-F' 'a-f')
case $PIN in
*[!0-9a-f]*) die "--fingerprint must be sha256: and 64 hex digits, not $FINGERPRINT" ;;
esac
[ ${#PIN} -eq 64 ] || die "--fingerprint must be sha256: and 64 hex digits, not $FINGERPRINT"
case $KIND in
'' | deb | rpm | binary) ;;
*) die "--package must be deb, rpm or binary, not $KIND" ;;
esac
[ "$(id -u)" = 0 ] || die "run it as root (sudo sh ...): it installs a system service"
for tool in curl openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed and not installed"
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# === 1. the collector's CA, checked against the pin ===
# This one request cannot be verified by TLS (the CA is what it fetches);
# the certificate it returns is trusted only if its fingerprint matches.
curl -sS --insecure --max-time 30 -o "$WORK/ca.pem" "$URL/ca.pem" ||
    die "cannot reach the collector at $URL; nothing was installed"
SEEN=$(openssl x509 -in "$WORK/ca.pem" -outform DER 2>/dev/null | openssl dgst -sha256 | sed 's/^.*= *//')
[ ${#SEEN} -eq 64 ] || die "$URL/ca.pem is not a certificate; is --url the collector's agent port? nothing was installed"
if [ "$SEEN" != "$PIN" ]; then
    die "the collector at $URL presents CA sha256:$SEEN, not the --fingerprint sha256:$PIN; wrong fingerprint, or the connection is intercepted; nothing was installed"
fi
say "collector CA matches the fingerprint"

# get PATH OUT [CURL OPTIONS...]: a request to the collector over TLS
# verified against the pinned CA only, the body written to OUT; on an HTTP
# error, dies with the collector's JSON "error" text.
get() {
    path=$1 out=$2
    shift 2
    code=$(curl -sS --max-time 300 --cacert "$WORK/ca.pem" -o "$out" -w '%{http_code}' "$@" "$URL$path" 2>"$WORK/curl.err") ||
        die "request to $URL$path failed: $(cat "$WORK/curl.err"); nothing was installed"
    if [ "$code" != 200 ]; then
        why=$(sed -n 's/.*"error":"\([^"]*\)".*/\1/p' "$out" 2>/dev/null)
        die "$URL$path answered $code: ${why:-no reason given}; nothing was installed"
    fi
}

# === 2. already installed and enrolled? ===
agent_bin() {
    for b in /usr/bin/forewarn-agent /usr/local/bin/forewarn-agent; do
        [ -x "$b" ] && { echo "$b"; return 0; }
    done
    return 1
}
config_args() {
    [ -f "$CONFIG" ] && printf -- '--config\n%s\n' "$CONFIG"
    return 0
}
state_dir() {
    dir=
    [ -f "$CONFIG" ] && dir=$(sed -n 's/^[[:space:]]*state_dir[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$CONFIG" | head -n 1)
    if [ -z "$dir" ]; then
        dir=/var/lib/forewarn-agent
    fi
    echo "$dir"
}
OS=$(uname -s)

start_service() {
    if [ "$OS" = Darwin ]; then
        plist=/Library/LaunchDaemons/com.forewarn.agent.plist
        if [ -f "$plist" ]; then
            launchctl bootstrap system "$plist" 2>/dev/null || launchctl kickstart -k system/com.forewarn.agent
            say "agent started (launchd: com.forewarn.agent)"
        else
            say "no launchd job at $plist: start the agent with: forewarn-agent run"
        fi
    elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl enable forewarn-agent.service >/dev/null 2>&1 || true
        systemctl restart forewarn-agent.service || die "systemctl restart forewarn-agent failed; see: journalctl -u forewarn-agent"
        say "agent started (systemd: forewarn-agent.service)"
    else
        say "systemd is not running here, so the agent was not started; start it with your init system, or: $(agent_bin) $(config_args | tr '\n' ' ')run"
    fi
}

STATE=$(state_dir)
if BIN=$(agent_bin) && [ -f "$STATE/identity.json" ]; then
    ID=$(sed -n 's/.*"agent_id":[[:space:]]*"\([^"]*\)".*/\1/p' "$STATE/identity.json")
    say "the agent is already installed ($BIN) and enrolled (agent ${ID:-?}, $STATE/identity.json): nothing installed, not enrolled again"
    if [ "$OS" != Darwin ] && [ -d /run/systemd/system ] && systemctl is-active --quiet forewarn-agent.service 2>/dev/null; then
        say "agent running (systemd: forewarn-agent.service)"
    else
        start_service
    fi
    exit 0
fi

# === 3. may the token enroll? (uses nothing up) ===
[ -n "$TOKEN" ] || die "--token is required (or FOREWARN_ENROLL_TOKEN): an enrollment token from the collector"
case $TOKEN in
*[!A-Za-z0-9_-]*) die "--token has characters no enrollment token has; copy it again" ;;
esac
get /enroll/check "$WORK/grant.json" -X POST -H 'content-type: application/json' --data-binary "{\"token\":\"$TOKEN\"}"
TENANT=$(sed -n 's/.*"tenant":"\([^"]*\)".*/\1/p' "$WORK/grant.json")
say "token accepted for tenant ${TENANT:-?}"

# === 4. the package for this machine ===
case $OS in
Linux) os=linux ;;
Darwin) os=macos ;;
*) die "this installer is for Linux and macOS, not $OS (Windows: install.ps1)" ;;
esac
case $(uname -m) in
x86_64 | amd64) arch=x86_64 ;;
aarch64 | arm64) arch=aarch64 ;;
*) die "no agent build for the CPU $(uname -m)" ;;
esac
if [ -z "$KIND" ]; then
    if [ "$os" = linux ] && command -v dpkg >/dev/null 2>&1; then
        KIND=deb
    elif [ "$os" = linux ] && command -v rpm >/dev/null 2>&1; then
        KIND=rpm
    else
        KIND=binary
    fi
fi
get /download/index.txt "$WORK/index.txt"
# Lines: kind os arch version file, newest first.
FILE=$(awk -v k="$KIND" -v o="$os" -v a="$arch" '$1 == k && $2 == o && $3 == a { print $5; exit }' "$WORK/index.txt")
VERSION=$(awk -v f="$FILE" '$5 == f { print $4; exit }' "$WORK/index.txt")
[ -n "$FILE" ] || die "the collector offers no signed $KIND agent for $os/$arch (it has: $(awk '{ printf "%s ", $5 }' "$WORK/index.txt")); nothing was installed"
case $FILE in
*/* | .*) die "the collector named an unsafe file: $FILE" ;;
esac
say "downloading $FILE"
get "/download/$FILE" "$WORK/$FILE"
get "/download/$FILE.minisig" "$WORK/$FILE.minisig"
if [ -z "$RELEASE_KEY" ]; then
    get /download/release.pub "$WORK/release.pub"
    RELEASE_KEY=$(grep -v '^untrusted comment:' "$WORK/release.pub" | tr -d ' \r\n')
fi

# Verifies a minisign "ED" signature (Ed25519 over the BLAKE2b-512 hash of
# the file) and its trusted comment with openssl; prints the comment.
verify_openssl() {
    file=$1 sig=$2 key=$3
    printf '%s' "$key" | openssl base64 -d -A >"$WORK/pk.bin" 2>/dev/null || true
    [ "$(wc -c <"$WORK/pk.bin" | tr -d ' ')" = 42 ] || die "the release key is not a minisign public key: $key"
    [ "$(dd if="$WORK/pk.bin" bs=1 count=2 2>/dev/null)" = Ed ] || die "the release key is not an Ed25519 minisign key"
    # SubjectPublicKeyInfo for an Ed25519 key, then the 32 key bytes.
    {
        printf '\060\052\060\005\006\003\053\145\160\003\041\000'
        dd if="$WORK/pk.bin" bs=1 skip=10 count=32 2>/dev/null
    } >"$WORK/pk.der"
    sed -n 2p "$sig" | tr -d '\r\n' | openssl base64 -d -A >"$WORK/sig.bin" 2>/dev/null || true
    [ "$(wc -c <"$WORK/sig.bin" | tr -d ' ')" = 74 ] || die "$sig is not a minisign signature"
    [ "$(dd if="$WORK/sig.bin" bs=1 count=2 2>/dev/null)" = ED ] ||
        die "$sig is not a prehashed (ED) minisign signature"
    keyid() { dd if="$1" bs=1 skip=2 count=8 2>/dev/null | od -An -tx1 | tr -d ' \n'; }
    [ "$(keyid "$WORK/pk.bin")" = "$(keyid "$WORK/sig.bin")" ] ||
        die "$FILE is signed with another key than the release key; nothing was installed"
    dd if="$WORK/sig.bin" bs=1 skip=10 count=64 2>/dev/null >"$WORK/s.bin"
    openssl dgst -blake2b512 -binary "$file" >"$WORK/h.bin"
    openssl pkeyutl -verify -pubin -keyform DER -inkey "$WORK/pk.der" -rawin \
        -in "$WORK/h.bin" -sigfile "$WORK/s.bin" >/dev/null 2>&1 ||
        die "the signature of $FILE does not verify: the file was altered; nothing was installed"
    trusted=$(sed -n 3p "$sig" | tr -d '\r' | sed 's/^trusted comment: //')
    { cat "$WORK/s.bin"; printf '%s' "$trusted"; } >"$WORK/global.msg"
    sed -n 4p "$sig" | tr -d '\r\n' | openssl base64 -d -A >"$WORK/global.bin" 2>/dev/null || true
    openssl pkeyutl -verify -pubin -keyform DER -inkey "$WORK/pk.der" -rawin \
        -in "$WORK/global.msg" -sigfile "$WORK/global.bin" >/dev/null 2>&1 ||
        die "the trusted comment of $FILE.minisig does not verify; nothing was installed"
    printf '%s\n' "$trusted"
}

if command -v minisign >/dev/null 2>&1; then
    COMMENT=$(minisign -V -Q -P "$RELEASE_KEY" -m "$WORK/$FILE" -x "$WORK/$FILE.minisig") ||
        die "the signature of $FILE does not verify against the release key; nothing was installed"
else
    COMMENT=$(verify_openssl "$WORK/$FILE" "$WORK/$FILE.minisig" "$RELEASE_KEY")
fi
case " $COMMENT " in
*" file:$FILE "*) ;;
*) die "the signature of $FILE was made for another file ($COMMENT); nothing was installed" ;;
esac
say "signature verified ($COMMENT)"

# === 5. install, enroll, start ===
installed_version() {
    b=$(agent_bin) || return 0
    "$b" --version 2>/dev/null | awk '{ print $2 }'
}
if [ "$(installed_version)" = "$VERSION" ]; then
    say "forewarn-agent $VERSION is already installed"
else
    case $KIND in
    deb) dpkg -i "$WORK/$FILE" </dev/null >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; die "dpkg -i $FILE failed"; } ;;
    rpm)
        if command -v dnf >/dev/null 2>&1; then
            dnf install -y "$WORK/$FILE" </dev/null >"$WORK/install.log" 2>&1
        elif command -v yum >/dev/null 2>&1; then
            yum install -y "$WORK/$FILE" </dev/null >"$WORK/install.log" 2>&1
        else
            rpm -U --replacepkgs "$WORK/$FILE" >"$WORK/install.log" 2>&1
        fi || { cat "$WORK/install.log" >&2; die "installing $FILE failed"; }
        ;;
    binary)
        mkdir -p /usr/local/bin
        install -m 0755 "$WORK/$FILE" /usr/local/bin/forewarn-agent
        if [ "$os" = linux ] && [ ! -f /etc/systemd/system/forewarn-agent.service ] && [ -d /etc/systemd/system ]; then
            # The packages' unit, hardened, minus what needs a package's user.
            cat >/etc/systemd/system/forewarn-agent.service <<'UNIT'
[Unit]
Description=Forewarn endpoint monitoring agent
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/forewarn-agent run
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=2
StateDirectory=forewarn-agent
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=-/var/lib/forewarn-agent
ProtectHome=read-only
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT
            [ -d /run/systemd/system ] && systemctl daemon-reload
        fi
        ;;
    esac
    say "installed forewarn-agent $VERSION ($KIND)"
fi
BIN=$(agent_bin) || die "forewarn-agent is not in /usr/bin or /usr/local/bin after the install"

# The token goes through the environment, not the command line (ps shows it).
# shellcheck disable=SC2046
FOREWARN_ENROLL_TOKEN=$TOKEN "$BIN" $(config_args) enroll --collector "$URL" --ca-fingerprint "sha256:$PIN" </dev/null >"$WORK/enroll.out" 2>&1 ||
    { cat "$WORK/enroll.out" >&2; die "enrollment failed (the package stays installed; run this again with a valid token)"; }
say "$(cat "$WORK/enroll.out")"
start_service
}

main "$@"
