# shellcheck shell=bash
# The rig's accounting: MariaDB (its own datadir, socket and 127.0.0.1 port under
# $RIG/db), slurmdbd on 127.0.0.1, and the cluster, accounts and users in it. Sourced
# by lib.sh, never run.

DB_DIR=$RIG/db
DB_PORT=${DSSR_RIG_DB_PORT:-3307}
DB_SOCKET=$DB_DIR/run/mariadb.sock
DB_PID=$DB_DIR/run/mariadb.pid
DB_NAME=dssr_rig_acct
DB_USER=slurm
DB_PASS_FILE=$RIG/keys/db-storage-pass
DBD_PORT=${DSSR_RIG_DBD_PORT:-6819}
DBD_CONF=$RIG/etc/slurmdbd.conf
# The service account's own account, and the one the mapped users run their jobs under
# (the service account is its coordinator unless `ctl.sh coordinator off`).
SVC_ACCOUNT=dssr-service
USERS_ACCOUNT=dssr-users

accounting_installed() { command -v slurmdbd >/dev/null && [[ -x /usr/sbin/mariadbd ]]; }

# db: run the SQL on stdin as the database's root (socket authentication).
db() { mariadb --no-defaults --protocol=socket --socket="$DB_SOCKET" -u root; }

mariadb_up() { mariadb-admin --no-defaults --socket="$DB_SOCKET" -u root ping >/dev/null 2>&1; }

start_mariadb() {
    if alive "$DB_PID" && mariadb_up; then
        return 0
    fi
    install -d -o mysql -g mysql -m 0750 "$DB_DIR" "$DB_DIR/run"
    if [[ ! -d $DB_DIR/data/mysql ]]; then
        log "creating the MariaDB datadir $DB_DIR/data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db >"$RIG/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed; see $RIG/log/mariadb-install.log"
    fi
    log "starting MariaDB on 127.0.0.1:$DB_PORT"
    touch "$RIG/log/mariadb.log"
    chown mysql:mysql "$RIG/log/mariadb.log"
    # mariadbd stays in the foreground: setsid -f forks it off into a session of its own.
    detached setsid -f /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --socket="$DB_SOCKET" --pid-file="$DB_PID" --bind-address=127.0.0.1 \
        --port="$DB_PORT" --skip-name-resolve --log-error="$RIG/log/mariadb.log" \
        --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1
    wait_for "MariaDB to answer" 60 mariadb_up
}

stop_mariadb() { stop_pidfile MariaDB "$DB_PID"; }

# storage_password: the database password slurmdbd uses, made once.
storage_password() {
    if [[ ! -s $DB_PASS_FILE ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS_FILE")
    fi
    cat "$DB_PASS_FILE"
}

make_storage_user() {
    local password
    password=$(storage_password)
    db <<SQL
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
SQL
}

# drop_accounting_database: remove the accounting database (when there is one).
drop_accounting_database() {
    [[ -d $DB_DIR/data/mysql ]] || return 0
    start_mariadb
    db <<<"DROP DATABASE IF EXISTS $DB_NAME;"
}

# write_dbd_conf: slurmdbd.conf (0600: it holds the storage password; SlurmUser is
# root); slurmdbd finds it next to $SLURM_CONF. Succeeds only when it changed.
write_dbd_conf() {
    local private=""
    ((PRIVATE_DATA)) && private="PrivateData=jobs,usage"
    write_if_changed "$DBD_CONF" 0600 <<CONF
# Written by tests/cluster/up.sh: the rig's accounting daemon. Do not edit.
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
DbdAddr=127.0.0.1
DbdHost=$NODE
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RIG/run/slurmdbd.pid
LogFile=$RIG/log/slurmdbd.log
DebugLevel=info
$private
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$(storage_password)
StorageLoc=$DB_NAME
CONF
}

slurmdbd_up() { port_open "$DBD_PORT"; }

start_slurmdbd() {
    if alive "$RIG/run/slurmdbd.pid"; then
        return 0
    fi
    [[ -f $DBD_CONF ]] || die "no $DBD_CONF: run up.sh --accounting first"
    start_mariadb
    log "starting slurmdbd on 127.0.0.1:$DBD_PORT"
    detached slurmdbd
    wait_for "slurmdbd to listen" 60 slurmdbd_up
}

stop_slurmdbd() { stop_pidfile slurmdbd "$RIG/run/slurmdbd.pid"; }

# exists KIND NAME: sacctmgr lists NAME among its KIND (cluster, account or user).
exists() {
    [[ -n $(sacctmgr --noheader --parsable2 show "$1" "$2" format="$1") ]]
}

# register_accounts: the cluster, both accounts and the three users, and the service
# account's coordinator rights as COORDINATOR says. sacctmgr finds slurmdbd through
# slurm.conf: write it with ACCOUNTING=1 first (slurmctld need not run).
register_accounts() {
    local user
    wait_for "slurmdbd to answer sacctmgr" 30 sacctmgr --noheader show cluster
    exists cluster "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    exists account "$SVC_ACCOUNT" || sacctmgr -i add account "$SVC_ACCOUNT" \
        cluster="$CLUSTER" description="DSSR's service account" organization=dssr >/dev/null
    exists account "$USERS_ACCOUNT" || sacctmgr -i add account "$USERS_ACCOUNT" \
        cluster="$CLUSTER" description="Jarvice users mapped by DSSR" organization=dssr >/dev/null
    exists user "$SVC_USER" || sacctmgr -i add user "$SVC_USER" \
        account="$SVC_ACCOUNT" cluster="$CLUSTER" >/dev/null
    for user in "${MAPPED_USERS[@]}"; do
        exists user "$user" || sacctmgr -i add user "$user" \
            account="$USERS_ACCOUNT" cluster="$CLUSTER" >/dev/null
    done
    apply_coordinator
}

# is_coordinator: the service account coordinates the mapped users' account.
is_coordinator() {
    local accounts
    accounts=$(sacctmgr --noheader --parsable2 show user "$SVC_USER" withcoord \
        format=coordinators)
    [[ ,$accounts, == *,"$USERS_ACCOUNT",* ]]
}

# apply_coordinator: give or take the service account's coordinator rights (COORDINATOR).
apply_coordinator() {
    if ((COORDINATOR)); then
        is_coordinator || sacctmgr -i add coordinator account="$USERS_ACCOUNT" \
            names="$SVC_USER" >/dev/null
    else
        ! is_coordinator || sacctmgr -i remove coordinator account="$USERS_ACCOUNT" \
            names="$SVC_USER" >/dev/null
    fi
}

# start_accounting: MariaDB, the storage user, slurmdbd (restarted when its config
# changed) and the accounts; slurm.conf must already name slurmdbd.
start_accounting() {
    accounting_installed || die "no slurmdbd or MariaDB: run up.sh --accounting"
    start_mariadb
    make_storage_user
    if write_dbd_conf; then
        stop_slurmdbd
    fi
    start_slurmdbd
    register_accounts
}
