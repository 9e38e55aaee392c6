"""The embedded connector: a pretend cluster whose jobs live in SQLite.

Jobs go queued → running → completed or failed on a timetable set by the
``dummy_*`` settings, so the whole API can be tried with no cluster at all. Each
job's timetable is stored with it and its state is computed from the clock, so a
restarted process picks up exactly where the last one stopped.
"""

import os
import random
import sqlite3
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from dssr import compose
from dssr.connectors.dummy_app import PretendApp
from dssr.connectors.interfaces import IConnector
from dssr.errors import Forbidden, NotFound, NotYet, Unavailable
from dssr.executors import singularity
from dssr.executors.config import ExecutorSettings
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
    hms,
)
from dssr.proxy.tokens import AccessTokens, derive_key
from dssr.proxy.urls import JobsAddresses, parse_jobs_domain
from dssr.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    jobid INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    nodes INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    queued_for REAL NOT NULL,
    runs_for REAL NOT NULL,
    held INTEGER NOT NULL,
    fails INTEGER NOT NULL,
    interactive INTEGER NOT NULL,
    terminated_at REAL
)
"""
COLUMNS = ("jobid", "name", "number", "nodes", "queued_at", "queued_for", "runs_for",
           "held", "fails", "interactive", "terminated_at")
RC = {"COMPLETED": 0, "FAILED": 1, "CANCELLED": -15}
RETENTION = 3 * 86400.0  # seconds an ended job is kept (output_retention's default)


@dataclass(frozen=True)
class DummyJob:
    """One stored job and its timetable."""

    jobid: int
    name: str
    number: int
    nodes: int
    queued_at: float
    queued_for: float
    runs_for: float
    held: bool
    fails: bool
    interactive: bool
    terminated_at: float | None

    def state(self, now: float) -> str:
        """Slurm-style state name at time ``now``."""
        if self.terminated_at is not None and self.terminated_at <= now:
            return "CANCELLED"
        if self.held or now < self.start:
            return "PENDING"
        if now < self.end:
            return "RUNNING"
        return "FAILED" if self.fails else "COMPLETED"

    @property
    def start(self) -> float:
        return self.queued_at + self.queued_for

    @property
    def end(self) -> float:
        return self.start + self.runs_for

    def started(self, now: float) -> bool:
        """Whether the job had started running by ``now``."""
        cancelled_first = self.terminated_at is not None and self.terminated_at <= self.start
        return not self.held and not cancelled_first and self.start <= now

    def ran_for(self, now: float) -> float:
        """Seconds the job has spent running by ``now``."""
        if not self.started(now):
            return 0.0
        stop = min(now, self.end, self.terminated_at if self.terminated_at is not None else now)
        return stop - self.start

    def node_names(self) -> tuple[str, ...]:
        return tuple(f"dummy{index}" for index in range(self.nodes))

    def output(self, now: float) -> list[str]:
        """The lines the job has printed by ``now`` (none before it starts)."""
        if not self.started(now):
            return []
        ran = self.ran_for(now)
        state = self.state(now)
        # A pretend job: it runs no command, so it prints what it is and then the time.
        lines = [f"started on {' '.join(self.node_names())} (the dummy cluster runs no command)"]
        lines += [f"working, second {second}" for second in range(1, int(ran) + 1)]
        if state in RC:
            lines.append(state.lower())
        return lines


def _rowid(ref: JobRef) -> int:
    """The database key of ``ref`` (job ids like ``12_3`` match no dummy job)."""
    return int(ref.jobid) if ref.jobid.isdigit() else -1


def _ended_at(job: DummyJob) -> float:
    """When the ended ``job`` ended."""
    return min(job.end, job.terminated_at if job.terminated_at is not None else job.end)


def _init_connection(connection: sqlite3.Connection) -> None:
    connection.execute(SCHEMA)


class Database(Service):
    """The SQLite file, opened as a one-thread connection pool while the service runs
    (and the pretend ``app``, if any, stopped with it)."""

    def __init__(self, path: str, app: PretendApp | None = None):
        self.path = path
        self.pool: adbapi.ConnectionPool | None = None
        self._app = app

    def startService(self) -> None:
        super().startService()
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.pool = adbapi.ConnectionPool(
            "sqlite3", self.path, check_same_thread=False, cp_min=1, cp_max=1,
            cp_openfun=_init_connection,
        )
        self.pool.start()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        return self._app.stop() if self._app is not None else None

    def usable(self) -> adbapi.ConnectionPool:
        """The pool, or ``Unavailable`` when the service is not running."""
        if self.pool is None:
            raise Unavailable("the dummy connector is not running")
        return self.pool


@implementer(IConnector)
class DummyConnector:
    """``IConnector`` over a SQLite file; the database is only touched in a thread.

    ``service`` opens and closes the database with the process.
    """

    def __init__(self, database: str, clock: IReactorTime, data_root: str, queued_time: float = 5.0,
                 running_time: float = 10.0, failing_percent: int = 50,
                 interactive: bool = False, rng: random.Random | None = None,
                 jobs: JobsAddresses | None = None, app: PretendApp | None = None,
                 executor: ExecutorSettings | None = None, retention: float = RETENTION):
        self.service = Database(database, app)
        self._executor = executor or ExecutorSettings()
        self._retention = retention
        self._jobs = jobs
        self._app = app
        self._clock = clock
        self._data_root = data_root
        self._queued_time = queued_time
        self._running_time = running_time
        self._failing_percent = failing_percent
        self._interactive = interactive
        self._rng = rng or random.Random()  # noqa: S311 - picks pretend failures, not secrets
        os.makedirs(data_root, exist_ok=True)

    # -- storage --------------------------------------------------------------

    async def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[DummyJob]:
        try:
            rows = await self.service.usable().runQuery(sql, params)
        except sqlite3.Error as error:
            raise Unavailable(f"dummy database error: {error}") from None
        return [DummyJob(**dict(zip(COLUMNS, row, strict=True))) for row in rows]

    async def _change(self, sql: str, params: tuple[object, ...] = ()) -> None:
        try:
            await self.service.usable().runOperation(sql, params)
        except sqlite3.Error as error:
            raise Unavailable(f"dummy database error: {error}") from None

    async def _find(self, ref: JobRef, by_name: bool = True) -> DummyJob | None:
        """The job of ``ref``'s id; with ``by_name``, ``NotFound`` (field ``jobid``)
        when that id is another name's, as the Slurm connector answers."""
        jobs = await self._query(
            f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE jobid = ?",  # noqa: S608
            (_rowid(ref),))
        if jobs and by_name and jobs[0].name != ref.name:
            raise NotFound(f"job {ref.jobid} is not the Jarvice job {ref.name}", field="jobid")
        return jobs[0] if jobs else None

    async def _all(self) -> list[DummyJob]:
        return await self._query(f"SELECT {', '.join(COLUMNS)} FROM jobs ORDER BY jobid")  # noqa: S608

    # -- IConnector -----------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submitted:
        # The Slurm connector's checks and refusals: a script it would refuse is a 400.
        singularity.prepare(request.script, request.name, request.nodes, request.held,
                            self._executor, number=request.number)
        now = self._clock.seconds()
        for job in await self._all():
            if job.name == request.name and job.state(now) in ("PENDING", "RUNNING"):
                return Submitted(str(job.jobid))

        def insert(transaction: adbapi.Transaction) -> int:
            transaction.execute(
                "INSERT INTO jobs (name, number, nodes, queued_at, queued_for, runs_for, "
                "held, fails, interactive) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.name, request.number, request.nodes, now, self._queued_time,
                 self._running_time, request.held,
                 self._rng.random() * 100 < self._failing_percent, self._interactive),
            )
            rowid: int = transaction.lastrowid
            return rowid

        return Submitted(str(await self.service.usable().runInteraction(insert)))

    async def _listed(self, state: str) -> list[ListedJob]:
        now = self._clock.seconds()
        return [ListedJob(job.name, str(job.jobid)) for job in await self._all()
                if job.state(now) == state]

    async def running(self) -> list[ListedJob]:
        return await self._listed("RUNNING")

    async def queued(self) -> list[ListedJob]:
        return await self._listed("PENDING")

    async def runstatus(self, ref: JobRef) -> RunStatus | None:
        job = await self._find(ref)
        if job is None:
            return None
        now = self._clock.seconds()
        nodes = job.node_names() if job.started(now) else ()
        return RunStatus(nodes, hms(job.ran_for(now)))

    async def exitstatus(self, ref: JobRef) -> ExitStatus:
        job = await self._find(ref)
        if job is None:
            return UNKNOWN_EXIT
        now = self._clock.seconds()
        state = job.state(now)
        if state not in RC:
            raise NotYet(f"job {ref.jobid} is {state}, it has not ended: ask again")
        # Kept (until gc after the retention): a repeated call answers the same.
        return ExitStatus(RC[state], hms(job.ran_for(now)), state, "\n".join(job.output(now)))

    async def terminate(self, ref: JobRef) -> None:
        await self._find(ref)
        await self._change(
            "UPDATE jobs SET terminated_at = ? WHERE jobid = ? AND name = ? "
            "AND terminated_at IS NULL",
            (self._clock.seconds(), _rowid(ref), ref.name),
        )

    async def release(self, ref: JobRef) -> None:
        job = await self._find(ref)
        if job is None or job.state(self._clock.seconds()) != "PENDING":
            raise NotFound(f"no job {ref.jobid} named {ref.name} in the queue")
        await self._change(
            "UPDATE jobs SET held = 0, queued_at = ? WHERE jobid = ? AND name = ? AND held = 1",
            (self._clock.seconds(), _rowid(ref), ref.name),
        )

    async def _known(self, ref: JobRef) -> DummyJob:
        job = await self._find(ref)
        if job is None:
            raise NotFound(f"no job {ref.jobid} named {ref.name}")
        return job

    async def events(self, ref: JobRef) -> str:
        job = await self._known(ref)
        now = self._clock.seconds()
        return (f"JobId={job.jobid} JobName=jarvice_{job.name} JobState={job.state(now)} "
                f"NumNodes={job.nodes} RunTime={hms(job.ran_for(now))} "
                f"Held={'yes' if job.held else 'no'}")

    async def request_info(self, ref: JobRef) -> JobInfo:
        return JobInfo(url=self._url(await self._known(ref), ref))

    def _url(self, job: DummyJob, ref: JobRef) -> str:
        """A running interactive job's URL: through the proxy when there is one."""
        if not job.interactive or job.state(self._clock.seconds()) != "RUNNING":
            return ""
        if self._jobs is None or self._app is None:
            return f"https://dummy.invalid/{job.name}/"
        return self._jobs.address(ref.jobid, ref.number)

    async def request_tail(self, ref: JobRef, lines: int) -> str | None:
        job = await self._known(ref)
        output = job.output(self._clock.seconds())
        return "".join(line + "\n" for line in output[-lines:]) if output else None

    async def request_connect(self, ref: JobRef) -> AppAccess | None:
        url = self._url(await self._known(ref), ref)
        return AppAccess(url, "dummy") if url else None

    async def interactive_app(self, jobid: str, number: int) -> InteractiveApp | None:
        job = await self._find(JobRef("", number, jobid), by_name=False)
        if (self._app is None or job is None or job.number != number
                or not self._url(job, JobRef(job.name, number, jobid))):
            return None
        return InteractiveApp(self._app.endpoint())

    async def request_screenshot(self, ref: JobRef) -> bytes | None:
        await self._known(ref)
        return None

    async def request_pvcls(self, path: str, details: bool) -> list[DirEntry]:
        return await deferToThread(list_directory, self._data_root, path)

    async def gc(self) -> None:
        """Forget ended jobs ``retention`` seconds after their end."""
        now = self._clock.seconds()
        for job in await self._all():
            if job.state(now) in RC and _ended_at(job) + self._retention <= now:
                await self._change("DELETE FROM jobs WHERE jobid = ?", (job.jobid,))

    async def ready(self) -> None:
        await self._all()

    def metrics(self) -> tuple[()]:
        return ()  # the API's own figures say all there is


def list_directory(root: str, path: str) -> list[DirEntry]:
    """Entries of ``root + path``, refusing anything that resolves outside ``root``."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, path.lstrip("/")))
    if target != real_root and not target.startswith(real_root + os.sep):
        raise Forbidden("path is outside the listable roots", field="qs.path")
    try:
        with os.scandir(target) as scan:
            entries = []
            for entry in scan:
                info = entry.stat(follow_symlinks=False)
                relative = os.path.relpath(entry.path, real_root)
                entries.append(DirEntry(relative, entry.is_dir(follow_symlinks=False),
                                        int(info.st_mtime), info.st_size))
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no directory {path}", field="qs.path") from None
    return sorted(entries, key=lambda entry: entry.path)


def make_connector(settings: Settings, reactor: Any) -> DummyConnector:
    """Build the dummy connector from ``settings``."""
    return DummyConnector(
        database=os.path.join(settings.state_dir, "dummy.sqlite"),
        clock=reactor,
        data_root=os.path.join(settings.state_dir, "data"),
        queued_time=settings.dummy_queued_time,
        running_time=settings.dummy_running_time,
        failing_percent=settings.dummy_failing_percent,
        interactive=settings.dummy_interactive,
        jobs=JobsAddresses(parse_jobs_domain(settings.jobs_domain),
                           AccessTokens(derive_key(settings.server_key)))
        if settings.jobs_domain else None,
        app=PretendApp(reactor) if settings.dummy_interactive else None,
        executor=compose.executor_settings(settings),
        retention=settings.output_retention,
    )
