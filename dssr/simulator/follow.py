"""Following jobs the way upstream does: poll the lists, look closer, collect the end.

Every ``interval`` seconds: one ``/running`` and one ``/queued`` for all jobs; a queued
job is shown as such (a held one is released the first time it is seen there); a
running one gets ``/runstatus`` (nodes, elapsed) and a ``/request/.../tail`` of which
only the new lines are printed; a job in neither list has ended, and ``/exitstatus``
gives its ``rc`` and the rest of its output. As upstream, the simulator calls
``/exitstatus`` exactly once per job: that is DSSR's only clean-up point.
"""

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from dssr.simulator import display as show
from dssr.simulator.client import TAIL_LINES, DSSRClient
from dssr.simulator.display import Display
from dssr.simulator.job import OUTPUT_WINDOW, SimJob

TERMINATE_GRACE = 60.0  # seconds terminated jobs get to leave the lists after --timeout


class Follower:
    """Follows submitted jobs to their end over ``client``, printing on ``display``.

    ``clock`` (an ``IReactorTime``) paces the polls; ``timeout`` (seconds from the
    follower's creation, None: none) is when unfinished jobs are terminated.
    """

    def __init__(self, client: DSSRClient, clock: IReactorTime, display: Display, interval: float,
                 timeout: float | None = None):
        self._client = client
        self._clock = clock
        self._display = display
        self._interval = interval
        self._timeout = timeout
        self.started = clock.seconds()
        self.jobs: list[SimJob] = []

    async def submit(self, name: str, number: int, nodes: int, cores: int, command: str,
                     hpc_script: dict[str, Any], held: bool) -> SimJob:
        """Submit one job and start following it."""
        ref = await self._client.submit(name, number, nodes, hpc_script, held)
        job = SimJob(ref, self._clock.seconds(), held=held)
        self.jobs.append(job)
        self._display.line(show.submitted_line(job, nodes, cores, command))
        return job

    def live(self) -> list[SimJob]:
        """The jobs without an exit status yet."""
        return [job for job in self.jobs if job.state != "ended"]

    async def follow(self) -> None:
        """Poll until every job has ended (or, after ``timeout``, until the grace is up)."""
        while self.live():
            if self._timeout is not None:
                overdue = self._clock.seconds() - self.started - self._timeout
                if overdue >= TERMINATE_GRACE:
                    return
                if overdue >= 0:
                    await self._terminate_all(self._timeout)
            await self.poll()
            if self.live():
                self._display.progress(
                    show.progress_text(self.jobs, self._clock.seconds(), self.started))
                await deferLater(self._clock, self._interval, lambda: None)

    async def poll(self) -> None:
        """One round of upstream's polling over all live jobs."""
        # Queued first: a job that starts between the two calls is then in one of
        # them, not in neither (which would take it for ended).
        queued = await self._client.listed("queued")
        running = await self._client.listed("running")
        for job in self.live():
            key = (job.ref.name, job.ref.jobid)
            if key in running:
                await self._running(job)
            elif key in queued:
                await self._queued(job)
            else:
                await self._ended(job)

    async def _queued(self, job: SimJob) -> None:
        if job.state != "queued":
            job.state = "queued"
            self._display.line(show.queued_line(job))
        if job.held and not job.released and not job.terminated:
            await self._client.release(job.ref)
            job.released = True
            self._display.line(show.released_line(job))

    async def _running(self, job: SimJob) -> None:
        status = await self._client.runstatus(job.ref)
        if status is not None:
            job.nodes, job.elapsed = status.nodes, status.elapsed
        if job.state != "running":
            job.state = "running"
            self._display.line(show.running_line(job))
        text = await self._client.tail(status.path if status else job.ref.path)
        if text:
            self._output(job, job.output.new_lines(text, TAIL_LINES))

    async def _ended(self, job: SimJob) -> None:
        result = await self._client.exitstatus(job.ref)
        if result is None:  # still in the queue after all: the next poll sees it
            return
        job.result = result
        job.state = "ended"
        self._output(job, job.output.new_lines(job.result.stdout, OUTPUT_WINDOW, final=True))
        self._display.line(show.ended_line(job))

    def _output(self, job: SimJob, lines: list[str]) -> None:
        self._display.lines(show.output_lines(job, lines, many=len(self.jobs) > 1))

    async def _terminate_all(self, timeout: float) -> None:
        for job in self.live():
            if not job.terminated:
                self._display.line(show.terminating_line(job, timeout))
                await self._client.terminate(job.ref)
                job.terminated = True
