"""The Slurm commands DSSR runs, as argv lists (joined for a remote shell only at the end).

Job ids are checked here as well as at the API edge, so nothing but digits ever
reaches a Slurm command line.
"""

from dssr.jobs import JOBID
from dssr.slurm.interfaces import BatchJob

# squeue fields for the one snapshot, in the order parse.parse_snapshot reads them,
# after the record token: id, long state, time used, node list, owner, reason, name.
# The name is last because it is the only field that may hold the separator (or even
# a newline).
SNAPSHOT_FORMAT = "%i|%T|%M|%N|%u|%r|%j"


def _jobid(jobid: str) -> str:
    """``jobid`` if it is a Slurm job id (``123``, array ``123_4``, het ``123+1``); else
    ValueError."""
    if not JOBID.fullmatch(jobid):
        raise ValueError(f"not a Slurm job id: {jobid!r}")
    return jobid


def sbatch(job: BatchJob) -> list[str]:
    """The ``sbatch`` command submitting ``job`` (its batch script goes on stdin)."""
    argv = ["sbatch", "--parsable", "-J", job.name, "-o", job.output,
            "-n", str(job.tasks), "-N", str(job.nodes)]
    if job.partition:
        argv += ["-p", job.partition]
    if job.memory_gb:
        argv.append(f"--mem={job.memory_gb}G")
    if job.gpus_per_node:
        argv.append(f"--gpus-per-node={job.gpus_per_node}")
    if job.exclusive:
        argv.append("--exclusive")
    if job.walltime:
        argv.append(f"--time={job.walltime}")
    if job.licenses:
        argv += ["-L", job.licenses]
    if job.held:
        argv.append("-H")
    argv += [f"--{option}={value}" if value else f"--{option}" for option, value in job.extra]
    return argv


def _record_format(token: str) -> str:
    """The ``--format`` of a queue listing whose records start ``token|``."""
    if not token.isalnum():
        raise ValueError(f"not a record token: {token!r}")
    return f"--format={token}|{SNAPSHOT_FORMAT}"


def squeue_snapshot(users: tuple[str, ...], token: str) -> list[str]:
    """Every job of ``users`` Slurm still knows (all partitions and states) in one call,
    each record starting ``token|`` (no users: the caller's own jobs).

    ``token`` (letters and digits) is new for each call: a job name cannot forge a
    record start it cannot know.
    """
    whose = f"--user={','.join(users)}" if users else "--me"
    return ["squeue", "--noheader", "--all", "--states=all", whose, _record_format(token)]


def squeue_job(jobid: str, token: str) -> list[str]:
    """One job, as the snapshot shows jobs: for a user who sees what the service
    account may not (``PrivateData=jobs``). Fails once Slurm has forgotten the job."""
    return ["squeue", "--noheader", "--states=all", f"--jobs={_jobid(jobid)}",
            _record_format(token)]


def scontrol_show_job(jobid: str) -> list[str]:
    """The scheduler's full description of one job (what ``/events`` shows)."""
    return ["scontrol", "show", "job", _jobid(jobid)]


def scontrol_release(jobid: str) -> list[str]:
    """Release a held job."""
    return ["scontrol", "release", _jobid(jobid)]


def scancel(jobid: str) -> list[str]:
    """Cancel a job, pending or running."""
    return ["scancel", _jobid(jobid)]


def scontrol_ping() -> list[str]:
    """Ask whether slurmctld answers (exit 0 and ``is UP`` when it does)."""
    return ["scontrol", "ping"]


def sacct_job(jobid: str, users: tuple[str, ...] = ()) -> list[str]:
    """State, exit code, elapsed time and name of one job of ``users`` (none: anyone's)
    and its steps, from accounting (if enabled).

    The steps tell a job killed over its memory (parse.parse_sacct); the name lets the
    caller check that the record is its job's: job ids come round again (MaxJobId, or a
    controller that lost its state) while accounting keeps the old. ``users`` keeps a
    stranger's job of that id out.
    """
    whose = [f"--user={','.join(users)}"] if users else []
    return [
        "sacct", "--noheader", "--parsable2", *whose, f"--jobs={_jobid(jobid)}",
        "--format=JobID,State,ExitCode,Elapsed,JobName",
    ]
