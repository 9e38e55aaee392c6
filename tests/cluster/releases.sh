# shellcheck shell=bash
# The Slurm releases the rig runs: Debian's own packages (22.05), or a release built from
# SchedMD's source under a prefix of its own, cached by version and tarball checksum so
# a machine builds each once. Sourced by lib.sh and build.sh, never run.

RELEASES=(22.05 25.05 26.05)
DEFAULT_RELEASE=22.05
# Where built releases live (one prefix each), and where their source tarballs are found.
SLURM_BUILDS=${DSSR_SLURM_BUILDS:-/var/cache/dssr-slurm}
SLURM_SOURCES=${DSSR_SLURM_SOURCES:-$SLURM_BUILDS/sources}
# What building needs, from Debian's packages.
BUILD_PACKAGES=(build-essential libmunge-dev libjwt-dev libjson-c-dev libhttp-parser-dev
    libyaml-dev libmariadb-dev libpam0g-dev libdbus-1-dev)

# release_source RELEASE: "VERSION SHA256 TAG" of the source a release is built from;
# nothing for Debian's release; fails for a release the rig does not know.
release_source() {
    case $1 in
        22.05) ;;
        25.05) echo "25.05.8 31243560efb36d74505d2706701412209b2a21e9951e60889416c412e89926f6 slurm-25-05-8-1" ;;
        26.05) echo "26.05.3 b7c7c7c8d78f7fde485ac7fc811034c5dd1a067d0167dba1a044e731c0374b13 slurm-26-05-3-1" ;;
        *) return 1 ;;
    esac
}

known_release() { [[ " ${RELEASES[*]} " == *" $1 "* ]]; }

# release_prefix RELEASE: where the release is installed (/usr for Debian's).
release_prefix() {
    local version sha _
    read -r version sha _ <<<"$(release_source "$1")"
    if [[ -z $version ]]; then
        echo /usr
    else
        echo "$SLURM_BUILDS/slurm-$version-${sha:0:12}"
    fi
}

# release_built RELEASE: the release's commands are installed (always, for Debian's).
release_built() {
    local prefix
    prefix=$(release_prefix "$1")
    [[ $prefix == /usr || -f $prefix/.dssr-built ]]
}

# use_release RELEASE: put the release's commands first on PATH (Debian's are on it),
# and no other built release's: a login shell may hold the one the rig ran last (its
# profile.d file), and 26.05's sacctmgr cannot talk to 22.05's slurmdbd.
use_release() {
    local prefix entry entries kept=()
    prefix=$(release_prefix "$1")
    IFS=: read -r -a entries <<<"$PATH"
    for entry in "${entries[@]}"; do
        [[ $entry == "$SLURM_BUILDS"/* ]] || kept+=("$entry")
    done
    PATH=$(IFS=:; echo "${kept[*]}")
    if [[ $prefix != /usr ]]; then
        release_built "$1" || die "Slurm $1 is not built: tests/cluster/build.sh $1"
        PATH=$prefix/bin:$prefix/sbin:$PATH
    fi
    export PATH
}
