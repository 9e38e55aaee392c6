# shellcheck shell=bash
# The rig's slurmrestd: JWT authentication (auth/jwt beside munge in slurm.conf, an
# HS256 key in the StateSaveLocation) and slurmrestd on 127.0.0.1, run as the system
# user restd (it refuses root and SlurmUser). Sourced by lib.sh, never run.

RESTD_PORT=${DSSR_RIG_RESTD_PORT:-6820}
RESTD_USER=restd
JWT_KEY=$RIG/slurm/state/jwt_hs256.key
RESTD_PID=$RIG/run/slurmrestd.pid
# slurmrestd also listens on a unix socket (reached through SSH by direct-streamlocal),
# in a directory of its own: it binds as the restd user.
RESTD_SOCKET_DIR=$RIG/restd
RESTD_SOCKET=$RESTD_SOCKET_DIR/slurmrestd.socket
# The command line slurmrestd runs with, to restart it when that changes.
RESTD_ARGS=$RIG/run/slurmrestd.args

restd_installed() { command -v slurmrestd >/dev/null; }

# make_jwt_key: the HS256 key slurmctld (and slurmdbd) check tokens with: 32 random
# bytes, 0600, owned by SlurmUser (root here), made once.
make_jwt_key() {
    if [[ ! -s $JWT_KEY ]]; then
        log "creating the JWT key $JWT_KEY"
        (umask 077 && head -c 32 /dev/urandom >"$JWT_KEY")
    fi
    chown root:root "$JWT_KEY"
    chmod 0600 "$JWT_KEY"
}

make_restd_user() {
    id -u "$RESTD_USER" >/dev/null 2>&1 \
        || useradd --system --no-create-home --shell /usr/sbin/nologin "$RESTD_USER"
}

# restd_plugins: the OpenAPI plugins to load. Without -s slurmrestd loads them all and
# exits when slurmdbd is absent; the dbv* plugins (/slurmdb/...) need accounting.
# Releases since 23.11 name them by daemon and serve every version they know in each.
restd_plugins() {
    if [[ $SLURM_RELEASE != 22.05 ]]; then
        echo "openapi/slurmctld$( ((ACCOUNTING)) && echo ,openapi/slurmdbd)"
    elif ((ACCOUNTING)); then
        echo "openapi/v0.0.38,openapi/dbv0.0.38"
    else
        echo "openapi/v0.0.38"
    fi
}

restd_command() {
    echo "slurmrestd -f $SLURM_CONF -u $RESTD_USER -g $RESTD_USER -a rest_auth/jwt" \
        "-s $(restd_plugins) 127.0.0.1:$RESTD_PORT unix:$RESTD_SOCKET"
}

restd_up() { port_open "$RESTD_PORT" && [[ -S $RESTD_SOCKET ]]; }

start_slurmrestd() {
    if alive "$RESTD_PID"; then
        return 0
    fi
    restd_installed || die "no slurmrestd: apt-get install slurmrestd (or run up.sh)"
    make_restd_user
    install -d -o "$RESTD_USER" -g "$RESTD_USER" -m 0755 "$RESTD_SOCKET_DIR"
    rm -f "$RESTD_SOCKET"
    log "starting slurmrestd on 127.0.0.1:$RESTD_PORT and $RESTD_SOCKET"
    restd_command >"$RESTD_ARGS"
    # slurmrestd stays in the foreground and writes no pid file: a shell records its
    # pid and becomes it.
    # shellcheck disable=SC2046
    detached setsid -f sh -c 'echo $$ >"$0"; exec env SLURM_JWT=daemon "$@"' "$RESTD_PID" \
        $(restd_command) </dev/null >>"$RIG/log/slurmrestd.log" 2>&1
    wait_for "slurmrestd to listen" 30 restd_up
    # Any local user may connect (write) to the socket; a site would give a group.
    chmod 0666 "$RESTD_SOCKET"
}

stop_slurmrestd() { stop_pidfile slurmrestd "$RESTD_PID"; }

# restart_slurmrestd_if_changed: a slurmrestd started with other plugins, or before
# slurm.conf changed (it reads it once), is restarted.
restart_slurmrestd_if_changed() {
    if alive "$RESTD_PID" && { [[ ! -f $RESTD_ARGS || $(<"$RESTD_ARGS") != "$(restd_command)" ]] \
        || [[ $SLURM_CONF -nt $RESTD_ARGS ]]; }; then
        stop_slurmrestd
    fi
    start_slurmrestd
}
