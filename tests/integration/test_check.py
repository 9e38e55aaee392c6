"""``dssr check`` against the Slurm test rig: it passes, and each broken setting gets its ✗ line."""

import base64
import io
import os
import re
import sys
import tempfile

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from dssr import check
from dssr.remote.hostkeys import KnownHosts
from dssr.remote.keys import decode_key_text, fingerprint, load_private_key
from tests.integration.rig import id_mapping_file, rig_environment, use_modes
from tests.integration.sshd import free_port, generate_key

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_STEPS = ("environment", "settings", "private key", "login node", "host key",
             "authentication", "slurm commands", "slurm controller", "scratch dir")


class CheckCase(TestCase):
    """``dssr check`` run in-process against the rig, and its lines read."""

    timeout = 120

    def setUp(self):
        self.environ = {**rig_environment(), "JARVICE_BAREMETAL_CONNECTOR": "slurm"}

    async def check(self, *argv: str, **environ: str) -> tuple[int, list[str]]:
        """Run ``dssr check`` in-process against the rig, some settings changed."""
        out = io.StringIO()
        args = check.parse(["--timeout", "10", *argv])
        code = await check.check(reactor, args, {**self.environ, **environ}, out)
        return code, out.getvalue().splitlines()

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(os.path.abspath(self.mktemp()), name)
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o600)  # DSSR refuses key files others can read
        return path

    def line(self, lines: list[str], start: str) -> str:
        found = [line for line in lines if line.startswith(start)]
        self.assertEqual(len(found), 1, "\n".join(lines))
        return found[0]

    def fixes(self, lines: list[str], start: str) -> list[str]:
        """The ``fix:`` lines under the line starting with ``start``."""
        index = lines.index(self.line(lines, start))
        following = []
        for line in lines[index + 1:]:
            if not line.startswith("  fix: "):
                break
            following.append(line.removeprefix("  fix: "))
        return following

    def rig_key(self, who: str) -> bytes:
        with open(self.environ[f"DSSR_RIG_{who}_KEY"], "rb") as handle:
            return handle.read()


class CheckTests(CheckCase):

    async def test_passes_against_the_rig(self):
        code, lines = await self.check()
        self.assertEqual(code, 0, "\n".join(lines))
        self.assertEqual([line.split(":")[0] for line in lines[:-1]],
                         [f"✓ {step}" for step in ALL_STEPS])
        self.assertEqual(lines[-1], f"all {len(ALL_STEPS)} checks passed")
        self.assertEqual(self.line(lines, "✓ scratch dir"),
                         "✓ scratch dir: /home/dssr-svc/.jarvice is writable by dssr-svc")
        self.assertRegex(self.line(lines, "✓ slurm controller"),
                         r"; Slurm " + re.escape(self.environ["DSSR_RIG_SLURM_RELEASE"])
                         + r"\.[0-9]+, a tested release \(")
        output = "\n".join(lines)
        key_text = decode_key_text(self.environ["JARVICE_SLURM_SSH_PKEY"]).decode()
        self.assertNotIn(self.environ["JARVICE_SLURM_SSH_PKEY"][20:60], output)
        self.assertNotIn(key_text.splitlines()[1], output)

    async def test_submit_test_runs_a_job_and_reads_its_output(self):
        code, lines = await self.check("--submit-test")
        self.assertEqual(code, 0, "\n".join(lines))
        self.assertRegex(self.line(lines, "✓ submit test"),
                         rf"^✓ submit test: job \d+ ran on {self.environ['DSSR_RIG_NODE']} "
                         r"and its output came back in \d+s$")

    async def test_wrong_port(self):
        port = free_port()
        code, lines = await self.check(JARVICE_SLURM_CLUSTER_PORT=str(port))
        self.assertEqual(code, 1)
        self.assertEqual(self.line(lines, "✗"), f"✗ login node: 127.0.0.1:{port} refused the "
                                                f"connection: nothing listens there")
        self.assertEqual(self.fixes(lines, "✗ login node"), [
            f"check JARVICE_SLURM_CLUSTER_ADDR (cluster_addr) and JARVICE_SLURM_CLUSTER_PORT "
            f"(cluster_port): {port} must be the port sshd listens on at 127.0.0.1, and sshd "
            f"must be running there"])
        # What needs the login node is skipped, not failed again.
        self.assertEqual(self.line(lines, "- host key"), "- host key: skipped: needs login node")
        self.assertEqual(self.line(lines, "- slurm controller"),
                         "- slurm controller: skipped: needs slurm commands")
        self.assertEqual(lines[-1], "1 of 9 checks failed, 5 skipped")

    async def test_unresolvable_host(self):
        code, lines = await self.check(JARVICE_SLURM_CLUSTER_ADDR="login.dssr-check.invalid")
        self.assertEqual(code, 1)
        self.assertEqual(self.line(lines, "✗"),
                         "✗ login node: cannot resolve the host name login.dssr-check.invalid")
        self.assertIn("JARVICE_SLURM_CLUSTER_ADDR (cluster_addr)",
                      self.fixes(lines, "✗ login node")[0])

    async def test_unknown_host_key(self):
        known_hosts = self.write("known_hosts", b"")
        code, lines = await self.check(JARVICE_SLURM_SSH_KNOWN_HOSTS=known_hosts)
        self.assertEqual(code, 1)
        real = KnownHosts(self.environ["JARVICE_SLURM_SSH_KNOWN_HOSTS"]).keys_for("127.0.0.1", 2222)
        printed = f"ssh-ed25519 {fingerprint(real[0])}"
        self.assertEqual(self.line(lines, "✗"), (
            f"✗ host key: host key of [127.0.0.1]:2222 is unknown: it offered {printed}, which "
            f"is not in {known_hosts}. Check the fingerprint and add the key (ssh-keyscan -p "
            f"2222 127.0.0.1), or set ssh_host_key_policy to accept-new."))
        self.assertEqual(self.fixes(lines, "✗ host key"), [
            f"on 127.0.0.1, check that `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` shows "
            f"{printed}, then add it: ssh-keyscan -p 2222 -t ed25519 127.0.0.1 >> {known_hosts}",
            "or set DSSR_SSH_HOST_KEY_POLICY (ssh_host_key_policy) to accept-new to trust the "
            "key offered on first connect"])
        self.assertEqual(self.line(lines, "- authentication"),
                         "- authentication: skipped: needs host key")
        with open(known_hosts, "rb") as handle:
            self.assertEqual(handle.read(), b"")

    async def test_accept_new_passes_without_writing_known_hosts(self):
        known_hosts = self.write("known_hosts", b"")
        code, lines = await self.check(JARVICE_SLURM_SSH_KNOWN_HOSTS=known_hosts,
                                       DSSR_SSH_HOST_KEY_POLICY="accept-new")
        self.assertEqual(code, 0, "\n".join(lines))
        self.assertIn("DSSR will add it on first connect", self.line(lines, "✓ host key"))
        with open(known_hosts, "rb") as handle:
            self.assertEqual(handle.read(), b"")

    async def test_wrong_key(self):
        private, public = generate_key()
        code, lines = await self.check(JARVICE_SLURM_SSH_PKEY=private.decode())
        self.assertEqual(code, 1)
        printed = f"ssh-ed25519 {fingerprint(load_private_key(private))}"
        self.assertEqual(self.line(lines, "✗"),
                         f"✗ authentication: [127.0.0.1]:2222 refused dssr-svc's key {printed}")
        self.assertEqual(self.fixes(lines, "✗ authentication"), [
            "append this line to ~dssr-svc/.ssh/authorized_keys on 127.0.0.1: "
            + public.decode().strip(),
            "or set JARVICE_SLURM_SSH_PKEY (ssh_pkey) to the private key dssr-svc already has "
            "authorized"])
        for step in ("slurm commands", "scratch dir"):
            self.assertEqual(self.line(lines, f"- {step}"),
                             f"- {step}: skipped: needs authentication")
        self.assertNotIn(private.decode().splitlines()[1], "\n".join(lines))

    async def test_missing_scratch_dir(self):
        code, lines = await self.check(JARVICE_JOB_SCRATCH_DIR="/nonexistent/dssr-scratch")
        self.assertEqual(code, 1)
        self.assertEqual(self.line(lines, "✗"), (
            "✗ scratch dir: JARVICE_JOB_SCRATCH_DIR (job_scratch_dir) /nonexistent/dssr-scratch "
            "does not exist on 127.0.0.1"))
        self.assertEqual(self.fixes(lines, "✗ scratch dir"), [
            "create it on storage the compute nodes share and let dssr-svc write there "
            "(mkdir -p /nonexistent/dssr-scratch && chown dssr-svc /nonexistent/dssr-scratch), "
            "or point JARVICE_JOB_SCRATCH_DIR (job_scratch_dir) at an existing directory"])

    async def test_unwritable_scratch_dir(self):
        scratch = tempfile.mkdtemp(prefix="dssr-check-", dir="/var/tmp")
        self.addCleanup(os.rmdir, scratch)
        os.chmod(scratch, 0o755)  # owned by root: dssr-svc can look, not write
        code, lines = await self.check(JARVICE_JOB_SCRATCH_DIR=scratch)
        self.assertEqual(code, 1)
        self.assertEqual(self.line(lines, "✗"), (
            f"✗ scratch dir: dssr-svc cannot create {scratch}/.jarvice: mkdir: cannot "
            f"create directory '{scratch}/.jarvice': Permission denied"))
        self.assertEqual(self.fixes(lines, "✗ scratch dir"), [
            f"let dssr-svc write to {scratch} (chown or chmod), or create {scratch}/.jarvice "
            f"on storage the compute nodes share, owned by dssr-svc"])

    async def test_mapped_user_whose_key_does_not_log_in(self):
        fresh, public = generate_key()
        entries = [("alice", self.rig_key("ALICE")), ("bob", fresh)]
        text = "users_id_mapping:\n" + "".join(
            f"  - mail: {who}@example.org\n    mapped_user: dssr-{who}\n"
            f"    ssh_private_key_b64: {base64.b64encode(key).decode()}\n"
            for who, key in entries)
        mapping = self.write("mapping.yaml", text.encode())
        code, lines = await self.check(DSSR_ID_MAPPING_FILE=mapping,
                                       DSSR_TRUST_UNVERIFIED_TOKENS="true")
        self.assertEqual(code, 1)
        self.assertEqual(self.line(lines, "✓ mapped user dssr-alice"), (
            f"✓ mapped user dssr-alice: alice@example.org logs in as dssr-alice with ssh-ed25519 "
            f"{fingerprint(load_private_key(self.rig_key('ALICE')))}; "
            f"/home/dssr-alice/.jarvice is writable by dssr-alice"))
        printed = f"ssh-ed25519 {fingerprint(load_private_key(fresh))}"
        self.assertEqual(self.line(lines, "✗"),
                         f"✗ mapped user dssr-bob: 127.0.0.1 refused dssr-bob's key {printed}")
        self.assertEqual(self.fixes(lines, "✗ mapped user dssr-bob"), [
            "append this line to ~dssr-bob/.ssh/authorized_keys on 127.0.0.1: "
            + public.decode().strip(),
            f"or set ssh_private_key_b64 of bob@example.org in {mapping} to the private key "
            f"dssr-bob already has authorized"])

    async def console(self, *argv: str, **environ: str) -> tuple[int, str]:
        """``python -m dssr check`` as a process: its exit status and output."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "dssr", "check", "--timeout", "10", *argv],
            env={**self.environ, **environ}, path=REPO)
        self.assertEqual(err, b"")
        return code, out.decode("utf-8")

    async def test_console_entry(self):
        code, out = await self.console(PYTHONIOENCODING="utf-8")
        self.assertEqual(code, 0, out)
        self.assertIn("✓ slurm controller: Slurmctld(primary) at", out)
        self.assertTrue(out.endswith(f"all {len(ALL_STEPS)} checks passed\n"), out)

    async def test_console_entry_in_ascii_on_failure(self):
        port = str(free_port())
        code, out = await self.console(PYTHONIOENCODING="ascii", JARVICE_SLURM_CLUSTER_PORT=port)
        self.assertEqual(code, 1, out)
        lines = out.splitlines()
        self.assertEqual(lines[:5], [
            "OK environment: no misspelt JARVICE_*/DSSR_* names",
            f"OK settings: connector slurm over SSH to dssr-svc@[127.0.0.1]:{port}",
            self.line(lines, "OK private key"),
            f"FAIL login node: 127.0.0.1:{port} refused the connection: nothing listens there",
            self.line(lines, "  fix:"),
        ])
        self.assertEqual(lines[5], "SKIP host key: skipped: needs login node")


class PrivateDataCheck:
    """With ``PrivateData=jobs,usage`` on the accounting rig, the "private data" check tells
    whether the service account coordinates the mapped users' account; mixed into a
    ``TestCase`` that says which (``modes``, switched as ``RigCase`` switches them)."""

    timeout = 180
    modes: dict[str, bool] = {}

    async def private_data_line(self) -> tuple[int, list[str]]:
        await use_modes(self, self.modes)
        environ = {**rig_environment(), "JARVICE_BAREMETAL_CONNECTOR": "slurm",
                   "DSSR_ID_MAPPING_FILE": id_mapping_file(self, rig_environment()),
                   "DSSR_TRUST_UNVERIFIED_TOKENS": "true"}
        out = io.StringIO()
        code = await check.check(reactor, check.parse(["--timeout", "10"]), environ, out)
        lines = out.getvalue().splitlines()
        return code, [line for line in lines if "private data" in line
                      or line.startswith("  fix: sacctmgr")]


class CoordinatorCheckTests(PrivateDataCheck, TestCase):
    modes = {"accounting": True, "privatedata": True, "coordinator": True}

    async def test_coordinator_rights_pass(self):
        code, lines = await self.private_data_line()
        self.assertEqual((code, lines), (0, [
            "✓ private data: PrivateData=jobs,usage: dssr-svc coordinates dssr-users, the "
            "accounts of every mapped user"]))


class NoCoordinatorCheckTests(PrivateDataCheck, TestCase):
    modes = {"accounting": True, "privatedata": True, "coordinator": False}

    async def test_missing_coordinator_rights_are_flagged_with_the_fix(self):
        code, lines = await self.private_data_line()
        self.assertEqual((code, lines), (1, [
            "✗ private data: PrivateData=jobs hides the jobs of dssr-alice, dssr-bob from "
            "dssr-svc: it coordinates no account of theirs (dssr-users)",
            "  fix: sacctmgr -i add coordinator account=dssr-users names=dssr-svc"]))


class RestCheckTests(CheckCase):
    """``dssr check`` with slurm_interface http: slurmrestd's three checks after the rest."""

    async def test_passes_against_the_rig(self):
        code, lines = await self.check(JARVICE_SLURM_INTERFACE="http")
        self.assertEqual(code, 0, "\n".join(lines))
        steps = (*ALL_STEPS, "slurmrestd", "slurmrestd version", "slurmrestd token")
        self.assertEqual([line.split(":")[0] for line in lines[:-1]],
                         [f"✓ {step}" for step in steps])
        release = self.environ["DSSR_RIG_SLURM_RELEASE"]
        newest = {"22.05": "v0.0.38", "25.05": "v0.0.43", "26.05": "v0.0.45"}[release]
        line = self.line(lines, "✓ slurmrestd version")
        self.assertIn(f"OpenAPI {newest} ", line)
        if release != "22.05":  # 22.05's slurmrestd does not name its release
            self.assertRegex(line, rf"; Slurm {re.escape(release)}\.[0-9]+, a tested release")
        self.assertIn("ping: UP", self.line(lines, "✓ slurmrestd token"))

    async def test_each_broken_part_has_its_fix(self):
        bad_key = self.write("jwt.key", b"not the cluster's key, 32 bytes!")
        code, lines = await self.check(JARVICE_SLURM_INTERFACE="http",
                                       DSSR_SLURM_JWT_KEY_FILE=bad_key)
        self.assertEqual(code, 1)
        self.assertTrue(self.line(lines, "✗ slurmrestd token").startswith(
            "✗ slurmrestd token: slurmrestd refused the minted token of dssr-svc"),
            "\n".join(lines))
        self.assertIn("DSSR_SLURM_JWT_KEY_FILE", self.fixes(lines, "✗ slurmrestd token")[1])
        code, lines = await self.check(JARVICE_SLURM_INTERFACE="http",
                                       JARVICE_SLURMRESTD_PORT=str(free_port()))
        self.assertEqual(code, 1)
        self.line(lines, "✗ slurmrestd:")
        self.assertIn("JARVICE_SLURMRESTD_ADDR", self.fixes(lines, "✗ slurmrestd:")[0])
        self.assertIn("skipped", self.line(lines, "- slurmrestd version"))
