"""The Slurm test rig (tests/cluster/up.sh) as seen by the integration tests.

Tests find the rig through ``DSSR_RIG`` (the directory ``up.sh`` printed) and read
the settings it wrote to ``$DSSR_RIG/env``. Without it they skip, saying how to bring
it up; ``.ci/run`` brings it up and counts any skip as a failure.
"""

import base64
import itertools
import json
import os
import shlex
import tempfile
from unittest import SkipTest

import jwt
import treq
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from dssr import settings as settings_module
from dssr.api import DSSRApi
from dssr.compose import slurm_connector
from dssr.edge import make_site

HERE = os.path.dirname(os.path.abspath(__file__))
_NAMES = itertools.count(1)
CLUSTER = os.path.join(HERE, "..", "cluster")
HOW = ("no Slurm test rig: run `sudo tests/cluster/up.sh`, then set "
       "DSSR_RIG=/var/tmp/dssr-rig for the tests")


def rig_environment() -> dict[str, str]:
    """The ``NAME=value`` settings the rig wrote, or SkipTest when there is no rig.

    A release built under a prefix of its own (``DSSR_RIG_SLURM_BIN``) goes first on this
    process's ``PATH``, as on the rig's login node: the Slurm commands a test runs are
    the release the rig runs.
    """
    rig = os.environ.get("DSSR_RIG")
    path = os.path.join(rig, "env") if rig else None
    if not path or not os.path.exists(path):
        raise SkipTest(HOW)
    environment = {}
    with open(path) as handle:
        for line in handle:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                name, _, value = words[1].partition("=")
                environment[name] = value
    slurm_bin = environment.get("DSSR_RIG_SLURM_BIN")
    if slurm_bin and not os.environ["PATH"].startswith(slurm_bin + os.pathsep):
        os.environ["PATH"] = slurm_bin + os.pathsep + os.environ["PATH"]
    return environment


def job_script(body: str, *header: str, cores: int = 1) -> str:
    """A base64 upstream-style singularity script whose work is the shell ``body``.

    There is no singularity on the rig, so the body runs directly; braces in it must
    be doubled as upstream doubles them. A ``JOBOBJ_DEVICES`` line in ``header``
    replaces the default one (the first of two would win).
    """
    devices = [] if any(line.startswith("JOBOBJ_DEVICES=") for line in header) else [
        'JOBOBJ_DEVICES=["exclusive=False"]']
    lines = ["JOBOBJ_APPDEFVERSION=2", "JOBOBJ_REPO=docker.io/library/ubuntu:22.04",
             "JOBOBJ_ARCH=amd64", f"JARVICE_CPU_CORES={cores}", *devices,
             "JARVICE_CMD='true'", *header, "{DOWNSTREAM_PARAMETERS}", body]
    return base64.b64encode("\n".join(lines).encode() + b"\n").decode()


async def ctl(*argv: str) -> tuple[int, str]:
    """Run tests/cluster/ctl.sh; its exit status and what it said on stderr (SkipTest
    without ``DSSR_RIG``: a test that switches modes before it skips must not reach a
    rig it was not given)."""
    rig_environment()
    _, err, code = await getProcessOutputAndValue(
        "/bin/bash", [os.path.join(CLUSTER, "ctl.sh"), *argv], env=os.environ)
    return code, err.decode("utf-8", "replace")


async def rig_control(action: str, daemon: str) -> None:
    """Stop or start one rig daemon (or switch a mode on or off) with ctl.sh."""
    code, err = await ctl(action, daemon)
    if code != 0:
        raise RuntimeError(f"ctl.sh {action} {daemon} failed: {err}")


async def rig_mode(mode: str) -> bool:
    """Whether a mode of the rig (accounting, privatedata, coordinator) is on."""
    code, _ = await ctl(mode, "status")
    return code == 0


async def use_modes(case: TestCase, modes: dict[str, bool]) -> None:
    """Switch the rig's ``modes`` as ``case`` needs them, in order, and back after it."""
    for mode, wanted in modes.items():
        was = await rig_mode(mode)
        if was != wanted:
            await rig_control(mode, "on" if wanted else "off")
            case.addCleanup(lambda mode=mode, was=was: ensureDeferred(
                rig_control(mode, "on" if was else "off")))


def id_mapping_file(case, environment: dict[str, str]) -> str:
    """An ID mapping file for the rig's two mapped users (alice@ and bob@example.org),
    removed when ``case`` ends."""
    lines = ["users_id_mapping:"]
    for who in ("ALICE", "BOB"):
        with open(environment[f"DSSR_RIG_{who}_KEY"], "rb") as handle:
            key = base64.b64encode(handle.read()).decode()
        lines += [f"  - user: {who.lower()}", f"    jarvice_user: {who.lower()}",
                  f"    mail: {who.lower()}@example.org",
                  f"    mapped_user: {environment[f'DSSR_RIG_{who}']}",
                  f"    ssh_private_key_b64: {key}"]
    handle, path = tempfile.mkstemp(suffix=".yaml")
    os.write(handle, "\n".join(lines).encode() + b"\n")
    os.close(handle)
    case.addCleanup(os.unlink, path)
    return path


def bearer(email: str) -> str:
    """A JWT as upstream sends it (DSSR without a public key only decodes it)."""
    return jwt.encode({"email": email}, "tokens-are-not-verified-in-this-test",
                      algorithm="HS256")


class RigCase(TestCase):
    """A DSSR with the slurm connector on a real port, talking to the rig over SSH."""

    timeout = 180
    overrides: dict = {}
    # How DSSR asks Slurm (slurm_interface): a test class runs over both when a
    # subclass sets "http" (slurmrestd, minted tokens unless overridden).
    interface = "cli"
    # Rig modes (ctl.sh: accounting, privatedata, coordinator) the tests need, switched
    # in this order before each test and back to what they were after it.
    modes: dict[str, bool] = {}

    def setUp(self):
        self.environment = rig_environment()
        self.counter = 0
        self.submitted: list[dict] = []
        return ensureDeferred(self.start(self.modes))

    async def start(self, modes: dict[str, bool]):
        await use_modes(self, modes)
        await self.start_dssr()

    async def start_dssr(self, **overrides):
        """(Re)start DSSR against the rig; a second call replaces the first DSSR."""
        values = settings_module.from_environment(self.environment)
        values["slurm_interface"] = self.interface
        values.update(self.overrides)
        values.update(overrides)
        values["snapshot_ttl"] = values.get("snapshot_ttl", 0.5)
        self.settings = settings_module.load().replace(**values)
        connector = self.connector = slurm_connector(self.settings, reactor)
        if connector.service is not None:  # None: a local transport has nothing to start
            connector.service.startService()
        api = DSSRApi(connector)
        port = reactor.listenTCP(0, make_site(api),
                                 interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{port.getHost().port}"

        async def stop():
            if connector is self.connector:  # the live DSSR cancels what the test left
                for ref in self.submitted:
                    await self.call("/terminate", ref)
            await port.stopListening()
            if connector.service is not None and connector.service.running:
                await connector.service.stopService()

        self.addCleanup(lambda: ensureDeferred(stop()))
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        for _ in range(100):
            code, _ = await self.call("/ready")
            if code == 200:
                return
            await self.sleep(0.1)
        self.fail("DSSR never became ready against the rig")

    def sleep(self, seconds: float):
        return deferLater(reactor, seconds, lambda: None)

    def name(self, label: str) -> str:
        """A job name unique to this test run (across its tests too: a name stays
        claimed on the cluster until its job is collected, as upstream's names are)."""
        self.counter += 1
        return f"it-{os.getpid()}-{next(_NAMES)}-{label}-{self.counter}"

    async def call(self, path: str, args=None) -> tuple[int, bytes]:
        data = {"args": json.dumps(args)} if args is not None else None
        response = await treq.post(self.base + path, data=data, pool=self.pool)
        return response.code, await response.content()

    async def answer(self, path: str, args=None, expect: int = 200):
        code, body = await self.call(path, args)
        self.assertEqual(code, expect, body)
        return json.loads(body)

    async def submit(self, name: str, body: str, *header: str, bearer: str = "",
                     held: bool = False, nodes: int = 1) -> dict:
        """Submit through the API; return the job ref (and clean the job up afterwards)."""
        args = {"name": name, "number": 1, "nodes": nodes, "bearer": bearer, "held": held,
                "hpc_script": {"singularity": job_script(body, *header)}}
        jobid, _ = await self.answer("/submit", args)
        ref = {"name": name, "number": 1, "jobid": jobid}
        self.submitted.append(ref)
        return ref

    async def listed(self, ref: dict) -> str | None:
        """Which upstream list holds the job ("queued", "running"), or None.

        Queued first: a job moves from queued to running, so asking in that order
        never misses one that moved between the two calls (each may be answered from
        a new snapshot); the other order saw such a job in neither list.
        """
        for which in ("queued", "running"):
            if [ref["name"], ref["jobid"]] in await self.answer(f"/{which}"):
                return which
        return None

    async def wait_for(self, ref: dict, wanted: str | None, limit: float = 90) -> None:
        """Poll like upstream until the job is in ``wanted`` (None: in neither list)."""
        for _ in range(int(limit / 0.25)):
            if await self.listed(ref) == wanted:
                return
            await self.sleep(0.25)
        self.fail(f"job {ref} never reached {wanted}")

    async def wait_purged(self, ref: dict, limit: float = 60) -> None:
        """Wait until Slurm forgot the job (MinJobAge=10 plus its purge cycle)."""
        for _ in range(int(limit / 0.25)):
            jobs = await self.connector.snapshot.get(max_age=0)
            if all(job.jobid != ref["jobid"] for job in jobs):
                return
            await self.sleep(0.25)
        self.fail(f"Slurm never purged job {ref}")

    async def wait_for_output(self, ref: dict, line: str, limit: float = 90) -> None:
        """Poll the job's output (``/request/.../tail``) until it holds ``line``."""
        path = f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}/tail"
        for _ in range(int(limit / 0.25)):
            code, tail = await self.call(path, {"qs": {"lines": ["100"]}})
            if code == 200 and line in tail.decode("utf-8", "replace").splitlines():
                return
            await self.sleep(0.25)
        self.fail(f"job {ref} never printed {line!r}")

    async def run_to_end(self, ref: dict) -> list:
        await self.wait_for(ref, None)
        return await self.answer("/exitstatus", ref)


class MappedRigCase(RigCase):
    """A ``RigCase`` whose DSSR maps alice@ and bob@example.org to the rig's users."""

    def setUp(self):
        # Unsigned test tokens: believed only because this DSSR is told to.
        self.overrides = {**self.overrides,
                          "id_mapping_file": id_mapping_file(self, rig_environment()),
                          "trust_unverified_tokens": True}
        return super().setUp()
