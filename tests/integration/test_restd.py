"""slurmrestd on the rig: every version it offers, the job's login environment, and the
faults and the token modes only the http interface has.

The lifecycle itself runs over slurmrestd in test_slurm.py (its *OverRest* classes).
"""

import json
import os
import re
import time

import jwt
import treq
from twisted.internet.defer import ensureDeferred

from dssr.slurm.rest.known import RELIST
from dssr.slurm.rest.versions import SUPPORTED, offered, typed
from tests.integration.rig import (
    MappedRigCase,
    RigCase,
    bearer,
    job_script,
    rig_control,
    rig_environment,
)


def root_token(environment: dict[str, str], key: bytes | None = None) -> str:
    """A SlurmUser (root, on the rig) token, signed with the rig's key unless ``key``."""
    if key is None:
        with open(environment["DSSR_SLURM_JWT_KEY_FILE"], "rb") as handle:
            key = handle.read()
    now = int(time.time())
    return jwt.encode({"sun": "root", "iat": now, "exp": now + 3600}, key, algorithm="HS256")


class RestCase(RigCase):
    interface = "http"

    async def poll(self, path: str) -> tuple[int, dict | list]:
        code, body = await self.call(path)
        return code, json.loads(body)

    async def offered(self) -> list[str]:
        """The versions the rig's slurmrestd offers (its ``GET /openapi/v3``), oldest first."""
        url = (f"{self.environment['JARVICE_SLURMRESTD_ADDR']}:"
               f"{self.environment['JARVICE_SLURMRESTD_PORT']}/openapi/v3")
        response = await treq.get(url, pool=self.pool, headers={
            "X-SLURM-USER-NAME": "root", "X-SLURM-USER-TOKEN": root_token(self.environment)})
        self.assertEqual(response.code, 200)
        return offered(await response.json())


class EveryVersionTests(RestCase):
    """Each version the live slurmrestd offers, pinned in turn (Debian's 22.05: v0.0.38;
    25.05: v0.0.40 to v0.0.43; 26.05: v0.0.42 to v0.0.45), and the one detected."""

    timeout = 600

    async def test_each_offered_version_runs_jobs_to_their_end(self):
        versions = await self.offered()
        self.assertTrue(versions)
        self.assertEqual([version for version in versions if version not in SUPPORTED], [])
        for version in versions:
            await self.start_dssr(slurmrestd_api_version=version)
            done = await self.submit(self.name(f"ok-{version}"),
                                     f"echo out-{version}; sleep 2; echo JARVICE_CMD_SUCCESS")
            failed = await self.submit(self.name(f"fail-{version}"),
                                       f"echo out-{version}; sleep 2; exit 3")
            await self.wait_for(done, "running")
            for ref, expected in ((done, 0), (failed, 1)):
                rc, _, (stdout, _) = await self.run_to_end(ref)
                self.assertEqual(rc, expected, (version, stdout))
                self.assertIn(f"out-{version}", stdout.splitlines(), version)
            self.assertEqual(self.connector.slurm.version, version)

    async def test_the_newest_both_speak_is_detected(self):
        versions = await self.offered()
        self.assertEqual((await self.poll("/running"))[0], 200)
        newest = next(version for version in SUPPORTED if version in versions)
        self.assertEqual(self.connector.slurm.version, newest)
        release = self.environment["DSSR_RIG_SLURM_RELEASE"]
        self.assertEqual(newest, {"22.05": "v0.0.38", "25.05": "v0.0.43",
                                  "26.05": "v0.0.45"}[release])


class LoginEnvironmentTests(RestCase):
    async def test_a_job_finds_the_releases_commands_as_its_login_does(self):
        # The release the rig runs is on login shells' PATH only (built releases under
        # their own prefix, /etc/profile.d): a REST job has its user's login environment.
        release = self.environment["DSSR_RIG_SLURM_RELEASE"]
        ref = await self.submit(self.name("login-env"),
                                "srun --version; scontrol --version; command -v srun; "
                                "echo JARVICE_CMD_SUCCESS")
        rc, _, (stdout, _) = await self.run_to_end(ref)
        self.assertEqual(rc, 0, stdout)
        versions = [line for line in stdout.splitlines() if line.startswith("slurm")]
        self.assertEqual(len(versions), 2, stdout)
        for line in versions:
            self.assertRegex(line, rf"^slurm(-wlm)? {re.escape(release)}\.[0-9]+$")
        where = self.environment.get("DSSR_RIG_SLURM_BIN") or "/usr/bin"
        self.assertIn(f"{where}/srun", stdout.splitlines())


class SnapshotTests(RestCase):
    """What queue snapshots ask of the live slurmrestd: every job's state and the jobs
    that changed (jobs/state, v0.0.40 on), or every job each time (v0.0.38)."""

    async def test_a_job_from_submit_to_end_is_followed_by_its_state(self):
        started = time.monotonic()
        ref = await self.submit(self.name("snapshots"), "sleep 3; echo JARVICE_CMD_SUCCESS")
        await self.wait_for(ref, "running")
        rc, _, (stdout, _) = await self.run_to_end(ref)
        self.assertEqual(rc, 0, stdout)
        slurm, snapshots = self.connector.slurm, self.connector.snapshot.fetches
        self.assertGreater(snapshots, 5)
        if not typed(slurm.version):
            self.assertEqual((slurm.listings, slurm.shown), (snapshots, 0))
            return
        # The first snapshot listed every job, then one every RELIST seconds at most
        # (setUp's DSSR started a little before this test's clock: 5 s of margin); the
        # job's end, at least, was seen by showing it alone.
        self.assertGreaterEqual(slurm.listings, 1)
        self.assertLessEqual(slurm.listings,
                             1 + (time.monotonic() - started + 5) // RELIST)
        self.assertGreaterEqual(slurm.shown, 1)


class SlurmrestdDownTests(RestCase):
    alone = "stops slurmrestd"
    async def test_stopped_under_polling_is_503_then_back(self):
        ref = await self.submit(self.name("restd-down"), "sleep 60")
        await self.wait_for(ref, "running")
        await rig_control("stop", "slurmrestd")
        self.addCleanup(lambda: ensureDeferred(rig_control("start", "slurmrestd")))
        # Answers may come from the last snapshot while it is younger than
        # snapshot_max_stale; each lists the job, and then it is 503 (a refused
        # connection fails at once), never a list without the job.
        limit = self.settings.snapshot_max_stale + self.settings.slurmrestd_timeout + 5
        started = time.monotonic()
        while True:
            code, body = await self.poll("/running")
            if code != 200:
                break
            self.assertIn([ref["name"], ref["jobid"]], body)
            self.assertLess(time.monotonic() - started, limit, "never 503")
            await self.sleep(0.25)
        self.assertEqual(code, 503, body)
        self.assertIn("slurmrestd", body["error"])
        self.assertEqual((await self.poll("/queued"))[0], 503)
        code, body = await self.poll("/ready")
        self.assertEqual(code, 503, body)
        await rig_control("start", "slurmrestd")
        for _ in range(120):
            code, running = await self.poll("/running")
            if code == 200:
                break
            await self.sleep(0.25)
        self.assertEqual(code, 200, running)
        self.assertIn([ref["name"], ref["jobid"]], running)
        self.assertEqual((await self.poll("/ready"))[0], 200)


class RefusedTokenTests(RestCase):
    async def test_a_key_slurm_does_not_know_is_a_clear_503(self):
        path = os.path.join(self.mktemp() + "-key")
        with open(path, "wb") as handle:
            handle.write(b"not the cluster's key, 32 bytes!")
        os.chmod(path, 0o600)  # DSSR refuses key files others can read
        await self.start_dssr_unready(slurm_jwt_key_file=path)
        code, body = await self.poll("/running")
        self.assertEqual(code, 503, body)
        self.assertIn("refused the minted token", body["error"])
        self.assertEqual((await self.poll("/gc"))[0], 500)

    async def test_a_static_token_slurm_refuses_is_a_clear_503_without_the_token(self):
        token = root_token(self.environment, key=b"someone else's key, 32 bytes...")
        await self.start_dssr_unready(slurm_jwt_key_file="", slurm_sa_token=token)
        code, body = await self.call("/running")
        self.assertEqual(code, 503, body)
        self.assertIn(b"refused the static token", body)
        self.assertNotIn(token.encode(), body)
        self.assertNotIn(token.split(".")[2].encode(), body)

    async def test_a_version_the_server_does_not_offer_is_a_clear_503(self):
        versions = await self.offered()
        missing = next(version for version in SUPPORTED if version not in versions)
        await self.start_dssr_unready(slurmrestd_api_version=missing)
        code, body = await self.poll("/queued")
        self.assertEqual(code, 503, body)
        self.assertIn("HTTP 404", body["error"])

    async def start_dssr_unready(self, **overrides):
        """Start a DSSR that cannot become ready: the first one is replaced."""
        self.overrides = {**self.overrides, **overrides}
        try:
            await self.start_dssr()
        except self.failureException:
            pass


class TokenModeTests(MappedRigCase):
    interface = "http"

    async def both_users_run(self):
        """Alice's and Bob's jobs run as them (the queue is read as the service account)."""
        alice = await self.submit(self.name("tok-alice"), "id -un; echo JARVICE_CMD_SUCCESS",
                                  bearer=bearer("alice@example.org"))
        bob = await self.submit(self.name("tok-bob"), "id -un; echo JARVICE_CMD_SUCCESS",
                                bearer=bearer("bob@example.org"))
        for ref, user in ((alice, "DSSR_RIG_ALICE"), (bob, "DSSR_RIG_BOB")):
            rc, _, (stdout, _) = await self.run_to_end(ref)
            self.assertEqual(rc, 0, stdout)
            self.assertIn(self.environment[user], stdout.splitlines())

    async def test_tokens_from_scontrol_over_ssh(self):
        await self.start_dssr(slurm_jwt_key_file="")
        await self.both_users_run()

    async def test_a_slurmuser_token_acting_for_each_user(self):
        await self.start_dssr(slurm_jwt_key_file="",
                              slurm_sa_token=root_token(self.environment))
        await self.both_users_run()


class ExtrasTests(RestCase):
    async def test_sbatch_devices_reach_slurm_as_rest_fields(self):
        devices = 'JOBOBJ_DEVICES=["exclusive=False", "sbatch_comment=from-rest"]'
        ref = await self.submit(self.name("extra"), "sleep 30", devices)
        events = await self.answer("/events", ref)
        self.assertIn("comment=from-rest", events)
        # --switches has a REST field in no version (--exclude has none in v0.0.38 only).
        devices = 'JOBOBJ_DEVICES=["exclusive=False", "sbatch_switches=1"]'
        args = {"name": self.name("no-field"), "number": 1, "nodes": 1,
                "hpc_script": {"singularity": job_script("true", devices)}}
        body = await self.answer("/submit", args, expect=400)
        self.assertEqual(body["field"], "JOBOBJ_DEVICES")


class ThroughSSHTests(RestCase):
    """slurmrestd reached through DSSR's SSH connection (direct-tcpip), not over TCP."""

    overrides = {"slurmrestd_via": "ssh"}

    async def test_a_job_from_start_to_end_and_a_terminated_one(self):
        done = await self.submit(self.name("via-ssh"), "echo through-ssh; "
                                 "echo JARVICE_CMD_SUCCESS")
        doomed = await self.submit(self.name("via-ssh-term"), "sleep 120")
        rc, _, (stdout, _) = await self.run_to_end(done)
        self.assertEqual(rc, 0, stdout)
        self.assertIn("through-ssh", stdout)
        await self.wait_for(doomed, "running")
        self.assertIs(await self.answer("/terminate", doomed), True)
        self.assertEqual((await self.run_to_end(doomed))[0], -15)
        streams = [sample for sample in self.connector.metrics()
                   if sample.name == "dssr_ssh_streams"]
        self.assertGreater(sum(sample.value for sample in streams), 0, streams)


class UnixSocketThroughSSHTests(RestCase):
    """slurmrestd's unix socket on the login node, reached through DSSR's SSH connection
    (a direct-streamlocal channel per connection)."""

    def setUp(self):
        socket = rig_environment()["DSSR_RIG_RESTD_SOCKET"]
        self.overrides = {"slurmrestd_via": "ssh", "slurmrestd_addr": f"unix:{socket}"}
        return super().setUp()

    async def test_a_job_from_start_to_end(self):
        done = await self.submit(self.name("via-socket"), "echo through-the-socket; "
                                 "echo JARVICE_CMD_SUCCESS")
        rc, _, (stdout, _) = await self.run_to_end(done)
        self.assertEqual(rc, 0, stdout)
        self.assertIn("through-the-socket", stdout)
        streams = [sample for sample in self.connector.metrics()
                   if sample.name == "dssr_ssh_streams"]
        self.assertGreater(sum(sample.value for sample in streams), 0, streams)
