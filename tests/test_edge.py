"""The HTTP edge in memory: deadlines on a Clock, caps, admission from the head,
the bounded parsers of ``args``; tests/abuse/ attacks a real process."""

import json
import resource
from random import Random
from urllib.parse import quote_from_bytes, unquote_to_bytes

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from dssr import validate
from dssr.api import DSSRApi
from dssr.edge import EdgeLimits, listen_description, make_site
from dssr.edge.budget import MAX_REFUSING
from dssr.edge.limits import RESERVED_FDS, raise_fd_limit
from dssr.edge.refusals import RefusalLog
from dssr.errors import BadRequest
from tests.fakes import FakeConnector
from tests.strategies import json_values
from tests.upstream import form_body, largest_submit

KEY = "upstream:pw"
AUTH = b"Authorization: Basic dXBzdHJlYW06cHc=\r\n"


@implementer(ITCPTransport)
class TCPTransport(StringTransport):
    """A ``StringTransport`` that half-closes, as TCP does."""

    write_closed = False

    def loseWriteConnection(self):
        self.write_closed = True

    def setTcpNoDelay(self, enabled):
        pass


class EdgeCase(SynchronousTestCase):
    """An edge Site over a fake connector, its time on a Clock, connections in memory."""

    limits = EdgeLimits(max_body=1000, header_timeout=10, request_timeout=30,
                        idle_timeout=60, max_connections=5, max_connections_per_peer=3,
                        deadline_spread=0, min_deadline_spread=0)

    def setUp(self):
        self.clock = Clock()
        self.connector = FakeConnector()
        self.site = make_site(DSSRApi(self.connector, server_key=KEY), self.limits,
                              reactor=self.clock)

    def connect(self, host: str = "127.0.0.1"):
        """(channel or refusal protocol, its transport)."""
        protocol = self.site.buildProtocol(IPv4Address("TCP", host, 40000))
        transport = TCPTransport(peerAddress=IPv4Address("TCP", host, 40000))
        if protocol is not None:
            protocol.makeConnection(transport)
        return protocol, transport

    def answer(self, transport) -> tuple[int, dict, bytes]:
        """The status, headers and body the edge wrote on ``transport``."""
        head, _, body = transport.value().partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, body


class DeadlineTests(EdgeCase):
    def test_head_deadline_is_not_moved_by_later_bytes(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /live HTTP/1.1\r\n")
        for _ in range(9):
            self.clock.advance(1)
            channel.dataReceived(b"X-Trickle: 1\r\n")
        self.assertEqual(transport.value(), b"")
        self.clock.advance(1)
        status, headers, body = self.answer(transport)
        self.assertEqual((status, headers[b"Connection"]), (408, b"close"))
        self.assertIn("head", json.loads(body)["error"])

    def test_a_silent_connection_is_closed_without_an_answer(self):
        _, transport = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_body_deadline_counts_from_the_first_byte(self):
        channel, transport = self.connect()
        channel.dataReceived(b"POST /online HTTP/1.1\r\n")
        self.clock.advance(5)
        channel.dataReceived(AUTH + b"Content-Length: 100\r\n\r\nargs=")
        self.clock.advance(24.9)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.answer(transport)[0], 408)

    def test_keep_alive_idle_timeout_then_a_new_head_deadline(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /live HTTP/1.1\r\n\r\n")
        self.assertIn(b'{"status":"OK"}', transport.value())
        transport.clear()
        self.clock.advance(59)
        channel.dataReceived(b"GET /li")  # the next request starts: 10 s from now
        self.clock.advance(9.9)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.answer(transport)[0], 408)

    def test_idle_keep_alive_connection_is_closed(self):
        channel, transport = self.connect()
        channel.dataReceived(b"GET /live HTTP/1.1\r\n\r\n")
        self.clock.advance(60)
        self.assertTrue(transport.disconnecting)

    def test_a_refused_body_is_drained_while_it_keeps_coming(self):
        # A slow client writing its whole body before it reads (Python's urllib): was
        # cut off 2 s after the 413, whatever it still sent, so it met a reset.
        channel, transport = self.connect()
        channel.dataReceived(b"POST /online HTTP/1.1\r\n" + AUTH + b"Content-Length: 5000\r\n\r\n")
        self.assertEqual(self.answer(transport)[0], 413)
        for _ in range(5):
            self.clock.advance(self.limits.linger * 0.75)
            channel.dataReceived(b"x" * 1000)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(self.limits.linger)  # silent since: cut off
        self.assertTrue(transport.disconnecting)

    def test_draining_ends_after_the_request_timeout(self):
        channel, transport = self.connect()
        channel.dataReceived(b"POST /online HTTP/1.1\r\n" + AUTH + b"Content-Length: 5000\r\n\r\n")
        for _ in range(int(self.limits.request_timeout / (self.limits.linger / 2))):
            self.clock.advance(self.limits.linger / 2)
            if transport.disconnecting:
                break
            channel.dataReceived(b"x")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.clock.seconds(), self.limits.request_timeout)

    def test_a_body_announced_far_over_is_not_drained(self):
        channel, transport = self.connect()
        length = self.limits.max_drained + 1
        channel.dataReceived(b"POST /online HTTP/1.1\r\n" + AUTH
                             + b"Content-Length: %d\r\n\r\n" % length)
        self.assertEqual(self.answer(transport)[0], 413)
        self.assertEqual((transport.write_closed, transport.disconnecting), (False, True))

    def test_refused_client_is_cut_off_after_the_linger(self):
        channel, transport = self.connect()
        channel.dataReceived(b"POST /submit HTTP/1.1\r\nContent-Length: 500\r\n\r\n")
        self.assertEqual(self.answer(transport)[0], 401)
        self.clock.advance(self.limits.linger * 0.75)
        channel.dataReceived(b"x" * 500)  # drained, not parsed
        self.assertEqual((transport.write_closed, transport.disconnecting), (True, False))
        # Unlike a 413's body, an unadmitted client's data does not keep it connected.
        self.clock.advance(self.limits.linger * 0.25)
        self.assertTrue(transport.disconnecting)


class SpreadTests(EdgeCase):
    limits = EdgeLimits(header_timeout=10, deadline_spread=0.1)

    def assert_spread(self, deadline: float, window: float) -> None:
        """A burst of 50 connections closes from ``deadline`` over ``window`` seconds."""
        self.site.random = Random(9)
        transports = [self.connect(f"10.0.0.{index}")[1] for index in range(50)]
        self.clock.advance(deadline - 0.01)
        self.assertFalse(any(transport.disconnecting for transport in transports))
        self.clock.advance(window / 2)
        closed = sum(transport.disconnecting for transport in transports)
        self.assertTrue(10 < closed < 40, closed)
        self.clock.advance(window / 2 + 0.02)
        self.assertTrue(all(transport.disconnecting for transport in transports))

    def test_head_deadlines_of_a_burst_are_spread(self):
        self.assert_spread(10, 1)

    def test_short_deadlines_spread_over_at_least_a_second(self):
        # A 2 s deadline's 10 % is 0.2 s: too short a time to answer a burst in.
        self.site.limits = EdgeLimits(header_timeout=2, deadline_spread=0.1)
        self.assert_spread(2, 1)

    def test_long_deadlines_spread_over_their_share(self):
        self.site.limits = EdgeLimits(header_timeout=60, deadline_spread=0.1)
        self.assert_spread(60, 6)


class AdmissionTests(EdgeCase):
    def test_refused_before_the_body_is_stored(self):
        for head, status in [
            (b"POST /nowhere HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 404),
            (b"GET /submit HTTP/1.1\r\n" + AUTH + b"Content-Length: 10\r\n\r\n", 405),
            (b"POST /submit HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 401),
            (b"POST /submit HTTP/1.1\r\nOrigin: null\r\n" + AUTH
             + b"Content-Length: 10\r\n\r\n", 403),
            (b"POST /submit HTTP/1.1\r\n" + AUTH + b"Content-Length: 1001\r\n\r\n", 413),
        ]:
            channel, transport = self.connect()
            channel.dataReceived(head + b"0123456789")
            self.assertEqual(self.answer(transport)[0], status, head)
            self.assertIsNone(channel.requests[-1].content)  # no body buffer was made
            self.assertTrue(transport.write_closed)
            channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.connector.calls, [])

    def test_100_continue_only_once_admitted(self):
        expect = b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n"
        channel, transport = self.connect()
        channel.dataReceived(b"POST /submit HTTP/1.1\r\n" + expect)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 401 "))
        channel, transport = self.connect()
        channel.dataReceived(b"POST /online HTTP/1.1\r\n" + AUTH + expect)
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")

    def test_chunked_body_is_refused_when_it_passes_the_limit(self):
        channel, transport = self.connect()
        channel.dataReceived(b"POST /online HTTP/1.1\r\n" + AUTH
                             + b"Transfer-Encoding: chunked\r\n\r\n")
        channel.dataReceived(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"1\r\nx\r\n")
        self.assertEqual(self.answer(transport)[0], 413)
        self.assertEqual(channel.requests[-1].content.tell(), 1000)

    def test_a_bug_while_admitting_is_a_json_500(self):
        def admit(method, path, headers):
            raise ZeroDivisionError("secret internals")

        self.site.admit = admit
        channel, transport = self.connect()
        channel.dataReceived(b"GET /live HTTP/1.1\r\n\r\n")
        status, _, body = self.answer(transport)
        self.assertEqual((status, json.loads(body)),
                         (500, {"error": "internal error, see the DSSR log"}))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_head_answers_have_no_body(self):
        channel, transport = self.connect()
        channel.dataReceived(b"HEAD /submit HTTP/1.1\r\n\r\n")
        status, headers, body = self.answer(transport)
        self.assertEqual((status, headers[b"Allow"], body), (405, b"POST", b""))

    def test_query_strings_are_not_logged(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        channel, _ = self.connect()
        channel.dataReceived(b"GET /submit?args=bearer-secret HTTP/1.1\r\n\r\n")
        text = " ".join(formatEvent(event) for event in events)
        self.assertIn("GET /submit -> 405", text)
        self.assertNotIn("bearer-secret", text)


class CapTests(EdgeCase):
    def test_per_peer_and_total_caps(self):
        held = [self.connect("10.0.0.1")[0] for _ in range(3)]
        refusal, transport = self.connect("10.0.0.1")
        self.assertNotIn(refusal, held)
        status, headers, body = self.answer(transport)
        self.assertEqual((status, headers[b"Connection"]), (503, b"close"))
        self.assertIn("connections open", json.loads(body)["error"])
        held += [self.connect("10.0.0.2")[0] for _ in range(2)]
        _, transport = self.connect("10.0.0.3")
        self.assertIn(b"maximum of 5", transport.value())
        held[0].connectionLost(Failure(ConnectionDone()))
        channel, transport = self.connect("10.0.0.3")
        channel.dataReceived(b"GET /live HTTP/1.1\r\n\r\n")
        self.assertIn(b'{"status":"OK"}', transport.value())
        self.assertEqual((self.site.open, self.site.by_peer),
                         (5, {"10.0.0.1": 2, "10.0.0.2": 2, "10.0.0.3": 1}))

    def test_a_flood_of_refusals_is_closed_without_answers(self):
        for _ in range(3):
            self.connect("10.0.0.1")
        for _ in range(MAX_REFUSING):
            refusal, _ = self.connect("10.0.0.1")
            self.assertIsNotNone(refusal)
        self.assertIsNone(self.site.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1)))

    def test_connection_cap_stays_below_the_file_limit(self):
        limits = EdgeLimits(max_connections=4096)
        self.assertEqual(limits.connection_cap(20000), 4096)
        self.assertEqual(limits.connection_cap(512), 512 - RESERVED_FDS)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertEqual(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self.assertGreaterEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], soft)

    def test_listen_backlog(self):
        self.assertEqual(listen_description("tcp:5000"), "tcp:5000:backlog=1024")
        self.assertEqual(listen_description("tcp:5000:backlog=10"), "tcp:5000:backlog=10")
        self.assertEqual(listen_description("ssl:8443:privateKey=k.pem"),
                         "ssl:8443:privateKey=k.pem:backlog=1024")
        self.assertEqual(listen_description("systemd:domain=INET:index=0"),
                         "systemd:domain=INET:index=0")


class RefusalLogTests(SynchronousTestCase):
    def test_first_refusal_then_a_count_a_minute(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clock = Clock()
        refusals = RefusalLog(clock)
        for status in (401, 408, 408, 401):
            refusals.note(status, "GET", "/x", "no")
        clock.advance(60)
        clock.advance(60)
        refusals.note(404, "GET", "/y", "no")
        info = [formatEvent(event) for event in events
                if event["log_level"].name == "info" and event.get("log_namespace") == "dssr.edge"]
        self.assertEqual(info, [
            "GET /x -> 401 at the edge: no (further refusals are counted once a minute)",
            "refused at the edge in the last 60 s: 1 x 401, 2 x 408",
            "GET /y -> 404 at the edge: no (further refusals are counted once a minute)"])
        refusals.stop()
        self.assertEqual(clock.getDelayedCalls(), [])


class ArgsParsingTests(SynchronousTestCase):
    @settings(max_examples=300, database=None, deadline=None)
    @given(st.binary(max_size=60))
    def test_form_decode_is_urllib_on_url_encoded_text(self, data):
        encoded = quote_from_bytes(data).encode()
        self.assertEqual(validate.form_decode(encoded), data)
        self.assertEqual(validate.form_decode(encoded.replace(b"%20", b"+")),
                         unquote_to_bytes(encoded))

    @settings(max_examples=300, database=None, deadline=None)
    @given(json_values(max_leaves=30))
    def test_json_within_the_bounds_is_accepted(self, value):
        validate.check_json_shape(json.dumps(value).encode())
        validate.check_json_shape(json.dumps(value, ensure_ascii=False).encode(
            "utf-8", "surrogatepass"))

    def test_json_past_the_bounds_is_refused(self):
        for text in (b"[" * 33 + b"]" * 33, b'{"a":' * 33 + b"1" + b"}" * 33,
                     b"[" + b"1," * 4096 + b"1]", b'["' + b'","' * 4096 + b'"]',
                     b"[" * 1_000_000):
            with self.assertRaises(BadRequest):
                validate.check_json_shape(text)
        validate.check_json_shape(b"[" * 32 + b"]" * 32)
        validate.check_json_shape(b'["[[[[\\"\\\\", "]]]]{{"]')

    def test_form_fields_are_capped(self):
        self.assertEqual(validate.form_field(b"&".join([b"x=1"] * 15) + b"&args=%7B%7D"), b"{}")
        with self.assertRaises(BadRequest):
            validate.form_field(b"&".join([b"x=1"] * 16) + b"&args=%7B%7D")

    def test_max_body_fits_the_largest_realistic_submit(self):
        body = form_body(largest_submit())
        self.assertGreater(len(body), 45_000)  # the measurement stated in README
        self.assertLess(len(body) * 16, EdgeLimits().max_body)
        args = validate.parse_args(validate.form_field(body))
        self.assertEqual(validate.submit_request(args, "singularity").nodes, 64)
