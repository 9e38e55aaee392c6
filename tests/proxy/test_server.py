"""The proxy's client connections in memory: routing, tokens, splicing, limits; and
one real TLS listener."""

import os
import socket
import ssl

from twisted.internet import reactor, threads
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dssr.jobs import InteractiveApp
from dssr.proxy.server import ProxyFactory, ProxyLimits
from dssr.proxy.urls import parse_jobs_domain
from dssr.remote.interfaces import ForwardRefused
from tests.integration.test_proxy_process import self_signed

SECRET = "s" * 32
TOKEN = f"100.{SECRET}"


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
    """``interactive_app`` for job 100, Jarvice number 7."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.lookups = 0

    async def interactive_app(self, jobid, number):
        self.lookups += 1
        if (jobid, number) == ("100", 7):
            return InteractiveApp(self.endpoint, SECRET)
        return None


def proxy(error=None, **limits):
    clock = Clock()
    endpoint = FakeEndpoint(error)
    apps = Apps(endpoint)
    factory = ProxyFactory(parse_jobs_domain("http://proxy:8081/job$"), apps, clock,
                           ProxyLimits(**limits))
    return factory, endpoint, apps, clock


def client(factory):
    connection = factory.buildProtocol(None)
    transport = StringTransport()
    connection.makeConnection(transport)
    transport.protocol = connection
    return connection, transport


def status(transport):
    return transport.value().split(b"\r\n", 1)[0]


COOKIE = f"Cookie: a=b; dssr_job_7={TOKEN}\r\n".encode()


class RoutingTests(SynchronousTestCase):
    def test_no_token_is_403_and_nothing_reaches_the_app(self):
        factory, endpoint, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(b"GET /job7/ HTTP/1.1\r\nHost: proxy\r\n\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 403 Forbidden")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(endpoint.apps, [])

    def test_wrong_secret_is_403(self):
        factory, endpoint, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(
            b"GET /job7/ HTTP/1.1\r\nCookie: dssr_job_7=100." + b"x" * 32 + b"\r\n\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 403 Forbidden")
        self.assertEqual(endpoint.apps, [])

    def test_unknown_address_and_job_are_404(self):
        factory, _, _, _ = proxy()
        for request in (b"GET /elsewhere HTTP/1.1\r\n\r\n",
                        b"GET /job8/ HTTP/1.1\r\nCookie: dssr_job_8=" + TOKEN.encode()
                        + b"\r\n\r\n"):
            _, transport = client(factory)
            transport.protocol.dataReceived(request)
            self.assertEqual(status(transport), b"HTTP/1.1 404 Not Found")
        self.assertEqual(dict(factory.refused), {"no_route": 1, "no_job": 1})

    def test_token_in_the_url_moves_into_a_cookie(self):
        factory, endpoint, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(
            f"GET /job7/?x=1&dssr_token={TOKEN} HTTP/1.1\r\n\r\n".encode())
        head = transport.value().decode()
        self.assertTrue(head.startswith("HTTP/1.1 302 Found\r\n"))
        self.assertIn("Location: /job7/?x=1\r\n", head)
        self.assertIn(f"Set-Cookie: dssr_job_7={TOKEN}; Path=/job7/; HttpOnly", head)
        self.assertEqual(endpoint.apps, [])

    def test_lookups_are_shared_for_a_moment(self):
        factory, _, apps, clock = proxy()
        for _ in range(3):
            client(factory)[1].protocol.dataReceived(
                b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        self.assertEqual(apps.lookups, 1)
        clock.advance(1.5)
        client(factory)[1].protocol.dataReceived(b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        self.assertEqual(apps.lookups, 2)


class SpliceTests(SynchronousTestCase):
    def test_requests_go_through_without_the_token(self):
        factory, endpoint, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(
            b"POST /job7/x HTTP/1.1\r\n" + COOKIE + b"Content-Length: 3\r\n\r\nabc"
            b"GET /job7/y HTTP/1.1\r\n" + COOKIE + b"\r\n")
        (app, app_transport), = endpoint.apps
        self.assertEqual(app_transport.value(),
                         b"POST /job7/x HTTP/1.1\r\nCookie: a=b\r\nContent-Length: 3\r\n\r\nabc"
                         b"GET /job7/y HTTP/1.1\r\nCookie: a=b\r\n\r\n")
        app.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertEqual(transport.value(), b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertEqual(factory.open[7], 1)
        self.assertIs(transport.producer, app_transport)
        self.assertIs(app_transport.producer, transport)
        app.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(sum(factory.open.values()), 0)

    def test_another_job_on_the_same_connection_closes_it(self):
        factory, endpoint, _, _ = proxy()
        connection, transport = client(factory)
        connection.dataReceived(b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        connection.dataReceived(b"GET /job8/ HTTP/1.1\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertNotIn(b"/job8/", endpoint.apps[0][1].value())

    def test_client_gone_closes_the_stream(self):
        factory, endpoint, _, _ = proxy()
        connection, _ = client(factory)
        connection.dataReceived(b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        connection.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(endpoint.apps[0][1].disconnecting)

    def test_unreachable_app_is_502(self):
        factory, _, _, _ = proxy(error=ForwardRefused("connect failed"))
        _, transport = client(factory)
        transport.protocol.dataReceived(b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 502 Bad Gateway")
        self.assertIn(b"connect failed", transport.value())
        self.assertEqual(sum(factory.open.values()), 0)

    def test_stream_limits(self):
        factory, endpoint, _, _ = proxy(max_job_streams=2)
        transports = [client(factory)[1] for _ in range(3)]
        for transport in transports:
            transport.protocol.dataReceived(b"GET /job7/ HTTP/1.1\r\n" + COOKIE + b"\r\n")
        self.assertEqual(len(endpoint.apps), 2)
        self.assertEqual(status(transports[2]), b"HTTP/1.1 503 Service Unavailable")

    def test_idle_connection_is_closed(self):
        factory, _, _, clock = proxy(idle_timeout=10.0)
        connection, transport = client(factory)
        clock.advance(9)
        connection.dataReceived(b"GET /jo")
        clock.advance(9)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_bad_request_is_400(self):
        factory, _, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(b"NONSENSE\r\n\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 400 Bad Request")


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
                               reactor, ProxyLimits())
        port = await serverFromString(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        protocol, answer = await threads.deferToThread(alpn_get, port.getHost().port,
                                                       certificate)
        self.assertEqual(protocol, "http/1.1")
        self.assertTrue(answer.startswith(b"HTTP/1.1 403 "), answer)
