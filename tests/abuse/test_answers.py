"""500s and non-JSON answers from bad input: every answer is JSON with an intended
4xx, and the log gets no traceback (so no log flood either)."""

import base64
import json
import os
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given

from tests.abuse.dssr import BASIC, BEARER, SERVER_KEY, AbuseCase
from tests.integration.sshd import free_port
from tests.strategies import api_requests
from tests.test_fuzz import fuzz_settings, wire_assertions
from tests.upstream import largest_submit, upstream_script


def slurm_at_a_closed_port(directory: str = "/nonexistent") -> dict[str, str]:
    """Settings of a Slurm connector whose login node does not answer: every request
    is served up to the point it would need the cluster."""
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    return {"JARVICE_SCHED_SERVER_KEY": SERVER_KEY,
            "JARVICE_SLURM_CLUSTER_ADDR": "127.0.0.1",
            "JARVICE_SLURM_CLUSTER_PORT": str(free_port()),
            "JARVICE_SLURM_SSH_USER": "svc-account-canary",
            "JARVICE_SLURM_SSH_PKEY": base64.b64encode(key).decode(),
            "JARVICE_SLURM_SSH_KNOWN_HOSTS": os.path.join(directory, "known-hosts-canary"),
            "DSSR_SSH_CONNECT_WAIT": "0", "JARVICE_JOBS_DOMAIN": "jobs.example.org"}


def form(args: dict | str) -> bytes:
    text = args if isinstance(args, str) else json.dumps(args)
    return b"args=" + quote(text).encode()


def post(path: str, body: bytes, content_type: bytes = b"application/x-www-form-urlencoded",
         extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: dssr\r\nAuthorization: "
            + BASIC.encode() + b"\r\nContent-Type: " + content_type + b"\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def submit_with(**header: str) -> dict:
    """The largest upstream submit with some header lines' values replaced."""
    args = largest_submit()
    script = upstream_script()
    for key, value in header.items():
        start = script.index(key + "=")
        end = script.index("\n", start)
        escaped = value.replace("{", "{{").replace("}", "}}")  # as upstream writes it
        script = script[:start] + f"{key}={escaped}" + script[end:]
    args["hpc_script"] = {"singularity": base64.b64encode(script.encode()).decode()}
    return args


DEEP = 20_000  # far past the recursion limit, well under max_body
# (what, raw request, status, field): every bullet of the issue's "500s and non-JSON
# answers", and the framing cases twisted.web used to answer itself.
CASES = [
    ("5000-digit number in a path", post("/request/job-1/" + "1" * 5000 + "/7/tail", b""),
     400, "number"),
    ("5000-digit qs.lines", post("/request/job-1/1/7/tail", form({"qs": {"lines": ["9" * 5000]}})),
     400, "qs.lines"),
    ("non-UTF-8 Authorization", b"POST /running HTTP/1.1\r\nHost: dssr\r\n"
     b"Authorization: Basic \xff\xfe\xfd\r\nContent-Length: 0\r\n\r\n", 401, None),
    ("non-UTF-8 Content-Type", post("/runstatus", form({"name": "a"}), b"\xff\xfe/\xfd"),
     400, "args"),
    ("lone surrogate in a pvcls path", post("/request/pvcls", form(
        '{"qs": {"path": ["/data/\\udfff"]}}')), 400, "args"),
    ("lone surrogate in a bearer", post("/submit", form(
        json.dumps(largest_submit())[:-1] + ', "bearer": "\\ud800"}')), 400, "args"),
    ("deep JOBOBJ_DEVICES", post("/submit", form(submit_with(
        JOBOBJ_DEVICES="[" * DEEP + "]" * DEEP))), 400, "JOBOBJ_DEVICES"),
    ("deep JOBOBJ_DOCKER_SECRET", post("/submit", form(submit_with(
        JOBOBJ_DOCKER_SECRET='{"a":' * DEEP + "1" + "}" * DEEP))), 400, "hpc_script"),
    ("deep JOBOBJ_CTRSECRET", post("/submit", form(submit_with(
        JOBOBJ_CTRSECRET=base64.b64encode(b"[" * DEEP + b"]" * DEEP).decode()))), 400, "args"),
    ("cores * nodes past 4300 digits", post("/submit", form({**submit_with(
        JARVICE_CPU_CORES="9" * 4299), "nodes": 100_000})), 400, "hpc_script"),
    ("nodes past the bound", post("/submit", form({**largest_submit(), "nodes": 10**4000})),
     400, "nodes"),
    ("request line over 8 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, None),
    ("a header line over 8 KiB", b"GET /live HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
     431, None),
    ("headers over 16 KiB", b"GET /live HTTP/1.1\r\n" + (b"X: " + b"a" * 6000 + b"\r\n") * 3
     + b"\r\n", 431, None),
    ("101 headers", b"GET /live HTTP/1.1\r\n" + b"X: a\r\n" * 101 + b"\r\n", 431, None),
    ("non-UTF-8 Host", b"GET /live HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n", 400, "Host"),
    ("/request//pvcls", post("/request//pvcls", b""), 404, None),
    ("GET *", b"GET * HTTP/1.1\r\nHost: dssr\r\n\r\n", 400, "path"),
    ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: dssr\r\n\r\n", 405, None),
    ("duplicate Content-Length", post("/live", b"x", extra=b"Content-Length: 1\r\n"),
     400, None),
    ("Content-Length and Transfer-Encoding", post("/live", b"x",
     extra=b"Transfer-Encoding: chunked\r\n"), 400, None),
    ("NUL in a header", post("/live", b"", extra=b"X-Nul: a\x00b\r\n"), 400, None),
    ("bad chunking", b"POST /live HTTP/1.1\r\nHost: dssr\r\nTransfer-Encoding: chunked\r\n"
     b"\r\nzz\r\n", 400, None),
    ("bad request line", b"GET /live HTTP/1.1 and more\r\n\r\n", 400, None),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, None),
    ("args in the query string", b"GET /submit?args=%7B%7D HTTP/1.1\r\nHost: dssr\r\n\r\n",
     405, None),
    ("multipart body", post("/submit", b"--x\r\n\x00", b"multipart/form-data; boundary=x"),
     400, "args"),
]


class BadInputTests(AbuseCase):
    connector = "slurm"

    def setUp(self):
        self.settings = slurm_at_a_closed_port()
        super().setUp()

    def test_every_bad_input_is_an_intended_json_4xx(self):
        for what, raw, status, field in CASES:
            with self.subTest(what):
                self.assertJSONError(self.dssr.send(raw), status, field)
        log = self.dssr.log()
        self.assertNotIn("Bug while serving", log)
        self.assertNotIn("internal error", log)

    def test_a_real_submit_gets_past_the_edge(self):
        # The largest realistic submit is read, parsed and prepared; only the cluster
        # (down here) stops it.
        args = {**largest_submit(), "bearer": BEARER}
        self.assertJSONError(self.dssr.send(post("/submit", form(args))), 503)


class FuzzCorpusTests(AbuseCase):
    """The fuzz corpus of tests/test_fuzz.py against the real process."""

    def test_fuzz_corpus_gets_no_5xx_and_only_json_errors(self):
        base = f"http://127.0.0.1:{self.dssr.port}"

        @fuzz_settings(400)
        @given(request=api_requests())
        def run(request):
            wire_assertions(self, base, request)

        run()
        self.assertEqual(self.dssr.request("GET", "/live").status, 200)
        self.assertNotIn("Bug while serving", self.dssr.log())
