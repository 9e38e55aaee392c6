"""The slurmrestd HTTP client: headers, JSON, deadlines, failures as ``Unavailable``."""

import json
import os
import shutil
import tempfile

from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.endpoints import UNIXClientEndpoint, UNIXServerEndpoint, _WrapperEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import URI
from twisted.web.resource import Resource
from twisted.web.server import Site

from dssr import compose
from dssr.errors import Unavailable
from dssr.settings import load
from dssr.slurm.rest.client import RestClient, ThroughRemote, base_url, location


class Echo(Resource):
    """Answers each request with what it got, as JSON (``/text``: plain text, 401)."""

    isLeaf = True

    def render(self, request):
        if request.path == b"/text":
            request.setResponseCode(401)
            return b"Authentication failure\n"
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({
            "method": request.method.decode(), "path": request.uri.decode(),
            "user": request.getHeader(b"x-slurm-user-name").decode(),
            "token": request.getHeader(b"x-slurm-user-token").decode(),
            "type": (request.getHeader(b"content-type") or b"").decode(),
            "body": json.loads(request.content.read() or b"null")}).encode()


class Never:
    """An agent whose requests never get an answer (or fail with ``error``)."""

    def __init__(self, error=None):
        self.error = error

    def request(self, *args):
        return fail(self.error) if self.error else Deferred()


class ClientTests(SynchronousTestCase):
    def request(self, client, *args, **kwargs):
        return ensureDeferred(client.request(*args, **kwargs))

    def test_headers_and_bodies(self):
        agent = RequestTraversalAgent(Echo())
        client = RestClient(agent, "http://restd:6820", Clock(), 5)
        pending = self.request(client, "POST", "/slurm/v0.0.38/job/submit", "kirby", "tok",
                               {"a": 1})
        agent.flush()
        answer = self.successResultOf(pending)
        self.assertEqual((answer.status, answer.document["user"], answer.document["token"],
                          answer.document["body"], answer.document["type"]),
                         (200, "kirby", "tok", {"a": 1}, "application/json"))
        pending = self.request(client, "GET", "/text", "kirby", "tok")
        agent.flush()
        text = self.successResultOf(pending)
        self.assertEqual((text.status, text.document, text.text),
                         (401, None, "Authentication failure"))

    def test_no_answer_in_time_is_unavailable(self):
        clock = Clock()
        client = RestClient(Never(), "http://restd:6820", clock, 5)
        pending = self.request(client, "GET", "/slurm/v0.0.38/jobs", "svc", "secret-token")
        clock.advance(5)
        error = self.failureResultOf(pending, Unavailable).value
        self.assertIn("no answer within 5 s", error.message)
        self.assertNotIn("secret-token", error.message)
        self.assertEqual((client.requests, client.failures), (1, 1))
        self.assertEqual(client.last_failure, "no answer within 5 s")

    def test_refused_connections_are_unavailable(self):
        client = RestClient(Never(ConnectionRefusedError()), "http://restd:6820", Clock(), 5)
        error = self.failureResultOf(self.request(client, "GET", "/x", "u", "t"),
                                     Unavailable).value
        self.assertIn("http://restd:6820", error.message)
        self.assertIn("refused", error.message.lower())

    def test_base_urls(self):
        self.assertEqual(base_url("http://login1", 6820), "http://login1:6820")
        self.assertEqual(base_url("login1", 6820), "http://login1:6820")
        self.assertEqual(base_url("https://login1:7000/", 6820), "https://login1:7000")
        self.assertEqual(base_url("http://[::1]", 6820), "http://[::1]:6820")
        self.assertEqual(base_url("unix:/run/restd.socket", 6820), "http://localhost")
        for bad in ("ftp://login1", "http://login1/slurm", "http://u:p@login1", "http://",
                    "unix:run/restd.socket", "unix:"):
            self.assertRaises(ValueError, base_url, bad, 6820)

    def test_locations_for_people(self):
        self.assertEqual(location("http://login1", 6820), "http://login1 port 6820")
        self.assertEqual(location("unix:/run/restd.socket", 6820), "unix:/run/restd.socket")


class ThroughRemoteTests(SynchronousTestCase):
    def test_the_login_node_connects_to_slurmrestd(self):
        asked = []

        class Remote:
            def tcp_endpoint(self, host, port, user=None):
                asked.append((host, port, user))
                return "stream endpoint"

        endpoints = ThroughRemote(Remote())
        self.assertEqual(endpoints.endpointForURI(URI.fromBytes(b"http://127.0.0.1:6820/x")),
                         "stream endpoint")
        wrapped = endpoints.endpointForURI(URI.fromBytes(b"https://login1:6821/x"))
        self.assertIsInstance(wrapped, _WrapperEndpoint)
        self.assertEqual(asked, [("127.0.0.1", 6820, None), ("login1", 6821, None)])


class UnixSocketTests(TestCase):
    """``JARVICE_SLURMRESTD_ADDR=unix:/path``: requests reach a real unix socket."""

    def socket(self) -> str:
        """An absolute socket path short enough for a unix socket (trial's are not)."""
        directory = tempfile.mkdtemp(prefix="dssr-restd-")
        self.addCleanup(shutil.rmtree, directory)
        return os.path.join(directory, "restd.socket")

    async def serve(self) -> str:
        path = self.socket()
        port = await UNIXServerEndpoint(reactor, path).listen(Site(Echo()))
        self.addCleanup(port.stopListening)
        return path

    def client(self, path: str, remote=None, **values) -> RestClient:
        settings = load(cli={"connector": "slurm", "slurm_interface": "http",
                             "slurmrestd_addr": f"unix:{path}", **values})
        client = compose.rest_client(settings, reactor, remote)
        self.addCleanup(client.close)
        return client

    async def test_on_this_host(self):
        client = self.client(await self.serve())
        answer = await client.request("GET", "/slurm/v0.0.38/ping", "kirby", "tok")
        self.assertEqual((answer.status, answer.document["path"], answer.document["user"]),
                         (200, "/slurm/v0.0.38/ping", "kirby"))

    async def test_through_the_login_node(self):
        asked = []

        class Remote:
            def unix_endpoint(self, path, user=None):
                asked.append((path, user))
                return UNIXClientEndpoint(reactor, path)

        path = await self.serve()
        client = self.client(path, Remote(), slurmrestd_via="ssh")
        answer = await client.request("GET", "/slurm/v0.0.38/ping", "kirby", "tok")
        self.assertEqual(answer.document["user"], "kirby")
        self.assertEqual(asked, [(path, None)])

    async def test_where_in_failures_is_the_socket(self):
        path = self.socket()
        error = await self.assertFailure(ensureDeferred(self.client(path).request(
            "GET", "/x", "u", "secret-token")), Unavailable)
        self.assertIn(f"slurmrestd at unix:{path} did not answer", error.message)
        self.assertNotIn("secret-token", error.message)
