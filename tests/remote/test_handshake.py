"""DSSR's client transport through whole key exchanges and rekeys, in memory: a Twisted
release that moves what dssr.twisted_private.ssh hooks into fails here, not on the rig."""

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh.connection import MSG_CHANNEL_DATA
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.internet.defer import succeed
from twisted.logger import LogLevel, globalLogPublisher
from twisted.test.iosim import FakeTransport, connect
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.aead import GCMCiphers, GCMClientTransport, GCMTransport
from dssr.twisted_private import ssh

GCM256 = b"aes256-gcm@openssh.com"
GCM128 = b"aes128-gcm@openssh.com"
CTR = b"aes256-ctr"
HOST_KEY = Key(ed25519.Ed25519PrivateKey.generate())


class Client(GCMClientTransport):
    """Trusts any host key; notes when the keys are in use."""

    secured = 0

    def verifyHostKey(self, hostKey, fingerprint):
        return succeed(True)

    def connectionSecure(self):
        self.secured += 1


class Server(GCMTransport, SSHServerTransport):
    """Conch's server with DSSR's framing, offering only ``offer``; keeps what it is sent."""

    offer = [GCM256]

    def connectionMade(self):
        self.gcm_offered = [name for name in self.offer if name in (GCM256, GCM128)]
        self.supportedCiphers = [name for name in self.offer if name not in self.gcm_offered]
        self.received = []
        super().connectionMade()

    def dispatchMessage(self, messageNum, payload):
        if messageNum != MSG_CHANNEL_DATA:
            return super().dispatchMessage(messageNum, payload)
        self.received.append(payload)  # with no service: DSSR's packets as they came
        self.keys_then = self.currentEncryptions


class Factory(SSHFactory):
    publicKeys = {b"ssh-ed25519": HOST_KEY.public()}
    privateKeys = {b"ssh-ed25519": HOST_KEY}


def handshake(offer: list[bytes]):
    """A DSSR client and a server offering ``offer``, connected, keys exchanged."""
    factory = Factory()
    factory.protocol = type("Offering", (Server,), {"offer": offer})
    factory.startFactory()
    server = factory.buildProtocol(None)
    client = Client()
    pump = connect(server, FakeTransport(server, isServer=True),
                   client, FakeTransport(client, isServer=False), greet=False)
    pump.flush()
    return client, server, pump


class HandshakeTests(SynchronousTestCase):
    def assert_talks(self, client, server, pump, payload: bytes) -> None:
        client.sendPacket(MSG_CHANNEL_DATA, payload)
        pump.flush()
        self.assertEqual(server.received[-1], payload)

    def test_each_gcm_size_and_a_rekey(self):
        for name in (GCM256, GCM128):
            client, server, pump = handshake([name])
            self.assertEqual(client.secured, 1)
            first, server_first = client.currentEncryptions, server.currentEncryptions
            self.assertIsInstance(first, GCMCiphers)
            self.assertEqual((first.outCipType, first.inCipType), (name, name))
            self.assertIsInstance(server.currentEncryptions, GCMCiphers)
            self.assert_talks(client, server, pump, b"\x00\x00\x00\x05first")

            client.sendKexInit()  # a rekey: channel data sent meanwhile waits for the new keys
            client.sendPacket(MSG_CHANNEL_DATA, b"\x00\x00\x00\x04held")
            pump.flush()
            self.assertEqual(server.received[-1], b"\x00\x00\x00\x04held")
            self.assertIsNot(server.keys_then, server_first)  # it came under the new keys
            self.assertIsNot(client.currentEncryptions, first)
            self.assertIsInstance(client.currentEncryptions, GCMCiphers)
            self.assertEqual(client.secured, 2)
            self.assert_talks(client, server, pump, b"\x00\x00\x00\x05after")
            self.assertFalse(client.transport.disconnecting)

    def test_ctr_when_the_server_has_no_gcm(self):
        client, server, pump = handshake([CTR])
        self.assertEqual(client.secured, 1)
        self.assertNotIsInstance(client.currentEncryptions, GCMCiphers)
        self.assertEqual(client.currentEncryptions.outCipType, CTR)
        client.sendKexInit()
        pump.flush()
        self.assertEqual(client.secured, 2)
        self.assert_talks(client, server, pump, b"\x00\x00\x00\x03ctr")


class MissingHookTests(SynchronousTestCase):
    def setUp(self):
        ssh.framing_works.cache_clear()
        self.addCleanup(ssh.framing_works.cache_clear)
        self.warnings = []
        observer = self.warnings.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def test_present_in_this_twisted(self):
        self.assertEqual(ssh.missing_hooks(), [])

    def test_a_renamed_hook_means_conchs_ciphers_and_one_warning(self):
        """As if a Twisted release renamed ``_keySetup``: DSSR offers no AES-GCM."""
        self.patch(ssh, "HOOKS", (*ssh.HOOKS, "_keySetupRenamedAway"))
        for _ in range(2):
            client, *_ = handshake([GCM256, CTR])
            self.assertEqual(client.secured, 1)
            self.assertNotIn(GCM256, client.supportedCiphers)
            self.assertEqual(client.currentEncryptions.outCipType, CTR)
        warned = [event for event in self.warnings if event.get("log_level") == LogLevel.warn
                  and "_keySetupRenamedAway" in event.get("missing", "")]
        self.assertEqual(len(warned), 1)
