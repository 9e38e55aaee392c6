"""The files DSSR keeps for each job on the cluster, and the file work done on them.

The layout, below ``<scratch>.jarvice/`` (``job_scratch_dir``; relative paths are
below the user's home when it is empty):

- ``<name>.out``: the job's output (``sbatch -o``);
- ``<name>.end``: the end record the batch script writes when the job ends (state,
  exit code, start and end time), so the verdict outlives Slurm's memory of the job;
- ``<name>.cancelled``: the marker ``/terminate`` leaves (a job cancelled while
  pending never runs its batch script, so it writes no end record).

The executor (which writes them), the connector (which reads them) and ``dssr check``
(which probes the directory) all take the layout from here. ``JobFiles`` does the
file work over an ``IRemote``: a few constant shell programs that get request data
only as quoted arguments.
"""

import posixpath
from dataclasses import dataclass

from dssr.errors import Unavailable
from dssr.jobs import DirEntry, JobRef
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line
from dssr.slurm.interfaces import Setup

DIRECTORY = ".jarvice"
# A tail is cut to this many bytes on the cluster: one huge line must not exhaust the
# transport's output cap.
TAIL_BYTES = 16 * 1024 * 1024
END_STATES = ("COMPLETED", "FAILED", "CANCELLED")

# Before a submit: make the directory, drop a previous run's end record and marker.
PREPARE = 'mkdir -p -- "$1" && rm -f -- "$2" "$3"'
# The last $1 lines of file $2, at most $3 bytes of them; exit 1 when there is no file.
TAIL = '[ -f "$2" ] || exit 1; tail -n "$1" -- "$2" | tail -c "$3"'
# Forget a job's output ($2); keep its small end record and cancel marker (so a
# repeated /exitstatus gives the same verdict) and prune those in $1 older than a week.
FORGET = ('rm -f -- "$2"; find "$1" -maxdepth 1 -type f '
          '\\( -name "*.end" -o -name "*.cancelled" \\) -mtime +7 -delete')
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
    output: str
    end_record: str
    cancel_marker: str


def job_paths(scratch: str, name: str) -> JobPaths:
    """The files of the job named ``name`` (a validated Jarvice job name)."""
    base = f"{directory(scratch)}/{name}"
    return JobPaths(directory(scratch), base + ".out", base + ".end", base + ".cancelled")


@dataclass(frozen=True)
class EndRecord:
    """How a job ended, as its batch script recorded it (times in epoch seconds)."""

    state: str
    exit_code: int
    start: int
    end: int

    @property
    def seconds(self) -> int:
        """How long the batch script ran."""
        return max(0, self.end - self.start)


def parse_end_record(text: str) -> EndRecord | None:
    """The ``EndRecord`` in an end record file, or None if it is incomplete or garbled."""
    values = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            values[key.strip()] = value.strip()
    try:
        record = EndRecord(values["STATE"], int(values["EXIT_CODE"]),
                           int(values["START"]), int(values["END"]))
    except (KeyError, ValueError):
        return None
    return record if record.state in END_STATES else None


def parse_listing(data: bytes, listed: str) -> list[DirEntry]:
    """Entries from ``LIST_DIRECTORY``'s records, as paths below the root; ``listed`` is
    the directory that was listed."""
    entries = []
    for record in data.decode("utf-8", "replace").split("\0"):
        if not record:
            continue
        mtime, size, kind, name = record.split("\t", 3)
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
    service account's). ``listing_root`` is the directory ``listing`` may look into.
    """

    def __init__(self, commands: LoggedRemote, scratch: str, listing_root: str = ""):
        self._commands = commands
        self._scratch = scratch
        self.listing_root = listing_root

    def paths(self, ref: JobRef) -> JobPaths:
        """Where the files of job ``ref`` are."""
        return job_paths(self._scratch, ref.name)

    def setup(self, name: str) -> Setup:
        """What must run before the job ``name`` is submitted (see ``PREPARE``)."""
        paths = job_paths(self._scratch, name)
        return Setup(PREPARE, (posixpath.dirname(paths.output) or ".", paths.end_record,
                               paths.cancel_marker))

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
        return parse_end_record(result.stdout.decode("utf-8", "replace")) if result.ok else None

    async def cancelled(self, ref: JobRef, user: str | None = None) -> bool:
        """Whether ``/terminate`` left its marker for the job."""
        result = await self._commands.run(["test", "-e", self.paths(ref).cancel_marker],
                                          user=user)
        return result.ok

    async def mark_cancelled(self, ref: JobRef, user: str | None = None) -> None:
        """Leave the cancel marker (before cancelling: a pending job writes no record)."""
        await self._commands.run(["touch", "--", self.paths(ref).cancel_marker], user=user)

    async def exist(self, ref: JobRef, user: str | None = None) -> bool:
        """Whether ``user`` has any of the job's files (how an owner is found)."""
        paths = self.paths(ref)
        result = await self._commands.run(
            ["test", "-e", paths.end_record, "-o", "-e", paths.output, "-o", "-e",
             paths.cancel_marker], user=user)
        return result.ok

    async def forget(self, ref: JobRef, user: str | None = None) -> None:
        """Remove the job's output (see ``FORGET``)."""
        paths = self.paths(ref)
        await self._commands.run(["sh", "-c", FORGET, "sh", posixpath.dirname(paths.output)
                                  or ".", paths.output, paths.cancel_marker], user=user)

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
