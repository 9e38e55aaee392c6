#!/usr/bin/env bash
# Stop or start one daemon of the rig, for fault tests:
#   ctl.sh stop|start|status slurmctld|slurmd|sshd    (status: exit 0 when it runs)
#   ctl.sh drop sshd    cut established SSH connections, keep accepting new ones
# The rig must have been brought up by up.sh once.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

usage() { die "usage: ctl.sh stop|start|status slurmctld|slurmd|sshd, or ctl.sh drop sshd"; }
[[ $# -eq 2 ]] || usage
[[ $2 =~ ^(slurmctld|slurmd|sshd)$ ]] || usage
[[ $1 != drop || $2 == sshd ]] || usage
[[ -f $SLURM_CONF && -f $SSHD_CONFIG ]] || die "no rig at $RIG; run up.sh first"
case $1 in
    start) "start_$2" ;;
    stop) "stop_$2" ;;
    status) alive "$RIG/run/$2.pid" ;;
    drop) drop_sshd ;;
    *) usage ;;
esac
