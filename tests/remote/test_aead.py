"""AES-GCM packets as OpenSSH frames them, and the transport reading and writing them."""

import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.conch.ssh.transport import SSHCiphers
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.aead import (
    BadLength,
    GCMCiphers,
    GCMClientTransport,
    Unauthentic,
    padding_length,
    upgrade,
)

GCM256 = b"aes256-gcm@openssh.com"
GCM128 = b"aes128-gcm@openssh.com"
KEY_A, KEY_B = os.urandom(64), os.urandom(64)  # as long as a kex hash derives them
IV_A, IV_B = os.urandom(64), os.urandom(64)


def ends(name: bytes = GCM256) -> tuple[GCMCiphers, GCMCiphers]:
    """Two ends of one connection: what one seals, the other opens."""
    one = GCMCiphers(name, name, b"hmac-sha2-256", b"hmac-sha2-256")
    one.setKeys(IV_A, KEY_A, IV_B, KEY_B, b"", b"")
    other = GCMCiphers(name, name, b"hmac-sha2-256", b"hmac-sha2-256")
    other.setKeys(IV_B, KEY_B, IV_A, KEY_A, b"", b"")
    return one, other


class PacketTests(SynchronousTestCase):
    def test_layout_is_openssh_s(self):
        """Length in clear as associated data, nonce = IV's 4 fixed bytes + 8-byte counter."""
        sender, _ = ends()
        counter = int.from_bytes(IV_A[4:12], "big")
        for number, payload in enumerate((b"\x5ehello", b"", b"x" * 1000)):
            packet = sender.seal(payload)
            (length,) = struct.unpack(">L", packet[:4])
            self.assertEqual(len(packet), 4 + length + 16)
            nonce = IV_A[:4] + ((counter + number) % 2**64).to_bytes(8, "big")
            body = AESGCM(KEY_A[:32]).decrypt(nonce, packet[4:], packet[:4])
            self.assertEqual(len(body), length)
            self.assertEqual(body[1:1 + len(payload)], payload)
            self.assertEqual(1 + len(payload) + body[0], length)

    def test_aes128_uses_a_16_byte_key(self):
        sender, _ = ends(GCM128)
        packet = sender.seal(b"hi")
        body = AESGCM(KEY_A[:16]).decrypt(IV_A[:12], packet[4:], packet[:4])
        self.assertEqual(body[1:3], b"hi")

    def test_the_counter_wraps_at_64_bits(self):
        iv = IV_A[:4] + b"\xff" * 8
        sender = GCMCiphers(GCM256, GCM256, b"", b"")
        sender.setKeys(iv, KEY_A, IV_B, KEY_B, b"", b"")
        sender.seal(b"first")
        packet = sender.seal(b"second")
        body = AESGCM(KEY_A[:32]).decrypt(IV_A[:4] + bytes(8), packet[4:], packet[:4])
        self.assertEqual(body[1:7], b"second")

    def test_padding_aligns_to_16_with_at_least_4(self):
        for size in range(100):
            padding = padding_length(size)
            self.assertEqual((1 + size + padding) % 16, 0)
            self.assertTrue(4 <= padding < 20, (size, padding))

    def test_round_trip_in_order(self):
        one, other = ends()
        payloads = [os.urandom(size) for size in (0, 1, 15, 16, 17, 32768, 65536)]
        for payload in payloads:
            packet = one.seal(payload)
            self.assertEqual(other.packet_size(packet[:4]), len(packet))
            self.assertEqual(other.open(packet), payload)

    def test_a_changed_byte_is_refused(self):
        for where in (2, 4, 20, -1):  # the length, the body, the tag
            one, other = ends()
            packet = bytearray(one.seal(b"y" * 40))
            packet[where] ^= 0x10
            with self.assertRaises(Unauthentic):
                other.open(bytes(packet))

    def test_a_packet_out_of_order_is_refused(self):
        one, other = ends()
        one.seal(b"first")
        second = one.seal(b"second")
        with self.assertRaises(Unauthentic):
            other.open(second)

    def test_impossible_lengths(self):
        _, other = ends()
        for length in (0, 8, 33, 2 * 1024 * 1024):
            with self.assertRaises(BadLength):
                other.packet_size(struct.pack(">L", length))


class UpgradeTests(SynchronousTestCase):
    def test_only_when_both_directions_chose_gcm(self):
        ctr = SSHCiphers(b"aes256-ctr", b"aes256-ctr", b"hmac-sha2-256", b"hmac-sha2-256")
        self.assertIs(upgrade(ctr), ctr)
        gcm = upgrade(SSHCiphers(GCM256, GCM128, b"hmac-sha2-256", b"hmac-sha2-256"))
        self.assertIsInstance(gcm, GCMCiphers)
        self.assertEqual((gcm.outCipType, gcm.inCipType), (GCM256, GCM128))
        self.assertIsNone(upgrade(SSHCiphers(GCM256, b"aes256-ctr", b"", b"")))


def transport() -> tuple[GCMClientTransport, GCMCiphers]:
    """A client transport with AES-GCM keys in use, and the server's end of them."""
    ours, theirs = ends()
    connection = GCMClientTransport()
    connection.transport = StringTransport()
    connection.currentEncryptions = ours
    connection.buf = b""
    return connection, theirs


class TransportTests(SynchronousTestCase):
    def test_offers_gcm_first(self):
        connection = GCMClientTransport()
        connection.makeConnection(StringTransport())
        self.assertEqual(connection.supportedCiphers[:2], [GCM256, GCM128])
        self.assertIn(GCM256 + b",", connection.transport.value())  # in its KEXINIT

    def test_packets_split_anywhere_arrive_whole(self):
        connection, server = transport()
        wire = b"".join(server.seal(bytes((94,)) + os.urandom(size)) for size in (9, 40000))
        got = []
        connection.dispatchMessage = lambda number, payload: got.append((number, payload))
        connection.gotVersion = True
        for start in range(0, len(wire), 7000):
            connection.dataReceived(wire[start:start + 7000])
        self.assertEqual([(number, len(payload)) for number, payload in got],
                         [(94, 9), (94, 40000)])
        self.assertEqual(connection.incomingPacketSequence, 2)

    def test_sent_packets_open_at_the_server(self):
        connection, server = transport()
        connection.sendPacket(94, b"data")
        wire = connection.transport.value()
        self.assertEqual(server.open(wire), b"\x5edata")

    def test_a_forged_packet_disconnects(self):
        connection, server = transport()
        packet = bytearray(server.seal(b"\x5e" + b"z" * 30))
        packet[10] ^= 1
        connection.buf = bytes(packet)
        self.assertIsNone(connection.getPacket())
        self.assertTrue(connection.transport.disconnecting)
