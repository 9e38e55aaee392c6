#!/usr/bin/env bash
# Change one part of a running rig, for tests; state (jobs) survives every change:
#   ctl.sh stop|start|status slurmctld|slurmd|sshd|slurmdbd|mariadb|slurmrestd
#                                  one daemon (status: exit 0 when it runs)
#   ctl.sh drop sshd               cut established SSH connections, keep accepting new ones
#   ctl.sh accounting on|off|status     slurmdbd accounting in slurm.conf (restarts slurmctld)
#   ctl.sh privatedata on|off|status    PrivateData=jobs,usage (slurm.conf, slurmdbd.conf)
#   ctl.sh coordinator on|off|status    the service account as coordinator of the mapped
#                                       users' account (needs accounting on)
# The rig must have been brought up by up.sh once (with --accounting for accounting on).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

usage() {
    die "usage: ctl.sh stop|start|status slurmctld|slurmd|sshd|slurmdbd|mariadb|slurmrestd,
       ctl.sh drop sshd,
       or ctl.sh accounting|privatedata|coordinator on|off|status"
}
[[ $# -eq 2 ]] || usage
[[ -f $SLURM_CONF && -f $SSHD_CONFIG ]] || die "no rig at $RIG; run up.sh first"
load_modes

# apply OLD_ACCOUNTING OLD_PRIVATE_DATA: make slurm.conf, slurmdbd and the accounts
# match the modes now set. Restarts only what must: slurmctld when accounting was
# switched (slurmd rereads its config), both when the config was not up.sh's for the
# old modes (another version of up.sh wrote it).
apply() {
    local changed=0 everything=0
    [[ $(ACCOUNTING=$1 PRIVATE_DATA=$2 slurm_conf) == "$(<"$SLURM_CONF")" ]] || everything=1
    write_cgroup_conf && everything=1
    save_modes
    write_slurm_conf && changed=1
    if ((ACCOUNTING)); then
        start_accounting
    fi
    if ((everything)); then
        log "config rewritten; restarting slurmctld and slurmd"
        stop_slurmd
        stop_slurmctld
        start_slurmctld
        start_slurmd
    elif ((changed)) && [[ $1 != "$ACCOUNTING" ]]; then
        log "accounting switched; restarting slurmctld"
        stop_slurmctld
        start_slurmctld
        reconfigure_slurm
    elif ((changed)); then
        reconfigure_slurm
    fi
    wait_node
    restart_slurmrestd_if_changed
}

# switch NAME on|off|status: the mode NAME (ACCOUNTING, PRIVATE_DATA, COORDINATOR).
switch() {
    local name=$1 old_accounting=$ACCOUNTING old_private_data=$PRIVATE_DATA
    case $2 in
        status) [[ ${!name} == 1 ]]; return ;;
        on) printf -v "$name" 1 ;;
        off) printf -v "$name" 0 ;;
        *) usage ;;
    esac
    if [[ $name == COORDINATOR ]]; then
        ((ACCOUNTING)) || die "coordinator rights need accounting: ctl.sh accounting on"
        save_modes
        apply_coordinator
        return
    fi
    apply "$old_accounting" "$old_private_data"
}

# ready_after NAME on|off|status: switch the mode NAME, then wait until the rig is ready
# in it (a status only asks).
ready_after() {
    switch "$@"
    [[ $2 == status ]] || wait_ready
}

case $1 in
    accounting) ready_after ACCOUNTING "$2" ;;
    privatedata) ready_after PRIVATE_DATA "$2" ;;
    coordinator) ready_after COORDINATOR "$2" ;;
    drop)
        [[ $2 == sshd ]] || usage
        drop_sshd
        ;;
    start | stop | status)
        [[ $2 =~ ^(slurmctld|slurmd|sshd|slurmdbd|mariadb|slurmrestd)$ ]] || usage
        case $1 in
            start) "start_$2" ;;
            stop) "stop_$2" ;;
            status)
                case $2 in
                    mariadb) alive "$DB_PID" ;;
                    slurmctld) slurmctld_running ;;
                    *) alive "$RIG/run/$2.pid" ;;
                esac
                ;;
        esac
        ;;
    *) usage ;;
esac
