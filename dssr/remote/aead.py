"""OpenSSH's AES-GCM ciphers (``aes256-gcm@openssh.com``, ``aes128-gcm@openssh.com``) for Conch.

Conch only has CTR/CBC ciphers with a separate HMAC, and the HMAC (SHA-2 through
Python's ``hmac``, once per packet) was most of DSSR's CPU on a forwarded download;
AES-GCM encrypts and authenticates in one OpenSSL call, several times faster. The
format (RFC 5647 as OpenSSH's PROTOCOL amends it): the packet length goes in clear as
associated data, padding aligns the rest to 16 bytes, a 16-byte tag stands for the
MAC (the negotiated MAC is unused), and the nonce is the key exchange's 12-byte IV
whose last 8 bytes count the packets. ``GCMClientTransport`` is Conch's client
transport offering them first (OpenSSH's sshd has them on by default); how they plug
into Conch is ``dssr.twisted_private.ssh``. If they cannot (a Twisted release without
its hooks), or Conch frames AES-GCM itself, Conch's own ciphers and framing are used.
"""

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.conch.ssh.transport import SSHCiphers, SSHClientTransport, SSHTransportBase

from dssr.twisted_private.ssh import (
    AEADCiphers,
    AEADTransport,
    BadLength,
    Unauthentic,
    framing_works,
)

# Key sizes, in the order DSSR prefers them.
GCM_CIPHERS = {b"aes256-gcm@openssh.com": 32, b"aes128-gcm@openssh.com": 16}
TAG = 16
_BLOCK = 16
_MAX_LENGTH = 1024 * 1024  # Conch's own limit on a packet

__all__ = ["BadLength", "GCMCiphers", "GCMClientTransport", "Unauthentic", "padding_length",
           "upgrade"]


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

    def open(self, head: bytes, sealed: memoryview | bytes) -> bytes:
        return self._aead.decrypt(self.nonce(), sealed, head)


def padding_length(payload_length: int) -> int:
    """Padding that aligns padding-length byte + payload + padding to 16, at least 4."""
    padding = _BLOCK - (1 + payload_length) % _BLOCK
    return padding + _BLOCK if padding < 4 else padding


class GCMCiphers(AEADCiphers):
    """The cipher state of one key exchange where both directions chose AES-GCM."""

    block_size = _BLOCK
    tag_size = TAG

    def keys(self, out_iv: bytes, out_key: bytes, in_iv: bytes, in_key: bytes) -> None:
        self._out = _Direction(self.outCipType, out_key, out_iv)
        self._in = _Direction(self.inCipType, in_key, in_iv)

    def seal(self, payload: bytes) -> bytes:
        padding = padding_length(len(payload))
        head = struct.pack(">L", 1 + len(payload) + padding)
        body = bytes((padding,)) + payload + os.urandom(padding)
        return head + self._out.seal(head, body)

    def packet_size(self, head: bytes) -> int:
        length: int = struct.unpack(">L", head)[0]
        if length > _MAX_LENGTH or length % _BLOCK or length < _BLOCK:
            raise BadLength(f"bad packet length {length}")
        return 4 + length + TAG

    def open(self, packet: memoryview | bytes) -> bytes:
        head = bytes(packet[:4])
        try:
            body = self._in.open(head, packet[4:])
        except InvalidTag:
            raise Unauthentic("bad tag") from None
        padding = body[0]
        if padding < 4 or padding >= len(body):
            raise Unauthentic("bad padding")
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


def gcm_framed() -> bool:
    """Whether DSSR frames AES-GCM here: the hooks are there and Conch does not itself."""
    conch_has_gcm = any(name in SSHTransportBase.supportedCiphers for name in GCM_CIPHERS)
    return framing_works() and not conch_has_gcm


class GCMTransport(AEADTransport):
    """Conch's transport (mixed in before a client or server one) offering AES-GCM first."""

    # No compression: it costs CPU, and the AES-GCM packets here do not implement it.
    supportedCompressions = [b"none"]

    gcm_offered = list(GCM_CIPHERS)
    framed = False  # DSSR frames AES-GCM on this connection (set as it is made)

    def connectionMade(self) -> None:
        self.framed = gcm_framed()
        if self.framed:
            self.supportedCiphers = [*self.gcm_offered, *(
                name for name in self.supportedCiphers if name not in GCM_CIPHERS)]
        super().connectionMade()

    def negotiated(self, ciphers: SSHCiphers) -> SSHCiphers | None:
        return upgrade(ciphers) if self.framed else ciphers


class GCMClientTransport(GCMTransport, SSHClientTransport):
    """Conch's client transport, offering AES-GCM first and framing its packets."""
