"""Parsers for what Slurm commands print; each takes text and returns plain values.

Output the parsers do not understand raises SlurmOutputError: a wrong reading of the
queue would make upstream believe jobs ended, so it must never pass silently.
"""

import itertools
import re
from dataclasses import replace

from dssr.slurm.interfaces import JOB_PREFIX, AccountingRecord, QueueJob
from dssr.slurm.states import long_name

# Slurm's own hostlist limit; also keeps a hostile expression from eating memory.
MAX_HOSTS = 65536


class SlurmOutputError(ValueError):
    """Slurm printed something these parsers do not understand."""


# A snapshot record after its token (commands.SNAPSHOT_FORMAT). Job ids may be array
# (123_4, 123_[5-9]) or heterogeneous (123+0) ids.
_RECORD = re.compile(
    r"(?P<jobid>[0-9]+(?:_(?:[0-9]+|\[[^]|]*\]))?(?:\+[0-9]+)?)"
    r"\|(?P<state>[A-Z_]+)\|(?P<elapsed>[0-9:-]*|INVALID)\|(?P<nodes>[^|]*)"
    r"\|(?P<owner>[^|]*)\|(?P<reason>[^|]*)\|(?P<name>.*)", re.DOTALL
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_snapshot(text: str, token: str) -> tuple[list[QueueJob], list[str]]:
    """The Jarvice (``jarvice_``-named) jobs in the output of commands.squeue_snapshot
    made with ``token``, and the ids of Jarvice jobs left out because their names hold
    control characters (no Jarvice name does; such a job is not DSSR's).

    A record starts at a line beginning ``token|``; any other line continues the name
    of the record before (a name may hold newlines, but not the token).
    """
    start = token + "|"
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    records: list[str] = []
    for line in lines:
        if line.startswith(start):
            records.append(line[len(start):])
        elif records:
            records[-1] += "\n" + line
        else:
            raise SlurmOutputError(f"squeue printed an unexpected line: {line!r}")
    jobs, skipped = [], []
    for record in records:
        match = _RECORD.fullmatch(record)
        if not match:
            raise SlurmOutputError(f"squeue printed an unexpected record: {record!r}")
        if not match["name"].startswith(JOB_PREFIX):
            continue
        if _CONTROL.search(match["name"]):
            skipped.append(match["jobid"])
            continue
        jobs.append(QueueJob(
            jobid=match["jobid"],
            state=match["state"],
            elapsed=normalise_elapsed(match["elapsed"]),
            nodes=tuple(expand_hostlist(match["nodes"])),
            owner=match["owner"],
            reason=match["reason"],
            name=match["name"].removeprefix(JOB_PREFIX),
        ))
    return jobs, skipped


_ELAPSED = re.compile(
    r"(?:(?P<days>[0-9]+)-)?(?:(?P<hours>[0-9]+):)?(?P<minutes>[0-9]+):(?P<seconds>[0-9]+)"
)


def normalise_elapsed(text: str) -> str:
    """Slurm's ``M:SS``, ``H:MM:SS`` or ``D-HH:MM:SS`` as ``HH:MM:SS`` (hours may pass 24).

    Slurm prints ``INVALID`` for a negative time (clocks out of step): that is 00:00:00.
    """
    if text == "INVALID":
        return "00:00:00"
    match = _ELAPSED.fullmatch(text)
    if not match:
        raise SlurmOutputError(f"not a Slurm elapsed time: {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return f"{days * 24 + hours:02d}:{minutes:02d}:{seconds:02d}"


def _split_outside_brackets(text: str) -> list[str]:
    """``text`` split at the commas that are not inside ``[...]``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
        if depth not in (0, 1):
            raise SlurmOutputError(f"unbalanced brackets in host list: {text!r}")
    if depth:
        raise SlurmOutputError(f"unbalanced brackets in host list: {text!r}")
    parts.append(text[start:])
    return parts


_RANGE = re.compile(r"(?P<low>[0-9]+)(?:-(?P<high>[0-9]+))?")


def _expand_group(group: str, hostlist: str) -> list[str]:
    """The numbers of one bracket group (``01-03,7``), zero-padded like its lower bounds."""
    numbers: list[str] = []
    for item in group.split(","):
        match = _RANGE.fullmatch(item)
        if not match:
            raise SlurmOutputError(f"bad range {item!r} in host list: {hostlist!r}")
        low, high = match["low"], match["high"] or match["low"]
        if int(high) < int(low) or int(high) - int(low) >= MAX_HOSTS:
            raise SlurmOutputError(f"bad range {item!r} in host list: {hostlist!r}")
        numbers.extend(f"{n:0{len(low)}d}" for n in range(int(low), int(high) + 1))
    return numbers


def expand_hostlist(text: str) -> list[str]:
    """Host names of a Slurm host list: ``node[1-3,7]`` -> node1, node2, node3, node7.

    Handles zero padding (``a[01-03]``), several names (``a1,b[2-3]``) and several
    bracket groups in one name (``rack[1-2]-n[1-2]``, the first group varying slowest),
    as ``scontrol show hostnames`` does. An empty list gives no hosts.
    """
    text = text.strip()
    hosts: list[str] = []
    for name in _split_outside_brackets(text) if text else []:
        if not name:
            raise SlurmOutputError(f"empty host name in host list: {text!r}")
        pieces = re.split(r"\[([^]]*)\]", name)
        choices = [
            _expand_group(piece, text) if index % 2 else [piece]
            for index, piece in enumerate(pieces)
        ]
        count = 1
        for choice in choices:
            count *= len(choice)
        if len(hosts) + count > MAX_HOSTS:
            raise SlurmOutputError(f"host list longer than {MAX_HOSTS} hosts: {text!r}")
        hosts.extend("".join(combination) for combination in itertools.product(*choices))
    return hosts


def parse_sacct(text: str) -> AccountingRecord | None:
    """The job in the output of commands.sacct_job (its line, then its steps'), or None
    if there is none.

    A job whose batch script failed after one of its steps ran out of memory ended
    OUT_OF_MEMORY: Slurm says so of the job only when the batch step itself was killed,
    and a DSSR job's work runs in an srun step. The job name is the last field: it may
    hold the separator. An empty ExitCode (a step killed with its node) reads 0:0.
    """
    job: AccountingRecord | None = None
    jobid, step_states = "", set()
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", 4)
        match = re.fullmatch(r"(?:([0-9]+):([0-9]+))?", fields[2]) if len(fields) == 5 else None
        if not match:
            raise SlurmOutputError(f"sacct printed an unexpected line: {line!r}")
        if job is None:
            if "." in fields[0]:
                raise SlurmOutputError(f"sacct printed a step before its job: {line!r}")
            jobid = fields[0]
            job = AccountingRecord(
                state=long_name(fields[1]),
                exit_code=int(match[1] or 0),
                signal=int(match[2] or 0),
                elapsed=normalise_elapsed(fields[3]),
                name=fields[4],
            )
        elif fields[0].startswith(jobid + "."):
            step_states.add(long_name(fields[1]))
    if job is not None and job.state == "FAILED" and "OUT_OF_MEMORY" in step_states:
        return replace(job, state="OUT_OF_MEMORY")
    return job


def accounting_disabled(stderr: str) -> bool:
    """True when sacct failed because the cluster keeps no accounting (no slurmdbd)."""
    return "accounting storage is disabled" in stderr.lower()


def parse_sbatch(text: str) -> str:
    """The job id in the output of ``sbatch --parsable`` (``jobid`` or ``jobid;cluster``)."""
    match = re.fullmatch(r"\s*([0-9]+)(?:;[^\s;]+)?\s*", text)
    if not match:
        raise SlurmOutputError(f"sbatch printed no job id: {text!r}")
    return match[1]


# What Slurm commands print when slurmctld does not answer (lower case).
CONTROLLER_DOWN = ("unable to contact slurm controller", "socket timed out",
                   "slurm_load_jobs error: unable to contact", "connection refused")


def controller_down(stderr: str) -> bool:
    """Whether a failed Slurm command's ``stderr`` says slurmctld did not answer."""
    text = stderr.lower()
    return any(sign in text for sign in CONTROLLER_DOWN)


def controller_busy(stderr: str) -> bool:
    """Whether a failed Slurm command's ``stderr`` asks to try again later: a refusal of
    the moment, not of the request (e.g. right after slurmctld started with accounting:
    "Job update not available right now, the DB index is being set, try again in a bit")."""
    return "try again" in stderr.lower()


def parse_ping(text: str) -> bool:
    """True when ``scontrol ping`` reports a controller (primary or backup) UP."""
    return any(line.rstrip().endswith(" is UP") for line in text.splitlines())
