"""No secret leaks: canary values through a real ``twistd dssr`` and a real Slurm job.

DSSR is started with a unique canary for each secret it holds (server key, registry
login, proxy passwords, SSH key passphrase) and is sent a canary bearer. A job prints
its whole environment. Then every HTTP answer, DSSR's log and the job's output are
searched for each canary, raw and base64. What a job needs on purpose is the one
exception, and is pinned exactly: the singularity executor exports the init
registry login (base64, as ``JARVICE_INIT_DOCKER_USERNAME``/``_PASSWORD``) and the
proxy URLs (``SCHTTP_PROXY``/``SCHTTPS_PROXY``) so the job can pull images; they may
appear on those lines of the job's output and nowhere else. The server key, the
bearer, the passphrase and the SSH keys never reach the job.
"""

import base64
import json
import os
import secrets
import time

import jwt
import treq
from cryptography.hazmat.primitives import serialization
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from tests.integration.process import DSSRProcess
from tests.integration.rig import job_script, rig_environment

SERVICE_USER = "upstream"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def canary(label: str) -> str:
    return f"canary-{label}-{secrets.token_hex(6)}"


class Canaries:
    """One unique value per secret, the settings that carry them, and how to find them."""

    def __init__(self, environment: dict[str, str]):
        self.server_password = canary("serverkey")
        self.server_key = f"{SERVICE_USER}:{self.server_password}"
        self.wrong_password = canary("wrongkey")
        self.registry_user = canary("reguser")
        self.registry_password = canary("regpass")
        self.proxy_user, self.proxy_password = canary("proxyuser"), canary("proxypass")
        self.http_proxy = (f"http://{self.proxy_user}:{self.proxy_password}"
                           f"@proxy.invalid:3128")
        self.https_proxy = (f"https://{self.proxy_user}:{self.proxy_password}"
                            f"@proxy.invalid:3129")
        self.passphrase = canary("passphrase")
        self.bearer_claim = canary("bearer")
        unknown = "a key DSSR does not know, long enough for HS256"
        self.bearer = jwt.encode({"email": "alice@example.org", "note": self.bearer_claim},
                                 unknown, algorithm="HS256")
        self.unmapped_bearer = jwt.encode({"email": "mallory@example.org",
                                           "note": self.bearer_claim}, unknown, algorithm="HS256")
        header, _, signature = self.bearer.split(".")
        garbled = base64.urlsafe_b64encode(f"not JSON {self.bearer_claim}".encode()).decode()
        self.garbled_bearer = f"{header}.{garbled.rstrip('=')}.{signature}"
        with open(environment["DSSR_RIG_SVC_KEY"], "rb") as handle:
            private = serialization.load_ssh_private_key(handle.read(), None)
        self.encrypted_key = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(self.passphrase.encode())).decode()
        self.plain_key_b64 = environment["JARVICE_SLURM_SSH_PKEY"]
        with open(environment["DSSR_RIG_ALICE_KEY"], "rb") as handle:
            self.alice_key_b64 = base64.b64encode(handle.read()).decode()
        self.extra: dict[str, str] = {}  # canaries of one test only

    def settings(self) -> dict[str, str]:
        """DSSR's environment: every secret set to its canary, debug logging."""
        return {
            "JARVICE_SCHED_SERVER_KEY": self.server_key,
            "JARVICE_DOCKER_USERNAME": b64(self.registry_user),
            "JARVICE_DOCKER_PASSWORD": b64(self.registry_password),
            "JARVICE_BAREMETAL_HTTP_PROXY": self.http_proxy,
            "JARVICE_BAREMETAL_HTTPS_PROXY": self.https_proxy,
            "JARVICE_SLURM_SSH_PKEY": b64(self.encrypted_key),
            "DSSR_SSH_PKEY_PASSPHRASE": self.passphrase,
            "JARVICE_SCHED_LOGLEVEL": "10",
        }

    def values(self) -> dict[str, str]:
        """Every canary, by name."""
        key_line = self.encrypted_key.splitlines()[2]  # key material, not the PEM frame
        return {
            "server key password": self.server_password,
            "server key": self.server_key,
            "Basic credential": b64(self.server_key),
            "wrong password tried": self.wrong_password,
            "bearer": self.bearer,
            "unmapped bearer": self.unmapped_bearer,
            "garbled bearer": self.garbled_bearer,
            "bearer claim": self.bearer_claim,
            "key passphrase": self.passphrase,
            "encrypted service key": b64(self.encrypted_key),
            "encrypted service key material": key_line,
            "plain service key": self.plain_key_b64,
            "mapped user's key": self.alice_key_b64,
            "registry user": self.registry_user,
            "registry password": self.registry_password,
            "proxy user": self.proxy_user,
            "proxy password": self.proxy_password,
            **self.extra,
        }

    def job_lines(self) -> list[str]:
        """The lines of a job's environment that carry secrets on purpose."""
        return [f"JARVICE_INIT_DOCKER_USERNAME={b64(self.registry_user)}",
                f"JARVICE_INIT_DOCKER_PASSWORD={b64(self.registry_password)}",
                f"SCHTTP_PROXY={self.http_proxy}", f"SCHTTPS_PROXY={self.https_proxy}"]

    def outside_job_lines(self, output: str) -> str:
        """A job's output without the lines that carry secrets on purpose."""
        return "\n".join(line for line in output.splitlines() if line not in self.job_lines())


def found(text: str, values: dict[str, str]) -> list[str]:
    """The names of the values in ``text``, raw or base64 (standard or URL-safe)."""
    hits = []
    for name, value in values.items():
        encoded = base64.b64encode(value.encode()).decode()
        forms = {value, encoded, encoded.rstrip("="),
                 base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")}
        if any(form in text for form in forms):
            hits.append(name)
    return hits


class SecretsCase(TestCase):
    """A ``twistd dssr`` process against the rig, every answer it gives kept."""

    timeout = 240

    def setUp(self):
        self.environment = rig_environment()
        self.canaries = Canaries(self.environment)
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.answers: list[tuple[str, int, str]] = []
        self.output_paths: tuple[str, ...] = ()  # answers that carry job output

    async def start(self, **settings: str) -> DSSRProcess:
        self.process = DSSRProcess({**self.environment, **self.canaries.settings(),
                                    **settings}, self.directory, "dssr")
        self.addCleanup(lambda: ensureDeferred(self.process.stop()))
        self.base = await self.process.start()
        return self.process

    async def call(self, path: str, args=None, password: str | None = "",
                   expect: int | None = 200):
        """POST ``path``; keep the answer. ``password`` None: no credentials."""
        if password == "":
            password = self.canaries.server_password
        auth = None if password is None else (SERVICE_USER, password)
        data = {"args": json.dumps(args)} if args is not None else None
        response = await treq.post(self.base + path, data=data, auth=auth, pool=self.pool)
        body = (await response.content()).decode("utf-8", "replace")
        self.answers.append((path, response.code, body))
        if expect is not None:
            self.assertEqual(response.code, expect, f"{path}: {body}")
        kind = response.headers.getRawHeaders("content-type", [""])[0]
        return json.loads(body) if kind.startswith("application/json") else body

    async def run_job(self, bearer: str) -> tuple[list, str]:
        """Submit a job printing its environment; its ``/exitstatus`` and ``tail``."""
        name = f"it-{os.getpid()}-secrets-{secrets.token_hex(3)}"
        args = {"name": name, "number": 1, "nodes": 1, "bearer": bearer,
                "hpc_script": {"singularity": job_script("env; echo JARVICE_CMD_SUCCESS")}}
        jobid, fscript = await self.call("/submit", args)
        ref = {"name": name, "number": 1, "jobid": jobid}
        self.addCleanup(lambda: ensureDeferred(self.call("/terminate", ref, expect=None)))
        self.assertIn("export SCHTTP_PROXY='http://***@proxy.invalid:3128'", fscript)
        for _ in range(360):
            running = await self.call("/running")
            queued = await self.call("/queued")
            if [name, jobid] not in running + queued:
                break
            await self.call("/runstatus", ref)
            await deferLater(reactor, 0.25, lambda: None)
        else:
            self.fail(f"job {jobid} never ended")
        await self.call("/events", ref)
        await self.call(f"/request/{name}/1/{jobid}/info", {"qs": {}})
        tail = await self.call(f"/request/{name}/1/{jobid}/tail", {"qs": {"lines": ["500"]}})
        status = await self.call("/exitstatus", ref)
        self.output_paths = (f"/request/{name}/1/{jobid}/tail", "/exitstatus")
        return status, tail

    async def probe_the_edges(self) -> None:
        """Answers that could echo a credential: no, wrong and right auth, health."""
        for path in ("/live", "/ready"):
            await self.call(path, password=None)
        await self.call("/running", password=None, expect=401)
        await self.call("/running", password=self.canaries.wrong_password, expect=401)
        await self.call("/gc")
        await self.call("/metrics")

    def assertNoLeak(self, process: DSSRProcess) -> None:
        """No canary in any answer (a job's output: but on its ``job_lines``), nor in the log."""
        for path, code, body in self.answers:
            if path in self.output_paths:
                output = json.loads(body)[2][0] if path == "/exitstatus" else body
                body = self.canaries.outside_job_lines(output)
            self.assertEqual(found(body, self.canaries.values()), [],
                             f"{path} answered {code}: {body[:2000]}")
        log = process.tail(lines=100000)
        self.assertIn("cluster: ", log)  # the startup report: the log is the right one
        self.assertEqual(found(log, self.canaries.values()), [], "DSSR's log")

    def assertJobEnvironment(self, output: str) -> None:
        """The job saw its pull credentials on their lines only, and no other secret."""
        lines = output.splitlines()
        for expected in self.canaries.job_lines():
            self.assertIn(expected, lines)
        self.assertIn("JARVICE_CMD_SUCCESS", lines)
        rest = self.canaries.outside_job_lines(output)
        self.assertEqual(found(rest, self.canaries.values()), [], rest)


class SSHSecretsTests(SecretsCase):
    async def test_no_secret_in_answers_log_or_job(self):
        mapping = os.path.join(self.directory, "mapping.yaml")
        with open(mapping, "w") as handle:
            handle.write("users_id_mapping:\n  - mail: alice@example.org\n"
                         f"    mapped_user: {self.environment['DSSR_RIG_ALICE']}\n"
                         f"    ssh_private_key_b64: {self.canaries.alice_key_b64}\n")
        os.chmod(mapping, 0o600)  # DSSR refuses key files others can read
        # Tokens are not verified: believed because upstream authenticates.
        process = await self.start(DSSR_ID_MAPPING_FILE=mapping)
        await self.probe_the_edges()
        base = {"name": f"it-{os.getpid()}-refused", "number": 1, "nodes": 1,
                "hpc_script": {"singularity": job_script("true")}}
        for bearer, code in ((self.canaries.unmapped_bearer, 403),
                             (self.canaries.bearer_claim, 400),
                             (self.canaries.garbled_bearer, 400)):
            await self.call("/submit", {**base, "bearer": bearer}, expect=code)
        (rc, _, (stdout, _)), tail = await self.run_job(self.canaries.bearer)
        self.assertEqual(rc, 0, stdout)
        self.assertIn(f"USER={self.environment['DSSR_RIG_ALICE']}", stdout.splitlines())
        self.assertJobEnvironment(stdout)
        self.assertJobEnvironment(tail)
        self.assertNoLeak(process)


class LocalSecretsTests(SecretsCase):
    async def test_local_commands_hand_the_job_none_of_dssrs_environment(self):
        process = await self.start(DSSR_REMOTE="local")
        await self.probe_the_edges()
        (rc, _, (stdout, _)), tail = await self.run_job("")
        self.assertEqual(rc, 0, stdout)
        self.assertJobEnvironment(stdout)
        self.assertJobEnvironment(tail)
        names = {line.partition("=")[0] for line in stdout.splitlines() if "=" in line}
        for name in ("JARVICE_SCHED_SERVER_KEY", "DSSR_SSH_PKEY_PASSPHRASE",
                     "JARVICE_SLURM_SSH_PKEY", "JARVICE_BAREMETAL_HTTP_PROXY", "DSSR_RIG"):
            self.assertNotIn(name, names)
        self.assertIn(f"SLURM_CONF={self.environment['SLURM_CONF']}", stdout.splitlines())
        self.assertNoLeak(process)


class RestSecretsTests(SecretsCase):
    async def test_no_slurmrestd_token_in_answers_log_or_job(self):
        with open(self.environment["DSSR_SLURM_JWT_KEY_FILE"], "rb") as handle:
            key = handle.read()
        now = int(time.time())
        token = jwt.encode({"sun": "root", "iat": now, "exp": now + 3600,
                            "note": canary("satoken")}, key, algorithm="HS256")
        self.canaries.extra.update({"slurmrestd token": token,
                                    "slurmrestd token signature": token.rsplit(".", 1)[1],
                                    "cluster JWT key": base64.b64encode(key).decode()})
        process = await self.start(JARVICE_SLURM_INTERFACE="http", JARVICE_SLURM_SA_TOKEN=token,
                                   DSSR_SLURM_JWT_KEY_FILE="")
        await self.probe_the_edges()
        (rc, _, (stdout, _)), tail = await self.run_job("")
        self.assertEqual(rc, 0, stdout)
        self.assertJobEnvironment(stdout)
        self.assertJobEnvironment(tail)
        self.assertIn("slurmrestd at http://127.0.0.1", process.tail(lines=100000))
        self.assertNoLeak(process)
