"""Test doubles shared by the unit tests."""

import sqlite3

from treq.testing import RequestTraversalAgent
from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from dssr.connectors.interfaces import IConnector
from dssr.edge import make_site
from dssr.errors import NotFound
from dssr.jobs import (
    AppAccess,
    DirEntry,
    ExitStatus,
    JobInfo,
    ListedJob,
    RunStatus,
    Submitted,
)


def served(api) -> RequestTraversalAgent:
    """An in-memory ``IAgent`` for ``api`` (a ``DSSRApi``), served through DSSR's own
    Site as in production (the HTTP edge decides on heads and frames every answer;
    treq builds a plain Site). Call ``flush()`` to move bytes."""
    agent = RequestTraversalAgent(api.resource())
    agent._serverFactory = make_site(api, reactor=agent._serverFactory.reactor)
    return agent


class MemoryPool:
    """``adbapi.ConnectionPool``'s calls on an in-memory SQLite, answered at once: the
    dummy connector's database without threads, for tests driven by a ``Clock``."""

    def __init__(self, schema: str):
        self._db = sqlite3.connect(":memory:")
        self._db.execute(schema)

    def runQuery(self, sql, params=()):
        return succeed(self._db.execute(sql, params).fetchall())

    def runOperation(self, sql, params=()):
        with self._db:
            self._db.execute(sql, params)
        return succeed(None)

    def runInteraction(self, work):
        with self._db:
            result = work(self._db.cursor())
        return succeed(result)


@implementer(IConnector)
class FakeConnector:
    """An in-memory connector with fixed answers; records every call it gets.

    Set ``failure`` to an exception to make every call fail with it.
    """

    service = None

    def __init__(self):
        self.calls = []
        self.failure = None
        self.jobs = {}  # jobid -> (name, state)
        self.next_id = 100

    def _answer(self, name, value, *args):
        self.calls.append((name, *args))
        if self.failure is not None:
            return fail(self.failure)
        return succeed(value)

    def submit(self, request):
        for jobid, (name, state) in self.jobs.items():
            if name == request.name and state in ("PENDING", "RUNNING"):
                return self._answer("submit", Submitted(jobid, "fscript"), request)
        jobid = str(self.next_id)
        self.next_id += 1
        self.jobs[jobid] = (request.name, "PENDING")
        return self._answer("submit", Submitted(jobid, "fscript"), request)

    def _listed(self, state):
        return [ListedJob(name, jobid) for jobid, (name, s) in self.jobs.items() if s == state]

    def running(self):
        return self._answer("running", self._listed("RUNNING"))

    def queued(self):
        return self._answer("queued", self._listed("PENDING"))

    def _known(self, ref):
        return self.jobs.get(ref.jobid, (None,))[0] == ref.name

    def runstatus(self, ref):
        status = RunStatus(("node1", "node2"), "01:02:03") if self._known(ref) else None
        return self._answer("runstatus", status, ref)

    def exitstatus(self, ref):
        if not self._known(ref):
            return self._answer("exitstatus", ExitStatus(-9), ref)
        del self.jobs[ref.jobid]
        return self._answer("exitstatus", ExitStatus(0, "00:00:10", "COMPLETED", "hello"), ref)

    def terminate(self, ref):
        return self._answer("terminate", None, ref)

    def release(self, ref):
        return self._answer("release", None, ref)

    def events(self, ref):
        return self._answer("events", f"JobId={ref.jobid} JobState=RUNNING", ref)

    def request_info(self, ref):
        return self._answer("request_info", JobInfo(url="https://example.invalid/"), ref)

    def request_connect(self, ref):
        access = AppAccess("https://app.invalid/?t=1", "pw") if ref.jobid == "101" else None
        return self._answer("request_connect", access, ref)

    def interactive_app(self, jobid, number):
        return self._answer("interactive_app", None, jobid, number)

    def request_tail(self, ref, lines):
        text = "".join(f"line {n}\n" for n in range(1, 201)[-lines:]) if self._known(ref) else None
        return self._answer("request_tail", text, ref, lines)

    def request_screenshot(self, ref):
        return self._answer("request_screenshot", None, ref)

    def request_pvcls(self, path, details):
        if path == "/missing":
            return fail(NotFound("no directory /missing", field="qs.path"))
        entries = [DirEntry("a", True, 1700000000, 4096),
                   DirEntry("a/b.txt", False, 1700000001, 12)]
        return self._answer("request_pvcls", entries, path, details)

    def gc(self):
        return self._answer("gc", None)

    def ready(self):
        return self._answer("ready", None)

    def metrics(self):
        return ()
