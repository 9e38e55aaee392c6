"""The Slurm connector: every legacy call as Slurm commands over ``IRemote``.

The cluster is the database (DESIGN.md): the queue comes from one shared ``squeue``
snapshot, a job's owner from its ``%u``, and how it ended from Slurm, accounting, or
the end record its batch script leaves next to its output. Nothing that matters is
kept on the DSSR host, so DSSR can be restarted at any moment.
"""

import os
import posixpath
import shlex
from collections import Counter

from twisted.application.service import IService
from twisted.internet.defer import DeferredLock, FirstError, ensureDeferred, gatherResults
from twisted.logger import Logger
from zope.interface import implementer

from dssr.connectors.interfaces import IConnector
from dssr.errors import BadRequest, Forbidden, NotFound, Unavailable
from dssr.executors import singularity
from dssr.executors.config import ExecutorSettings
from dssr.executors.slurm_batch import JobFiles, job_files, parse_end_record
from dssr.identity import IdentityMap, MappingError, parse_mapping, unverified_tokens_refusal
from dssr.jobs import (
    UNKNOWN_EXIT,
    DirEntry,
    ExitStatus,
    JobInfo,
    JobRef,
    ListedJob,
    RunStatus,
    SubmitRequest,
    Submitted,
    hms,
)
from dssr.metrics import Sample
from dssr.remote.interfaces import RemoteError, RemoteResult
from dssr.remote.local import LocalRemote
from dssr.remote.ssh import SSHRemote
from dssr.settings import SettingsError
from dssr.slurm import commands
from dssr.slurm.parse import (
    JOB_PREFIX,
    AccountingRecord,
    QueueJob,
    SlurmOutputError,
    accounting_disabled,
    parse_ping,
    parse_sacct,
    parse_sbatch,
    parse_snapshot,
)
from dssr.slurm.snapshot import Snapshot
from dssr.slurm.states import Category, category, exit_code

_log = Logger(namespace="dssr.slurm")

OUTPUT_LINES = 10000
OUTPUT_BYTES = 16 * 1024 * 1024
# Constant shell programs; request data only ever reaches them as quoted arguments.
# Submit: make the output directory, drop a previous run's end record and cancel
# marker, then exec sbatch (its argv follows).
SUBMIT = 'mkdir -p -- "$1" && rm -f -- "$2" "$3" && shift 3 && exec "$@"'
# Collect: forget a job's output; keep its small end record and cancel marker (so a
# repeated /exitstatus gives the same verdict) and prune those older than a week.
FORGET = ('rm -f -- "$2"; find "$1" -maxdepth 1 -type f '
          '\\( -name "*.end" -o -name "*.cancelled" \\) -mtime +7 -delete')
LIST_DIRECTORY = """\
root=$(realpath -e -- "$1") || exit 3
dir=$(realpath -e -- "$1/$2") || exit 4
case "$dir/" in "${root%/}"/*) ;; *) exit 5 ;; esac
[ -d "$dir" ] || exit 4
cd -- "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%T@\\t%s\\t%y\\t%P\\0'
"""
CONTROLLER_DOWN = ("unable to contact slurm controller", "socket timed out",
                   "slurm_load_jobs error: unable to contact", "connection refused")


def cancel_marker(files: JobFiles) -> str:
    """The file terminate leaves beside the output: proof of a cancel if Slurm forgets."""
    return files.end_record.removesuffix(".end") + ".cancelled"


def first_line(data: bytes) -> str:
    """The first non-empty line of a command's output, for error messages."""
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:300]
    return "(no output)"


def controller_down(result: RemoteResult) -> bool:
    """Whether a failed Slurm command failed because slurmctld did not answer."""
    text = result.stderr.decode("utf-8", "replace").lower()
    return any(sign in text for sign in CONTROLLER_DOWN)


def command_text(argv, longest: int = 120) -> str:
    """``argv`` as a shell line for the debug log, each argument cut to ``longest``."""
    return shlex.join(arg if len(arg) <= longest else arg[:longest] + "..." for arg in argv)


def parse_listing(data: bytes, directory: str) -> list[DirEntry]:
    """Entries from ``LIST_DIRECTORY``'s NUL-separated ``mtime\\tsize\\ttype\\tname`` lines."""
    entries = []
    for record in data.decode("utf-8", "replace").split("\0"):
        if not record:
            continue
        mtime, size, kind, name = record.split("\t", 3)
        path = posixpath.join(directory.strip("/"), name)
        entries.append(DirEntry(path, kind == "d", int(float(mtime)), int(size)))
    return sorted(entries, key=lambda entry: entry.path)


def _first_error(failure):
    failure.trap(FirstError)
    return failure.value.subFailure


async def concurrently(*coroutines) -> list:
    """Await coroutines side by side; the first to fail raises its own error."""
    return await gatherResults([ensureDeferred(c) for c in coroutines],
                               consumeErrors=True).addErrback(_first_error)


class KeyedLocks:
    """One ``DeferredLock`` per key, dropped again when nobody holds or waits for it."""

    def __init__(self):
        self._locks: dict[str, DeferredLock] = {}

    async def run(self, key: str, work):
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            return await work()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)


@implementer(IConnector)
class SlurmConnector:
    """``IConnector`` on a Slurm cluster reached through an ``IRemote``."""

    def __init__(self, remote, clock, executor_settings, identities=None,
                 snapshot_ttl: float = 2.0, listing_root: str = "", service_user: str = ""):
        self.remote = remote
        self.service = remote if IService.providedBy(remote) else None
        self.clock = clock
        self.snapshot = Snapshot(lambda: ensureDeferred(self._read_queue()), clock,
                                 snapshot_ttl)
        self._executor_settings = executor_settings
        self._identities = identities
        self._listing_root = listing_root
        self._service_user = service_user
        self._submits = KeyedLocks()
        self._indexed_jobs: list[QueueJob] | None = None
        self._index: dict[str, QueueJob] = {}
        self._accounting = True

    # -- plumbing ---------------------------------------------------------------

    async def _run(self, argv, stdin: bytes | None = None, user: str | None = None):
        """Run ``argv``; a transport failure is ``Unavailable`` (the cluster is not there).

        Each command is logged at debug. Only argv is: it never holds a secret, while
        stdin (the batch script, with registry credentials) is never logged.
        """
        started = self.clock.seconds()
        who = user or self._service_user or "service account"
        try:
            result = await self.remote.run(argv, stdin=stdin, user=user)
        except RemoteError as error:
            _log.debug("{user}: {command} -> {error}", user=who, command=command_text(argv),
                       error=error)
            raise Unavailable(f"cannot run {argv[0]} on the login node: {error}") from None
        _log.debug("{user}: {command} -> exit {status} in {ms:.1f} ms", user=who,
                   command=command_text(argv),
                   status=result.signal if result.status is None else result.status,
                   ms=(self.clock.seconds() - started) * 1000)
        return result

    async def _slurm(self, argv, user: str | None = None) -> RemoteResult:
        """Run a Slurm command; a controller that does not answer is ``Unavailable``."""
        result = await self._run(argv, user=user)
        if not result.ok and controller_down(result):
            raise Unavailable(f"{argv[0]}: Slurm controller not answering: "
                              f"{first_line(result.stderr)}")
        return result

    async def _read_queue(self) -> list[QueueJob]:
        result = await self._run(commands.squeue_snapshot())
        if not result.ok:
            raise Unavailable(f"squeue failed (exit {result.status}): "
                              f"{first_line(result.stderr)}")
        try:
            return parse_snapshot(result.stdout.decode("utf-8", "replace"))
        except SlurmOutputError as error:
            raise Unavailable(f"squeue output not understood: {error}") from None

    async def _queued_job(self, ref: JobRef, fresh: bool = False) -> QueueJob | None:
        job = self._by_id(await self.snapshot.get(max_age=0 if fresh else None)).get(ref.jobid)
        return job if job is not None and job.name == ref.name else None

    def _by_id(self, jobs: list[QueueJob]) -> dict[str, QueueJob]:
        """The snapshot indexed by job id, built once per snapshot (a poll pass asks
        for every job: a scan each time would make the pass quadratic)."""
        if jobs is not self._indexed_jobs:
            self._indexed_jobs, self._index = jobs, {job.jobid: job for job in jobs}
        return self._index

    def _as(self, owner: str | None) -> str | None:
        """The ``user`` argument for ``IRemote.run`` to act as the job's owner."""
        if not owner or owner == self._service_user or self._identities is None:
            return None
        return owner if self._identities.by_cluster_user(owner) else None

    def _files(self, ref: JobRef) -> JobFiles:
        return job_files(self._executor_settings.job_scratch_dir, ref.name)

    # -- submit -------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submitted:
        user = None
        if self._identities is not None:
            user = self._identities.for_bearer(request.bearer).cluster_user
        secrets = [request.bearer] if request.bearer else []
        job = singularity.prepare(request.script, request.name, request.nodes, request.held,
                                  self._executor_settings, secrets)
        return await self._submits.run(request.name, lambda: self._submit(request, job, user))

    async def _submit(self, request: SubmitRequest, job, user: str | None) -> Submitted:
        for queued in await self.snapshot.get(max_age=0):
            if queued.name == request.name and category(queued.state) != Category.ENDED:
                _log.info("submit {name}: already live as job {jobid}, not submitted again",
                          name=request.name, jobid=queued.jobid)
                return Submitted(queued.jobid, job.fscript)
        directory = posixpath.dirname(job.files.output) or "."
        result = await self._run(["sh", "-c", SUBMIT, "sh", directory, job.files.end_record,
                                  cancel_marker(job.files), *job.argv],
                                 stdin=job.batch_script.encode("utf-8"), user=user)
        self.snapshot.invalidate()
        if not result.ok:
            if controller_down(result):
                raise Unavailable(f"sbatch: Slurm controller not answering: "
                                  f"{first_line(result.stderr)}")
            raise BadRequest(f"sbatch refused the job: {first_line(result.stderr)}",
                             field="hpc_script")
        try:
            jobid = parse_sbatch(result.stdout.decode("utf-8", "replace"))
        except SlurmOutputError as error:
            raise Unavailable(str(error)) from None
        _log.info("submit {name}: job {jobid}", name=request.name, jobid=jobid)
        return Submitted(jobid, job.fscript)

    # -- the queue --------------------------------------------------------------------

    async def _listed(self, *wanted: Category) -> list[ListedJob]:
        return [ListedJob(job.name, job.jobid) for job in await self.snapshot.get()
                if category(job.state) in wanted]

    async def running(self) -> list[ListedJob]:
        # A state this Slurm is newer than: keep the job tracked rather than ended.
        return await self._listed(Category.RUNNING, Category.UNKNOWN)

    async def queued(self) -> list[ListedJob]:
        return await self._listed(Category.QUEUED)

    async def runstatus(self, ref: JobRef) -> RunStatus | None:
        job = await self._queued_job(ref)
        if job is None:
            return None
        return RunStatus(job.nodes, job.elapsed)

    # -- the end of a job ---------------------------------------------------------------

    async def exitstatus(self, ref: JobRef) -> ExitStatus:
        job = await self._queued_job(ref, fresh=True)
        if job is not None and category(job.state) != Category.ENDED:
            # Upstream asks only once a job left both lists; if it is still live, say
            # so without collecting (and deleting) its output.
            return ExitStatus(-9, job.elapsed, job.state, "")
        owner = job.owner if job is not None else await self._find_owner(ref)
        user = self._as(owner)
        if job is None and user is not None:
            job = await self._seen_by_owner(ref, user)
        files = self._files(ref)
        output, record, marker = await concurrently(
            self._tail(files.output, OUTPUT_LINES, user),
            self._run(["cat", "--", files.end_record], user=user),
            self._run(["test", "-e", cancel_marker(files)], user=user),
        )
        status = await self._verdict(ref, job, record, marker, user)
        if status is UNKNOWN_EXIT and not output.ok:
            return status
        text = output.stdout.decode("utf-8", "replace") if output.ok else ""
        await self._run(["sh", "-c", FORGET, "sh", posixpath.dirname(files.output) or ".",
                         files.output, cancel_marker(files)], user=user)
        return ExitStatus(status.rc, status.totaltime, status.state or "UNKNOWN", text)

    async def _seen_by_owner(self, ref: JobRef, user: str) -> QueueJob | None:
        """The job as its owner's ``squeue`` shows it, when the service account's does
        not: ended, or else ``Unavailable`` (it must not be called ended).

        With ``PrivateData=jobs`` the service account sees other users' jobs only as a
        coordinator of their accounts; the owner always sees its own.
        """
        result = await self._slurm(commands.squeue_job(ref.jobid), user=user)
        try:
            jobs = parse_snapshot(result.stdout.decode("utf-8", "replace")) if result.ok else []
        except SlurmOutputError as error:
            raise Unavailable(f"squeue output not understood: {error}") from None
        job = next((job for job in jobs if job.jobid == ref.jobid and job.name == ref.name),
                   None)
        if job is not None and category(job.state) != Category.ENDED:
            raise Unavailable(
                f"job {ref.jobid} is {job.state} for {user} but the service account "
                f"{self._service_user} does not see it: with PrivateData=jobs it must "
                f"coordinate the job's account (sacctmgr add coordinator account=ACCOUNT "
                f"names={self._service_user})")
        return job

    async def _verdict(self, ref: JobRef, job: QueueJob | None, record: RemoteResult,
                       marker: RemoteResult, user: str | None) -> ExitStatus:
        """How the job ended: Slurm's queue, else accounting, else the end record, else
        the cancel marker, else unknown (-9)."""
        if job is not None:
            return ExitStatus(exit_code(job.state), job.elapsed, job.state)
        accounted = await self._accounting_record(ref, user)
        if accounted is not None and category(accounted.state) == Category.ENDED:
            return ExitStatus(exit_code(accounted.state), accounted.elapsed, accounted.state)
        ended = parse_end_record(record.stdout.decode("utf-8", "replace")) if record.ok else None
        if ended is not None:
            return ExitStatus(exit_code(ended.state), hms(ended.seconds), ended.state)
        if accounted is not None:
            # Live in accounting, absent from the queue: the service account cannot
            # see it (PrivateData=jobs), or accounting lost track of it. Calling it
            # ended would collect a running job's output.
            raise Unavailable(
                f"job {ref.jobid} is {accounted.state} in Slurm's accounting but not in "
                f"the queue: with PrivateData=jobs the service account must coordinate "
                f"the job's account (sacctmgr add coordinator account=ACCOUNT "
                f"names={self._service_user or 'USER'}); else see `sacctmgr show "
                f"runawayjobs`")
        if marker.ok:
            return ExitStatus(-15, "00:00:00", "CANCELLED")
        return UNKNOWN_EXIT

    async def _accounting_record(self, ref: JobRef, user: str | None) -> AccountingRecord | None:
        """The job's record in Slurm's accounting, or None when there is none to be had.

        Asked as the job's owner, who sees its own jobs whatever PrivateData hides. When
        sacct fails (slurmdbd down) the end record decides, with a warning in the log.
        """
        if not self._accounting:
            return None
        result = await self._run(commands.sacct_job(ref.jobid), user=user)
        if not result.ok:
            if accounting_disabled(result.stderr.decode("utf-8", "replace")):
                _log.info("sacct: accounting is disabled; using end records from now on")
                self._accounting = False
            else:
                _log.warn("sacct failed for job {jobid} (exit {status}): {error}; its end "
                          "record decides how it ended", jobid=ref.jobid,
                          status=result.status, error=first_line(result.stderr))
            return None
        try:
            accounted = parse_sacct(result.stdout.decode("utf-8", "replace"))
        except SlurmOutputError as error:
            _log.warn("{error}; job {jobid}'s end record decides how it ended",
                      error=error, jobid=ref.jobid)
            return None
        if accounted is not None and accounted.name != JOB_PREFIX + ref.name:
            _log.warn("sacct: job {jobid} is named {other!r} in accounting, not "
                      "{prefix}{name}: an older job of that id; not using its record",
                      jobid=ref.jobid, other=accounted.name, prefix=JOB_PREFIX, name=ref.name)
            return None
        return accounted

    async def _find_owner(self, ref: JobRef) -> str | None:
        """The account whose home holds the job's end record, once Slurm forgot the job."""
        if self._identities is None or not self._identities.users:
            return None
        files = self._files(ref)
        candidates = [None] + [user.cluster_user for user in self._identities.users.values()]
        probe = ["test", "-e", files.end_record, "-o", "-e", files.output, "-o", "-e",
                 cancel_marker(files)]
        results = await gatherResults([
            ensureDeferred(self._run(probe, user=user)).addErrback(lambda failure: failure.value)
            for user in candidates])
        found = [user for user, result in zip(candidates, results, strict=True)
                 if isinstance(result, RemoteResult) and result.ok]
        if found:
            return found[0]
        failed = [result for result in results if not isinstance(result, RemoteResult)]
        if failed:
            raise failed[0]
        return None

    # -- acting on a job ------------------------------------------------------------------

    async def _live_job(self, ref: JobRef) -> QueueJob | None:
        """The job as a fresh snapshot shows it, if Slurm has it and it has not ended."""
        job = await self._queued_job(ref, fresh=True)
        return job if job is not None and category(job.state) != Category.ENDED else None

    async def terminate(self, ref: JobRef) -> None:
        job = await self._live_job(ref)
        if job is None:
            return
        user = self._as(job.owner)
        # The marker first: a job cancelled while pending never runs its end-record trap.
        await self._run(["touch", "--", cancel_marker(self._files(ref))], user=user)
        result = await self._slurm(commands.scancel(ref.jobid), user=user)
        self.snapshot.invalidate()
        if not result.ok:
            raise Forbidden(f"scancel refused: {first_line(result.stderr)}")

    async def release(self, ref: JobRef) -> None:
        job = await self._live_job(ref)
        if job is None:
            raise NotFound(f"no job {ref.jobid} named {ref.name} in the queue")
        result = await self._slurm(commands.scontrol_release(ref.jobid), user=self._as(job.owner))
        self.snapshot.invalidate()
        if not result.ok:
            if b"invalid job id" in result.stderr.lower():
                raise NotFound(f"job {ref.jobid} left the queue")
            raise Forbidden(f"scontrol release refused: {first_line(result.stderr)}")

    async def events(self, ref: JobRef) -> str:
        result = await self._slurm(commands.scontrol_show_job(ref.jobid))
        data = result.stdout if result.ok else result.stderr
        return data.decode("utf-8", "replace")

    # -- /request/... ---------------------------------------------------------------------

    async def request_info(self, ref: JobRef) -> JobInfo:
        return JobInfo()

    async def request_tail(self, ref: JobRef, lines: int) -> str | None:
        job = await self._queued_job(ref)
        user = self._as(job.owner if job is not None else await self._find_owner(ref))
        result = await self._tail(self._files(ref).output, lines, user)
        return result.stdout.decode("utf-8", "replace") if result.ok else None

    async def _tail(self, path: str, lines: int, user: str | None) -> RemoteResult:
        return await self._run(commands.tail(path, lines, OUTPUT_BYTES), user=user)

    async def request_screenshot(self, ref: JobRef) -> bytes | None:
        return None

    async def request_pvcls(self, path: str, details: bool) -> list[DirEntry]:
        if not self._listing_root:
            raise Forbidden("no listable root is configured (setting pvcls_root)",
                            field="qs.path")
        result = await self._run(["sh", "-c", LIST_DIRECTORY, "sh", self._listing_root,
                                  path.lstrip("/") or "."])
        if result.status == 5:
            raise Forbidden("path is outside the listable root", field="qs.path")
        if result.status in (3, 4):
            raise NotFound(f"no directory {path}", field="qs.path")
        if not result.ok:
            raise Unavailable(f"listing {path} failed: {first_line(result.stderr)}")
        return parse_listing(result.stdout, path)

    # -- what /metrics shows ---------------------------------------------------------------

    def metrics(self):
        """Samples for ``/metrics``: the queue snapshot, jobs by state, the transport."""
        snapshot = self.snapshot
        yield Sample("dssr_queue_snapshots", "counter", "squeue calls made", snapshot.fetches)
        yield Sample("dssr_queue_snapshot_shared", "counter",
                     "Queue reads served without a new squeue call", snapshot.shared)
        yield Sample("dssr_queue_snapshot_age_seconds", "gauge",
                     "Age of the cached queue snapshot (-1: none)",
                     -1 if snapshot.age is None else snapshot.age)
        states = Counter(job.state for job in snapshot.cached or ())
        for state, count in sorted(states.items()):
            yield Sample("dssr_jobs", "gauge", "Jarvice jobs in the last snapshot, by state",
                         count, {"state": state})
        report = getattr(self.remote, "metrics", None)
        if report is not None:
            yield from report()

    # -- health -----------------------------------------------------------------------------

    async def gc(self) -> None:
        result = await self._slurm(commands.scontrol_ping())
        if not result.ok or not parse_ping(result.stdout.decode("utf-8", "replace")):
            raise Unavailable(f"Slurm controller is not up: {first_line(result.stdout)}")

    async def ready(self) -> None:
        state, error = self.remote.state()
        if state != "connected":
            raise Unavailable(f"SSH {state}" + (f": {error}" if error else ""))
        await self.gc()


def executor_settings(settings) -> ExecutorSettings:
    """The singularity executor's slice of the settings."""
    return ExecutorSettings(
        system_registry=settings.system_registry,
        system_repo_base=settings.system_repo_base,
        images_tag=settings.images_tag,
        local_registry=settings.local_registry,
        local_repo_base=settings.local_repo_base,
        registry_proxy_port=settings.registry_proxy_port,
        registry_proxy_repos=settings.registry_proxy_repos,
        init_docker_username=settings.init_docker_username,
        init_docker_password=settings.init_docker_password,
        job_scratch_dir=settings.job_scratch_dir,
        job_global_scratch_dir=settings.job_global_scratch_dir,
        job_global_registries=settings.job_global_registries,
        singularity_tmpdir=settings.singularity_tmpdir,
        singularity_overlay_size=settings.singularity_overlay_size,
        singularity_verbose=settings.singularity_verbose,
        http_proxy=settings.http_proxy,
        https_proxy=settings.https_proxy,
        no_proxy=settings.no_proxy,
        interactive=bool(settings.jobs_domain),
    )


def _read(path: str, what: str) -> bytes:
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            return handle.read()
    except OSError as error:
        raise SettingsError(f"{what} {path}: {error.strerror}") from None


def identities(settings) -> IdentityMap | None:
    """The ID mapping the settings name, or None when every job runs as the service account."""
    if not settings.id_mapping_file:
        return None
    refusal = unverified_tokens_refusal(settings)
    if refusal:
        raise SettingsError(refusal)
    text = _read(settings.id_mapping_file, "id_mapping_file").decode("utf-8", "replace")
    try:
        users = parse_mapping(text, settings.id_mapping_file)
    except MappingError as error:
        raise SettingsError(str(error)) from None
    public_key = None
    if settings.jwt_public_key_file:
        public_key = _read(settings.jwt_public_key_file, "jwt_public_key_file")
    return IdentityMap(users, public_key, settings.jwt_audience, settings.jwt_issuer,
                       trusted_upstream=bool(settings.server_key))


def make_connector(settings, reactor) -> SlurmConnector:
    """Build the Slurm connector and its transport from ``settings``."""
    mapping = identities(settings)
    if settings.remote == "local":
        if mapping is not None:
            raise SettingsError("id_mapping_file needs remote=ssh: a local transport "
                                "cannot act as other users")
        remote = LocalRemote.from_settings(settings, reactor)
    else:
        keys = {user.cluster_user: user.private_key
                for user in (mapping.users.values() if mapping else ())}
        remote = SSHRemote.from_settings(settings, reactor, user_keys=keys)
    return SlurmConnector(remote, reactor, executor_settings(settings), mapping,
                          settings.snapshot_ttl, settings.pvcls_root, settings.ssh_user)
