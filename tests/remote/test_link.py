"""Link: channel cap and queue, barrier, backoff, keepalive, idle close — on a Clock."""

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.interfaces import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    NotConnected,
)
from dssr.remote.link import Link, Policy, backoff_delay
from tests.remote.fakes import FakeDialer


def make_link(persistent=True, random=lambda: 1.0, **policy):
    clock, dialer = Clock(), FakeDialer()
    link = Link(dialer, clock, "svc@login", Policy(**policy), persistent, random)
    return link, clock, dialer


def settle(conn):
    """Finish every open channel and let the server confirm their sessions are gone."""
    for channel in conn.open_channels():
        channel.finish()
    conn.answer_pings()


class BackoffTests(SynchronousTestCase):
    def test_doubles_up_to_the_cap(self):
        delays = [backoff_delay(n, 0.5, 10.0, lambda: 1.0) for n in range(7)]
        self.assertEqual(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0])

    def test_jitter_stays_in_the_upper_half(self):
        self.assertEqual(backoff_delay(3, 0.5, 60.0, lambda: 0.0), 2.0)
        self.assertEqual(backoff_delay(3, 0.5, 60.0, lambda: 0.5), 3.0)

    def test_huge_attempt_counts_do_not_overflow(self):
        self.assertEqual(backoff_delay(10_000, 0.5, 60.0, lambda: 1.0), 60.0)


class QueueTests(SynchronousTestCase):
    def test_channel_cap_queues_in_order(self):
        link, _clock, dialer = make_link(max_channels=3)
        results = [link.run(b"cmd %d" % n, None, None) for n in range(7)]
        conn = dialer.connect()
        self.assertEqual([c.command for c in conn.channels], [b"cmd 0", b"cmd 1", b"cmd 2"])

        conn.channels[1].finish(stdout=b"one")
        self.assertEqual(self.successResultOf(results[1]).stdout, b"one")
        # The slot is only reused once the server answered a request sent after the close.
        self.assertEqual(len(conn.channels), 3)
        conn.answer_pings()
        self.assertEqual([c.command for c in conn.channels][3:], [b"cmd 3"])

        settle(conn)
        self.assertEqual([c.command for c in conn.channels][4:], [b"cmd 4", b"cmd 5", b"cmd 6"])
        self.assertEqual(len(conn.open_channels()), 3)
        settle(conn)
        others = [result for n, result in enumerate(results) if n != 1]
        self.assertEqual([self.successResultOf(result).ok for result in others], [True] * 6)

    def test_never_more_than_the_cap_open(self):
        link, _clock, dialer = make_link(max_channels=8)
        for _n in range(50):
            link.run(b"x", None, None)
        conn = dialer.connect()
        peak = 0
        while conn.open_channels():
            peak = max(peak, len(conn.open_channels()))
            settle(conn)
        self.assertEqual((peak, len(conn.channels)), (8, 50))

    def test_a_closing_connection_is_not_reported_connected(self):
        # Conch fails a dying connection's commands before its ``lost`` fires: a caller
        # woken by that failure must already see the link as not connected.
        link, _clock, dialer = make_link()
        link.start()
        conn = dialer.connect()
        self.assertEqual(link.state(), ("connected", None))
        conn.alive = False
        self.assertNotEqual(link.state()[0], "connected")

    def test_connect_wait_without_connection(self):
        link, clock, _dialer = make_link(queue_timeout=30.0, connect_wait=2.0)
        result = link.run(b"x", None, None)
        clock.advance(1.9)
        self.assertNoResult(result)
        clock.advance(0.1)
        error = self.failureResultOf(result, NotConnected).value
        self.assertIn("svc@login within 2s", str(error))

    def test_command_runs_if_the_connection_comes_within_connect_wait(self):
        link, clock, dialer = make_link(connect_wait=2.0)
        result = link.run(b"x", None, None)
        clock.advance(1.5)
        conn = dialer.connect()
        clock.advance(5.0)
        self.assertNoResult(result)  # running now: no longer bound by connect_wait
        self.assertEqual(len(conn.channels), 1)

    def test_queue_timeout_with_all_channels_busy(self):
        link, clock, dialer = make_link(max_channels=1, queue_timeout=5.0, command_timeout=0)
        link.run(b"long", None, None)
        waiting = link.run(b"x", None, None)
        dialer.connect()
        clock.advance(5.0)
        self.assertIn("all 1 busy", str(self.failureResultOf(waiting, CommandTimeout).value))

    def test_command_timeout_stops_the_channel(self):
        link, clock, dialer = make_link(command_timeout=10.0)
        result = link.run(b"sleep", None, None)
        short = link.run(b"sleep", None, 2.0)
        conn = dialer.connect()
        clock.advance(2.0)
        self.assertIsInstance(conn.channels[1].stopped_with, CommandTimeout)
        self.assertIn("longer than 2s", str(self.failureResultOf(short).value))
        self.assertNoResult(result)
        clock.advance(8.0)
        self.failureResultOf(result, CommandTimeout)

    def test_output_cap_is_passed_to_every_channel(self):
        link, _clock, dialer = make_link(max_output=1234)
        link.run(b"x", b"input", None)
        conn = dialer.connect()
        self.assertEqual((conn.channels[0].max_output, conn.channels[0].stdin), (1234, b"input"))

    def test_refused_channel_is_retried_after_one_closes(self):
        link, _clock, dialer = make_link(max_channels=4)
        first = link.run(b"a", None, None)
        refused = link.run(b"b", None, None)
        conn = dialer.connect()
        conn.channels[1].refuse()
        self.assertNoResult(refused)
        self.assertEqual(len(conn.channels), 2)
        conn.channels[0].finish()
        conn.answer_pings()
        self.assertEqual([c.command for c in conn.channels], [b"a", b"b", b"b"])
        conn.channels[2].finish(stdout=b"ran")
        self.assertEqual(self.successResultOf(refused).stdout, b"ran")
        self.successResultOf(first)

    def test_refused_channel_with_none_of_ours_open_waits_then_retries(self):
        link, clock, dialer = make_link(refused_retry=0.5)
        link.run(b"a", None, None)
        conn = dialer.connect()
        conn.channels[0].refuse()
        conn.answer_pings()
        self.assertEqual(len(conn.channels), 1)
        clock.advance(0.5)
        self.assertEqual(len(conn.channels), 2)


class ReconnectTests(SynchronousTestCase):
    def test_in_flight_commands_fail_as_connection_lost(self):
        link, _clock, dialer = make_link()
        running = link.run(b"x", None, None)
        conn = dialer.connect()
        conn.drop("reset by peer")
        self.assertIn("reset by peer", str(self.failureResultOf(running, ConnectionLost).value))

    def test_backoff_timing_and_recovery(self):
        link, clock, dialer = make_link(backoff_base=1.0, backoff_cap=8.0)
        link.start()
        waits = []
        for _ in range(5):
            dialer.refuse(NotConnected("cannot connect: refused"))
            attempts = len(dialer.attempts)
            waited = 0.0
            while len(dialer.attempts) == attempts:
                clock.advance(0.25)
                waited += 0.25
            waits.append(waited)
        self.assertEqual(waits, [1.0, 2.0, 4.0, 8.0, 8.0])
        self.assertEqual(link.state(), ("connecting", "cannot connect: refused"))
        dialer.connect()
        self.assertEqual(link.state(), ("connected", None))

    def test_backoff_restarts_after_a_good_connection(self):
        link, clock, dialer = make_link(backoff_base=1.0)
        link.start()
        dialer.refuse(NotConnected("down"))
        clock.advance(1.0)
        dialer.refuse(NotConnected("down"))
        clock.advance(2.0)
        dialer.connect().drop()
        self.assertEqual(link.state(), ("failed", "connection lost: network down"))
        clock.advance(0.99)
        self.assertEqual(len(dialer.attempts), 3)
        clock.advance(0.01)
        self.assertEqual(len(dialer.attempts), 4)

    def test_commands_queued_while_down_run_once_connected(self):
        link, clock, dialer = make_link(backoff_base=1.0)
        first = link.run(b"first", None, None)
        dialer.connect().drop()
        self.failureResultOf(first, ConnectionLost)
        later = link.run(b"later", None, None)
        clock.advance(1.0)
        conn = dialer.connect()
        self.assertEqual([c.command for c in conn.channels], [b"later"])
        conn.channels[0].finish(stdout=b"ok")
        self.assertEqual(self.successResultOf(later).stdout, b"ok")

    def test_jitter_comes_from_the_random_source(self):
        link, clock, dialer = make_link(random=lambda: 0.0, backoff_base=2.0)
        link.start()
        dialer.refuse(NotConnected("down"))
        clock.advance(0.99)
        self.assertEqual(len(dialer.attempts), 1)
        clock.advance(0.01)
        self.assertEqual(len(dialer.attempts), 2)

    def test_host_key_error_fails_waiting_commands_at_once(self):
        link, _clock, dialer = make_link()
        waiting = link.run(b"x", None, None)
        dialer.refuse(HostKeyError("host key of login has CHANGED"))
        self.assertIn("CHANGED", str(self.failureResultOf(waiting, HostKeyError).value))
        later = link.run(b"y", None, None)
        self.failureResultOf(later, HostKeyError)
        self.assertEqual(link.state()[0], "failed")

    def test_authentication_failure_is_fatal_too(self):
        link, _clock, dialer = make_link()
        waiting = link.run(b"x", None, None)
        dialer.refuse(AuthenticationFailed("refused key"))
        self.failureResultOf(waiting, AuthenticationFailed)

    def test_unexpected_dial_errors_become_not_connected(self):
        link, _clock, dialer = make_link(queue_timeout=1.0)
        link.start()
        dialer.refuse(OSError("boom"))
        self.assertEqual(link.state(), ("failed", "cannot connect to svc@login: boom"))


class KeepaliveTests(SynchronousTestCase):
    def test_answered_keepalives_keep_the_connection(self):
        link, clock, dialer = make_link(keepalive=10.0)
        link.start()
        conn = dialer.connect()
        for _ in range(10):
            clock.advance(10.0)
            conn.answer_pings()
        self.assertIsNone(conn.aborted_why)

    def test_unanswered_keepalives_drop_the_connection(self):
        link, clock, dialer = make_link(keepalive=10.0, keepalive_misses=3)
        running = link.run(b"x", None, None)
        conn = dialer.connect()
        for _ in range(3):
            clock.advance(10.0)
        self.assertEqual((len(conn.pings), conn.aborted_why), (3, None))
        clock.advance(10.0)
        self.assertEqual(conn.aborted_why, "no answer to 3 keepalives (10s apart)")
        self.failureResultOf(running, ConnectionLost)
        self.assertEqual(link.state()[0], "failed")

    def test_no_keepalive_when_disabled(self):
        link, clock, dialer = make_link(keepalive=0)
        link.start()
        conn = dialer.connect()
        clock.advance(1000)
        self.assertEqual(conn.pings, [])


class LifecycleTests(SynchronousTestCase):
    def test_on_demand_link_closes_when_idle_and_reopens(self):
        link, clock, dialer = make_link(persistent=False, idle_timeout=60.0)
        self.assertEqual(dialer.attempts, [])
        link.run(b"x", None, None)
        conn = dialer.connect()
        settle(conn)
        clock.advance(59.0)
        self.assertIsNone(conn.closed_why)
        clock.advance(1.0)
        self.assertEqual(conn.closed_why, "idle for 60s")
        self.assertEqual(len(dialer.attempts), 1)
        link.run(b"y", None, None)
        self.assertEqual(len(dialer.attempts), 2)

    def test_work_postpones_the_idle_close(self):
        link, clock, dialer = make_link(persistent=False, idle_timeout=60.0)
        link.run(b"x", None, None)
        conn = dialer.connect()
        settle(conn)
        clock.advance(50.0)
        link.run(b"y", None, None)
        clock.advance(50.0)
        settle(conn)
        clock.advance(59.0)
        self.assertIsNone(conn.closed_why)

    def test_on_demand_link_does_not_reconnect_without_work(self):
        link, clock, dialer = make_link(persistent=False)
        link.run(b"x", None, None)
        conn = dialer.connect()
        settle(conn)
        conn.drop()
        clock.advance(3600)
        self.assertEqual(len(dialer.attempts), 1)

    def test_stop_closes_and_fails_queued(self):
        link, _clock, dialer = make_link(max_channels=1)
        running = link.run(b"a", None, None)
        queued = link.run(b"b", None, None)
        conn = dialer.connect()
        stopped = link.stop()
        self.assertIn("shutting down", str(self.failureResultOf(queued, NotConnected).value))
        self.failureResultOf(running, ConnectionLost)
        self.successResultOf(stopped)
        self.assertEqual(conn.closed_why, "DSSR is shutting down")
        self.failureResultOf(link.run(b"c", None, None), NotConnected)
        self.assertEqual(link.state(), ("failed", "stopped"))

    def test_stop_while_dialing_cancels(self):
        link, clock, dialer = make_link()
        link.start()
        self.successResultOf(link.stop())
        self.assertTrue(dialer.attempts[0].called)
        clock.advance(3600)
        self.assertEqual(len(dialer.attempts), 1)


class StreamTests(SynchronousTestCase):
    def test_a_stream_waits_for_the_connection_then_opens(self):
        link, _clock, dialer = make_link()
        link.start()
        opened = link.stream("node1:80")
        self.assertNoResult(opened)
        conn = dialer.connect()
        stream, = conn.streams
        self.assertEqual(stream.destination, "node1:80")
        self.assertNoResult(opened)
        stream.opened.callback(stream)
        self.assertIs(self.successResultOf(opened), stream)
        self.assertEqual((link.streams.opened, link.streams.open()), (1, 1))
        stream.close()
        self.assertEqual(link.streams.open(), 0)

    def test_streams_do_not_wait_for_a_free_session(self):
        link, _clock, dialer = make_link(max_channels=1)
        link.start()
        conn = dialer.connect()
        link.run(b"busy", None, None)
        link.run(b"queued", None, None)
        link.stream("node1:80")
        self.assertEqual((len(conn.channels), len(conn.streams)), (1, 1))

    def test_no_connection_within_the_wait(self):
        link, clock, dialer = make_link(connect_wait=5.0)
        link.start()
        opened = link.stream("node1:80")
        clock.advance(5.0)
        self.assertIn("within 5s", str(self.failureResultOf(opened, NotConnected).value))
        dialer.connect()  # nothing left to open
        self.assertEqual(dialer.connections[0].streams, [])

    def test_a_refused_login_fails_waiting_streams_at_once(self):
        link, _clock, dialer = make_link()
        link.start()
        opened = link.stream("node1:80")
        dialer.refuse(AuthenticationFailed("no"))
        self.failureResultOf(opened, AuthenticationFailed)

    def test_cancelling_a_wait_forgets_it(self):
        link, _clock, dialer = make_link()
        link.start()
        waiting = link.stream("node1:80")
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(dialer.connect().streams, [])

    def test_cancelling_an_open_abandons_the_channel(self):
        link, _clock, dialer = make_link()
        link.start()
        conn = dialer.connect()
        link.stream("node1:80").addErrback(lambda _: None).cancel()
        self.assertTrue(conn.streams[0].abandoned)

    def test_an_open_stream_keeps_an_on_demand_link(self):
        link, clock, dialer = make_link(persistent=False, idle_timeout=60.0)
        link.stream("node1:80")
        conn = dialer.connect()
        stream, = conn.streams
        stream.opened.callback(stream)
        clock.advance(600.0)
        self.assertIsNone(conn.closed_why)
        stream.close()
        clock.advance(60.0)
        self.assertEqual(conn.closed_why, "idle for 60s")
