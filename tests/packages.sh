#!/usr/bin/env bash
# Linux packages of forewarn-agent and forewarn-collector (docs/packages.md).
#
#   tests/packages.sh tools                  install the packaging tools when missing
#   tests/packages.sh build OUTDIR [VERSION] tools, then the .deb and .rpm of both into OUTDIR
#
# The tools: cargo-deb and cargo-generate-rpm (`cargo install --locked`, pinned
# versions below) and Debian's `rpm` (to read .rpm files: rpm -qlp). Each is
# installed only when missing; apt-get update runs only when an install fails.
#
# `build` packages binaries that are already built; it builds nothing. By
# default the debug binaries the test command builds (`cargo build --workspace
# --bins`) in ${CARGO_TARGET_DIR:-target}/debug; for a release,
# `cargo build --release --bins` and FOREWARN_PACKAGE_PROFILE=release.
# VERSION (default: the workspace version) is the packages' version, not the
# binaries' (the upgrade test packages the same binaries twice). The files:
#   forewarn-agent_VERSION-1_amd64.deb      forewarn-agent-VERSION-1.x86_64.rpm
#   forewarn-collector_VERSION-1_amd64.deb  forewarn-collector-VERSION-1.x86_64.rpm
# and the script prints their paths, one a line. FOREWARN_PACKAGE_FORMATS
# (default "deb rpm") picks the formats.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

apt_install() {
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
    "${install[@]}" >&2 || { env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && "${install[@]}" >&2; }
}

# cargo install TOOL at VERSION unless `cargo TOOL-SUBCOMMAND --version` already says it.
cargo_tool() {
    local crate=$1 version=$2 subcommand=$3
    if cargo "$subcommand" --version 2>/dev/null | grep -qF "$version"; then
        return
    fi
    echo "installing $crate $version (cargo install, a few minutes)" >&2
    cargo install --locked --version "$version" "$crate" >&2
}

tools() {
    cargo_tool cargo-deb "$CARGO_DEB_VERSION" deb
    cargo_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION" generate-rpm
    # cargo-deb strips with binutils and reads shared-library dependencies with dpkg-shlibdeps.
    command -v rpm >/dev/null 2>&1 || apt_install rpm
    command -v strip >/dev/null 2>&1 || apt_install binutils
    command -v dpkg-shlibdeps >/dev/null 2>&1 || apt_install dpkg-dev
}

workspace_version() {
    sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml
}

build() {
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    local out=$1 version=${2:-$(workspace_version)}
    local profile=${FOREWARN_PACKAGE_PROFILE:-dev}
    local target_dir=${CARGO_TARGET_DIR:-$PWD/target}
    local profile_dir=$profile
    [ "$profile" = dev ] && profile_dir=debug
    local formats=${FOREWARN_PACKAGE_FORMATS:-deb rpm} format
    for format in $formats; do
        case $format in
            deb | rpm) ;;
            *) echo "packages.sh: FOREWARN_PACKAGE_FORMATS: unknown format '$format' (deb, rpm)" >&2; exit 2 ;;
        esac
    done
    # A semver pre-release (1.2.0-rc.1) sorts before its release only as 1.2.0~rc.1,
    # in dpkg and rpm alike; neither allows '-' in the upstream version.
    local pkg_version=${version/-/\~}
    if ! [[ $pkg_version =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
        echo "packages.sh: VERSION must look like 1.2.3 or 1.2.3-rc.1, got '$version'" >&2
        exit 2
    fi

    # Test builds trade size for time: the default compressors (xz, zstd -19)
    # take minutes on a busy 2-core machine.
    local deb_flags=() rpm_flags=()
    if [ "$profile" = dev ]; then
        deb_flags=(--fast)
        rpm_flags=(--payload-compress gzip)
    fi

    local dir name
    for dir in agent collector; do
        name=forewarn-$dir
        if [ ! -x "$target_dir/$profile_dir/$name" ]; then
            echo "packages.sh: $target_dir/$profile_dir/$name not found: build it first (cargo build --workspace --bins)" >&2
            exit 1
        fi
    done

    tools
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    for dir in agent collector; do
        name=forewarn-$dir
        if [[ " $formats " == *" deb "* ]]; then
            local deb="$out/${name}_${pkg_version}-1_amd64.deb"
            # cargo-deb strips the binary itself.
            cargo deb --quiet --no-build --profile "$profile" -p "$name" \
                --deb-version "${pkg_version}-1" "${deb_flags[@]}" -o "$deb" >&2
            printf '%s\n' "$deb"
        fi
        if [[ " $formats " == *" rpm "* ]]; then
            local rpm="$out/${name}-${pkg_version}-1.x86_64.rpm"
            # cargo-generate-rpm packages the file as it is: give it a stripped copy.
            mkdir -p "$stage/$profile_dir"
            strip -o "$stage/$profile_dir/$name" "$target_dir/$profile_dir/$name"
            cargo generate-rpm --profile "$profile" -p "$dir" --target-dir "$stage" \
                -s "version = \"$pkg_version\"" "${rpm_flags[@]}" -o "$rpm" >&2
            printf '%s\n' "$rpm"
        fi
    done
}

case "${1:-}" in
    tools) tools ;;
    build) shift; build "$@" ;;
    *) usage ;;
esac
