"""A complete, minimal DSSR connector: jobs run as plain processes on the DSSR host.

It is the worked example of docs/connectors.rst, small enough to read in one sitting
and complete enough to pass the API's tests (tests/test_example_connector.py). A real
connector for OAR, PBS or HTCondor has the same shape: turn each call into commands
for the scheduler (through ``IRemote`` to reach a login node), parse their output,
raise ``Unavailable`` when the scheduler cannot be asked.

Run it with ``twistd -n dssr --connector example_connector`` (with docs/ on
PYTHONPATH). It executes upstream's script on this host: a toy, not for production.
"""

import os
import signal
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from zope.interface import implementer

from dssr.connectors.interfaces import IConnector
from dssr.errors import NotFound, NotYet
from dssr.executors.template import literal_text
from dssr.jobs import (
    UNKNOWN_EXIT,
    ExitStatus,
    JobInfo,
    ListedJob,
    RunStatus,
    Submitted,
    hms,
)


@dataclass
class Job:
    """One job: its process, output so far, and how it ended."""

    name: str
    started: float
    process: object = None
    output: list = field(default_factory=list)
    ended: float | None = None
    state: str = "RUNNING"
    done: Deferred = field(default_factory=Deferred)


class JobProcess(ProcessProtocol):
    """Collects a job's output and records its end."""

    def __init__(self, job: Job, clock):
        self.job = job
        self.clock = clock

    def outReceived(self, data: bytes):
        self.job.output.append(data.decode("utf-8", "replace"))

    errReceived = outReceived

    def processEnded(self, reason):
        code = reason.value.exitCode
        if self.job.state != "CANCELLED":
            self.job.state = "COMPLETED" if code == 0 else "FAILED"
        self.job.ended = self.clock.seconds()
        self.job.done.callback(None)


RC = {"COMPLETED": 0, "FAILED": 1, "CANCELLED": -15}


@implementer(IConnector)
class LocalProcessConnector:
    """Each job is ``bash -c <its script>`` on this host; nothing is ever queued."""

    service = None  # no connection or file to open and close with the process

    def __init__(self, reactor):
        self.reactor = reactor
        self.jobs: dict[str, Job] = {}
        self.next_id = 1

    def _job(self, ref) -> Job | None:
        job = self.jobs.get(ref.jobid)
        return job if job is not None and job.name == ref.name else None

    async def submit(self, request):
        for jobid, job in self.jobs.items():
            if job.name == request.name and job.ended is None:
                return Submitted(jobid)  # idempotent: a retried submit starts nothing
        jobid, self.next_id = str(self.next_id), self.next_id + 1
        job = self.jobs[jobid] = Job(request.name, self.reactor.seconds())
        script = literal_text(request.script)  # {DOWNSTREAM_PARAMETERS} left empty
        job.process = self.reactor.spawnProcess(
            JobProcess(job, self.reactor), "/bin/bash", ["bash", "-c", script],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        return Submitted(jobid)

    async def running(self):
        return [ListedJob(j.name, jobid) for jobid, j in self.jobs.items() if j.ended is None]

    async def queued(self):
        return []

    async def runstatus(self, ref):
        job = self._job(ref)
        if job is None:
            return None
        return RunStatus(("localhost",), hms((job.ended or self.reactor.seconds())
                                             - job.started))

    async def exitstatus(self, ref):
        job = self._job(ref)
        if job is None:
            return UNKNOWN_EXIT
        if job.ended is None:  # still running: upstream asks again (503, Retry-After)
            raise NotYet(f"job {ref.jobid} is running, it has not ended: ask again")
        del self.jobs[ref.jobid]  # the only garbage collection point
        return ExitStatus(RC[job.state], hms(job.ended - job.started), job.state,
                          "".join(job.output))

    async def terminate(self, ref):
        job = self._job(ref)
        if job is not None and job.ended is None:
            job.state = "CANCELLED"
            job.process.signalProcess(signal.SIGTERM)
            await job.done

    async def release(self, ref):
        return None  # nothing is ever held

    async def events(self, ref):
        job = self._job(ref)
        if job is None:
            raise NotFound(f"no job {ref.jobid}")
        return f"job {ref.jobid} ({job.name}): {job.state}"

    async def request_info(self, ref):
        return JobInfo()

    async def request_connect(self, ref):
        return None

    async def interactive_app(self, jobid, number):
        return None

    async def request_tail(self, ref, lines):
        job = self._job(ref)
        if job is None or not job.output:
            return None
        return "".join(line + "\n" for line in "".join(job.output).splitlines()[-lines:])

    async def request_screenshot(self, ref):
        return None

    async def request_pvcls(self, path, details):
        raise NotFound("this connector lists no directories", field="qs.path")

    async def gc(self):
        return None  # always reachable: it is this host

    async def ready(self):
        return None

    def metrics(self):
        return ()  # nothing beyond the API's own figures


def make_connector(settings, reactor):
    """What ``--connector example_connector`` calls."""
    return LocalProcessConnector(reactor)
