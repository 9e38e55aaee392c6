"""The filled job script wrapped for Slurm: the batch job and its batch script.

The batch script runs the filled script once per node with one ``srun`` step, gives it
scheduler-neutral ``JOB_*``/``PROCESS_*`` variables, decides the job's verdict from rank
0's output (``JARVICE_CMD_SUCCESS``), and leaves an end record next to the output file.

The filled script travels inside the batch script as base64, in environment variables
of at most ``CHUNK`` characters (Linux caps one variable at 128 KiB), and is decoded
on each node into a pipe that bash reads: whatever the script contains, nothing in it
is ever parsed by the wrapper's shell.

The end record (named for ``$SLURM_JOB_ID``, which it also carries) is written by an
EXIT trap; ``scancel`` and the walltime limit both send SIGTERM to the batch shell,
whose TERM trap records CANCELLED, or TIMEOUT when no ``/terminate`` marker is there
and Slurm (asked with a short timeout) gives the reason ``TimeLimit``. Slurm follows
with SIGKILL after ``KillWait`` seconds; the record is written well before. A plain
SIGKILL (``scancel -s KILL``) or a node failure leaves no record: the connector then
falls back to what the scheduler (squeue/sacct) says.
"""

import base64
import shlex
from dataclasses import dataclass

from dssr.executors.header import JobParameters
from dssr.jobs import app_ports
from dssr.slurm.interfaces import JOB_PREFIX, BatchJob

CHUNK = 65536
SUCCESS_MARK = "JARVICE_CMD_SUCCESS"


def exclusive(params: JobParameters) -> bool:
    """Whole nodes unless the job opts out; GPU jobs always get them.

    (Interactive jobs need not: each gets its own free port, see ``APP_SETUP``.)
    """
    return params.devices.exclusive or params.gpus > 0


def batch_job(name: str, nodes: int, params: JobParameters, output: str, files_prefix: str,
              held: bool, filled_script: str, number: int = 0,
              service_path: str = "/") -> BatchJob:
    """The Slurm job running ``filled_script`` for the Jarvice job ``name`` (validated)
    and ``number``.

    ``output`` is sbatch's output pattern, ``files_prefix`` what the job's own files
    start with before the job id (``dssr.jobfiles``). Slurm gets ``cores * nodes``
    tasks on ``nodes`` nodes; the batch script then starts one task per node. An
    interactive job's app is served under ``service_path`` of its address.
    """
    app = AppPlan(app_ports(name, number), service_path) if params.interactive else None
    return BatchJob(
        name=JOB_PREFIX + name,
        script=slurm_batch_script(filled_script, files_prefix, app),
        output=output,
        nodes=nodes,
        tasks=params.cores * nodes,
        partition=params.devices.partition,
        memory_gb=params.ram,
        gpus_per_node=params.gpus,
        exclusive=exclusive(params),
        walltime=params.walltime,
        licenses=params.licenses,
        held=held,
        extra=params.devices.sbatch,
    )


# Where a Jarvice app image keeps its URL template (%PUBLICADDR%, %NIMBIXPASSWD%).
APP_URL_FILE = "/etc/NAE/url.txt"

# An interactive job's rank 0, before the app starts: the first unused one of the ports
# DSSR chose for the job (``dssr.jobs.app_ports``) and a password for the app
# (exported), and once a process of this job listens there, the app record (mode
# 0600; see dssr.jobfiles.AppRecord). With no free port, or another job's process on
# it, no record is written: the app cannot be reached, and no other app is.
APP_SETUP = """\
if [ -n "${DSSR_APP_RECORD:-}" ] && [ "$PROCESS_PROCID" = 0 ]; then
    DSSR_SERVICE_PORT=
    for dssr_port in $DSSR_APP_PORTS; do
        # Taken: any socket on the port not in TIME-WAIT (ss), or, without ss, a listener.
        ss -Htan exclude time-wait "sport = :$dssr_port" 2>/dev/null | grep -q . && continue
        if ! (: <>"/dev/tcp/127.0.0.1/$dssr_port") 2>/dev/null; then
            DSSR_SERVICE_PORT=$dssr_port
            break
        fi
    done
    DSSR_SERVICE_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr +/ -_)
    export DSSR_SERVICE_PORT DSSR_SERVICE_PASSWORD
    [ -n "$DSSR_SERVICE_PORT" ] && (
        until (: <>"/dev/tcp/127.0.0.1/$DSSR_SERVICE_PORT") 2>/dev/null; do sleep 0.5; done
        dssr_pid=$(ss -Hltnp "sport = :$DSSR_SERVICE_PORT" 2>/dev/null \\
            | sed -n "s/.*pid=\\([0-9]*\\).*/\\1/p" | head -n 1)
        tr "\\0" "\\n" 2>/dev/null <"/proc/${dssr_pid:-0}/environ" \\
            | grep -qx "SLURM_JOB_ID=$SLURM_JOB_ID" || exit 0
        # The URL template of the app, read below the root of the process that listens
        # (the root of its container, when it runs in one).
        dssr_url=$(head -n 1 -- "/proc/$dssr_pid/root$DSSR_APP_URL_FILE" 2>/dev/null \\
            | tr -d "\\r" | head -c 2048)
        umask 077
        printf "NODE=%s\\nPORT=%s\\nPASSWORD=%s\\nURL=%s\\n" "$SLURMD_NODENAME" \\
            "$DSSR_SERVICE_PORT" "$DSSR_SERVICE_PASSWORD" "$dssr_url" \\
            > "$DSSR_APP_RECORD.tmp" && mv -f -- "$DSSR_APP_RECORD.tmp" "$DSSR_APP_RECORD"
    ) </dev/null >/dev/null 2>&1 &
fi"""


def _node_command(chunks: int) -> str:
    """What each srun task runs: neutral variables, an interactive app's port and
    record, then the decoded script from a pipe."""
    names = [f"DSSR_PAYLOAD_{index}" for index in range(chunks)]
    payload = " ".join(f'"${name}"' for name in names)
    run = (f"env {' '.join('-u ' + name for name in names)} -u DSSR_RANK0_LOG "
           f"/bin/bash <(printf %s {payload} | base64 -d)")
    command = "\n".join([
        'export PROCESS_PROCID="$SLURM_PROCID" PROCESS_NODENAME="$SLURMD_NODENAME"',
        'export JOB_JOBID="$SLURM_JOB_ID" JOB_JOB_NODELIST="$SLURM_JOB_NODELIST"',
        'export JOB_NNODES="$SLURM_NNODES" JOB_NTASKS="$SLURM_NTASKS"',
        'export JOB_SUBMIT_DIR="$SLURM_SUBMIT_DIR" JOB_GPUS_PER_NODE="$SLURM_GPUS_PER_NODE"',
        APP_SETUP,
        'if [ "$PROCESS_PROCID" = 0 ]; then',
        f'    {run} 2>&1 | tee -- "$DSSR_RANK0_LOG"',
        '    exit "${PIPESTATUS[0]}"',
        "fi",
        f"exec {run}",
    ])
    # It is pasted between single quotes below: it must never hold one.
    assert "'" not in command
    return command


_HEAD = """\
#!/bin/bash
# Jarvice job wrapped by DSSR: runs the job script once per node, then writes the
# job's end record (also when the job is cancelled).
DSSR_JOB_FILES={files_prefix}"$SLURM_JOB_ID"
DSSR_END_RECORD="$DSSR_JOB_FILES.end"
export DSSR_RANK0_LOG="$DSSR_END_RECORD.rank0"
printf -v DSSR_START '%(%s)T' -1
DSSR_STATE=FAILED
DSSR_EXIT_CODE=1
DSSR_STEP_EXIT_CODE=
DSSR_SRUN_PID=

dssr_end_record() {{
    trap '' TERM INT HUP
    local end
    printf -v end '%(%s)T' -1
    printf 'JOBID=%s\\nSTATE=%s\\nEXIT_CODE=%s\\nSTEP_EXIT_CODE=%s\\nSTART=%s\\nEND=%s\\n' \\
        "$SLURM_JOB_ID" "$DSSR_STATE" "$DSSR_EXIT_CODE" "$DSSR_STEP_EXIT_CODE" \\
        "$DSSR_START" "$end" \\
        > "$DSSR_END_RECORD.tmp" && mv -f -- "$DSSR_END_RECORD.tmp" "$DSSR_END_RECORD"
    rm -f -- "$DSSR_RANK0_LOG" ${{DSSR_APP_RECORD:+"$DSSR_APP_RECORD"}}
}}

# SIGTERM: DSSR's /terminate (its marker is there), anyone's scancel, or the time limit
# (Slurm then gives the reason TimeLimit; asked briefly, as KillWait is short).
dssr_cancelled() {{
    DSSR_STATE=CANCELLED
    DSSR_EXIT_CODE=143
    [ -n "$DSSR_SRUN_PID" ] && kill -TERM "$DSSR_SRUN_PID" 2>/dev/null
    if [ ! -e "$DSSR_JOB_FILES.cancelled" ] && [ "$(timeout 5 squeue --noheader \\
            --jobs="$SLURM_JOB_ID" --format=%r 2>/dev/null)" = TimeLimit ]; then
        DSSR_STATE=TIMEOUT
        echo "JARVICE Job reached its time limit"
    else
        echo "JARVICE Job cancelled"
    fi
    exit 143
}}

trap dssr_end_record EXIT
trap dssr_cancelled TERM INT HUP
# Leftovers of an earlier run of this job (a requeue) must not decide this one.
rm -f -- "$DSSR_END_RECORD" "$DSSR_RANK0_LOG"
"""

_TAIL = """\
JOB_JOB_FORMATED_NODELIST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | paste -sd ' ' -)"
export JOB_JOB_FORMATED_NODELIST
echo "DSSR: job $SLURM_JOB_ID on $SLURM_NNODES node(s): $JOB_JOB_FORMATED_NODELIST"

# In the background so that the TERM trap runs at once, not after srun returns.
srun -N "$SLURM_NNODES" -n "$SLURM_NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \\
    --export=ALL /bin/bash -c '{node_command}' &
DSSR_SRUN_PID=$!
wait "$DSSR_SRUN_PID"
DSSR_STEP_EXIT_CODE=$?

# srun's status is that of whichever task ended last; the job's verdict is rank 0's
# success mark, not counting command traces (set -x lines start with '+').
if grep -v -e '^+' -e 'GoTTY is starting with command' -- "$DSSR_RANK0_LOG" 2>/dev/null \\
        | grep -q {mark}; then
    DSSR_STATE=COMPLETED
    DSSR_EXIT_CODE=0
    echo "JARVICE Job completed OK"
else
    DSSR_STATE=FAILED
    DSSR_EXIT_CODE=1
    echo "JARVICE Job failed, investigate logs"
fi
exit "$DSSR_EXIT_CODE"
"""


@dataclass(frozen=True)
class AppPlan:
    """An interactive job's app: the ports it may listen on, and the path of its
    address it is served under (``/`` for host-based addresses, ``/job5/`` for
    path-based ones), exported to it as ``DSSR_SERVICE_PATH``."""

    ports: tuple[int, ...]
    path: str = "/"


def slurm_batch_script(filled_script: str, files_prefix: str, app: AppPlan | None = None,
                       url_file: str = APP_URL_FILE) -> str:
    """The ``#!/bin/bash`` batch script that runs ``filled_script`` on every node.

    ``files_prefix`` and the job id make the job's files' base path (``dssr.jobfiles``);
    rank 0's output is kept beside the end record, as ``<end record>.rank0``, until the
    verdict is taken. ``app``, for an interactive job (its app record goes beside the
    end record); ``url_file`` where the app's URL template is, inside the app's root.
    """
    payload = base64.b64encode(filled_script.encode()).decode()
    chunks = [payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)] or [""]
    exports = "".join(f"export DSSR_PAYLOAD_{index}={shlex.quote(chunk)}\n"
                      for index, chunk in enumerate(chunks))
    if app is not None:
        ports = " ".join(str(int(port)) for port in app.ports)
        exports += (f'export DSSR_APP_RECORD="$DSSR_JOB_FILES.app" '
                    f"DSSR_APP_URL_FILE={shlex.quote(url_file)} "
                    f"DSSR_APP_PORTS={shlex.quote(ports)} "
                    f"DSSR_SERVICE_PATH={shlex.quote(app.path)}\n"
                    'rm -f -- "$DSSR_APP_RECORD"\n')
    return (_HEAD.format(files_prefix=shlex.quote(files_prefix))
            + exports
            + _TAIL.format(node_command=_node_command(len(chunks)), mark=SUCCESS_MARK))
