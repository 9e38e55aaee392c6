# shellcheck shell=bash
# Shared by up.sh, down.sh and ctl.sh: where the rig lives and how each daemon is
# started, stopped and checked. Sourced, never run.

RIG=${DSSR_RIG:-/var/tmp/dssr-rig}
SSH_PORT=${DSSR_RIG_SSH_PORT:-2222}
SVC_USER=dssr-svc
MAPPED_USERS=(dssr-alice dssr-bob)
NODE=$(hostname -s)

SLURM_CONF=$RIG/etc/slurm.conf
SSHD_CONFIG=$RIG/ssh/sshd_config
KNOWN_HOSTS=$RIG/ssh/known_hosts
ENV_FILE=$RIG/env
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

# stop_pidfile NAME PIDFILE: TERM the process, wait up to 15 s, then KILL.
stop_pidfile() {
    local name=$1 pidfile=$2 pid i
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(<"$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop on TERM; killing"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
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

start_slurmctld() {
    if alive "$RIG/run/slurmctld.pid"; then
        return 0
    fi
    log "starting slurmctld"
    slurmctld -f "$SLURM_CONF"
    wait_for "slurmctld to answer" 60 scontrol ping
}

stop_slurmctld() { stop_pidfile slurmctld "$RIG/run/slurmctld.pid"; }

start_slurmd() {
    if alive "$RIG/run/slurmd.pid"; then
        return 0
    fi
    log "starting slurmd"
    slurmd -f "$SLURM_CONF" -N "$NODE"
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
    /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$RIG/log/sshd.log"
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
