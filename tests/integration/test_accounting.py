"""How jobs end, as ``/exitstatus`` tells it after Slurm purged them: from slurmdbd's
accounting, from DSSR's end records when the cluster keeps no accounting, with slurmdbd
stopped mid-run, and under ``PrivateData=jobs`` with and without coordinator rights.

Each class switches the rig to the modes it needs (tests/cluster/ctl.sh) and back to
what it found afterwards; .ci/run brings the rig up with ``--accounting``, so the other
integration tests run with accounting and the classes here cover both modes.
"""

import os
import re
import shutil
from dataclasses import dataclass

from twisted.internet.defer import ensureDeferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from tests.integration.rig import (
    RigCase,
    bearer,
    id_mapping_file,
    rig_control,
    rig_environment,
)

ELAPSED = re.compile(r"\d\d:\d\d:\d\d")
# A job over its memory: JOBOBJ_RAM=1 asks for 1 GB; tail would hold 1.5 GB of one "line".
HOG = "head -c 1536M /dev/zero | tail"


@dataclass(frozen=True)
class Ending:
    """A job that ends one way; its output holds ``out-<label>``."""

    label: str
    body: str
    header: tuple[str, ...] = ()


COMPLETED = Ending("completed", "echo JARVICE_CMD_SUCCESS")
FAILED = Ending("failed", "exit 3")
CANCELLED = Ending("cancelled", "sleep 300")  # ended by /terminate once it runs
TIMEOUT = Ending("timeout", "sleep 300", ("JOBOBJ_WALLTIME=00:01:00",))
OUT_OF_MEMORY = Ending("oom", HOG, ("JOBOBJ_RAM=1",))


def termination(state: str) -> str:
    return f"<< termination state: {state} -- see STDOUT for job errors >>"


async def local(*argv: str, user: str | None = None) -> tuple[int, str]:
    """Run a Slurm command on this host (as root, or as ``user``): the ground truth."""
    if user is not None:
        argv = ("runuser", "-u", user, "--", *argv)
    out, err, code = await getProcessOutputAndValue(shutil.which(argv[0]), argv[1:],
                                                    env=os.environ)
    return code, (out + err).decode("utf-8", "replace")


class Endings:
    """Every way a job ends, all jobs at once (the time limit one sets the pace); mixed
    into a ``RigCase`` that sets the rig's mode and what to expect in it."""

    timeout = 400
    # label -> (state, rc) that /exitstatus must give after the purge
    expected: dict[str, tuple[str, int]] = {}

    async def test_every_ending_after_purge(self):
        endings = [TIMEOUT, CANCELLED, COMPLETED, FAILED, OUT_OF_MEMORY]
        refs = {}
        for ending in endings:
            refs[ending.label] = await self.submit(
                self.name(ending.label), f"echo out-{ending.label}; {ending.body}",
                *ending.header)
        await self.wait_for_output(refs["cancelled"], "out-cancelled")
        self.assertIs(await self.answer("/terminate", refs["cancelled"]), True)
        times = {}
        for ending in endings:
            ref = refs[ending.label]
            await self.wait_for(ref, None, limit=240)
            await self.wait_purged(ref)
            rc, times[ending.label], (stdout, verdict) = await self.answer("/exitstatus", ref)
            state, expected_rc = self.expected[ending.label]
            self.assertEqual((rc, verdict), (expected_rc, termination(state)), ending.label)
            self.assertIn(f"out-{ending.label}", stdout.splitlines(), ending.label)
            if ending is TIMEOUT:  # the batch script tells a time limit from a cancel
                self.assertIn("JARVICE Job reached its time limit", stdout.splitlines())
        self.assertTrue(all(ELAPSED.fullmatch(time) for time in times.values()), times)
        self.assertGreaterEqual(times["timeout"], "00:01:00")  # HH:MM:SS compares as text


class WithAccountingTests(Endings, RigCase):
    """slurmdbd knows every end: each state as Slurm names it, rc as docs/protocol.rst maps it."""

    modes = {"accounting": True}
    expected = {"completed": ("COMPLETED", 0), "failed": ("FAILED", 1),
                "cancelled": ("CANCELLED", -15), "timeout": ("TIMEOUT", -9),
                "oom": ("OUT_OF_MEMORY", 1)}


class WithoutAccountingTests(Endings, RigCase):
    """No slurmdbd: the end record the batch script wrote decides. It knows COMPLETED,
    FAILED, CANCELLED and TIMEOUT (a SIGTERM without /terminate's marker while Slurm
    gives the reason TimeLimit); a job killed over its memory ends without the success
    mark (FAILED, rc 1: the rc OUT_OF_MEMORY has too)."""

    modes = {"accounting": False}
    expected = {"completed": ("COMPLETED", 0), "failed": ("FAILED", 1),
                "cancelled": ("CANCELLED", -15), "timeout": ("TIMEOUT", -9),
                "oom": ("FAILED", 1)}


class SlurmdbdDownTests(RigCase):
    alone = "stops slurmdbd"
    modes = {"accounting": True}

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        return super().setUp()

    async def test_end_record_decides_and_a_warning_says_why(self):
        ref = await self.submit(self.name("dbd-down"),
                                "echo out-dbd-down; sleep 2; echo JARVICE_CMD_SUCCESS")
        await self.wait_for(ref, "running")
        await rig_control("stop", "slurmdbd")
        self.addCleanup(lambda: ensureDeferred(rig_control("start", "slurmdbd")))
        await self.wait_for(ref, None)
        await self.wait_purged(ref)
        rc, _, (stdout, verdict) = await self.answer("/exitstatus", ref)
        self.assertEqual((rc, verdict), (0, termination("COMPLETED")))
        self.assertIn("out-dbd-down", stdout.splitlines())
        warnings = [formatEvent(event) for event in self.events
                    if event.get("log_namespace") == "dssr.slurm"
                    and event.get("log_level") == LogLevel.warn]
        self.assertTrue(any(f"sacct failed for job {ref['jobid']}" in line
                            for line in warnings), warnings)


class PrivateDataCase(RigCase):
    """``PrivateData=jobs,usage``: users see only their own jobs, and an account's
    coordinators its jobs too. Jobs run as the mapped users (ID mapping)."""

    def setUp(self):
        environment = rig_environment()
        self.alice, self.bob = environment["DSSR_RIG_ALICE"], environment["DSSR_RIG_BOB"]
        # Unsigned test tokens: believed only because this DSSR is told to.
        self.overrides = {"id_mapping_file": id_mapping_file(self, environment),
                          "trust_unverified_tokens": True}
        return super().setUp()

    async def submit_as_alice(self, label: str, body: str, **options) -> dict:
        ref = await self.submit(self.name(label), body, bearer=bearer("alice@example.org"),
                                **options)
        # The ground truth: root sees the job, another user does not.
        code, out = await local("squeue", "--noheader", "--format=%i", f"--jobs={ref['jobid']}")
        self.assertEqual((code, out.split()), (0, [ref["jobid"]]), out)
        code, out = await local("squeue", "--noheader", "--all", "--format=%i", user=self.bob)
        self.assertNotIn(ref["jobid"], out.split(), "PrivateData=jobs is not in force")
        return ref


class CoordinatorTests(PrivateDataCase):
    modes = {"accounting": True, "privatedata": True, "coordinator": True}

    async def test_service_account_sees_and_manages_mapped_jobs(self):
        ref = await self.submit_as_alice("coord", "echo out-coord; sleep 300", held=True)
        await self.wait_for(ref, "queued")
        self.assertIs(await self.answer("/release", ref), True)
        await self.wait_for(ref, "running")
        nodes, _, _, _ = await self.answer("/runstatus", ref)
        self.assertEqual(nodes, [self.environment["DSSR_RIG_NODE"]])
        # Running in Slurm is not yet running the body: cancelled before its step
        # starts, the job prints nothing (its batch script had not begun, once here).
        await self.wait_for_output(ref, "out-coord")
        self.assertIs(await self.answer("/terminate", ref), True)
        await self.wait_for(ref, None)
        await self.wait_purged(ref)
        rc, _, (stdout, verdict) = await self.answer("/exitstatus", ref)
        self.assertEqual((rc, verdict), (-15, termination("CANCELLED")))
        self.assertIn("out-coord", stdout.splitlines())


class NoCoordinatorTests(PrivateDataCase):
    modes = {"accounting": True, "privatedata": True, "coordinator": False}

    async def test_hidden_job_is_never_called_ended(self):
        ref = await self.submit_as_alice("hidden", "echo out-hidden; sleep 300")
        self.addCleanup(lambda: ensureDeferred(local("scancel", ref["jobid"])))
        await self.wait_for_output(ref, "out-hidden")  # it runs
        # The service account cannot see it: upstream would take it for ended...
        self.assertIsNone(await self.listed(ref))
        # ...but /exitstatus will not say so, nor collect the output of a running job.
        code, body = await self.call("/exitstatus", ref)
        self.assertEqual(code, 503, body)
        self.assertIn(b"sacctmgr add coordinator", body)
        # Nor will /terminate say it cancelled what it cannot see (was: true), nor
        # /release call it gone (was: 404).
        for path in ("/terminate", "/release"):
            code, body = await self.call(path, ref)
            self.assertEqual(code, 503, (path, body))
            self.assertIn(b"DSSR cannot tell whether job", body)
            self.assertIn(b"sacctmgr add coordinator", body)
        await self.wait_for_output(ref, "out-hidden", limit=1)


# The same endings and PrivateData cases over slurmrestd: its /slurmdb records (or DSSR's
# end records when slurmrestd serves none), and its view of PrivateData.
class WithAccountingOverRestTests(WithAccountingTests):
    interface = "http"


class WithoutAccountingOverRestTests(WithoutAccountingTests):
    interface = "http"


class CoordinatorOverRestTests(CoordinatorTests):
    interface = "http"


class NoCoordinatorOverRestTests(NoCoordinatorTests):
    interface = "http"
