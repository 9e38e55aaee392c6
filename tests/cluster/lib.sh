# shellcheck shell=bash
# Shared by up.sh, down.sh and ctl.sh: where the rig lives and how each daemon is
# started, stopped and checked. Sourced, never run.

RIG=${DSSR_RIG:-/var/tmp/dssr-rig}
SSH_PORT=${DSSR_RIG_SSH_PORT:-2222}
SVC_USER=dssr-svc
MAPPED_USERS=(dssr-alice dssr-bob)
CLUSTER=dssr-rig
NODE=$(hostname -s)
NODE_CPUS=${DSSR_RIG_NODE_CPUS:-8}

SLURM_CONF=$RIG/etc/slurm.conf
# The rig's modes as up.sh and ctl.sh last set them: ACCOUNTING (slurmdbd), PRIVATE_DATA
# (PrivateData=jobs,usage), COORDINATOR (the service account coordinates the mapped
# users' account); each 0 or 1.
MODE_FILE=$RIG/etc/mode
SSHD_CONFIG=$RIG/ssh/sshd_config
KNOWN_HOSTS=$RIG/ssh/known_hosts
ENV_FILE=$RIG/env
# Login shells (and so jobs started with the user's login environment) find a built
# release's commands through this file.
PROFILE_FILE=/etc/profile.d/dssr-rig-slurm.sh
export SLURM_CONF

log() { printf '[dssr-rig] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Daemons die with "No such device" when /dev/null is not the device (a log rotation
# of /dev/null by some tool leaves a regular file there): say so plainly.
[[ -c /dev/null ]] || die "/dev/null is not a character device; recreate it: rm -f /dev/null && mknod -m 666 /dev/null c 1 3"

# alive PIDFILE: true when the pid file names a running process.
alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pid NAME PID: TERM the process, wait up to 15 s, then KILL.
stop_pid() {
    local name=$1 pid=$2 i
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "$name did not stop on TERM; killing"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

# stop_pidfile NAME PIDFILE: stop the process the pid file names, if it runs.
stop_pidfile() {
    if alive "$2"; then
        stop_pid "$1" "$(<"$2")"
    fi
    rm -f "$2"
}

# detached COMMAND...: run COMMAND (a daemon) with none of this script's open files but
# stdin, stdout and stderr. A daemon that kept one would keep it open for good: the rig
# lock of a `flock ... up.sh` caller, held by slurmdbd, would never be released. Never
# call it with `&`: the background shell would keep them (setsid -f backgrounds).
detached() {
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then
                eval "exec $fd>&-"
            fi
        done
        exec "$@"
    )
}

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND every 0.5 s until it succeeds.
wait_for() {
    local what=$1 seconds=$2 i
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "timed out after ${seconds}s waiting for $what"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

# slurmctld_pids: every running slurmctld of this rig, found by its command line. From
# Slurm 23.11 on `scontrol reconfigure` hands over to a new slurmctld process and the
# old one removes the pid file on its way out: the pid file alone loses track of it.
slurmctld_pids() {
    local pid cmdline
    for pid in $(pgrep -x slurmctld); do
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        [[ " $cmdline" == *" -f $SLURM_CONF "* ]] && echo "$pid"
    done
    return 0
}

# slurmctld_running: true when a slurmctld of this rig runs; the pid file is rewritten
# to name it when a reconfiguration left it missing or stale.
slurmctld_running() {
    local pids
    alive "$RIG/run/slurmctld.pid" && return 0
    mapfile -t pids < <(slurmctld_pids)
    [[ ${#pids[@]} -eq 1 ]] || return 1
    echo "${pids[0]}" >"$RIG/run/slurmctld.pid"
}

start_slurmctld() {
    if slurmctld_running; then
        return 0
    fi
    stop_slurmctld
    log "starting slurmctld"
    detached slurmctld -f "$SLURM_CONF"
    wait_for "slurmctld to answer" 60 scontrol ping
}

# stop_slurmctld: stop the slurmctld the pid file names and any other of this rig's.
stop_slurmctld() {
    local pid
    stop_pidfile slurmctld "$RIG/run/slurmctld.pid"
    for pid in $(slurmctld_pids); do
        stop_pid slurmctld "$pid"
    done
}

# reconfigure_slurm: `scontrol reconfigure`, then wait until one slurmctld runs again
# (from 23.11 on the old process hands over to a new one) and the pid file names it.
reconfigure_slurm() {
    scontrol reconfigure
    wait_for "one slurmctld after reconfiguring" 30 slurmctld_settled
}

slurmctld_settled() {
    local pids pidfile=$RIG/run/slurmctld.pid
    mapfile -t pids < <(slurmctld_pids)
    [[ ${#pids[@]} -eq 1 ]] && scontrol ping || return 1
    # The old process may still answer kill -0 while it exits: name the one found.
    [[ -s $pidfile && $(<"$pidfile") == "${pids[0]}" ]] || echo "${pids[0]}" >"$pidfile"
}

start_slurmd() {
    if alive "$RIG/run/slurmd.pid"; then
        return 0
    fi
    log "starting slurmd"
    detached slurmd -f "$SLURM_CONF" -N "$NODE"
}

stop_slurmd() { stop_pidfile slurmd "$RIG/run/slurmd.pid"; }

start_sshd() {
    if alive "$RIG/run/sshd.pid"; then
        return 0
    fi
    log "starting sshd on 127.0.0.1:$SSH_PORT"
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    /usr/sbin/sshd -t -f "$SSHD_CONFIG"
    detached /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$RIG/log/sshd.log"
    wait_for "sshd to listen" 20 port_open "$SSH_PORT"
}

stop_sshd() { stop_pidfile sshd "$RIG/run/sshd.pid"; }

# drop_sshd: cut every established connection (the listener's children); keep listening.
# Stopping the listener alone leaves established connections up, as OpenSSH does.
drop_sshd() {
    local pids
    alive "$RIG/run/sshd.pid" || die "sshd is not running"
    pids=$(ps -o pid= --ppid "$(<"$RIG/run/sshd.pid")" | tr -d ' ' | tr '\n' ' ')
    log "dropping sshd connections: ${pids:-none}"
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -TERM $pids 2>/dev/null || true
}

# write_if_changed DEST [MODE]: write stdin to DEST (mode 0644 unless given); succeed only
# when the content changed.
write_if_changed() {
    local dest=$1 mode=${2:-0644} tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        chmod "$mode" "$dest"
        return 1
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
}

# mode NAME DEFAULT: the value of NAME in the mode file, else DEFAULT.
mode() {
    local value=""
    [[ -f $MODE_FILE ]] && value=$(sed -n "s/^$1=\\([01]\\)\$/\\1/p" "$MODE_FILE")
    echo "${value:-$2}"
}

# rig_release: the Slurm release the rig last ran (Debian's when it never ran).
rig_release() {
    local value=""
    [[ -f $MODE_FILE ]] && value=$(sed -n 's/^SLURM_RELEASE=\([0-9][0-9.]*\)$/\1/p' "$MODE_FILE")
    echo "${value:-$DEFAULT_RELEASE}"
}

# load_modes: the modes and release last saved, the release's commands first on PATH.
load_modes() {
    ACCOUNTING=$(mode ACCOUNTING 0)
    PRIVATE_DATA=$(mode PRIVATE_DATA 0)
    COORDINATOR=$(mode COORDINATOR 1)
    SLURM_RELEASE=$(rig_release)
    use_release "$SLURM_RELEASE"
}

save_modes() {
    printf 'ACCOUNTING=%s\nPRIVATE_DATA=%s\nCOORDINATOR=%s\nSLURM_RELEASE=%s\n' \
        "$ACCOUNTING" "$PRIVATE_DATA" "$COORDINATOR" "$SLURM_RELEASE" \
        | write_if_changed "$MODE_FILE" || true
}

real_memory() {
    local mb
    mb=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9][0-9]*\).*/\1/p' | head -n 1)
    [[ -n $mb ]] || mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    echo "$mb"
}

# slurm_conf: the text of slurm.conf for the modes in ACCOUNTING and PRIVATE_DATA.
slurm_conf() {
    local storage=accounting_storage/none private=""
    if ((ACCOUNTING)); then
        storage="accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT"
    fi
    ((PRIVATE_DATA)) && private="PrivateData=jobs,usage"
    # select/cons_tres with CR_Core_Memory: a job's memory is its --mem, else 1 GB a CPU
    # (without DefMemPerCPU a job would take all the node's memory); task/cgroup holds
    # each job to it (cgroup.conf), and the kernel's OOM killer ends a job over it,
    # which Slurm sees and records as OUT_OF_MEMORY.
    # MinJobAge=10: ended jobs leave squeue within ~10 s plus the purge cycle.
    # The node declares $NODE_CPUS CPUs whatever the host has (config_overrides): test
    # jobs mostly sleep, and tests run side by side must not queue behind each other.
    # auth/jwt beside munge: slurmrestd's clients present tokens signed with $JWT_KEY.
    # MessageTimeout=5 (Slurm's default is 10): a command retries a stopped slurmctld
    # that long before it fails, and the controller-down tests wait it out each time.
    cat <<CONF
# Written by tests/cluster/up.sh: DSSR's one-node test cluster. Do not edit.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
AccountingStorageType=$storage
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=10
MessageTimeout=5
$private
StateSaveLocation=$RIG/slurm/state
SlurmdSpoolDir=$RIG/slurm/spool
SlurmctldPidFile=$RIG/run/slurmctld.pid
SlurmdPidFile=$RIG/run/slurmd.pid
SlurmctldLogFile=$RIG/log/slurmctld.log
SlurmdLogFile=$RIG/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$(real_memory) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

# write_slurm_conf: slurm_conf into $SLURM_CONF; succeeds only when the file changed.
write_slurm_conf() { slurm_conf | write_if_changed "$SLURM_CONF"; }

# write_cgroup_conf: cgroup.conf (next to slurm.conf) for task/cgroup on the host's
# cgroup v1 hierarchy: memory held to the job's allocation, nothing else constrained.
# Succeeds only when the file changed.
write_cgroup_conf() {
    write_if_changed "$RIG/etc/cgroup.conf" <<CONF
# Written by tests/cluster/up.sh: DSSR's one-node test cluster. Do not edit.
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
ConstrainCores=no
ConstrainDevices=no
CONF
}

node_state() { sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null; }

# node_usable: the node takes jobs (idle, or busy with jobs left from a previous run).
node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

wait_node() {
    local i state
    for ((i = 0; i < 120; i++)); do
        node_usable && return 0
        state=$(node_state || true)
        if [[ $state =~ ^(down|drain|drained|draining|fail) ]]; then
            log "node $NODE is $state; resuming it"
            scontrol update NodeName="$NODE" State=RESUME || true
        fi
        sleep 0.5
    done
    die "node $NODE is not usable (state: $(node_state || echo unknown)); see $RIG/log/"
}

# shellcheck source=releases.sh
source "$(dirname "${BASH_SOURCE[0]}")/releases.sh"
# shellcheck source=accounting.sh
source "$(dirname "${BASH_SOURCE[0]}")/accounting.sh"
# shellcheck source=restd.sh
source "$(dirname "${BASH_SOURCE[0]}")/restd.sh"
# shellcheck source=ready.sh
source "$(dirname "${BASH_SOURCE[0]}")/ready.sh"
