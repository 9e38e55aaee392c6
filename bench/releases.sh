#!/usr/bin/env bash
# bench/poll.py over the CLI (SSH) and over slurmrestd, on each Slurm release the rig runs,
# in one run so the figures compare. Run it from the repository root, under the rig lock,
# with the project's virtualenv on PATH:
#   flock /var/tmp/dssr-rig.lock bash bench/releases.sh [-n JOBS] [RELEASE...]
# (default: -n 5000 22.05 26.05). It brings the rig up on each release in turn
# (tests/cluster/up.sh --accounting --slurm RELEASE, which drops the previous release's
# jobs) and leaves it on the last; after each poll it cancels the service account's jobs
# with one scancel. Each poll's output goes to /tmp/bench-releases/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=5000
if [[ ${1:-} == -n ]]; then
    jobs=$2
    shift 2
fi
releases=("$@")
[[ ${#releases[@]} -gt 0 ]] || releases=(22.05 26.05)
out=/tmp/bench-releases
mkdir -p "$out"
port=5150

# ready URL: wait up to 60 s for DSSR's /ready.
ready() {
    local i
    for ((i = 0; i < 120; i++)); do
        curl -fs "$1/ready" >/dev/null && return 0
        sleep 0.5
    done
    echo "DSSR at $1 never became ready" >&2
    return 1
}

# cancel_all: cancel the service account's jobs on the rig and wait until none is left.
cancel_all() {
    local i
    (
        # shellcheck disable=SC1091
        . /var/tmp/dssr-rig/env
        export PATH=${DSSR_RIG_SLURM_BIN:+$DSSR_RIG_SLURM_BIN:}$PATH
        scancel --user=dssr-svc
        for ((i = 0; i < 120; i++)); do
            [[ -z $(squeue --noheader --user=dssr-svc --format=%i) ]] && exit 0
            sleep 1
        done
        echo "jobs of dssr-svc still queued after 120 s" >&2
        exit 1
    )
}

for release in "${releases[@]}"; do
    bash tests/cluster/up.sh --accounting --slurm "$release" >"$out/rig-$release.log" 2>&1
    for interface in cli http; do
        name=$release-$interface
        rm -rf "$out/state-$name"
        (
            set -a
            # shellcheck disable=SC1091
            . /var/tmp/dssr-rig/env
            set +a
            export JARVICE_SLURM_INTERFACE=$interface
            exec twistd -n --pidfile= dssr --connector slurm \
                --listen "tcp:$port:interface=127.0.0.1" --state-dir "$out/state-$name"
        ) >"$out/dssr-$name.log" 2>&1 &
        pid=$!
        ready "http://127.0.0.1:$port"
        echo "== Slurm $release over $interface: $jobs jobs"
        python -m bench.poll "http://127.0.0.1:$port" -n "$jobs" -c 8,32 -d 15 \
            --status-count 0 --keep-jobs --pid "$pid" | tee "$out/poll-$name.txt"
        kill "$pid"
        wait "$pid" || true
        cancel_all
    done
done
