#!/usr/bin/env bash
# Build Slurm releases for the rig from SchedMD's source, once per machine:
#   build.sh RELEASE...     e.g. build.sh 25.05 26.05 (22.05 is Debian's: nothing to build)
# Each is installed under $DSSR_SLURM_BUILDS/slurm-VERSION-SHA (default /var/cache/
# dssr-slurm), from slurm-VERSION.tar.xz in $DSSR_SLURM_SOURCES, checked against its
# sha256. A release already built is kept. Build dependencies come from Debian's packages.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[dssr-rig] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=releases.sh
source "$HERE/releases.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (it installs Debian's build packages)"
[[ $# -gt 0 ]] || die "usage: build.sh RELEASE... (releases: ${RELEASES[*]})"

install_build_packages() {
    local package missing=()
    for package in "${BUILD_PACKAGES[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# build RELEASE: configure, make and install the release under its prefix; the marker
# file is written last, so an interrupted build is redone.
build() {
    local release=$1 version sha tag prefix tarball work buildlog started=$SECONDS
    read -r version sha tag <<<"$(release_source "$release")"
    prefix=$(release_prefix "$release")
    if release_built "$release"; then
        log "Slurm $release: built ($prefix)"
        return 0
    fi
    tarball=$SLURM_SOURCES/slurm-$version.tar.xz
    [[ -f $tarball ]] || die "no $tarball: put the source of Slurm $version there" \
        "(SchedMD's tag $tag, as slurm-$version/ in a .tar.xz) or set DSSR_SLURM_SOURCES"
    [[ $(sha256sum <"$tarball" | cut -d' ' -f1) == "$sha" ]] \
        || die "$tarball is not Slurm $version's source (sha256 differs from $sha)"
    install_build_packages
    mkdir -p "$SLURM_BUILDS"
    buildlog=$SLURM_BUILDS/slurm-$version-build.log
    work=$(mktemp -d "$SLURM_BUILDS/build-$version.XXXXXX")
    log "building Slurm $version into $prefix (log: $buildlog)"
    rm -rf "$prefix"
    if ! (
        set -e
        tar -xJf "$tarball" -C "$work"
        cd "$work/slurm-$version"
        # No debugging symbols (Slurm builds with -ggdb3 by default): a shorter build,
        # and nothing here debugs Slurm.
        ./configure --prefix="$prefix" --sysconfdir="$prefix/etc" --with-jwt --with-json \
            --with-yaml --disable-debug
        make -j"$(nproc)"
        make install
    ) >"$buildlog" 2>&1; then
        tail -n 30 "$buildlog" >&2
        rm -rf "$work" "$prefix"
        die "building Slurm $version failed; see $buildlog"
    fi
    rm -rf "$work"
    echo "$version $sha" >"$prefix/.dssr-built"
    log "Slurm $release built in $((SECONDS - started)) s: $prefix"
}

for release in "$@"; do
    known_release "$release" || die "unknown release $release (releases: ${RELEASES[*]})"
done
mkdir -p "$SLURM_BUILDS"
# One build at a time per machine: two rigs or CI runs share the cache.
exec 8>"$SLURM_BUILDS/.lock"
flock 8
for release in "$@"; do
    build "$release"
done
