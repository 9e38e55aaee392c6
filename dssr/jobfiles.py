"""The files DSSR keeps for each job on the cluster, and the file work done on them.

The layout, below ``<scratch>.jarvice/`` (``job_scratch_dir``; relative paths are
below the user's home when it is empty):

- ``<name>.<jobid>.out``: the job's output (``sbatch -o`` with ``%j``);
- ``<name>.<jobid>.end``: the end record the batch script writes when the job ends
  (job id, state, exit code, start and end time), so the verdict outlives Slurm's
  memory of the job;
- ``<name>.<jobid>.cancelled``: the marker ``/terminate`` leaves (a job cancelled
  while pending never runs its batch script, so it writes no end record);
- ``<name>.<jobid>.collected``: left by the first ``/exitstatus``; once it is older
  than the output retention, ``prune`` removes the job's files;
- ``<name>.<jobid>.app``: an interactive job's app record (mode 0600), written on
  the node once the app listens and removed when the job ends: where the app is
  (node, port), its password and URL template (``AppRecord``);
- ``<name>.claim``: the submit claim, made atomically (``O_EXCL``) before ``sbatch``
  and holding the job id once it answered, so any number of DSSR replicas submit a
  name once; released when the job is collected. An empty one older than
  ``CLAIM_STALE`` seconds (a submit that died before sbatch answered) is taken over.

Every file carries the Slurm job id: two jobs of one name never share a file, and a
file of ``(name, jobid)`` proves that job id was DSSR's job of that name. Files of the
old layout (``<name>.out``, before job ids were in the names) are not read.

The executor (which writes them), the connector (which reads them) and ``dssr check``
(which probes the directory) all take the layout from here. ``JobFiles`` does the
file work over an ``IRemote``: a few constant shell programs that get request data
only as quoted arguments.
"""

import math
import posixpath
import re
from dataclasses import dataclass

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger

from dssr.coroutines import settled
from dssr.errors import Unavailable
from dssr.jobs import DirEntry, JobRef
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line
from dssr.slurm.interfaces import SETUP_BUSY, Setup

_log = Logger(namespace="dssr.slurm")

DIRECTORY = ".jarvice"
# A tail is cut to this many bytes on the cluster: one huge line must not exhaust the
# transport's output cap.
TAIL_BYTES = 16 * 1024 * 1024
END_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
# sbatch's pattern for the job id in an output file name.
SBATCH_JOBID = "%j"
# The most jobs one ``prune`` run removes per user: bounded work per run.
PRUNE_BATCH = 100

# Seconds after which a claim without a job id is taken over: longer than any sbatch.
CLAIM_STALE = 120
# Seconds a submit waits for another's claim to get its job id, then answers busy.
CLAIM_PATIENCE = 20

# Claim name $2 in directory $1, then run the submit command ("$@" after 4 arguments)
# and record its output (the job id) in the claim; if the claim is taken, print the
# job id it holds instead. The claim is a file created with O_EXCL (noclobber: a shell
# builtin, no process forked); one still empty is another submit between its claim
# and sbatch's answer: wait for it up to $4 seconds (then exit SETUP_BUSY), or take it
# over once it is $3 seconds old (one rename wins; that submit died).
CLAIM_SUBMIT = f"""\
dir=$1 claim=$2 stale=$3 ticks=$(($4 * 20))
shift 4
set -C
until true 2>/dev/null > "$claim"; do
    if [ ! -d "$dir" ]; then
        mkdir -p -- "$dir" || exit 70
        continue
    fi
    if [ -s "$claim" ]; then
        cat -- "$claim"
        exit 0
    fi
    now=$(date +%s)
    # No claim to stat (released meanwhile, or it cannot be made for another reason):
    # try again, within the patience.
    born=$(stat -c %Y -- "$claim" 2>/dev/null) || born=$now
    if [ $((now - born)) -ge "$stale" ]; then
        mv -- "$claim" "$claim.stale.$$" 2>/dev/null && rm -f -- "$claim.stale.$$"
        continue
    fi
    if [ "$ticks" -le 0 ]; then
        echo "another submit of this job name is in progress; try again" >&2
        exit {SETUP_BUSY}
    fi
    sleep 0.05
    ticks=$((ticks - 1))
done
set +C
if out=$("$@"); then
    # One short write by a builtin: a reader sees it empty (and waits) or whole.
    printf '%s\\n' "$out" > "$claim"
    printf '%s\\n' "$out"
else
    status=$?
    rm -f -- "$claim"
    exit "$status"
fi
"""
# The last $1 lines of file $2, at most $3 bytes of them; exit 1 when there is no file.
TAIL = '[ -f "$2" ] || exit 1; tail -n "$1" -- "$2" | tail -c "$3"'
# Mark job files $1 collected (the first /exitstatus starts the retention period), and
# release the name's claim $2 if it holds job $3 (a later submit of the name is new).
COLLECTED = """\
[ -e "$1.collected" ] || : > "$1.collected" || exit
case $(cat -- "$2" 2>/dev/null) in
"$3" | "$3;"*) mv -- "$2" "$2.done.$$" 2>/dev/null && rm -f -- "$2.done.$$" ;;
esac
exit 0
"""
# Remove the files of at most $3 jobs in directory $1 collected more than $2 minutes
# ago. Names with a newline are not DSSR's (validated names hold none): skipped.
PRUNE = """\
[ -d "$1" ] || exit 0
find "$1" -maxdepth 1 -type f -name '*.collected' -mmin +"$2" | head -n "$3" |
while IFS= read -r marker; do
    base=${marker%.collected}
    rm -f -- "$base.out" "$base.end" "$base.cancelled" "$marker"
done
"""
# List directory $2 below root $1 as NUL-separated "mtime\tsize\ttype\tname" records.
# Exit 3: no root; 4: no such directory; 5: it resolves outside the root. (The root's
# trailing "/" goes before the case: bash does not match "${root%/}"/* when root is /.)
LIST_DIRECTORY = """\
root=$(realpath -e -- "$1") || exit 3
dir=$(realpath -e -- "$1/$2") || exit 4
root=${root%/}
case "$dir/" in "$root"/*) ;; *) exit 5 ;; esac
[ -d "$dir" ] || exit 4
cd -- "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%T@\\t%s\\t%y\\t%P\\0'
"""


def dir_prefix(path: str) -> str:
    """``path`` ending in ``/``, or empty: scripts append ``.jarvice/...`` to it directly."""
    if not path or path.endswith("/"):
        return path
    return path + "/"


def directory(scratch: str) -> str:
    """``<scratch>.jarvice``, where every job file goes."""
    return dir_prefix(scratch) + DIRECTORY


@dataclass(frozen=True)
class JobPaths:
    """Where one job's files live on the cluster."""

    directory: str
    base: str  # every file's path is this and a suffix
    output: str
    end_record: str
    cancel_marker: str
    app_record: str


def name_prefix(scratch: str, name: str) -> str:
    """What the files of every job named ``name`` (validated) start with; the job id follows."""
    return f"{directory(scratch)}/{name}."


def claim_path(scratch: str, name: str) -> str:
    """The submit claim of job name ``name`` (see ``CLAIM_SUBMIT``)."""
    return f"{directory(scratch)}/{name}.claim"


def job_paths(scratch: str, name: str, jobid: str) -> JobPaths:
    """The files of job ``jobid`` named ``name``; ``jobid`` may be ``SBATCH_JOBID``."""
    base = name_prefix(scratch, name) + jobid
    return JobPaths(directory(scratch), base, base + ".out", base + ".end",
                    base + ".cancelled", base + ".app")


@dataclass(frozen=True)
class AppRecord:
    """Where an interactive job's app listens, as its batch script recorded it: the
    Slurm node name and port, the app's own password, and ``url_template``, the app's
    ``/etc/NAE/url.txt`` when the wrapper could read it. The job can rewrite it: data,
    never authority (the connector checks node and port against the job's own).
    """

    node: str
    port: int
    password: str
    url_template: str = ""


def parse_app_record(text: str) -> AppRecord | None:
    """The ``AppRecord`` in an app record file, or None if it is incomplete or garbled."""
    values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    port = values.get("PORT", "")
    if not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    record = AppRecord(values.get("NODE", ""), int(port), values.get("PASSWORD", ""),
                       values.get("URL", ""))
    return record if record.node and 0 < record.port < 65536 and record.password else None


@dataclass(frozen=True)
class EndRecord:
    """How a job ended, as its batch script recorded it (times in epoch seconds)."""

    jobid: str
    state: str
    exit_code: int
    start: int
    end: int

    @property
    def seconds(self) -> int:
        """How long the batch script ran."""
        return max(0, self.end - self.start)


def parse_end_record(text: str, jobid: str) -> EndRecord | None:
    """The ``EndRecord`` of job ``jobid`` in an end record file, or None if it is
    incomplete, garbled, or another job's."""
    values = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            values[key.strip()] = value.strip()
    try:
        record = EndRecord(values["JOBID"], values["STATE"], int(values["EXIT_CODE"]),
                           int(values["START"]), int(values["END"]))
    except (KeyError, ValueError):
        return None
    return record if record.state in END_STATES and record.jobid == jobid else None


# Characters that could break a line-oriented listing (control characters but tab).
_LINE_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_listing(data: bytes, listed: str) -> list[DirEntry]:
    """Entries from ``LIST_DIRECTORY``'s records, as paths below the root; ``listed`` is
    the directory that was listed. Names with control characters other than tab are
    left out: one could forge lines of the answer."""
    entries = []
    for record in data.decode("utf-8", "replace").split("\0"):
        if not record:
            continue
        mtime, size, kind, name = record.split("\t", 3)
        if _LINE_BREAKING.search(name):
            continue
        path = posixpath.join(listed.strip("/"), name)
        entries.append(DirEntry(path, kind == "d", int(float(mtime)), int(size)))
    return sorted(entries, key=lambda entry: entry.path)


class ListingRefused(Exception):
    """A listing that cannot be made: outside the root, or (``missing``) no such directory."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


class JobFiles:
    """The job files in ``scratch`` on the cluster, read and written through ``commands``.

    ``user`` arguments name the mapped cluster user whose files they are (None: the
    service account's). ``listing_root`` is the directory ``listing`` may look into;
    ``retention`` the seconds a collected job's files are kept.
    """

    def __init__(self, commands: LoggedRemote, scratch: str, listing_root: str = "",
                 retention: float = 3 * 86400):
        self._commands = commands
        self._scratch = scratch
        self.listing_root = listing_root
        self.retention = retention

    def paths(self, ref: JobRef) -> JobPaths:
        """Where the files of job ``ref`` are."""
        return job_paths(self._scratch, ref.name, ref.jobid)

    def setup(self, name: str) -> Setup:
        """What wraps the submission of job ``name``: its claim (see ``CLAIM_SUBMIT``)."""
        return Setup(CLAIM_SUBMIT, (directory(self._scratch), claim_path(self._scratch, name),
                                    str(CLAIM_STALE), str(CLAIM_PATIENCE)))

    async def tail(self, ref: JobRef, lines: int, user: str | None = None) -> str | None:
        """The last ``lines`` lines of the job's output, or None if it has none."""
        if lines < 0:
            raise ValueError(f"negative line count: {lines}")
        result = await self._commands.run(
            ["sh", "-c", TAIL, "sh", str(lines), self.paths(ref).output, str(TAIL_BYTES)],
            user=user)
        return result.stdout.decode("utf-8", "replace") if result.ok else None

    async def end_record(self, ref: JobRef, user: str | None = None) -> EndRecord | None:
        """The job's end record, if it has a readable one."""
        result = await self._commands.run(["cat", "--", self.paths(ref).end_record], user=user)
        if not result.ok:
            return None
        return parse_end_record(result.stdout.decode("utf-8", "replace"), ref.jobid)

    async def cancelled(self, ref: JobRef, user: str | None = None) -> bool:
        """Whether ``/terminate`` left its marker for the job."""
        result = await self._commands.run(["test", "-e", self.paths(ref).cancel_marker],
                                          user=user)
        return result.ok

    async def mark_cancelled(self, ref: JobRef, user: str | None = None) -> None:
        """Leave the cancel marker (before cancelling: a pending job writes no record)."""
        await self._commands.run(["touch", "--", self.paths(ref).cancel_marker], user=user)

    async def app_record(self, ref: JobRef, user: str | None = None) -> AppRecord | None:
        """The job's app record: None until the app listens, and after the job ended."""
        result = await self._commands.run(["cat", "--", self.paths(ref).app_record], user=user)
        return parse_app_record(result.stdout.decode("utf-8", "replace")) if result.ok else None

    def app_endpoint(self, record: AppRecord, user: str | None = None) -> IStreamClientEndpoint:
        """A client endpoint to the app ``record`` names, through ``user``'s connection."""
        return self._commands.remote.tcp_endpoint(record.node, record.port, user)

    async def exist(self, ref: JobRef, user: str | None = None) -> bool:
        """Whether ``user`` has any of the job's files (how an owner is found)."""
        paths = self.paths(ref)
        result = await self._commands.run(
            ["test", "-e", paths.end_record, "-o", "-e", paths.output, "-o", "-e",
             paths.cancel_marker], user=user)
        return result.ok

    async def collected(self, ref: JobRef, user: str | None = None) -> None:
        """Mark the job's files collected (``prune`` removes them after the retention)
        and release its name's claim."""
        await self._commands.run(["sh", "-c", COLLECTED, "sh", self.paths(ref).base,
                                  claim_path(self._scratch, ref.name), ref.jobid], user=user)

    async def prune(self, user: str | None = None) -> None:
        """Remove the files of (at most ``PRUNE_BATCH``) jobs collected longer ago than
        the retention."""
        minutes = max(0, math.ceil(self.retention / 60))
        result = await self._commands.run(
            ["sh", "-c", PRUNE, "sh", directory(self._scratch), str(minutes),
             str(PRUNE_BATCH)], user=user)
        if not result.ok:
            raise Unavailable(f"pruning job files failed: {first_line(result.stderr)}")

    async def prune_all(self, users: list[str | None]) -> None:
        """``prune`` in every account of ``users`` at once; a failure is logged, not
        raised (pruning is housekeeping)."""
        outcomes = await settled(*(self.prune(user) for user in users))
        for user, outcome in zip(users, outcomes, strict=True):
            if isinstance(outcome, Exception):
                _log.warn("pruning collected job files of {user}: {error}",
                          user=user or "the service account", error=outcome)

    async def listing(self, path: str) -> list[DirEntry]:
        """The entries of ``path`` (absolute, normalised, no ``..``) below the listing root.

        ``ListingRefused`` without a root, outside it, or for a missing directory; any
        other failure is ``Unavailable``.
        """
        if not self.listing_root:
            raise ListingRefused("no listable root is configured (setting pvcls_root)")
        result = await self._commands.run(["sh", "-c", LIST_DIRECTORY, "sh", self.listing_root,
                                           path.lstrip("/") or "."])
        if result.status == 5:
            raise ListingRefused("path is outside the listable root")
        if result.status in (3, 4):
            raise ListingRefused(f"no directory {path}", missing=True)
        if not result.ok:
            raise Unavailable(f"listing {path} failed: {first_line(result.stderr)}")
        return parse_listing(result.stdout, path)
