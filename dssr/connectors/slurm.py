"""The Slurm connector: the legacy API's semantics on Slurm.

It asks Slurm through an ``ISlurm`` and reaches the job files through ``JobFiles``;
it builds neither (``dssr.compose`` does). The cluster is the database: the queue
comes from one snapshot shared by every caller, a job's owner from the queue (or from
whose home holds its files once Slurm forgot it), and how it ended from the verdict
chain (``dssr.connectors.verdict``). Nothing that matters is kept on the DSSR host,
so DSSR can be restarted at any moment.
"""

from collections import Counter
from collections.abc import Iterator

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from dssr.connectors.interfaces import IConnector
from dssr.connectors.verdict import coordinate, this_jobs_record, verdict
from dssr.coroutines import KeyedLocks, concurrently, settled
from dssr.errors import BadRequest, Forbidden, NotFound, NotYet, Unavailable
from dssr.executors import singularity
from dssr.executors.config import ExecutorSettings
from dssr.identity import IdentityMap
from dssr.jobfiles import AppRecord, JobFiles, ListingRefused
from dssr.jobs import (
    UNKNOWN_EXIT,
    AppAccess,
    DirEntry,
    ExitStatus,
    InteractiveApp,
    JobInfo,
    JobRef,
    ListedJob,
    RunStatus,
    SubmitRequest,
    Submitted,
    app_ports,
)
from dssr.proxy.urls import JobsAddresses
from dssr.samples import Sample
from dssr.slurm.interfaces import ISlurm, QueueJob, Refused
from dssr.slurm.snapshot import Snapshot
from dssr.slurm.states import Category, category

_log = Logger(namespace="dssr.slurm")

# The most lines of output /exitstatus returns.
OUTPUT_LINES = 10000
# Seconds between two prunes of collected job files (on /gc).
PRUNE_INTERVAL = 60.0


@implementer(IConnector)
class SlurmConnector:
    """``IConnector`` on Slurm (``slurm``, an ``ISlurm``) and the job files (``files``).

    ``identities`` (an ``IdentityMap``, or None) maps bearers to cluster users;
    ``service_user`` is the service account's name; the queue snapshot is reused for
    ``snapshot_ttl`` seconds of ``clock``, and served while it refreshes up to
    ``snapshot_max_stale`` seconds old (``Snapshot``). ``jobs`` (``JobsAddresses``, or
    None when interactive jobs are not published) builds interactive jobs' addresses.
    """

    def __init__(self, slurm: ISlurm, files: JobFiles, clock: IReactorTime,
                 executor_settings: ExecutorSettings, identities: IdentityMap | None,
                 snapshot_ttl: float, service_user: str = "", snapshot_max_stale: float = 0.0,
                 jobs: JobsAddresses | None = None):
        self._jobs = jobs
        self.slurm = slurm
        self.files = files
        self.service = slurm.service
        self.snapshot = Snapshot(lambda: ensureDeferred(slurm.queue()), clock, snapshot_ttl,
                                 snapshot_max_stale)
        self._executor_settings = executor_settings
        self._identities = identities
        self._service_user = service_user
        self._submits = KeyedLocks()
        self._clock = clock
        self._bearer_ignored = False
        self._pruned_at: float | None = None
        self._indexed_jobs: list[QueueJob] | None = None
        self._index: dict[str, QueueJob] = {}

    # -- the queue and the job's owner ------------------------------------------

    async def _queued_job(self, ref: JobRef, fresh: bool = False) -> QueueJob | None:
        """The job as the snapshot shows it, if Slurm has that id; ``NotFound`` when
        that id is not DSSR's job of that name (another name, or a stranger's)."""
        job = self._by_id(await self.snapshot.get(max_age=0 if fresh else None)).get(ref.jobid)
        if job is None:
            return None
        if job.name != ref.name or not self._ours(job.owner):
            raise NotFound(f"job {ref.jobid} is not the Jarvice job {ref.name}", field="jobid")
        return job

    def _ours(self, owner: str) -> bool:
        """Whether a job of ``owner`` can be DSSR's: the service account's or a mapped
        user's (anyone's when the service account's name is not known)."""
        if not self._service_user or owner == self._service_user:
            return True
        return self._identities is not None and bool(self._identities.by_cluster_user(owner))

    def _by_id(self, jobs: list[QueueJob]) -> dict[str, QueueJob]:
        """The snapshot indexed by job id, built once per snapshot (a poll pass asks
        for every job: a scan each time would make the pass quadratic)."""
        if jobs is not self._indexed_jobs:
            self._indexed_jobs, self._index = jobs, {job.jobid: job for job in jobs}
        return self._index

    def _as(self, owner: str | None) -> str | None:
        """The ``user`` to act as the job's owner (None: the service account)."""
        if not owner or owner == self._service_user or self._identities is None:
            return None
        return owner if self._identities.by_cluster_user(owner) else None

    def _mapped_users(self) -> list[str]:
        """The mapped users' cluster accounts (none without ID mapping)."""
        if self._identities is None:
            return []
        return [user.cluster_user for user in self._identities.users.values()]

    async def _find_owner(self, ref: JobRef) -> str | None:
        """The account whose home holds the job's files, once Slurm forgot the job."""
        mapped = self._mapped_users()
        if not mapped:
            return None
        candidates = [None, *mapped]
        found = await settled(*(self.files.exist(ref, user) for user in candidates))
        owners = [user for user, has in zip(candidates, found, strict=True) if has is True]
        if owners:
            return owners[0]
        failed = [error for error in found if isinstance(error, Exception)]
        if failed:
            raise failed[0]
        return None

    # -- submit -----------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submitted:
        user = None
        if self._identities is not None:
            user = self._identities.for_bearer(request.bearer).cluster_user
        elif request.bearer and not self._bearer_ignored:
            self._bearer_ignored = True
            _log.warn("submit {name} carries a bearer, but no ID mapping is configured: it "
                      "runs as the service account, as every job will (set id_mapping_file "
                      "to run jobs as their users; said once)", name=request.name)
        secrets = [request.bearer] if request.bearer else []
        job = singularity.prepare(request.script, request.name, request.nodes, request.held,
                                  self._executor_settings, secrets, request.number)
        # One submit of a name at a time in this process; across replicas, the claim.
        return await self._submits.run(request.name,
                                       lambda: self._submit(request.name, job, user))

    async def _submit(self, name: str, job: singularity.SingularityJob,
                      user: str | None) -> Submitted:
        """Submit ``job`` under the name's claim on the cluster: a name claimed by an
        earlier submit (any replica's) answers with that job instead."""
        try:
            jobid = await self.slurm.submit(job.batch, user, self.files.setup(name))
        except Refused as refusal:
            raise BadRequest(str(refusal), field="hpc_script") from None
        finally:
            self.snapshot.invalidate()
        _log.info("submit {name}: job {jobid}", name=name, jobid=jobid)
        return Submitted(jobid, job.fscript)

    # -- listing and status -------------------------------------------------------

    async def _listed(self, *wanted: Category) -> list[ListedJob]:
        return [ListedJob(job.name, job.jobid) for job in await self.snapshot.get()
                if category(job.state) in wanted and self._ours(job.owner)]

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

    # -- the end of a job ---------------------------------------------------------

    async def exitstatus(self, ref: JobRef) -> ExitStatus:
        job = await self._queued_job(ref, fresh=True)
        if job is not None and category(job.state) != Category.ENDED:
            # Upstream met the job between two snapshots (PENDING -> RUNNING): it has not
            # ended, so nothing is collected and upstream asks again.
            raise NotYet(f"job {ref.jobid} is {job.state}, it has not ended: ask again")
        user = self._as(job.owner if job is not None else await self._find_owner(ref))
        if job is None and user is not None:
            job = await self._seen_by_owner(ref, user)
        output, record, cancelled = await concurrently(
            self.files.tail(ref, OUTPUT_LINES, user),
            self.files.end_record(ref, user),
            self.files.cancelled(ref, user),
        )
        anyones = None if job is not None else await self.slurm.accounting(ref.jobid, user)
        accounted = this_jobs_record(ref, anyones)
        status = verdict(ref.jobid, job, accounted, record, cancelled, self._service_user)
        if status is UNKNOWN_EXIT and output is None:
            # Nothing says the id was ever this job: no file of it is touched.
            if anyones is not None:
                raise NotFound(f"job {ref.jobid} is not the Jarvice job {ref.name}: "
                               f"accounting has it as {anyones.name}", field="jobid")
            return status
        await self.files.collected(ref, user)
        return ExitStatus(status.rc, status.totaltime, status.state or "UNKNOWN", output or "")

    async def _seen_by_owner(self, ref: JobRef, user: str) -> QueueJob | None:
        """The job as its owner's queue shows it, when the service account's does not:
        ended, or else ``Unavailable`` (it must not be called ended)."""
        job = await self.slurm.job(ref.jobid, user)
        if job is None or job.name != ref.name:
            return None
        if category(job.state) != Category.ENDED:
            raise Unavailable(f"job {ref.jobid} is {job.state} for {user} but the service "
                              f"account {self._service_user} does not see it: with "
                              f"PrivateData=jobs it must {coordinate(self._service_user)}")
        return job

    # -- acting on a job ----------------------------------------------------------

    async def terminate(self, ref: JobRef) -> None:
        job = await self._queued_job(ref, fresh=True)
        if job is None:
            await self._seen_ending(ref)
        if job is None or category(job.state) == Category.ENDED:
            return
        user = self._as(job.owner)
        # The marker first: a job cancelled while pending never runs its end-record trap.
        await self.files.mark_cancelled(ref, user)
        try:
            await self.slurm.cancel(ref.jobid, user)
        except Refused as refusal:
            raise Forbidden(str(refusal)) from None
        finally:
            self.snapshot.invalidate()

    async def release(self, ref: JobRef) -> None:
        job = await self._queued_job(ref, fresh=True)
        if job is None:
            await self._seen_ending(ref)
        if job is None or category(job.state) == Category.ENDED:
            raise NotFound(f"no job {ref.jobid} named {ref.name} in the queue")
        try:
            await self.slurm.release(ref.jobid, self._as(job.owner))
        except Refused as refusal:
            raise (NotFound if refusal.unknown_job else Forbidden)(str(refusal)) from None
        finally:
            self.snapshot.invalidate()

    async def _seen_ending(self, ref: JobRef) -> None:
        """Return when a job missing from the queue may be taken for ended; else
        ``Unavailable`` naming the fix.

        Decided from what the service account sees, logging in as nobody else: no mapped
        user (nothing is hidden), a mapped user's job in its queue (``PrivateData`` hides
        none from it), or the job's own end record or cancel marker in its files.
        """
        mapped = set(self._mapped_users()) - {self._service_user}
        if not mapped or any(job.owner in mapped for job in await self.snapshot.get()):
            return
        record, cancelled = await concurrently(self.files.end_record(ref),
                                               self.files.cancelled(ref))
        if record is not None or cancelled:
            return
        raise Unavailable(f"DSSR cannot tell whether job {ref.jobid} ended: the service "
                          f"account {self._service_user} sees no job of the mapped users; "
                          f"with PrivateData=jobs it must {coordinate(self._service_user)}")

    async def events(self, ref: JobRef) -> str:
        if await self._queued_job(ref) is None:
            raise NotFound(f"no job {ref.jobid} named {ref.name} in the queue")
        return await self.slurm.show(ref.jobid)

    # -- /request/... -------------------------------------------------------------

    async def request_info(self, ref: JobRef) -> JobInfo:
        app = await self._app(ref)
        return JobInfo(url=self._app_url(ref, app[0])) if app else JobInfo()

    async def request_connect(self, ref: JobRef) -> AppAccess | None:
        app = await self._app(ref)
        return AppAccess(self._app_url(ref, app[0]), app[0].password) if app else None

    async def interactive_app(self, jobid: str, number: int) -> InteractiveApp | None:
        job = self._by_id(await self.snapshot.get()).get(jobid)
        if job is None:
            return None
        app = await self._app(JobRef(job.name, number, jobid), job)
        if app is None:
            return None
        record, user = app
        return InteractiveApp(self.files.app_endpoint(record, user))

    async def _app(self, ref: JobRef,
                   job: QueueJob | None = None) -> tuple[AppRecord, str | None] | None:
        """``(AppRecord, owner)`` of the running job ``ref`` whose app listens, or None.

        The record is the job's own writing: it is believed only for a node the job was
        given and a port DSSR chose for it (``app_ports``), so a job rewriting it can at
        worst break its own app, never reach elsewhere from the login node.
        """
        if self._jobs is None:
            return None
        job = job or await self._queued_job(ref)
        if job is None or category(job.state) != Category.RUNNING:
            return None
        user = self._as(job.owner)
        record = await self.files.app_record(ref, user)
        if record is None:
            return None
        if record.node not in job.nodes or record.port not in app_ports(job.name, ref.number):
            _log.warn("job {jobid}'s app record names {node}:{port}, not one of its nodes "
                      "and ports: ignored", jobid=ref.jobid, node=record.node,
                      port=record.port)
            return None
        return record, user

    def _app_url(self, ref: JobRef, record: AppRecord) -> str:
        assert self._jobs is not None  # _app finds an app only when jobs are published
        return self._jobs.address(ref.jobid, ref.number, record.url_template, record.password)

    async def request_tail(self, ref: JobRef, lines: int) -> str | None:
        job = await self._queued_job(ref)
        user = self._as(job.owner if job is not None else await self._find_owner(ref))
        return await self.files.tail(ref, lines, user)

    async def request_screenshot(self, ref: JobRef) -> bytes | None:
        return None

    async def request_pvcls(self, path: str, details: bool) -> list[DirEntry]:
        try:
            return await self.files.listing(path)
        except ListingRefused as refusal:
            kind = NotFound if refusal.missing else Forbidden
            raise kind(str(refusal), field="qs.path") from None

    # -- health and /metrics --------------------------------------------------------

    async def gc(self) -> None:
        await self.slurm.ping()
        await self._prune()

    async def _prune(self) -> None:
        """Remove collected job files past their retention, at most once per
        ``PRUNE_INTERVAL`` (``JobFiles.prune_all``: never failing ``/gc``)."""
        now = self._clock.seconds()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_INTERVAL:
            self._pruned_at = now
            await self.files.prune_all([None, *self._mapped_users()])

    async def ready(self) -> None:
        why = self.slurm.unready()
        if why:
            raise Unavailable(why)
        await self.slurm.ping()

    def metrics(self) -> Iterator[Sample]:
        """Samples for ``/metrics``: the queue snapshot, jobs by state, the transport."""
        snapshot = self.snapshot
        yield Sample("dssr_queue_snapshots", "counter", "squeue calls made", snapshot.fetches)
        yield Sample("dssr_queue_snapshot_shared", "counter",
                     "Queue reads served without a new squeue call", snapshot.shared)
        yield Sample("dssr_queue_snapshot_stale_served", "counter",
                     "Queue reads answered from a snapshot past its TTL while it refreshed",
                     snapshot.stale_served)
        yield Sample("dssr_queue_snapshot_age_seconds", "gauge",
                     "Age of the cached queue snapshot (-1: none)",
                     -1 if snapshot.age is None else snapshot.age)
        states = Counter(job.state for job in snapshot.cached or ())
        for state, count in sorted(states.items()):
            yield Sample("dssr_jobs", "gauge", "Jarvice jobs in the last snapshot, by state",
                         count, {"state": state})
        yield from self.slurm.metrics()
