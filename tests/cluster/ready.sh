# shellcheck shell=bash
# When the rig is ready for any test, and waiting for it: up.sh and every ctl.sh mode
# switch return only once each part answers as a test will use it. A part that never
# does fails the script loudly: what was awaited, and the last lines of its log.
# Sourced by lib.sh, never run.

# How long each part may take to become ready.
READY_SECONDS=${DSSR_RIG_READY_SECONDS:-90}
# The probe job: a held job of a mapped user, cancelled at once (its name is not a
# Jarvice job's, so DSSR never lists it).
PROBE_NAME=dssr-rig-probe

# await_part WHAT LOG COMMAND...: retry COMMAND every 0.5 s for READY_SECONDS; on success
# note WHAT, on timeout say WHAT was awaited, show LOG's last lines and exit 1.
await_part() {
    local what=$1 logfile=$2 started=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS - started >= READY_SECONDS)); then
            log "error: the rig is not ready: no $what after ${READY_SECONDS}s"
            if [[ -s $logfile ]]; then
                log "last lines of $logfile:"
                tail -n 20 "$logfile" >&2
            fi
            exit 1
        fi
        sleep 0.5
    done
    READY+=("$what")
}

# associations_loaded: slurmctld holds every rig user's association with the user's uid
# and default account. A user created after slurmctld loaded its associations is held
# with no uid (4294967294) and no default account: that user's jobs get no account.
associations_loaded() {
    local user account users
    users=$(scontrol show assoc_mgr flags=users) || return 1
    for user in "$SVC_USER" "${MAPPED_USERS[@]}"; do
        account=$USERS_ACCOUNT
        [[ $user == "$SVC_USER" ]] && account=$SVC_ACCOUNT
        [[ $users == *"UserName=$user($(id -u "$user")) DefAccount=$account "* ]] || return 1
    done
}

# probe_job_ok: a held job of the first mapped user gets that user's account, and under
# PrivateData=jobs the service account sees it exactly when it is the account's
# coordinator (sacctmgr's changes reach slurmctld a moment after sacctmgr returns).
probe_job_ok() {
    local user=${MAPPED_USERS[0]} jobid account seen ok=1
    jobid=$(runuser -u "$user" -- sbatch --parsable --hold --job-name="$PROBE_NAME" \
        --output=/dev/null --wrap=true) || return 1
    account=$(squeue --noheader --jobs="$jobid" --format=%a)
    [[ $account == "$USERS_ACCOUNT" ]] || ok=0
    if ((PRIVATE_DATA)); then
        seen=$(runuser -u "$SVC_USER" -- squeue --noheader --jobs="$jobid" --format=%i 2>/dev/null)
        if ((COORDINATOR)); then [[ $seen == "$jobid" ]] || ok=0; else [[ -z $seen ]] || ok=0; fi
    fi
    scancel "$jobid"
    ((ok))
}

# restd_answers: slurmrestd answers an HTTP request (any status: this one has no token).
restd_answers() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$RESTD_PORT"
        printf 'GET /openapi/v3 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        IFS= read -r -t 5 status <&3
        [[ $status == HTTP/1.?" "[1-5][0-9][0-9]* ]]
    )
}

# ssh_login USER: USER logs in to the rig's sshd with its key and runs a command.
ssh_login() {
    ssh -n -i "$RIG/keys/$1" -p "$SSH_PORT" -o BatchMode=yes -o ConnectTimeout=5 \
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" \
        "$1@127.0.0.1" true
}

# wait_ready: wait until every part of the rig is ready, then say what was awaited.
wait_ready() {
    local started=$SECONDS probe
    READY=()
    await_part "answer from slurmctld" "$RIG/log/slurmctld.log" scontrol ping
    await_part "usable node $NODE" "$RIG/log/slurmd.log" node_usable
    if ((ACCOUNTING)); then
        await_part "associations of $SVC_USER ${MAPPED_USERS[*]} in slurmctld" \
            "$RIG/log/slurmctld.log" associations_loaded
        probe="probe job of ${MAPPED_USERS[0]} with account $USERS_ACCOUNT"
        if ((PRIVATE_DATA)); then
            probe+=", which $SVC_USER $( ((COORDINATOR)) && echo sees || echo "does not see")"
        fi
        await_part "$probe" "$RIG/log/slurmctld.log" probe_job_ok
    fi
    await_part "answer from slurmrestd" "$RIG/log/slurmrestd.log" restd_answers
    await_part "SSH login of $SVC_USER" "$RIG/log/sshd.log" ssh_login "$SVC_USER"
    log "ready in $((SECONDS - started)) s: $(IFS=';' && echo "${READY[*]}" | sed 's/;/; /g')"
}
