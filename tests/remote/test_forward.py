"""ForwardChannel on a real Conch connection whose packets are recorded: opening,
flow control both ways, the close handshake, refusals."""

import struct

from twisted.conch.ssh import connection as msg
from twisted.conch.ssh.common import NS, getNS
from twisted.conch.ssh.forwarding import unpackOpen_direct_tcpip
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from dssr.remote.conch import Connection
from dssr.remote.forward import ForwardEndpoint, TCPDestination, UnixDestination
from dssr.remote.interfaces import ConnectionLost, ForwardRefused

REMOTE_ID = 70


class PacketRecorder:
    """The SSH transport under a connection: records the packets it would send."""

    def __init__(self):
        self.packets = []

    def sendPacket(self, kind, payload):
        self.packets.append((kind, payload))

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 40000)

    def take(self):
        packets, self.packets = self.packets, []
        return packets


class Recorder(Protocol):
    def __init__(self):
        self.data = []
        self.lost = []

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.lost.append(reason)


@implementer(IPushProducer)
class Producer:
    def __init__(self):
        self.events = []

    def pauseProducing(self):
        self.events.append("pause")

    def resumeProducing(self):
        self.events.append("resume")

    def stopProducing(self):
        self.events.append("stop")


def make_connection():
    conn = Connection("svc@login:22", Deferred())
    conn.transport = PacketRecorder()
    conn.serviceStarted()
    return conn


NODE1 = TCPDestination("node1", 8080)


def open_stream(window=1000, packet=100, destination=NODE1):
    """A stream connected to a Recorder protocol, the server having agreed."""
    conn = make_connection()
    endpoint = ForwardEndpoint(lambda: conn.forward(destination).opened, destination)
    connected = endpoint.connect(Factory.forProtocol(Recorder))
    (_kind, _payload), = conn.transport.take()
    conn.ssh_CHANNEL_OPEN_CONFIRMATION(struct.pack(">4L", 0, REMOTE_ID, window, packet))
    channel = conn.channels[0]
    return conn, channel, channel.protocol, connected


def data(conn, payload, local=0):
    conn.ssh_CHANNEL_DATA(struct.pack(">L", local) + NS(payload))


def kinds(packets):
    return [kind for kind, _ in packets]


class OpenTests(SynchronousTestCase):
    def test_direct_tcpip_names_the_destination(self):
        conn = make_connection()
        conn.forward(TCPDestination("node7", 5901))
        (kind, payload), = conn.transport.packets
        self.assertEqual(kind, msg.MSG_CHANNEL_OPEN)
        name, rest = getNS(payload)
        self.assertEqual(name, b"direct-tcpip")
        target, _origin = unpackOpen_direct_tcpip(rest[12:])
        self.assertEqual(target, ("node7", 5901))

    def test_streamlocal_names_the_socket(self):
        conn = make_connection()
        conn.forward(UnixDestination("/run/slurmrestd.sock"))
        (_kind, payload), = conn.transport.packets
        name, rest = getNS(payload)
        self.assertEqual(name, b"direct-streamlocal@openssh.com")
        path, rest = getNS(rest[12:])
        self.assertEqual((path, rest), (b"/run/slurmrestd.sock", NS(b"") + b"\0\0\0\0"))

    def test_connect_gives_the_protocol_the_channel_as_transport(self):
        _conn, channel, protocol, connected = open_stream()
        self.assertIs(self.successResultOf(connected), protocol)
        self.assertIs(protocol.transport, channel)
        for interface in (ITransport, IPushProducer, IConsumer):
            verifyObject(interface, channel)
        self.assertEqual(channel.getPeer(), IPv4Address("TCP", "node1", 8080))

    def test_nothing_listening_is_a_clear_error(self):
        conn = make_connection()
        opened = conn.forward(TCPDestination("node1", 9)).opened
        conn.ssh_CHANNEL_OPEN_FAILURE(struct.pack(">2L", 0, msg.OPEN_CONNECT_FAILED)
                                      + NS(b"Connection refused") + NS(b""))
        error = self.failureResultOf(opened, ForwardRefused).value
        self.assertIn("node1:9", str(error))
        self.assertIn("connect failed", str(error))
        self.assertIn("Connection refused", str(error))

    def test_forwarding_not_allowed_names_the_setting(self):
        conn = make_connection()
        opened = conn.forward(TCPDestination("node1", 80)).opened
        conn.ssh_CHANNEL_OPEN_FAILURE(struct.pack(">2L", 0, msg.OPEN_ADMINISTRATIVELY_PROHIBITED)
                                      + NS(b"open failed") + NS(b""))
        self.assertIn("AllowTcpForwarding", str(self.failureResultOf(opened).value))

    def test_cancelled_before_the_answer_closes_once_open(self):
        conn = make_connection()
        channel = conn.forward(TCPDestination("node1", 80))
        channel.opened.cancel()
        self.failureResultOf(channel.opened, CancelledError)
        conn.transport.take()
        conn.ssh_CHANNEL_OPEN_CONFIRMATION(struct.pack(">4L", 0, REMOTE_ID, 100, 100))
        self.assertEqual(kinds(conn.transport.take()),
                         [msg.MSG_CHANNEL_EOF, msg.MSG_CHANNEL_CLOSE])

    def test_connection_lost_while_opening(self):
        conn = make_connection()
        opened = conn.forward(TCPDestination("node1", 80)).opened
        conn.serviceStopped()
        self.failureResultOf(opened, ConnectionLost)


class FlowTests(SynchronousTestCase):
    def test_writes_follow_the_servers_window_and_pause_the_producer(self):
        conn, channel, _protocol, _ = open_stream(window=250, packet=100)
        producer = Producer()
        channel.registerProducer(producer, True)
        channel.write(b"x" * 400)
        sent = conn.transport.take()
        self.assertEqual([len(getNS(p[4:])[0]) for _, p in sent], [100, 100, 50])
        self.assertEqual(producer.events, ["pause"])
        conn.ssh_CHANNEL_WINDOW_ADJUST(struct.pack(">2L", 0, 1000))
        self.assertEqual(sum(len(getNS(p[4:])[0]) for _, p in conn.transport.take()), 150)
        self.assertEqual(producer.events, ["pause", "resume"])

    def test_registering_while_the_window_is_full_pauses_at_once(self):
        _conn, channel, _protocol, _ = open_stream(window=10)
        channel.write(b"x" * 20)
        producer = Producer()
        channel.registerProducer(producer, True)
        self.assertEqual(producer.events, ["pause"])

    def test_data_reaches_the_protocol_and_the_window_grows(self):
        conn, _channel, protocol, _ = open_stream()
        data(conn, b"a" * 100)
        self.assertEqual(protocol.data, [b"a" * 100])
        self.assertEqual(conn.transport.take(), [])
        for _ in range(40):
            data(conn, b"b" * 30000)
        self.assertIn(msg.MSG_CHANNEL_WINDOW_ADJUST, kinds(conn.transport.take()))

    def test_a_paused_reader_holds_data_and_the_window(self):
        conn, channel, protocol, _ = open_stream()
        channel.pauseProducing()
        window = channel.localWindowSize
        for _ in range(40):
            data(conn, b"c" * 30000)
        self.assertEqual(protocol.data, [])
        self.assertEqual(conn.transport.take(), [])  # no window adjust while paused
        self.assertEqual(channel.localWindowLeft, window - 1200000)
        channel.resumeProducing()
        self.assertEqual(b"".join(protocol.data), b"c" * 1200000)
        (kind, payload), = conn.transport.take()
        self.assertEqual(kind, msg.MSG_CHANNEL_WINDOW_ADJUST)
        self.assertEqual(struct.unpack(">2L", payload), (REMOTE_ID, 1200000))
        self.assertEqual(channel.localWindowLeft, window)


class CloseTests(SynchronousTestCase):
    def test_far_eof_closes_our_side_and_then_the_protocol(self):
        conn, channel, protocol, _ = open_stream()
        data(conn, b"bye")
        conn.ssh_CHANNEL_EOF(struct.pack(">L", 0))
        self.assertEqual(kinds(conn.transport.take()),
                         [msg.MSG_CHANNEL_EOF, msg.MSG_CHANNEL_CLOSE])
        self.assertEqual(protocol.lost, [])
        conn.ssh_CHANNEL_CLOSE(struct.pack(">L", 0))
        self.assertEqual(protocol.data, [b"bye"])
        protocol.lost[0].trap(ConnectionDone)
        self.assertEqual(conn.channels, {})
        self.assertTrue(channel.done.called)

    def test_lose_connection_sends_eof_then_close_after_buffered_writes(self):
        conn, channel, protocol, _ = open_stream(window=10)
        channel.write(b"y" * 30)
        channel.loseConnection()
        self.assertEqual(kinds(conn.transport.take()), [msg.MSG_CHANNEL_DATA])
        conn.ssh_CHANNEL_WINDOW_ADJUST(struct.pack(">2L", 0, 100))
        self.assertEqual(kinds(conn.transport.take()),
                         [msg.MSG_CHANNEL_DATA, msg.MSG_CHANNEL_EOF, msg.MSG_CHANNEL_CLOSE])
        conn.ssh_CHANNEL_CLOSE(struct.pack(">L", 0))
        protocol.lost[0].trap(ConnectionDone)
        self.assertEqual(conn.channels, {})

    def test_far_close_drops_unsent_writes(self):
        conn, channel, protocol, _ = open_stream(window=10)
        channel.write(b"z" * 30)
        conn.transport.take()
        conn.ssh_CHANNEL_CLOSE(struct.pack(">L", 0))
        self.assertEqual(kinds(conn.transport.take()), [msg.MSG_CHANNEL_CLOSE])
        protocol.lost[0].trap(ConnectionDone)

    def test_data_held_by_a_pause_arrives_before_the_close(self):
        conn, channel, protocol, _ = open_stream()
        channel.pauseProducing()
        data(conn, b"last words")
        conn.ssh_CHANNEL_CLOSE(struct.pack(">L", 0))
        self.assertEqual(protocol.data, [b"last words"])
        self.assertEqual(len(protocol.lost), 1)

    def test_connection_lost_under_an_open_stream(self):
        conn, channel, protocol, _ = open_stream()
        producer = Producer()
        channel.registerProducer(producer, True)
        conn.serviceStopped()
        protocol.lost[0].trap(ConnectionLost)
        self.assertEqual(producer.events, ["stop"])
        self.assertTrue(channel.done.called)

    def test_writes_after_close_go_nowhere(self):
        conn, channel, _protocol, _ = open_stream()
        channel.loseConnection()
        conn.transport.take()
        channel.write(b"late")
        self.assertEqual(conn.transport.take(), [])
