#!/usr/bin/env bash
# Stop what up.sh started: slurmrestd, sshd, slurmd, slurmctld, slurmdbd, MariaDB, and munged if
# up.sh started it. Job state, the accounting database, keys, users and logs stay, so
# up.sh brings back the same rig. With --purge, also remove the rig directory (the
# database with it), the users and the /etc/slurm link.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[[ $(id -u) -eq 0 ]] || die "run as root"
purge=0
case ${1:-} in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: down.sh [--purge]" ;;
esac

stop_slurmrestd
stop_sshd
stop_slurmd
stop_slurmctld
stop_slurmdbd
stop_mariadb
if [[ -f $RIG/run/munged.ours ]]; then
    stop_pidfile munged /run/munge/munged.pid
    rm -f "$RIG/run/munged.ours"
fi

if ((purge)); then
    for user in "$SVC_USER" "${MAPPED_USERS[@]}"; do
        if id -u "$user" >/dev/null 2>&1; then
            log "removing user $user"
            userdel --remove "$user" 2>/dev/null || true
        fi
    done
    if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$SLURM_CONF" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
    rm -f "$PROFILE_FILE"
    log "removing $RIG"
    rm -rf "$RIG"
fi
log "rig is down"
