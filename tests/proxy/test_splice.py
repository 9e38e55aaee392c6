"""The proxy's spliced connections in memory: every request checked, upgrades only once
the app agreed, deadlines, limits, and streams closed when their job ends."""

from twisted.internet.error import ConnectionDone
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from dssr.edge.budget import ConnectionBudget
from dssr.proxy.connection import _UpstreamFactory
from tests.proxy.test_server import COOKIE, OK, TOKEN, TOKENS, client, get, proxy, status

UPGRADE = b"Connection: Upgrade\r\nUpgrade: websocket\r\n" + COOKIE


def spliced(**limits):
    """A connection whose first request reached the app: (factory, client transport,
    app protocol, app transport, clock)."""
    factory, endpoint, apps, clock = proxy(**limits)
    _, transport = client(factory)
    transport.protocol.dataReceived(get())
    (app, app_transport), = endpoint.apps
    return factory, transport, app, app_transport, clock, apps


class SpliceTests(SynchronousTestCase):
    def test_each_connection_to_an_app_logs_no_factory_lines(self):
        with capturedLogs() as events:
            factory = _UpstreamFactory(None)
            factory.doStart()
            factory.doStop()
        self.assertEqual([formatEvent(event) for event in events], [])

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
        app.dataReceived(OK + OK)
        self.assertEqual(transport.value(), OK + OK)
        self.assertEqual(factory.open[7], 1)
        self.assertIs(transport.producer, app_transport)
        self.assertIs(app_transport.producer, transport)
        app.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(sum(factory.open.values()), 0)

    def test_a_later_url_token_never_reaches_the_app(self):
        # Was: a keep-alive request's ?dssr_token= went to the app (into its access log).
        _, transport, app, app_transport, _, _ = spliced()
        transport.protocol.dataReceived(get(f"/job7/b?dssr_token={TOKEN}".encode(), b""))
        self.assertNotIn(b"dssr_token", app_transport.value())
        self.assertEqual(transport.value(), b"")  # the app's answer to the first comes first
        app.dataReceived(OK)
        self.assertTrue(transport.value().startswith(OK + b"HTTP/1.1 302 Found\r\n"))
        self.assertIn(b"Location: http://proxy:8081/job7/b\r\n", transport.value())
        self.assertTrue(transport.disconnecting)

    def test_each_request_needs_a_valid_token(self):
        for extra in (b"", b"Cookie: dssr_job_7=" + TOKENS.issue("101", 7).encode() + b"\r\n"):
            _, transport, _, app_transport, _, _ = spliced()
            transport.protocol.dataReceived(get(b"/job7/second", extra))
            self.assertNotIn(b"second", app_transport.value())
            self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_another_job_on_the_same_connection_closes_it(self):
        _, transport, _, app_transport, _, _ = spliced()
        transport.protocol.dataReceived(get(b"/job8/", b""))
        self.assertTrue(transport.disconnected or transport.disconnecting)
        self.assertNotIn(b"/job8/", app_transport.value())

    def test_an_upgrade_the_app_refused_leaves_requests_framed(self):
        # Was: after any Upgrade request the rest went raw, another job's request included.
        _, transport, app, app_transport, _, _ = spliced()
        app.dataReceived(OK)
        transport.protocol.dataReceived(get(b"/job7/ws", UPGRADE) + get(b"/job8/", b""))
        self.assertNotIn(b"/job8/", app_transport.value())
        self.assertFalse(transport.disconnecting or transport.disconnected)
        app.dataReceived(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(transport.disconnected or transport.disconnecting)
        self.assertNotIn(b"/job8/", app_transport.value())

    def test_an_agreed_upgrade_is_raw_both_ways(self):
        _, transport, app, app_transport, _, _ = spliced()
        app.dataReceived(OK)
        transport.protocol.dataReceived(get(b"/job7/ws", UPGRADE) + b"\x81\x05early")
        app.dataReceived(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81")
        transport.protocol.dataReceived(b"GET /job8/ HTTP/1.1\r\n\r\n")
        self.assertTrue(app_transport.value().endswith(b"\x81\x05earlyGET /job8/ HTTP/1.1\r\n\r\n"))
        app.dataReceived(b"HTTP/9 whatever")
        self.assertTrue(transport.value().endswith(b"\x81HTTP/9 whatever"))

    def test_an_app_sending_garbage_is_closed(self):
        _, transport, app, app_transport, _, _ = spliced()
        app.dataReceived(b"SSH-2.0-OpenSSH\r\n\r\n")
        self.assertTrue(transport.disconnected)
        self.assertTrue(app_transport.disconnecting)

    def test_client_gone_closes_the_stream(self):
        factory, _, _, app_transport, _, _ = spliced()
        app_transport.protocol = None
        factory_budget = factory.budget.open
        client_connection = factory._streams[("100", 7)].copy().pop()
        client_connection.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(app_transport.disconnecting)
        self.assertEqual(factory.budget.open, factory_budget - 1)

    def test_stream_limits(self):
        factory, endpoint, _, _ = proxy(max_job_streams=2)
        transports = [client(factory)[1] for _ in range(3)]
        for transport in transports:
            transport.protocol.dataReceived(get())
        self.assertEqual(len(endpoint.apps), 2)
        self.assertEqual(status(transports[2]), b"HTTP/1.1 503 Service Unavailable")

    def test_streams_close_when_their_job_ends(self):
        # Was: open connections kept working after the job ended.
        factory, transport, app, app_transport, clock, apps = spliced(recheck_interval=5.0)
        clock.advance(5)
        self.assertFalse(transport.disconnected)
        lookups = apps.lookups
        apps.running = False
        clock.advance(5)
        self.assertEqual(apps.lookups, lookups + 1)
        self.assertTrue(transport.disconnected)
        self.assertTrue(app_transport.disconnecting)
        self.assertEqual(factory.refused["job_ended"], 1)
        transport.protocol.connectionLost(Failure(ConnectionDone()))
        app.connectionLost(Failure(ConnectionDone()))
        clock.advance(5)
        self.assertEqual(clock.getDelayedCalls(), [])  # no open streams: no more rechecks


class DeadlineTests(SynchronousTestCase):
    def test_idle_connection_is_closed(self):
        _, transport, _, _, clock, _ = spliced(idle_timeout=10.0)
        clock.advance(9)
        transport.protocol.dataReceived(b"GET /jo")
        clock.advance(9)
        self.assertFalse(transport.disconnected)
        clock.advance(1)
        self.assertTrue(transport.disconnected or transport.disconnecting)

    def test_a_head_has_its_deadline_from_its_first_byte(self):
        # Was: each byte restarted the 300 s idle timer, so a trickled head never ended.
        factory, _, _, clock = proxy(header_timeout=2.0)
        _, transport = client(factory)
        for _ in range(19):
            clock.advance(0.1)
            transport.protocol.dataReceived(b"X")
        self.assertEqual(transport.value(), b"")
        clock.advance(0.1)
        self.assertEqual(status(transport), b"HTTP/1.1 408 Request Timeout")

    def test_a_later_head_has_its_deadline_too(self):
        _, transport, app, _, clock, _ = spliced(header_timeout=2.0)
        clock.advance(30)
        app.dataReceived(OK)
        transport.protocol.dataReceived(b"GET /job7/ HTTP/1.1\r\n")
        clock.advance(1.9)
        transport.protocol.dataReceived(b"X-Slow: 1\r\n")
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.value().endswith(b"took more than 2 s\n"))

    def test_a_silent_connection_is_closed_at_the_head_deadline(self):
        factory, _, _, clock = proxy(header_timeout=2.0)
        _, transport = client(factory)
        clock.advance(2)
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_bad_request_is_400_naming_it(self):
        factory, _, _, _ = proxy()
        _, transport = client(factory)
        transport.protocol.dataReceived(b"POST /job7/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                        b"\r\n\r\n-1\r\nXY")
        self.assertEqual(status(transport), b"HTTP/1.1 400 Bad Request")
        self.assertIn(b"chunk size", transport.value())


class BudgetTests(SynchronousTestCase):
    def test_connections_count_against_the_shared_budget(self):
        budget = ConnectionBudget(cap=3, per_peer=2)
        factory, _, _, _ = proxy(budget=budget)
        held = [client(factory, "10.0.0.1")[1] for _ in range(2)]
        _, refused = client(factory, "10.0.0.1")
        self.assertEqual(status(refused), b"HTTP/1.1 503 Service Unavailable")
        budget.take("10.0.0.9")  # a connection of the API's listener
        _, refused = client(factory, "10.0.0.2")
        self.assertIn(b"maximum of 3", refused.value())
        held[0].protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(budget.by_peer, {"10.0.0.1": 1, "10.0.0.9": 1})
        _, accepted = client(factory, "10.0.0.2")
        self.assertEqual(accepted.value(), b"")
