"""OpenSSH's AES-GCM ciphers (``aes256-gcm@openssh.com``, ``aes128-gcm@openssh.com``) for Conch.

Conch only has CTR/CBC ciphers with a separate HMAC, and the HMAC (SHA-2 through
Python's ``hmac``, once per packet) was most of DSSR's CPU on a forwarded download;
AES-GCM encrypts and authenticates in one OpenSSL call, several times faster. The
format (RFC 5647 as OpenSSH's PROTOCOL amends it): the packet length goes in clear as
associated data, padding aligns the rest to 16 bytes, a 16-byte tag stands for the
MAC (the negotiated MAC is unused), and the nonce is the key exchange's 12-byte IV
whose last 8 bytes count the packets. ``GCMClientTransport`` is Conch's client
transport offering them first (OpenSSH's sshd has them on by default).
"""

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.conch.ssh.transport import (
    DISCONNECT_KEY_EXCHANGE_FAILED,
    DISCONNECT_MAC_ERROR,
    DISCONNECT_PROTOCOL_ERROR,
    SSHCiphers,
    SSHClientTransport,
)

# Key sizes, in the order DSSR prefers them.
GCM_CIPHERS = {b"aes256-gcm@openssh.com": 32, b"aes128-gcm@openssh.com": 16}
TAG = 16
_BLOCK = 16
_MAX_LENGTH = 1024 * 1024  # Conch's own limit on a packet

class BadLength(ValueError):
    """A packet length the cipher cannot have produced."""


class _Direction:
    """The AES-GCM key and packet counter of one direction."""

    def __init__(self, name: bytes, key: bytes, iv: bytes):
        self._aead = AESGCM(key[:GCM_CIPHERS[name]])
        self._fixed = iv[:4]
        self._counter = int.from_bytes(iv[4:12], "big")

    def nonce(self) -> bytes:
        """The next packet's nonce (each is used once)."""
        nonce = self._fixed + self._counter.to_bytes(8, "big")
        self._counter = (self._counter + 1) % (1 << 64)
        return nonce

    def seal(self, head: bytes, body: bytes) -> bytes:
        return self._aead.encrypt(self.nonce(), body, head)

    def open(self, head: bytes, sealed) -> bytes:
        return self._aead.decrypt(self.nonce(), sealed, head)


def padding_length(payload_length: int) -> int:
    """Padding that aligns padding-length byte + payload + padding to 16, at least 4."""
    padding = _BLOCK - (1 + payload_length) % _BLOCK
    return padding + _BLOCK if padding < 4 else padding


class GCMCiphers(SSHCiphers):
    """Conch's cipher state for one key exchange where both directions chose AES-GCM."""

    def setKeys(self, outIV, outKey, inIV, inKey, outInteg, inInteg) -> None:
        self._out = _Direction(self.outCipType, outKey, outIV)
        self._in = _Direction(self.inCipType, inKey, inIV)
        # Conch reads a non-zero block size as "keys are set".
        self.encBlockSize = self.decBlockSize = _BLOCK
        self.verifyDigestSize = TAG

    def seal(self, payload: bytes) -> bytes:
        """The next outgoing packet carrying ``payload``, as it goes on the wire."""
        padding = padding_length(len(payload))
        head = struct.pack(">L", 1 + len(payload) + padding)
        body = bytes((padding,)) + payload + os.urandom(padding)
        return head + self._out.seal(head, body)

    def packet_size(self, head: bytes) -> int:
        """The wire size of the incoming packet whose first 4 bytes are ``head``."""
        (length,) = struct.unpack(">L", head)
        if length > _MAX_LENGTH or length % _BLOCK or length < _BLOCK:
            raise BadLength(f"bad packet length {length}")
        return 4 + length + TAG

    def open(self, packet) -> bytes:
        """The payload of the next incoming ``packet`` (all its wire bytes);
        ``InvalidTag`` if it was not sealed by the peer's key, in order."""
        head = bytes(packet[:4])
        body = self._in.open(head, packet[4:])
        padding = body[0]
        if padding < 4 or padding >= len(body):
            raise InvalidTag()
        return body[1:-padding]


def upgrade(ciphers: SSHCiphers) -> SSHCiphers | None:
    """``ciphers`` (just negotiated) as ``GCMCiphers`` when both directions chose AES-GCM;
    None when only one did (DSSR offers the same list both ways, so the peer is broken)."""
    chosen = (ciphers.outCipType in GCM_CIPHERS) + (ciphers.inCipType in GCM_CIPHERS)
    if chosen == 0:
        return ciphers
    if chosen == 1:
        return None
    return GCMCiphers(ciphers.outCipType, ciphers.inCipType, ciphers.outMACType,
                      ciphers.inMACType)


class GCMClientTransport(SSHClientTransport):
    """Conch's client transport, offering AES-GCM first and framing its packets."""

    supportedCiphers = [*GCM_CIPHERS, *SSHClientTransport.supportedCiphers]
    # No compression: it costs CPU, and the AES-GCM packets here do not implement it.
    supportedCompressions = [b"none"]

    def _keySetup(self, sharedSecret: bytes, exchangeHash: bytes) -> None:
        ciphers = upgrade(self.nextEncryptions)  # the algorithms are chosen by now
        if ciphers is None:
            self.sendDisconnect(DISCONNECT_KEY_EXCHANGE_FAILED,
                                b"AES-GCM chosen for one direction only")
            return
        self.nextEncryptions = ciphers
        super()._keySetup(sharedSecret, exchangeHash)

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        ciphers = self.currentEncryptions
        if not isinstance(ciphers, GCMCiphers):
            super().sendPacket(messageType, payload)
        elif (self._keyExchangeState != self._KEY_EXCHANGE_NONE
                and not self._allowedKeyExchangeMessageType(messageType)):
            self._blockedByKeyExchange.append((messageType, payload))
        else:
            self.transport.write(ciphers.seal(bytes((messageType,)) + payload))
            self.outgoingPacketSequence += 1

    def getPacket(self) -> bytes | None:
        ciphers = self.currentEncryptions
        if not isinstance(ciphers, GCMCiphers):
            return super().getPacket()
        if len(self.buf) < 4:
            return None
        try:
            size = ciphers.packet_size(self.buf[:4])
        except BadLength as error:
            self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, str(error).encode())
            return None
        if len(self.buf) < size:
            return None
        try:
            payload = ciphers.open(memoryview(self.buf)[:size])
        except InvalidTag:
            self.sendDisconnect(DISCONNECT_MAC_ERROR, b"bad MAC")
            return None
        self.buf = self.buf[size:]
        self.incomingPacketSequence += 1
        return payload
