"""The proxy's client connections in memory: routing, tokens, splicing, limits; and
one real TLS listener."""

import os
import socket
import ssl

from twisted.internet import reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dssr.jobs import InteractiveApp
from dssr.proxy.server import ProxyFactory, ProxyLimits
from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import parse_jobs_domain
from dssr.remote.interfaces import ForwardRefused
from tests.integration.test_proxy_process import self_signed

TOKENS = AccessTokens(b"k" * 32)
TOKEN = TOKENS.issue("100", 7)
COOKIE = f"Cookie: a=b; dssr_job_7={TOKEN}\r\n".encode()
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class FakeEndpoint:
    """Connects each protocol to a StringTransport (the app), or fails."""

    def __init__(self, error=None):
        self.error = error
        self.apps = []

    def connect(self, factory):
        if self.error is not None:
            return fail(self.error)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.apps.append((protocol, transport))
        return succeed(protocol)


class Apps:
    """``interactive_app`` for job 100, Jarvice number 7, while ``running``."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.lookups = 0
        self.running = True

    async def interactive_app(self, jobid, number):
        self.lookups += 1
        if (jobid, number) == ("100", 7) and self.running:
            return InteractiveApp(self.endpoint)
        return None


class Failing:
    """``interactive_app`` failing the way a cluster error does."""

    lookups = 0

    async def interactive_app(self, jobid, number):
        self.lookups += 1
        raise OSError("ssh dssr-svc@login-7.cluster.example failed: 10.1.2.3 refused")


def proxy(error=None, domain="http://proxy:8081/job$", connector=None, budget=None,
          **limits):
    clock = Clock()
    endpoint = FakeEndpoint(error)
    apps = connector or Apps(endpoint)
    factory = ProxyFactory(parse_jobs_domain(domain), apps, clock, ProxyLimits(**limits),
                           TOKENS, budget)
    return factory, endpoint, apps, clock


def client(factory, host="10.0.0.1"):
    connection = factory.buildProtocol(IPv4Address("TCP", host, 1234))
    transport = StringTransport()
    connection.makeConnection(transport)
    transport.protocol = connection
    return connection, transport


def status(transport):
    return transport.value().split(b"\r\n", 1)[0]


def get(path=b"/job7/", extra=COOKIE):
    return b"GET " + path + b" HTTP/1.1\r\nHost: proxy\r\n" + extra + b"\r\n"


class RoutingTests(SynchronousTestCase):
    def test_no_token_is_403_and_nothing_reaches_the_app(self):
        factory, endpoint, apps, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(get(extra=b""))
        self.assertEqual(status(transport), b"HTTP/1.1 403 Forbidden")
        self.assertTrue(transport.disconnecting)
        self.assertEqual((endpoint.apps, apps.lookups), ([], 0))

    def test_forged_tokens_cost_no_lookup(self):
        # Was: each forged token was a lookup on the cluster (500 tokens, 500 commands).
        factory, _, apps, _ = proxy()
        for forged in (b"100." + b"x" * 43, b"100." + b"x" * 32, TOKEN.encode() + b"x"):
            _, transport = client(factory)
            transport.protocol.dataReceived(get(extra=b"Cookie: dssr_job_7=" + forged
                                                + b"\r\n"))
            self.assertEqual(status(transport), b"HTTP/1.1 403 Forbidden")
        self.assertEqual(apps.lookups, 0)

    def test_unauthenticated_answers_do_not_tell_which_jobs_exist(self):
        # Was: 403 for a running job's number, 404 for any other.
        factory, _, _, _ = proxy()
        answers = set()
        for number in (b"7", b"8"):
            _, transport = client(factory)
            transport.protocol.dataReceived(get(b"/job" + number + b"/", b""))
            answers.add(transport.value())
        self.assertEqual(len(answers), 1)

    def test_unknown_address_and_job_are_404(self):
        factory, _, _, _ = proxy()
        token8 = TOKENS.issue("100", 8).encode()
        for request in (get(b"/elsewhere"), get(b"/job8/", b"Cookie: dssr_job_8=" + token8
                                                 + b"\r\n")):
            _, transport = client(factory)
            transport.protocol.dataReceived(request)
            self.assertEqual(status(transport), b"HTTP/1.1 404 Not Found")
        self.assertEqual(dict(factory.refused), {"no_route": 1, "no_job": 1})

    def test_token_in_the_url_moves_into_a_cookie(self):
        factory, endpoint, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(get(f"/job7/?x=1&dssr_token={TOKEN}".encode(), b""))
        head = transport.value().decode()
        self.assertTrue(head.startswith("HTTP/1.1 302 Found\r\n"))
        self.assertIn("Location: http://proxy:8081/job7/?x=1\r\n", head)
        self.assertIn(f"Set-Cookie: dssr_job_7={TOKEN}; Path=/job7/; HttpOnly; "
                      f"SameSite=Lax\r\n", head)
        self.assertEqual(endpoint.apps, [])

    def test_redirects_stay_on_the_jobs_origin(self):
        # Was: GET //evil.example/?dssr_token=... answered Location: //evil.example/.
        factory, _, _, _ = proxy(domain="jobs.example.com")
        for path in ("//evil.example/", "/\\evil.example/", "///evil.example/"):
            _, transport = client(factory)
            transport.protocol.dataReceived(
                f"GET {path}?dssr_token={TOKEN} HTTP/1.1\r\n"
                f"Host: job-7.jobs.example.com\r\n\r\n".encode())
            self.assertIn(f"\r\nLocation: https://job-7.jobs.example.com{path}\r\n".encode(),
                          transport.value())

    def test_nothing_from_the_request_reaches_a_response_header(self):
        # Was: ?dssr_token=<valid>%0A put an LF into Set-Cookie, cutting off HttpOnly.
        factory, _, _, _ = proxy()
        for path in (f"/job7/?dssr_token={TOKEN}%0A", f"/job7/?dssr_token={TOKEN}%0D%0AX:y"):
            _, transport = client(factory)
            transport.protocol.dataReceived(get(path.encode(), b""))
            self.assertEqual(status(transport), b"HTTP/1.1 403 Forbidden")
            self.assertNotIn(b"Set-Cookie", transport.value())
        _, transport = client(factory)
        transport.protocol.dataReceived(f"GET /job7/\n?dssr_token={TOKEN} HTTP/1.1\r\n"
                                        f"\r\n".encode())
        self.assertEqual(status(transport), b"HTTP/1.1 400 Bad Request")
        self.assertNotIn(b"Location", transport.value())

    def test_lookups_are_shared_for_a_moment(self):
        factory, _, apps, clock = proxy()
        for _ in range(3):
            client(factory)[1].protocol.dataReceived(get())
        self.assertEqual(apps.lookups, 1)
        clock.advance(1.5)
        client(factory)[1].protocol.dataReceived(get())
        self.assertEqual(apps.lookups, 2)

    def test_failures_are_generic_for_the_client_and_detailed_in_the_log(self):
        # Was: the 502 page carried the connector's error: login host, user, address.
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        for factory in (proxy(connector=Failing())[0],
                        proxy(error=ForwardRefused("connect to 10.1.2.3:5901 failed"))[0]):
            _, transport = client(factory)
            transport.protocol.dataReceived(get(b"/job7/x?y=1"))
            self.assertEqual(status(transport), b"HTTP/1.1 502 Bad Gateway")
            self.assertNotIn(b"10.1.2.3", transport.value())
            self.assertEqual(sum(factory.open.values()), 0)
        text = "\n".join(formatEvent(event) for event in logged)
        self.assertIn("10.1.2.3", text)
        self.assertIn("/job7/x from 10.0.0.1", text)
        self.assertNotIn(TOKEN, text)


def alpn_get(port: int, authority: str) -> tuple[str | None, bytes]:
    """A TLS client offering ALPN h2 and http/1.1, as browsers do: (protocol, response)."""
    context = ssl.create_default_context(cafile=authority)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="job-7.jobs.test") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: job-7.jobs.test\r\n\r\n")
        return tls.selected_alpn_protocol(), tls.recv(65536)


class TLSListenerTests(TestCase):
    async def test_browsers_offering_alpn_get_http_1_1(self):
        directory = self.mktemp()
        os.makedirs(directory)
        certificate, key = self_signed(directory, "jobs.test")
        factory = ProxyFactory(parse_jobs_domain("https://job-$.jobs.test"), Apps(None),
                               reactor, ProxyLimits(), TOKENS)
        port = await serverFromString(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        protocol, answer = await threads.deferToThread(alpn_get, port.getHost().port,
                                                       certificate)
        self.assertEqual(protocol, "http/1.1")
        self.assertTrue(answer.startswith(b"HTTP/1.1 403 "), answer)
