"""ExecChannel: stdin streaming under flow control, exit reporting, output cap."""

import struct

from twisted.conch.error import ConchError
from twisted.conch.ssh.common import NS
from twisted.conch.ssh.keys import Key
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.conch import ExecChannel, Target, _Transport
from dssr.remote.hostkeys import KnownHosts
from dssr.remote.interfaces import (
    ChannelRefused,
    CommandTimeout,
    OutputTooLarge,
    RemoteError,
    RemoteResult,
)
from tests.integration.sshd import generate_key


class RecordingConnection:
    """The parts of SSHConnection a channel calls, recording what would be sent."""

    def __init__(self):
        self.sent = []
        self.replies = []
        self.channelsToRemoteChannel = {}

    def sendRequest(self, channel, kind, data, wantReply=0):
        self.sent.append((kind, data))
        if wantReply:
            reply = Deferred()
            self.replies.append(reply)
            return reply
        return None

    def sendData(self, channel, data):
        self.sent.append((b"data", data))

    def sendEOF(self, channel):
        self.sent.append((b"eof", b""))

    def sendClose(self, channel):
        channel.localClosed = True
        self.sent.append((b"close", b""))


def opened(stdin=None, max_output=100, window=1000, packet=10, start=True):
    """A channel the server has opened (and, with ``start``, agreed to exec in)."""
    channel = ExecChannel(b"echo hi", stdin, max_output)
    conn = RecordingConnection()
    channel.conn = conn
    conn.channelsToRemoteChannel[channel] = 7
    channel.remoteWindowLeft, channel.remoteMaxPacket = window, packet
    channel.channelOpen(b"")
    if start:
        conn.replies.pop(0).callback(b"")
    return channel, conn


def kinds(conn):
    return [kind for kind, _ in conn.sent]


class StdinTests(SynchronousTestCase):
    def test_exec_request_carries_the_command(self):
        _channel, conn = opened(start=False)
        self.assertEqual(conn.sent, [(b"exec", NS(b"echo hi"))])

    def test_no_stdin_sends_eof_at_once(self):
        _channel, conn = opened()
        self.assertEqual(kinds(conn), [b"exec", b"eof"])

    def test_stdin_follows_the_window_then_eof(self):
        stdin = bytes(range(100))
        channel, conn = opened(stdin, window=30, packet=10)
        self.assertEqual(kinds(conn), [b"exec"] + [b"data"] * 3)
        channel.addWindowBytes(50)
        self.assertNotIn(b"eof", kinds(conn))
        channel.addWindowBytes(100)
        self.assertEqual(kinds(conn)[-1], b"eof")
        self.assertEqual(b"".join(d for k, d in conn.sent if k == b"data"), stdin)
        self.assertTrue(all(len(d) <= 10 for k, d in conn.sent if k == b"data"))

    def test_no_stdin_before_the_server_agrees_to_exec(self):
        channel, conn = opened(b"data", start=False)
        channel.addWindowBytes(100)
        self.assertEqual(kinds(conn), [b"exec"])


class EndingTests(SynchronousTestCase):
    def test_exit_status_and_output(self):
        channel, _conn = opened()
        channel.dataReceived(b"out")
        channel.extReceived(1, b"err")
        channel.request_exit_status(struct.pack(">L", 3))
        channel.closed()
        self.assertEqual(self.successResultOf(channel.result),
                         RemoteResult(3, None, b"out", b"err"))
        self.assertTrue(channel.done.called)

    def test_exit_signal(self):
        channel, _conn = opened()
        channel.request_exit_signal(NS(b"TERM") + b"\x00" + NS(b"") + NS(b""))
        channel.closed()
        self.assertEqual(self.successResultOf(channel.result), RemoteResult(None, "TERM", b"", b""))

    def test_closed_without_status_is_an_error(self):
        channel, _conn = opened()
        channel.closed()
        self.failureResultOf(channel.result, RemoteError)

    def test_refused_open(self):
        channel = ExecChannel(b"x", None, 10)
        channel.openFailed(ConchError("open failed", 2))
        self.failureResultOf(channel.result, ChannelRefused)
        self.assertTrue(channel.done.called)

    def test_refused_exec_closes_the_channel(self):
        channel, conn = opened(start=False)
        conn.replies.pop(0).errback(ConchError("refused"))
        self.failureResultOf(channel.result, RemoteError)
        self.assertEqual(kinds(conn)[-1], b"close")


class CutOffTests(SynchronousTestCase):
    def test_output_past_the_cap_kills_and_closes(self):
        channel, conn = opened(max_output=10)
        channel.dataReceived(b"123456")
        channel.dataReceived(b"789012")
        error = self.failureResultOf(channel.result, OutputTooLarge).value
        self.assertIn("more than 10 bytes to stdout", str(error))
        self.assertEqual(conn.sent[-2:], [(b"signal", NS(b"KILL")), (b"close", b"")])
        channel.closed()
        self.assertTrue(channel.done.called)

    def test_stderr_has_its_own_cap(self):
        channel, _conn = opened(max_output=10)
        channel.dataReceived(b"1234567890")
        channel.extReceived(1, b"1234567890")
        self.assertNoResult(channel.result)
        channel.extReceived(1, b"!")
        self.assertIn("stderr", str(self.failureResultOf(channel.result, OutputTooLarge).value))

    def test_stop_before_the_channel_opened(self):
        channel = ExecChannel(b"x", None, 10)
        channel.stop(CommandTimeout("too slow"))
        self.failureResultOf(channel.result, CommandTimeout)
        conn = RecordingConnection()
        channel.conn = conn
        conn.channelsToRemoteChannel[channel] = 1
        channel.channelOpen(b"")
        self.assertEqual(kinds(conn), [b"close"])


class RekeyTests(SynchronousTestCase):
    def test_login_is_asked_once_not_after_each_key_exchange(self):
        """Conch calls connectionSecure after every NEWKEYS; only the first asks to log in."""
        key = Key.fromString(generate_key()[0])
        target = Target("127.0.0.1", 22, "someone", key, KnownHosts("/nonexistent"))
        transport = _Transport(target, Deferred())
        sent = []
        transport.sendPacket = lambda kind, payload: sent.append(payload)
        transport.connectionSecure()
        self.assertEqual(sent, [NS(b"ssh-userauth")])
        transport.connectionSecure()  # after a rekey
        self.assertEqual(sent, [NS(b"ssh-userauth")])

