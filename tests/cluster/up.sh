#!/usr/bin/env bash
# Bring up DSSR's test cluster on this Debian 12 host (as root): a one-node Slurm
# (slurmctld + slurmd), munge, and a private OpenSSH sshd on 127.0.0.1 with a service
# account and two mapped users, and slurmrestd with JWT authentication. --slurm picks the
# release: Debian's 22.05 (the default), or 25.05 or 26.05 built from source (build.sh,
# run here when the release is not built yet); switching releases keeps no jobs and no
# accounting of the other. With --accounting, also MariaDB and slurmdbd, with the
# cluster, accounts and users registered (the service account coordinates the mapped
# users' account); without it, Slurm keeps no accounting. Idempotent: a second run
# keeps the running daemons (restarting one only if its config changed).
#
# Settings for DSSR go to $DSSR_RIG/env (default /var/tmp/dssr-rig/env); source it.
# Stop everything with down.sh; stop/start one daemon with ctl.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[[ $(id -u) -eq 0 ]] || die "run as root (slurmd, munged and useradd need it)"
ACCOUNTING=0
SLURM_RELEASE=$DEFAULT_RELEASE
usage() { die "usage: up.sh [--accounting] [--slurm ${RELEASES[*]// /|}]"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --accounting) ACCOUNTING=1 ;;
        --slurm)
            [[ $# -ge 2 ]] && known_release "$2" || usage
            SLURM_RELEASE=$2
            shift
            ;;
        *) usage ;;
    esac
    shift
done
PRIVATE_DATA=0
COORDINATOR=1

install_packages() {
    local cmd missing=0
    for cmd in slurmctld slurmd slurmrestd munged mungekey sbatch ssh-keygen ssh-keyscan; do
        command -v "$cmd" >/dev/null || missing=1
    done
    [[ -x /usr/sbin/sshd ]] || missing=1
    local packages=(slurm-wlm slurmrestd munge openssh-server)
    if ((ACCOUNTING)); then
        accounting_installed || missing=1
        packages+=(slurmdbd mariadb-server)
    fi
    if ((missing)); then
        log "installing ${packages[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
    fi
}

make_dirs() {
    mkdir -p "$RIG"/{etc,slurm/state,slurm/spool,run,log,ssh,keys}
    chmod 0755 "$RIG" "$RIG/etc"
    chmod 0700 "$RIG/keys" "$RIG/slurm/state"
}

# Plain `sinfo` (no SLURM_CONF) should find the rig too, but never clobber a real config.
link_default_conf() {
    local default=/etc/slurm/slurm.conf
    mkdir -p /etc/slurm
    if [[ -L $default && $(readlink "$default") == "$SLURM_CONF" ]]; then
        return 0
    elif [[ -e $default || -L $default ]]; then
        log "warning: $default exists and is not the rig's; use SLURM_CONF=$SLURM_CONF"
    else
        ln -s "$SLURM_CONF" "$default"
    fi
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating the munge key"
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    if munge_works; then
        return 0
    fi
    log "starting munged"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    detached runuser -u munge -- /usr/sbin/munged
    touch "$RIG/run/munged.ours"
    wait_for "munged" 20 munge_works
}

# build_release: the release built and its commands first on PATH.
build_release() {
    release_built "$SLURM_RELEASE" || bash "$HERE/build.sh" "$SLURM_RELEASE"
    use_release "$SLURM_RELEASE"
}

# switch_release: when the rig last ran another release, stop its daemons and remove
# its jobs (state and spool) and its accounting database: the new release starts clean.
switch_release() {
    local old
    old=$(rig_release)
    [[ -f $MODE_FILE && $old != "$SLURM_RELEASE" ]] || return 0
    log "switching Slurm $old to $SLURM_RELEASE: dropping $old's jobs and accounting"
    stop_slurmrestd
    stop_slurmd
    stop_slurmctld
    stop_slurmdbd
    rm -rf "$RIG/slurm/state" "$RIG/slurm/spool"
    drop_accounting_database
}

# write_profile: login shells find the release's commands (jobs started with the user's
# login environment included); the release's own sysconfdir finds the rig's slurm.conf.
write_profile() {
    local prefix
    prefix=$(release_prefix "$SLURM_RELEASE")
    if [[ $prefix == /usr ]]; then
        rm -f "$PROFILE_FILE"
        return 0
    fi
    mkdir -p "$prefix/etc"
    ln -sfn "$SLURM_CONF" "$prefix/etc/slurm.conf"
    write_if_changed "$PROFILE_FILE" <<PROFILE || true
# Written by tests/cluster/up.sh: the rig runs Slurm $SLURM_RELEASE from $prefix.
PATH=$prefix/bin:\$PATH
PROFILE
}

start_slurm() {
    local changed=0
    write_cgroup_conf && changed=1
    write_slurm_conf && changed=1
    if ((changed)); then
        log "slurm.conf or cgroup.conf written; (re)starting Slurm daemons"
        stop_slurmd
        stop_slurmctld
    fi
    if ((ACCOUNTING)); then
        start_accounting
    fi
    link_default_conf
    start_slurmctld
    start_slurmd
    wait_node
}

home_of() { getent passwd "$1" | cut -d: -f6; }

# make_user NAME: account with a home, unlocked for key logins, one authorized ed25519 key.
make_user() {
    local user=$1 home key=$RIG/keys/$1
    if ! id -u "$user" >/dev/null 2>&1; then
        log "creating user $user"
        useradd --create-home --shell /bin/bash "$user"
    fi
    # useradd leaves the account locked ('!'); sshd without PAM refuses locked accounts.
    usermod -p '*' "$user"
    [[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C "$user@dssr-rig" -f "$key"
    home=$(home_of "$user")
    install -d -o "$user" -g "$user" -m 0700 "$home/.ssh"
    touch "$home/.ssh/authorized_keys"
    grep -qxF "$(<"$key.pub")" "$home/.ssh/authorized_keys" \
        || cat "$key.pub" >>"$home/.ssh/authorized_keys"
    chown "$user:$user" "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
}

# release_bin: the directory of a built release's commands; nothing for Debian's.
release_bin() {
    local prefix
    prefix=$(release_prefix "$SLURM_RELEASE")
    [[ $prefix == /usr ]] || echo "$prefix/bin"
}

# session_path: PATH in SSH sessions: a built release's commands, then sshd's default.
session_path() {
    local bin
    bin=$(release_bin)
    echo "${bin:+$bin:}/usr/local/bin:/usr/bin:/bin:/usr/games"
}

write_sshd_config() {
    write_if_changed "$SSHD_CONFIG" <<CONF
# Written by tests/cluster/up.sh: the sshd DSSR's tests log in through. Do not edit.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $RIG/ssh/ssh_host_ed25519_key
PidFile $RIG/run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $SVC_USER ${MAPPED_USERS[*]}
MaxSessions 10
# Tests run side by side (tests/phases.py) log in at once: past 10 unauthenticated
# connections OpenSSH's default (10:30:100) starts dropping them.
MaxStartups 100
PrintMotd no
LogLevel VERBOSE
SetEnv SLURM_CONF=$SLURM_CONF PATH=$(session_path)
Subsystem sftp internal-sftp
CONF
}

start_ssh() {
    local host_key=$RIG/ssh/ssh_host_ed25519_key tmp
    [[ -f $host_key ]] || ssh-keygen -q -t ed25519 -N '' -C "dssr-rig-host" -f "$host_key"
    if write_sshd_config; then
        stop_sshd
    fi
    start_sshd
    tmp=$(mktemp "$KNOWN_HOSTS.XXXXXX")
    ssh-keyscan -p "$SSH_PORT" -t ed25519 127.0.0.1 2>/dev/null >"$tmp"
    [[ -s $tmp ]] || die "ssh-keyscan found no host key on 127.0.0.1:$SSH_PORT"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$KNOWN_HOSTS"
}

# env_line NAME VALUE: a shell `export NAME='VALUE'` line (VALUE has no single quotes).
env_line() {
    [[ $2 != *"'"* ]] || die "value of $1 has a single quote"
    printf "export %s='%s'\n" "$1" "$2"
}

write_env() {
    local tmp
    tmp=$(mktemp "$ENV_FILE.XXXXXX")
    {
        echo "# Written by tests/cluster/up.sh: settings for DSSR against the test rig."
        env_line DSSR_RIG "$RIG"
        env_line SLURM_CONF "$SLURM_CONF"
        env_line JARVICE_SLURM_CLUSTER_ADDR 127.0.0.1
        env_line JARVICE_SLURM_CLUSTER_PORT "$SSH_PORT"
        env_line JARVICE_SLURM_SSH_USER "$SVC_USER"
        env_line JARVICE_SLURM_SSH_PKEY "$(base64 -w0 "$RIG/keys/$SVC_USER")"
        env_line JARVICE_SLURM_SSH_KNOWN_HOSTS "$KNOWN_HOSTS"
        env_line DSSR_RIG_SVC_KEY "$RIG/keys/$SVC_USER"
        env_line DSSR_RIG_ALICE "${MAPPED_USERS[0]}"
        env_line DSSR_RIG_ALICE_KEY "$RIG/keys/${MAPPED_USERS[0]}"
        env_line DSSR_RIG_BOB "${MAPPED_USERS[1]}"
        env_line DSSR_RIG_BOB_KEY "$RIG/keys/${MAPPED_USERS[1]}"
        env_line DSSR_RIG_NODE "$NODE"
        env_line DSSR_RIG_CLUSTER "$CLUSTER"
        env_line DSSR_RIG_USERS_ACCOUNT "$USERS_ACCOUNT"
        env_line JARVICE_SLURMRESTD_ADDR http://127.0.0.1
        env_line JARVICE_SLURMRESTD_PORT "$RESTD_PORT"
        env_line DSSR_SLURM_JWT_KEY_FILE "$JWT_KEY"
        env_line DSSR_RIG_RESTD_SOCKET "$RESTD_SOCKET"
        env_line DSSR_RIG_SLURM_RELEASE "$SLURM_RELEASE"
        # A built release's commands (none for Debian's: they are on every PATH).
        env_line DSSR_RIG_SLURM_BIN "$(release_bin)"
    } >"$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

show_env() {
    log "rig is up; settings in $ENV_FILE:"
    sed -E "s/^(export JARVICE_SLURM_SSH_PKEY=')[^']{8}[^']*'/\1\*\*\*\*\*\*\*\*'/" "$ENV_FILE" \
        | grep '^export'
}

install_packages
build_release
switch_release
make_dirs
save_modes
write_profile
start_munge
make_jwt_key
# The users exist before slurmctld loads their associations: it resolves each user's uid
# once, when it loads them, and holds a user it cannot resolve with none for good.
make_user "$SVC_USER"
for user in "${MAPPED_USERS[@]}"; do
    make_user "$user"
done
start_slurm
restart_slurmrestd_if_changed
start_ssh
write_env
wait_ready
show_env
