#!/usr/bin/env bash
# Builds the forewarn-agent MSI on Linux with wixl (Debian's `wixl`, from
# msitools) from deploy/windows/forewarn-agent.wxs:
#
#   deploy/windows/build-msi.sh VERSION AGENT_EXE OUT_MSI
#   deploy/windows/build-msi.sh 0.1.0 target/x86_64-pc-windows-gnu/release/forewarn-agent.exe \
#       dist/forewarn-agent-0.1.0-x64.msi
#
# VERSION is the agent's semver without pre-release or build suffix
# (Windows Installer versions are MAJOR.MINOR.PATCH, each a number; a major
# upgrade is detected on the first three). The release name is
# forewarn-agent-<version>-x64.msi; sign it like every artifact
# (`forewarn-collector release sign`). See docs/windows-install.md.
set -euo pipefail

die() { printf 'build-msi.sh: %s\n' "$*" >&2; exit 2; }

[ $# -eq 3 ] || die "usage: build-msi.sh VERSION AGENT_EXE OUT_MSI"
version=$1 exe=$2 out=$3
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] \
    || die "VERSION must be MAJOR.MINOR.PATCH (numbers only), got '$version'"
((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 65536)) \
    || die "VERSION '$version' is out of Windows Installer's range (255.255.65535)"
[ -f "$exe" ] || die "AGENT_EXE '$exe' does not exist"
[ "$(head -c 2 "$exe")" = MZ ] || die "AGENT_EXE '$exe' is not a Windows executable"
command -v wixl >/dev/null || die "wixl not found: apt-get install wixl (Debian's msitools)"
command -v msibuild >/dev/null || die "msibuild not found: apt-get install msitools"

here=$(cd "$(dirname "$0")" && pwd)
# wixl resolves File/@Source relative to its working directory and takes no
# absolute path: stage the exe beside a copy of the .wxs.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$here/forewarn-agent.wxs" "$stage/"
cp "$exe" "$stage/forewarn-agent.exe"
mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# wixl warns on stderr for every attribute it ignores; keep them for a failure.
if ! (cd "$stage" && wixl --arch x64 -D "Version=$version" -D AgentExe=forewarn-agent.exe \
    -o "$out_abs.tmp" forewarn-agent.wxs) >"$stage/wixl.log" 2>&1; then
    cat "$stage/wixl.log" >&2
    die "wixl failed"
fi

# What wixl cannot express, set in the tables directly:
# - the public properties a managed (elevated) install must pass to the
#   server side, next to the ones wixl lists for MajorUpgrade;
# - msidbCustomActionTypeHideTarget (0x2000) on the enroll action, so its
#   command line (with ENROLL_TOKEN) is never written to an installer log;
# - msidbCustomActionTypeInScript|Rollback (0x500) on the rollback action
#   (wixl ignores Execute="rollback").
secure="COLLECTOR_URL;ENROLL_TOKEN;CA_FINGERPRINT;PURGE;WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED"
action_type() {
    local t
    t=$(msiinfo export "$out_abs.tmp" CustomAction | awk -F'\t' -v a="$1" '$1 == a { print $2 }')
    [ -n "$t" ] || die "no $1 custom action in the built MSI"
    echo "$t"
}
set_type() {
    msibuild "$out_abs.tmp" -q "UPDATE \`CustomAction\` SET \`Type\` = $2 WHERE \`Action\` = '$1'"
}
msibuild "$out_abs.tmp" -q "UPDATE \`Property\` SET \`Value\` = '$secure' WHERE \`Property\` = 'SecureCustomProperties'"
set_type AgentEnroll $(($(action_type AgentEnroll) | 0x2000))
set_type AgentServiceInstallRollback $(($(action_type AgentServiceInstallRollback) | 0x500))
mv "$out_abs.tmp" "$out_abs"
