"""Forwarded streams (``IRemote.tcp_endpoint``/``unix_endpoint``) through a real OpenSSH sshd.

The far ends are Twisted servers on 127.0.0.1 in the test process, reached through
the sshd as the login node would reach a compute node's port.
"""

import os
import pwd
import shutil
import tempfile

from twisted.conch.ssh.transport import SSHCiphers
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from dssr import compose
from dssr import settings as dssr_settings
from dssr.remote.aead import GCMCiphers
from dssr.remote.interfaces import ForwardRefused
from tests.integration.sshd import SSHServer, free_port, generate_key, require_sshd
from tests.integration.test_ssh import deferred_test

ME = pwd.getpwuid(os.geteuid()).pw_name
PAYLOAD = os.urandom(24 * 1024 * 1024)


class Blob(Resource):
    isLeaf = True

    def render_GET(self, request):
        return PAYLOAD


@implementer(IAgentEndpointFactory)
class ThroughRemote:
    """Every URI's host:port reached through ``remote``'s streams."""

    def __init__(self, remote):
        self.remote = remote

    def endpointForURI(self, uri):
        return self.remote.tcp_endpoint(uri.host.decode(), uri.port)


class Collector(Protocol):
    """Keeps what arrives; ``ended`` fires with it once the stream is closed."""

    def __init__(self):
        self.received = bytearray()
        self.ended = Deferred()

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.ended.callback(bytes(self.received))


class Counted(Protocol):
    """A far end that says hello (and hangs up when ``factory.hang_up``)."""

    def connectionMade(self):
        self.factory.made += 1
        self.transport.write(b"hello\n")
        if self.factory.hang_up:
            self.transport.loseConnection()

    def dataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        self.factory.lost += 1


class CountedFactory(Factory):
    protocol = Counted

    def __init__(self, hang_up):
        self.hang_up = hang_up
        self.made = self.lost = 0


class ForwardTests(TestCase):
    timeout = 120

    def start_sshd(self, extra_config=""):
        require_sshd()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.directory = directory
        server = SSHServer(reactor, directory, extra_config)
        key, public = generate_key()
        server.authorize(public)
        known_hosts = os.path.join(directory, "known_hosts")
        with open(known_hosts, "wb") as known:
            known.write(server.known_hosts_line())
        self.addCleanup(lambda: server.stop())
        settings = dssr_settings.load(cli={
            "cluster_addr": server.host, "cluster_port": server.port, "ssh_user": ME,
            "ssh_pkey": key.decode(), "ssh_known_hosts": known_hosts})
        remote = compose.ssh_remote(settings, reactor, None, backoff_base=0.1)
        self.server = server
        return server.start(), remote

    async def remote(self, extra_config=""):
        started, remote = self.start_sshd(extra_config)
        await started
        remote.startService()
        self.addCleanup(remote.stopService)
        return remote

    def listen(self, factory) -> int:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def open_streams(self, remote) -> int:
        return sum(s.value for s in remote.metrics() if s.name == "dssr_ssh_open_streams")

    @deferred_test
    async def test_http_through_a_stream_is_byte_exact(self):
        remote = await self.remote()
        port = self.listen(Site(Blob()))
        agent = Agent.usingEndpointFactory(reactor, ThroughRemote(remote))
        response = await agent.request(b"GET", b"http://127.0.0.1:%d/" % port)
        body = await readBody(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(len(body), len(PAYLOAD))
        self.assertTrue(body == PAYLOAD)

    async def rekeyed_download(self, cipher: str, kind: type) -> None:
        """A download with only ``cipher`` allowed, the keys changed every megabyte."""
        remote = await self.remote(f"Ciphers {cipher}\nRekeyLimit 1M\n")
        port = self.listen(Site(Blob()))
        collector = Collector()
        await connectProtocol(remote.tcp_endpoint("127.0.0.1", port), collector)
        transport = collector.transport.conn.transport
        first_keys = transport.currentEncryptions
        self.assertIs(type(first_keys), kind)
        collector.transport.write(b"GET / HTTP/1.0\r\n\r\n")
        received = await collector.ended
        self.assertTrue(received.endswith(PAYLOAD))
        self.assertIsNot(transport.currentEncryptions, first_keys)  # rekeyed meanwhile
        self.assertIs(type(transport.currentEncryptions), kind)
        # A rekey must not make DSSR ask to log in again.
        self.assertNotIn("kex_protocol_error", self.server.log())

    @deferred_test
    async def test_aes256_gcm_rekeyed(self):
        await self.rekeyed_download("aes256-gcm@openssh.com", GCMCiphers)

    @deferred_test
    async def test_aes128_gcm_rekeyed(self):
        await self.rekeyed_download("aes128-gcm@openssh.com", GCMCiphers)

    @deferred_test
    async def test_conch_s_own_aes_ctr_rekeyed(self):
        await self.rekeyed_download("aes256-ctr", SSHCiphers)

    @deferred_test
    async def test_a_paused_reader_gets_nothing_until_it_resumes(self):
        remote = await self.remote()
        port = self.listen(Site(Blob()))
        collector = Collector()
        await connectProtocol(remote.tcp_endpoint("127.0.0.1", port), collector)
        collector.transport.write(b"GET / HTTP/1.0\r\n\r\n")
        while len(collector.received) < 1024 * 1024:
            await deferLater(reactor, 0.01, lambda: None)
        collector.transport.pauseProducing()
        held = len(collector.received)
        await deferLater(reactor, 1.0, lambda: None)
        self.assertEqual(len(collector.received), held)
        collector.transport.resumeProducing()
        received = await collector.ended
        self.assertTrue(received.endswith(PAYLOAD))

    @deferred_test
    async def test_far_close_ends_the_stream_promptly(self):
        remote = await self.remote()
        far = CountedFactory(hang_up=True)
        port = self.listen(far)
        collector = Collector()
        await connectProtocol(remote.tcp_endpoint("127.0.0.1", port), collector)
        started = reactor.seconds()
        self.assertEqual(await collector.ended, b"hello\n")
        self.assertLess(reactor.seconds() - started, 10)  # not at connection drop
        self.assertEqual(self.open_streams(remote), 0)

    @deferred_test
    async def test_two_hundred_streams_leave_no_channel(self):
        remote = await self.remote()
        far = CountedFactory(hang_up=False)
        port = self.listen(far)
        endpoint = remote.tcp_endpoint("127.0.0.1", port)
        for _ in range(200):
            collector = Collector()
            await connectProtocol(endpoint, collector)
            collector.transport.write(b"ping\n")
            while b"ping" not in collector.received:
                await deferLater(reactor, 0.001, lambda: None)
            collector.transport.loseConnection()
            await collector.ended
        while far.lost < 200:
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((far.made, self.open_streams(remote)), (200, 0))
        self.assertEqual(self.server.accepted_logins(), 1)

    @deferred_test
    async def test_streams_do_not_count_against_max_sessions(self):
        # The test sshd has MaxSessions 10: 30 open streams and 10 commands at once.
        remote = await self.remote()
        port = self.listen(CountedFactory(hang_up=False))
        endpoint = remote.tcp_endpoint("127.0.0.1", port)
        collectors = [Collector() for _ in range(30)]
        await gatherResults([connectProtocol(endpoint, c) for c in collectors])
        results = await gatherResults([remote.run(["sleep", "0.3"]) for _ in range(10)])
        self.assertTrue(all(result.ok for result in results))
        self.assertNotIn("no more sessions", self.server.log())
        self.assertEqual(self.open_streams(remote), 30)
        for collector in collectors:
            collector.transport.loseConnection()
        await gatherResults([c.ended for c in collectors])

    @deferred_test
    async def test_nothing_listening_is_refused_clearly(self):
        remote = await self.remote()
        port = free_port()
        with self.assertRaises(ForwardRefused) as caught:
            await connectProtocol(remote.tcp_endpoint("127.0.0.1", port), Collector())
        self.assertIn(f"127.0.0.1:{port}", str(caught.exception))
        self.assertIn("connect failed", str(caught.exception))
        self.assertEqual(self.open_streams(remote), 0)

    @deferred_test
    async def test_forwarding_disabled_is_refused_clearly(self):
        remote = await self.remote("AllowTcpForwarding no\n")
        port = self.listen(CountedFactory(hang_up=False))
        with self.assertRaises(ForwardRefused) as caught:
            await connectProtocol(remote.tcp_endpoint("127.0.0.1", port), Collector())
        self.assertIn("AllowTcpForwarding", str(caught.exception))
        result = await remote.run(["echo", "commands still run"])
        self.assertEqual(result.stdout, b"commands still run\n")

    @deferred_test
    async def test_a_unix_socket(self):
        remote = await self.remote()
        directory = tempfile.mkdtemp(prefix="dssr-fwd-")  # short: sun_path is 108 bytes
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "app.sock")
        listening = reactor.listenUNIX(path, CountedFactory(hang_up=True))
        self.addCleanup(listening.stopListening)
        collector = Collector()
        await connectProtocol(remote.unix_endpoint(path), collector)
        self.assertEqual(await collector.ended, b"hello\n")
