"""Hypothesis fuzzing of every endpoint: no 5xx, no traceback or HTML, no shell ever runs
request text, and the service still answers ``/live`` afterwards.

Two runs here: the dummy connector on a real port (requests from a client thread while
the reactor serves), and the Slurm connector over a scripted remote in memory (its job
scripts are executed with bash to prove nothing in them fires a canary). The third, the
Slurm connector on the rig, is in tests/integration/test_fuzz.py.
"""

import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import PartialDownloadError, readBody
from twisted.web.http_headers import Headers

from dssr.api import DSSRApi
from dssr.compose import slurm_over
from dssr.connectors.dummy import DummyConnector
from dssr.edge import EdgeLimits, make_site
from dssr.executors.config import ExecutorSettings
from dssr.producers import BytesProducer
from tests.fakes import served
from tests.slurm.fakes import FakeRemote, captured, exited, ok
from tests.strategies import (
    FuzzRequest,
    api_requests,
    canary_hits,
    request_paths,
    valid_submits,
)

FUZZ = settings(deadline=None, database=None, derandomize=True, report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck))


def fuzz_settings(examples: int) -> settings:
    """Reproducible runs of ``examples`` examples (a tenth in a quick run, such as tox's
    floors env): no deadline (a request may wait on SQLite or SSH), no example
    database, the same examples every run."""
    if os.environ.get("DSSR_TESTS_QUICK"):
        examples = max(1, examples // 10)
    return settings(FUZZ, max_examples=examples)
SIGNS_OF_A_CRASH = (b"traceback", b"<html", b"<!doctype")
ERROR_KEYS = {"error", "field"}


def check_answer(case, request: FuzzRequest, code: int, content_type: str | None,
                 body: bytes) -> None:
    """What every answer to every request must be: no 5xx, nothing that looks like a
    crash page, and 4xx errors as ``{"error": str, "field"?: str}``."""
    shown = f"{code} {body[:400]!r} for {request.describe()}"
    case.assertLess(code, 500, shown)
    lowered = body.lower()
    for sign in SIGNS_OF_A_CRASH:
        case.assertNotIn(sign, lowered, shown)
    if code >= 400 and request.method != "HEAD":
        case.assertEqual(content_type, "application/json", shown)
        answer = json.loads(body)
        case.assertIsInstance(answer, dict, shown)
        case.assertLessEqual(set(answer), ERROR_KEYS, shown)
        case.assertIsInstance(answer.get("error"), str, shown)
        case.assertIsInstance(answer.get("field", ""), str, shown)


def send(base: str, request: FuzzRequest, timeout: float = 60) -> tuple[int, str | None, bytes]:
    """Send ``request`` to ``base`` with a blocking client; (status, content type, body)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    try:
        connection.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body or None)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def wire_assertions(case, base: str, request: FuzzRequest) -> tuple[int, bytes]:
    code, content_type, body = send(base, request)
    check_answer(case, request, code, content_type, body)
    return code, body


# -- 1: the dummy connector on a real port ---------------------------------------------

class DummyServedCase(TestCase):
    """A DSSR on 127.0.0.1 over the dummy connector, called from a client thread while
    the reactor serves (the dummy's SQLite needs real threads)."""

    timeout = 300
    max_body = 256 * 1024

    def setUp(self):
        state = self.mktemp()
        self.connector = DummyConnector(os.path.join(state, "db.sqlite"), reactor,
                                        os.path.join(state, "data"), queued_time=0.2,
                                        running_time=0.5)
        os.makedirs(os.path.join(state, "data", "dir", "sub"))
        self.connector.service.startService()
        self.addCleanup(self.connector.service.stopService)
        site = make_site(DSSRApi(self.connector), EdgeLimits(max_body=self.max_body))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(lambda: ensureDeferred(self.closed(site)))
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}"

    async def closed(self, site, limit: float = 10) -> None:
        """Wait until the site holds no connection: one refused last may still be
        draining its client's body (the edge's linger) when the fuzzing ends."""
        for _ in range(int(limit / 0.05)):
            if not site.open:
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail(f"{site.open} connection(s) still open {limit:g} s after the last request")



class DummyOverSocketTests(DummyServedCase):
    """Every endpoint over the dummy connector on a real port."""

    async def fuzz(self, requests, examples: int) -> None:
        @fuzz_settings(examples)
        @given(request=requests)
        def run(request):
            wire_assertions(self, self.base, request)

        await deferToThread(run)
        code, _, body = await deferToThread(send, self.base, FuzzRequest("GET", "/live"))
        self.assertEqual((code, body), (200, b'{"status":"OK"}'))
        self.assertEqual(canary_hits(), [])

    async def test_any_request(self):
        await self.fuzz(api_requests(), 1500)

    async def test_request_paths(self):
        await self.fuzz(api_requests(paths=request_paths()), 400)


# -- 2: the Slurm connector over a scripted remote, in memory --------------------------

SCRATCH = "/home/dssr-svc"


def payload_of(batch_script: bytes) -> str:
    """The filled job script a batch script carries (base64 in ``DSSR_PAYLOAD_n``)."""
    chunks = re.findall(r"^export DSSR_PAYLOAD_\d+=(\S*)$", batch_script.decode(), re.MULTILINE)
    return base64.b64decode("".join(chunks)).decode("utf-8", "surrogatepass")


def scripted_cluster() -> FakeRemote:
    """A login node answering every command the connector may run with captured
    output; any other command (or unknown shell program) fails the request."""
    return FakeRemote(
        squeue=[captured("squeue_snapshot", 0)], submit=[captured("sbatch_parsable", 0)],
        sacct=[captured("sacct_job", 1)], cat=[exited(1)], test=[exited(1)],
        tail=[exited(1)], forget=[ok()], touch=[ok()], scancel=[ok()],
        scontrol_release=[captured("scontrol_release_held", 0)],
        scontrol_show=[captured("scontrol_show_job_unknown", 1)],
        scontrol_ping=[captured("scontrol_ping_up", 0)], list=[exited(4)],
    )


def _partial_body(failure) -> bytes:
    """The body of an answer that ended without its announced length (twisted.web's
    own refusals); ``check_answer`` decides whether that was acceptable."""
    failure.trap(PartialDownloadError)
    return failure.value.response


class SlurmInMemoryTests(SynchronousTestCase):
    """The Slurm connector (and so the singularity executor) behind the API, over a
    scripted remote, through StubTreq's in-memory HTTP."""

    def setUp(self):
        self.remote = scripted_cluster()
        connector = slurm_over(
            self.remote, Clock(),
            ExecutorSettings(job_scratch_dir=SCRATCH, init_docker_password="aW5pdC1wdw=="),
            listing_root="/data", service_user="dssr-svc")
        self.agent = served(DSSRApi(connector))

    def send(self, request: FuzzRequest) -> tuple[int, bytes]:
        headers = Headers({name: [value] for name, value in request.headers.items()})
        body = BytesProducer(request.body) if request.body else None
        answer = self.agent.request(request.method.encode(),
                                    b"http://dssr.test" + request.target.encode(),
                                    headers, body)
        self.agent.flush()
        response = self.successResultOf(answer)
        content = readBody(response)
        self.agent.flush()
        body = self.successResultOf(content.addErrback(_partial_body))
        content_type = response.headers.getRawHeaders("content-type", [None])[0]
        check_answer(self, request, response.code, content_type, body)
        return response.code, body

    def test_any_request(self):
        @fuzz_settings(700)
        @given(request=api_requests())
        def run(request):
            self.send(request)

        run()
        self.assertEqual(self.send(FuzzRequest("GET", "/live")), (200, b'{"status":"OK"}'))

    def test_submitted_scripts_run_no_canary(self):
        """Every job script DSSR accepts is run with bash: with upstream's header lines
        made inert, only DSSR's own text runs, and no canary in the header may fire."""
        work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, work)

        @fuzz_settings(300)
        @given(args=valid_submits(inert_header=True))
        def run(args):
            before = len(self.remote.of("submit"))
            code, _ = self.send(FuzzRequest(
                "POST", "/submit", {"Content-Type": "application/json"},
                json.dumps(args).encode()))
            if code != 200:
                return
            call = self.remote.of("submit")[before]
            script = payload_of(call.stdin)
            result = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True,
                                    timeout=10, env={"PATH": "/usr/bin:/bin", "HOME": work})
            self.assertIn(b"JARVICE_CMD_SUCCESS", result.stdout, result.stderr[-2000:])
            self.assertEqual(canary_hits(), [], script)

        run()
        self.assertGreater(len(self.remote.of("submit")), 0)


class FoundByFuzzingTests(DummyServedCase):
    """Minimal inputs the fuzzers found, pinned as regressions."""

    async def test_non_utf8_path_is_a_json_error(self):
        # Klein answered 400 text/html "Non-UTF-8 encoding in URL." (and logged a
        # UnicodeDecodeError traceback) before any DSSR route or error handler ran.
        request = FuzzRequest("GET", "/%FF")
        await deferToThread(wire_assertions, self, self.base, request)

    async def test_malformed_multipart_body_is_a_json_error(self):
        # twisted.web parsed multipart bodies itself and answered a bad one with a
        # bodyless 400 (closing the connection) before DSSR saw the request.
        request = FuzzRequest("POST", "/live", {"Content-Type": "multipart/form-data; boundary=x"},
                              b"\x00")
        await deferToThread(wire_assertions, self, self.base, request)
