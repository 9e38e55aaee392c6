"""Faults under load against the real rig: the cluster is the database and failure is
loud (docs/architecture.rst, Decisions behind the shape).

While upstream-style pollers run, sshd (listener and established connections) and
then slurmctld go away and come back; a DSSR process is SIGKILLed mid-lifecycle and
started again; 64 clients hammer one DSSR process. What must hold: the outage shows
as 503, never as a wrong 200 — above all ``/running`` and ``/queued`` never leave out
a job Slurm still has, or upstream would declare it ended and collect it; DSSR comes
back by itself within the reconnect backoff; every job still ends with the right rc
and output.

Every answer is judged against ground truth: ``squeue`` run locally as root, sampled
all along. A sample saw the queue at some moment between its start and its end, and a
job only moves forward (pending, running, ended), so a job in the same list in a
sample ended before a request and in one started after its answer was in that list
all the while, and any snapshot DSSR could have answered from must show it there.
"""

import json
import os
import re
import shlex
import shutil
from collections import Counter
from dataclasses import dataclass

import treq
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, ensureDeferred, gatherResults
from twisted.internet.error import ConnectError, ProcessTerminated
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool, ResponseFailed

from dssr.remote.link import Policy
from tests.integration.process import DSSRProcess
from tests.integration.rig import CLUSTER, RigCase, job_script, rig_control, rig_environment

_log = Logger(namespace="tests.faults")

CTL = os.path.join(CLUSTER, "ctl.sh")
POLLERS = 4
# Added to every time bound: scheduling, SSH and HTTP latency.
SLACK = 1.0
# The longest an outage is kept up waiting for DSSR to answer 503.
OUTAGE_LIMIT = 60.0
ELAPSED = re.compile(r"^\d{2,}:\d\d:\d\d$")
NO_ANSWER = (ConnectError, ResponseFailed, CancelledError)

QUEUED, RUNNING, ENDED = "queued", "running", "ended"
# squeue's state codes (those this rig shows) by the upstream list a job belongs in.
CODES = {"PD": QUEUED, "CF": QUEUED, "R": RUNNING, "CG": RUNNING,
         **dict.fromkeys(["CD", "F", "CA", "TO", "NF", "OOM", "DL", "PR", "BF"], ENDED)}
RANK = {QUEUED: 0, RUNNING: 1, ENDED: 2}


def termination(state: str) -> str:
    return f"<< termination state: {state} -- see STDOUT for job errors >>"


@dataclass(frozen=True)
class Job:
    """A job to run and how it must end; its output holds ``out-<label>``."""

    label: str
    body: str
    rc: int
    state: str
    held: bool = False


@dataclass(frozen=True)
class Sample:
    """One local ``squeue``: the queue as it was at some moment in [started, finished]."""

    started: float
    finished: float
    states: dict[str, str]  # jobid -> QUEUED, RUNNING, ENDED or a code this file does not know

    def category(self, jobid: str) -> str:
        return self.states.get(jobid, ENDED)  # gone from squeue: purged after it ended


class GroundTruth:
    """What Slurm really holds: squeue run on this host as root, not through DSSR.

    Only jobs submitted before sampling started may be judged with ``before``/``after``
    (a job not yet submitted looks ended).
    """

    def __init__(self, environment: dict[str, str]):
        self._environment = {**os.environ, "SLURM_CONF": environment["SLURM_CONF"]}
        self.samples: list[Sample] = []
        self.sampling = False
        self.longest = 0.0  # the longest squeue run, failed ones included

    async def command(self, *argv: str) -> tuple[int, str]:
        out, _, code = await getProcessOutputAndValue(
            shutil.which(argv[0]), argv[1:], env=self._environment)
        return code, out.decode("utf-8", "replace")

    async def sample(self) -> Sample | None:
        """The queue now, or None when squeue fails (slurmctld down)."""
        started = reactor.seconds()
        code, out = await self.command("squeue", "--noheader", "--all", "--states=all",
                                       "--format=%i|%t")
        self.longest = max(self.longest, reactor.seconds() - started)
        if code != 0:
            return None
        states = {}
        for line in out.split():
            jobid, _, state = line.partition("|")
            states[jobid] = CODES.get(state, state)
        return Sample(started, reactor.seconds(), states)

    async def run(self) -> None:
        """Sample until ``sampling`` is turned off."""
        self.sampling = True
        while self.sampling:
            sample = await self.sample()
            if sample is not None:
                self.samples.append(sample)
            await sleep(0.2)

    def latest(self, jobid: str) -> str | None:
        return self.samples[-1].category(jobid) if self.samples else None

    def before(self, jobid: str, moment: float) -> str | None:
        """The job's category in the last sample that ended by ``moment``."""
        earlier = [sample for sample in self.samples if sample.finished <= moment]
        return earlier[-1].category(jobid) if earlier else None

    def after(self, jobid: str, moment: float) -> str | None:
        """The job's category in the first sample that started at or after ``moment``."""
        later = (sample for sample in self.samples if sample.started >= moment)
        first = next(later, None)
        return first.category(jobid) if first else None

    async def steps(self) -> set[str]:
        """Ids of the job steps Slurm runs now (``123.0``), empty when squeue fails."""
        code, out = await self.command("squeue", "--noheader", "--all", "--steps",
                                       "--format=%i")
        return set(out.split()) if code == 0 else set()

    async def wait_idle(self, limit: float = 60) -> None:
        """Wait until no job holds a CPU (the rig has two; jobs cancelled by an earlier
        test may still be completing), so the next ones start as they are submitted."""
        for _ in range(int(limit / 0.25)):
            sample = await self.sample()
            if sample is not None and RUNNING not in sample.states.values():
                return
            await sleep(0.25)
        raise RuntimeError(f"the rig's node stayed busy for {limit:g}s")

    async def jobs_named(self, name: str) -> list[str]:
        """Ids of the Slurm jobs DSSR started for upstream job ``name``."""
        code, out = await self.command("squeue", "--noheader", "--all", "--states=all",
                                       f"--name=jarvice_{name}", "--format=%i")
        if code != 0:
            raise RuntimeError(f"squeue failed: {out}")
        return out.split()

    async def wait_no_sbatch(self, user: str, limit: float = 30) -> None:
        """Wait until no ``sbatch`` of ``user`` runs: one a killed DSSR left running has
        submitted its job or given up."""
        for _ in range(int(limit / 0.1)):
            code, _ = await self.command("pgrep", "-u", user, "-x", "sbatch")
            if code == 1:
                return
            await sleep(0.1)
        raise RuntimeError(f"an sbatch of {user} still ran after {limit:g}s")

    async def cancel(self, jobids: list[str]) -> None:
        """scancel as root: leave no job of the test in the shared rig's queue."""
        if jobids:
            await self.command("scancel", *jobids)


@dataclass(frozen=True)
class Call:
    """One HTTP call and its answer (``code`` None: no answer at all)."""

    path: str
    jobid: str | None
    sent: float
    received: float
    code: int | None
    body: object

    def __str__(self) -> str:
        job = f" {self.jobid}" if self.jobid else ""
        return (f"{self.path}{job} sent {self.sent:.2f} answered {self.received:.2f} "
                f"-> {self.code} {self.body!r:.200}")


class Upstream:
    """Polls like Jarvice upstream: /queued, /running, then /runstatus of every job."""

    def __init__(self, url: str, refs: list[dict], pool: HTTPConnectionPool):
        self.url = url
        self.refs = refs
        self.pool = pool
        self.calls: list[Call] = []
        self.passes: list[tuple[Call, Call]] = []
        self.polling = False

    async def call(self, path: str, ref: dict | None = None) -> Call:
        sent = reactor.seconds()
        data = {"args": json.dumps(ref)} if ref is not None else None
        try:
            response = await treq.post(self.url + path, data=data, pool=self.pool, timeout=60)
            text = (await response.content()).decode("utf-8", "replace")
            code = response.code
        except NO_ANSWER as error:
            text, code = repr(error), None
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        call = Call(path, ref["jobid"] if ref else None, sent, reactor.seconds(), code, body)
        self.calls.append(call)
        return call

    async def probe(self, every: float) -> None:
        """Ask /running every ``every`` s without waiting for earlier answers, as a timer
        driven upstream would, so calls are made all through an outage."""
        asked = []
        while self.polling:
            asked.append(ensureDeferred(self.call("/running")))
            await sleep(every)
        await gatherResults(asked)

    async def poll(self) -> None:
        # /queued before /running: a job starting between the two calls then shows in
        # both, never in neither (asked the other way round, it could be in neither).
        while self.polling:
            queued = await self.call("/queued")
            running = await self.call("/running")
            self.passes.append((queued, running))
            for ref in self.refs:
                await self.call("/runstatus", ref)
            await sleep(0.1)


def sleep(seconds: float):
    return deferLater(reactor, seconds, lambda: None)


def seen_from(call: Call, ttl: float, squeue: float) -> float:
    """A moment before the queue DSSR answered ``call`` from was read.

    DSSR answers from a cached snapshot (its squeue started less than ``ttl`` before
    the call: the snapshot TTL, or snapshot_max_stale while a refresh runs) or from a
    squeue that ended as the answer left, so started at most the longest squeue run
    (``squeue``) before. squeue can print the queue long after it read it: against a
    slurmctld stopping under it, one read the jobs, then spent 9 s (MessageTimeout, 10 s
    then) failing to reach it again and still exited 0.
    """
    return min(call.sent - ttl, call.received - squeue) - SLACK


def misjudged(upstream: Upstream, truth: GroundTruth, jobids: list[str],
              ttl: float) -> list[str]:
    """Every 200 answer ground truth proves wrong for one of ``jobids``."""
    wrong = []
    for call in upstream.calls:
        if call.code != 200:
            continue
        if call.path in ("/queued", "/running"):
            which = call.path[1:]
            listed = {jobid for _, jobid in call.body}
            for jobid in jobids:
                before = truth.before(jobid, seen_from(call, ttl, truth.longest))
                after = truth.after(jobid, call.received)
                if jobid in listed:
                    if RANK.get(before, -1) > RANK[which] or RANK.get(after, 9) < RANK[which]:
                        wrong.append(f"{call}: lists {jobid}, which Slurm had {before} "
                                     f"before and {after} after")
                elif after == which and (before == which or which == QUEUED):
                    wrong.append(f"{call}: leaves out {jobid}, {which} in Slurm all along")
        elif call.path == "/runstatus" and call.body == [None, None, None, None]:
            after = truth.after(call.jobid, call.received)
            if after in (QUEUED, RUNNING):
                wrong.append(f"{call}: unknown job, yet Slurm still had it {after}")
    for queued, running in upstream.passes:
        if queued.code == running.code == 200:
            listed = {jobid for _, jobid in queued.body + running.body}
            for jobid in set(jobids) - listed:
                after = truth.after(jobid, running.received)
                if after in (QUEUED, RUNNING):
                    wrong.append(f"pass ending {running.received:.2f}: {jobid} in neither "
                                 f"list, so upstream would end it; Slurm still had it {after}")
    return wrong


class OutageTests(RigCase):
    """sshd, then slurmctld, away and back while upstream-style pollers run."""

    alone = "stops sshd and slurmctld, and wants the node to itself"

    async def outage_under_polling(self, daemon: str, outage: float, break_it) -> dict:
        """Run jobs, poll, break ``daemon`` with ``break_it`` for ``outage`` s, restart it.

        Returns the timings and answer counts the caller reports and bounds.
        """
        jobs = [
            # Long enough that both steps are seen running on a busy machine (3 s was
            # not, once), short enough to end inside either outage.
            Job("short", "sleep 6; echo out-short; echo JARVICE_CMD_SUCCESS", 0, "COMPLETED"),
            Job("long", f"sleep {outage + 12:g}; echo out-long; exit 3", 1, "FAILED"),
            Job("next", "sleep 4; echo out-next; echo JARVICE_CMD_SUCCESS", 0, "COMPLETED"),
            Job("held", "echo out-held; echo JARVICE_CMD_SUCCESS", 0, "COMPLETED", held=True),
        ]
        truth = GroundTruth(self.environment)
        await truth.wait_idle()  # "short" and "long" must run side by side
        refs = {}
        for job in jobs:
            refs[job] = await self.submit(self.name(job.label), job.body, held=job.held)
        jobids = [ref["jobid"] for ref in refs.values()]
        self.addCleanup(lambda: ensureDeferred(truth.cancel(jobids)))
        sampler = ensureDeferred(truth.run())
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = POLLERS
        self.addCleanup(pool.closeCachedConnections)
        upstream = Upstream(self.base, list(refs.values()), pool)
        upstream.polling = True
        pollers = [ensureDeferred(upstream.poll()) for _ in range(POLLERS)]
        pollers.append(ensureDeferred(upstream.probe(0.5)))

        def stop_watching():
            upstream.polling = truth.sampling = False
            return gatherResults([*pollers, sampler])

        self.addCleanup(stop_watching)  # also when an assertion below fails
        short, long = refs[jobs[0]]["jobid"], refs[jobs[1]]["jobid"]
        # Running is not enough: each job's srun step must exist before slurmctld goes,
        # or the step cannot start and the job fails for a reason of the test's making.
        for _ in range(120):
            if (truth.latest(short) == truth.latest(long) == RUNNING
                    and {f"{short}.0", f"{long}.0"} <= await truth.steps()):
                break
            await self.sleep(0.25)
        else:
            self.fail(f"jobs {short} and {long} never both ran their step")

        self.addCleanup(lambda: ensureDeferred(rig_control("start", daemon)))
        breaking = reactor.seconds()
        await break_it()
        broken = reactor.seconds()
        code, body = await self.call("/ready")
        self.assertEqual(code, 503, f"the fault did not take: /ready said {body!r}")
        await self.sleep(max(0.0, outage - (reactor.seconds() - broken)))
        # The outage lasts until DSSR has said so (503) at least once: how long that
        # takes is the cluster's (squeue retries a stopped slurmctld for MessageTimeout),
        # so it is waited for, not bet on.
        for _ in range(int(OUTAGE_LIMIT / 0.25)):
            if any(call.code == 503 and call.received >= broken for call in upstream.calls):
                break
            await self.sleep(0.25)
        restarting = reactor.seconds()
        await rig_control("start", daemon)
        restarted = reactor.seconds()
        while (await self.call("/ready"))[0] != 200 and reactor.seconds() - restarted < 60:
            await self.sleep(0.1)
        recovered = reactor.seconds()

        # Right after a restart with accounting, slurmctld may ask to try again ("the DB
        # index is being set"): a 503 that upstream retries, as this does.
        for _ in range(120):
            code, body = await self.call("/release", refs[jobs[3]])
            if code != 503:
                break
            await self.sleep(0.25)
        self.assertEqual(code, 200, body)
        self.assertIs(json.loads(body), True)
        for ref in refs.values():
            await self.wait_for(ref, None)
        await stop_watching()

        # How old a snapshot an answer may come from: the TTL, or while a slow refresh
        # runs, up to snapshot_max_stale (a failed refresh ends that: then 503s).
        ttl = max(self.settings.snapshot_ttl, self.settings.snapshot_max_stale)
        wrong = misjudged(upstream, truth, jobids, ttl)
        dark = [str(call) for call in upstream.calls if call.code == 200
                and seen_from(call, ttl, truth.longest) >= broken
                and call.received <= restarting]
        codes = Counter(call.code for call in upstream.calls)
        asked = [call for call in upstream.calls if broken <= call.sent <= restarting]
        stats = {
            "breaking": broken - breaking, "outage": restarted - breaking,
            "restart": restarted - restarting,
            "recovery": recovered - restarted, "calls": len(upstream.calls),
            "codes": dict(codes),
            "answered_during_outage": dict(Counter(
                call.code for call in upstream.calls if broken <= call.received <= restarting)),
            "answered_in_recovery": dict(Counter(
                call.code for call in upstream.calls if restarting < call.received <= recovered)),
            "asked_during_outage": dict(Counter(call.code for call in asked)),
            "slowest_answer_to_a_call_made_in_the_outage":
                max((call.received - call.sent for call in asked), default=0.0),
            "truth_samples": len(truth.samples), "longest_squeue": truth.longest,
        }
        _log.info("{daemon} outage: {stats}", daemon=daemon, stats=stats)
        self.assertEqual(wrong, [])
        self.assertEqual(dark, [], "200s while the cluster could not be asked")
        self.assertEqual(set(codes) - {200, 503}, set(),
                         [str(call) for call in upstream.calls if call.code not in (200, 503)])
        self.assertGreater(codes[200], 0)
        self.assertGreater(len(asked), outage)  # the probe asked all through the outage
        # Calls wait for a connection at most connect_wait, then the squeue runs.
        self.assertLess(stats["slowest_answer_to_a_call_made_in_the_outage"],
                        Policy().connect_wait + truth.longest + SLACK)
        for job, ref in refs.items():
            rc, totaltime, (stdout, verdict) = await self.answer("/exitstatus", ref)
            self.assertEqual((job.label, rc, verdict), (job.label, job.rc, termination(job.state)))
            self.assertIn(f"out-{job.label}", stdout.splitlines())
            self.assertRegex(totaltime, ELAPSED)
        return stats

    async def test_sshd_stopped_and_connections_dropped(self):
        async def cut():
            # One shell, so DSSR cannot log in again between the drop and the stop.
            ctl = shlex.quote(CTL)
            _, err, code = await getProcessOutputAndValue(
                "/bin/bash", ["-c", f"{ctl} drop sshd && {ctl} stop sshd"], env=os.environ)
            self.assertEqual(code, 0, err)

        stats = await self.outage_under_polling("sshd", 8, cut)
        # Callers are not held through an outage longer than connect_wait: they get
        # 503 (upstream retries), never a stale or empty 200.
        self.assertGreater(stats["answered_during_outage"].get(503, 0), 0)
        # Reconnect k waits at most base * 2**k, and attempts 0..k-1 took at least half
        # of that minus base/2: so once sshd listens again, DSSR logs in within twice
        # the time it was gone plus base (the cap aside), plus the login and /ready.
        policy = Policy()
        bound = stats["restart"] + min(policy.backoff_cap,
                                       2 * stats["outage"] + policy.backoff_base) + 2
        self.assertLess(stats["recovery"], min(bound, 15))

    async def test_slurmctld_stopped(self):
        async def stop():
            await rig_control("stop", "slurmctld")

        stats = await self.outage_under_polling("slurmctld", 20, stop)
        # squeue against a stopped slurmctld fails only after MessageTimeout (5 s on the
        # rig), longer on a loaded machine; the outage lasts 20 s and in any case until
        # DSSR said 503 (within OUTAGE_LIMIT).
        self.assertGreater(stats["answered_during_outage"].get(503, 0), 0)
        self.assertLess(stats["recovery"], 15)


class ProcessCase(RigCase):
    """Tests that drive DSSR processes (``DSSRProcess``) instead of an in-process DSSR."""

    def setUp(self):
        self.environment = rig_environment()
        self.counter = 0
        self.submitted = []
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.truth = GroundTruth(self.environment)
        self.addCleanup(lambda: ensureDeferred(
            self.truth.cancel([ref["jobid"] for ref in self.submitted])))

    async def dssr(self, label: str) -> DSSRProcess:
        """Start a DSSR process on this test's state directory; calls now go to it."""
        process = DSSRProcess(self.environment, self.directory, label)
        self.addCleanup(lambda: ensureDeferred(process.stop()))
        self.base = await process.start()
        return process


class KilledProcessTests(ProcessCase):
    async def test_sigkill_mid_lifecycle_then_restart(self):
        first = await self.dssr("first")
        jobs = [
            Job("done", "echo out-done; echo JARVICE_CMD_SUCCESS", 0, "COMPLETED"),
            Job("failed", "echo out-failed; exit 3", 1, "FAILED"),
            Job("running", "sleep 8; echo out-running; echo JARVICE_CMD_SUCCESS", 0,
                "COMPLETED"),
            Job("held", "echo out-held; echo JARVICE_CMD_SUCCESS", 0, "COMPLETED", held=True),
        ]
        refs = {job: await self.submit(self.name(job.label), job.body, held=job.held)
                for job in jobs}
        await self.wait_for(refs[jobs[0]], None)
        await self.wait_for(refs[jobs[1]], None)
        await self.wait_for(refs[jobs[2]], "running")
        self.assertEqual(await self.listed(refs[jobs[3]]), "queued")

        # Upstream submits one more job; DSSR dies before (or while) it answers.
        inflight = Job("inflight", "sleep 3; echo out-inflight; echo JARVICE_CMD_SUCCESS", 0,
                       "COMPLETED")
        name = self.name(inflight.label)
        args = {"name": name, "number": 1, "nodes": 1,
                "hpc_script": {"singularity": job_script(inflight.body)}}
        cut_off = treq.post(first.url + "/submit", data={"args": json.dumps(args)},
                            pool=self.pool).addCallback(lambda response: response.code)
        cut_off.addErrback(lambda failure: failure.trap(*NO_ANSWER) and "no answer")
        await self.sleep(0.01)  # a submit takes ~20 ms on the rig: kill it on its way
        ended = await first.kill("KILL")
        self.assertIsInstance(ended, ProcessTerminated)
        self.assertEqual(ended.signal, 9)
        first_answer = await cut_off
        await self.truth.wait_no_sbatch(self.environment["JARVICE_SLURM_SSH_USER"])
        started_by_first = await self.truth.jobs_named(name)

        await self.dssr("second")
        jobid, _ = await self.answer("/submit", args)  # upstream retries the submit
        refs[inflight] = {"name": name, "number": 1, "jobid": jobid}
        self.submitted.append(refs[inflight])
        _log.info("submit cut off by SIGKILL: first DSSR answered {answer}, had started "
                  "{started}; the retry returned {jobid}", answer=first_answer,
                  started=started_by_first, jobid=jobid)
        self.assertEqual(await self.truth.jobs_named(name), [jobid])
        self.assertIn(started_by_first, ([], [jobid]))
        self.assertIs(await self.answer("/release", refs[jobs[3]]), True)
        for job, ref in refs.items():
            rc, _, (stdout, verdict) = await self.run_to_end(ref)
            self.assertEqual((job.label, rc, verdict), (job.label, job.rc, termination(job.state)))
            self.assertIn(f"out-{job.label}", stdout.splitlines())


class LoadTests(ProcessCase):
    alone = "64 clients of CPU load, and a bound on the rate they get"
    CLIENTS = 64
    SECONDS = 30

    async def test_64_clients_for_30_seconds(self):
        await self.dssr("load")
        node = self.environment["DSSR_RIG_NODE"]
        running = [await self.submit(self.name("busy"), "sleep 300") for _ in range(2)]
        held = [await self.submit(self.name("held"), "true", held=True) for _ in range(2)]
        for ref in running:
            await self.wait_for(ref, "running")
        running_ids = {ref["jobid"] for ref in running}
        held_ids = {ref["jobid"] for ref in held}

        def problem(path: str, ref: dict | None, code: int, body: bytes) -> str | None:
            """What is wrong with this answer, if anything."""
            if code != 200:
                return f"HTTP {code}"
            value = json.loads(body)
            if path in ("/running", "/queued"):
                if not all(isinstance(item, list) and len(item) == 2
                           and all(isinstance(part, str) for part in item) for item in value):
                    return "not a list of [name, jobid]"
                listed = {jobid for _, jobid in value}
                want, never = ((running_ids, held_ids) if path == "/running"
                               else (held_ids, running_ids))
                if want - listed or never & listed:
                    return f"lists {sorted(listed)}"
                return None
            nodes, elapsed, where, last = value
            expected = [node] if ref["jobid"] in running_ids else []
            if (nodes, where, last) != (expected, f"{ref['name']}/1/{ref['jobid']}", None):
                return "wrong runstatus"
            return None if ELAPSED.match(elapsed) else "bad elapsed"

        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = self.CLIENTS
        self.addCleanup(pool.closeCachedConnections)
        plan = [("/queued", None), ("/running", None)] + [
            ("/runstatus", ref) for ref in running + held]
        answers = Counter()
        errors: list[str] = []
        slowest = [0.0]
        deadline = reactor.seconds() + self.SECONDS

        async def client(index: int) -> None:
            while reactor.seconds() < deadline:
                path, ref = plan[index % len(plan)]
                index += 1
                data = {"args": json.dumps(ref)} if ref else None
                sent = reactor.seconds()
                try:
                    response = await treq.post(self.base + path, data=data, pool=pool,
                                               timeout=30)
                    body = await response.content()
                except NO_ANSWER as error:
                    errors.append(f"{path}: {error!r}")
                    continue
                slowest[0] = max(slowest[0], reactor.seconds() - sent)
                answers[path] += 1
                found = problem(path, ref, response.code, body)
                if found:
                    errors.append(f"{path} {ref}: {found}: {body[:300]!r}")

        started = reactor.seconds()
        await gatherResults([ensureDeferred(client(i)) for i in range(self.CLIENTS)])
        took = reactor.seconds() - started
        total = sum(answers.values())
        _log.info("load: {clients} clients, {total} answers in {took:.1f}s ({rate:.0f}/s), "
                  "slowest {slowest:.3f}s, {errors} errors; by path {answers}",
                  clients=self.CLIENTS, total=total, took=took, rate=total / took,
                  slowest=slowest[0], errors=len(errors), answers=dict(answers))
        self.assertEqual((len(errors), errors[:10]), (0, []))
        self.assertGreater(total, self.CLIENTS * self.SECONDS)  # it was load: >1 call/s each
        for ref in running + held:
            self.assertIs(await self.answer("/terminate", ref), True)


class ReplicaTests(ProcessCase):
    """Two real ``twistd dssr`` replicas sharing nothing but the cluster."""

    async def test_the_same_submit_fifty_times_at_two_replicas_is_one_job(self):
        first = (await self.dssr("first")).url
        second = (await self.dssr("second")).url
        names = [self.name("replica") for _ in range(3)]
        pool = HTTPConnectionPool(reactor, persistent=False)

        async def submit(url: str, name: str) -> str:
            args = {"name": name, "number": 1, "nodes": 1,
                    "hpc_script": {"singularity": job_script("sleep 30")}}
            response = await treq.post(url + "/submit", data={"args": json.dumps(args)},
                                       pool=pool)
            body = await response.content()
            self.assertEqual(response.code, 200, body)
            return json.loads(body)[0]

        answers = await gatherResults([
            ensureDeferred(submit((first, second)[n % 2], name))
            for n in range(50) for name in names])
        by_name = {name: set(answers[index::len(names)]) for index, name in enumerate(names)}
        for name in names:
            self.assertEqual(len(by_name[name]), 1, by_name)
            self.submitted.append({"name": name, "number": 1, "jobid": by_name[name].pop()})
        # Slurm itself holds exactly one job per name.
        code, out = await self.truth.command("squeue", "--noheader", "--all", "--states=all",
                                             "--format=%i|%j")
        self.assertEqual(code, 0)
        counts = Counter(line.partition("|")[2] for line in out.splitlines())
        self.assertEqual([counts[f"jarvice_{name}"] for name in names], [1, 1, 1])

    async def test_a_crash_between_claim_and_sbatch_recovers_on_the_next_submit(self):
        await self.dssr("only")
        name = self.name("crashed")
        # What a submit that died after its claim and before sbatch answered leaves:
        # a claim without a job id, older than CLAIM_STALE.
        code, _ = await self.truth.command(
            "runuser", "-u", "dssr-svc", "--", "sh", "-c",
            'mkdir -p "$HOME/.jarvice" && touch -d "-300 seconds" '
            '"$HOME/.jarvice/$1.claim"', "sh", name)
        self.assertEqual(code, 0)
        ref = await self.submit(name, "echo recovered; echo JARVICE_CMD_SUCCESS")
        rc, _, (stdout, _) = await self.run_to_end(ref)
        self.assertEqual(rc, 0)
        self.assertIn("recovered", stdout)
