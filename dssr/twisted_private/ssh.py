"""Conch's private and undocumented transport members, for AEAD framing and quiet logs.

Relied on (checked on the releases in ``dssr.twisted_private.CHECKED``):

``SSHTransportBase._keySetup(sharedSecret, exchangeHash)``
    Called by both sides' key exchange once the algorithms are chosen and before the
    keys are derived into ``nextEncryptions``: the one moment DSSR can swap in its
    own cipher state. If a release renames it, the override stops running and an AEAD
    cipher reaches Conch's ``SSHCiphers`` (``KeyError``): ``missing_hooks`` checks the
    names, and the handshake tests (tests/remote/test_handshake.py) the calls.
``_keyExchangeState``, ``_KEY_EXCHANGE_NONE``, ``_allowedKeyExchangeMessageType``,
``_blockedByKeyExchange``
    What ``sendPacket`` does before it frames: hold back non-kex messages during a
    key exchange (RFC 4253 7.1); ``_newKeys`` sends them again once keys change.
``nextEncryptions``, ``currentEncryptions``, ``buf``, ``transport``,
``incomingPacketSequence``, ``outgoingPacketSequence`` (undocumented)
    The negotiated and in-use ``SSHCiphers``, the unread bytes ``dataReceived``
    leaves for ``getPacket``, and the packet counters.
``SSHCiphers.setKeys``, ``encBlockSize``, ``decBlockSize``, ``verifyDigestSize``
(undocumented)
    How keys arrive; Conch reads a non-zero ``encBlockSize`` as "keys are set"
    (``ssh_NEWKEYS``).
``_log`` (a class attribute of Conch's transports, services and channels)
    The Logger each logs through: ``logs_to`` replaces it.
"""

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from twisted.conch.ssh.transport import (
    DISCONNECT_KEY_EXCHANGE_FAILED,
    DISCONNECT_MAC_ERROR,
    DISCONNECT_PROTOCOL_ERROR,
    SSHCiphers,
    SSHTransportBase,
)
from twisted.logger import Logger

_warnings = Logger(namespace="dssr.remote")
T = TypeVar("T", bound=type)

# The private members AEAD framing needs, each a class attribute of SSHTransportBase.
HOOKS = ("_keySetup", "_keyExchangeState", "_KEY_EXCHANGE_NONE",
         "_allowedKeyExchangeMessageType", "_blockedByKeyExchange")


class BadLength(ValueError):
    """A packet length the cipher cannot have produced."""


class Unauthentic(ValueError):
    """A packet that was not sealed by the peer's key, in order."""


def logs_to(logger: Logger) -> Callable[[T], T]:
    """A class decorator: the Conch class logs through ``logger`` instead of its own."""

    def decorate(cls: T) -> T:
        cls._log = logger  # type: ignore[attr-defined]
        return cls

    return decorate


def missing_hooks() -> list[str]:
    """The members in ``HOOKS`` this Twisted's ``SSHTransportBase`` lacks."""
    return [name for name in HOOKS if not hasattr(SSHTransportBase, name)]


@cache
def framing_works() -> bool:
    """Whether AEAD framing can plug into this Conch; warns once when it cannot."""
    missing = missing_hooks()
    if missing:
        _warnings.warn("SSH: this Twisted's Conch lacks {missing}: AES-GCM is off, Conch's "
                       "own ciphers are used (slower)", missing=", ".join(missing))
    return not missing


class AEADCiphers(SSHCiphers):
    """Cipher state for a key exchange where both directions chose an AEAD cipher.

    Subclasses implement ``keys``, ``seal``, ``packet_size`` and ``open``.
    """

    block_size = 16
    tag_size = 16

    def setKeys(self, outIV: bytes, outKey: bytes, inIV: bytes, inKey: bytes,
                outInteg: bytes, inInteg: bytes) -> None:
        self.keys(outIV, outKey, inIV, inKey)
        self.encBlockSize = self.decBlockSize = self.block_size  # "keys are set"
        self.verifyDigestSize = self.tag_size

    def keys(self, out_iv: bytes, out_key: bytes, in_iv: bytes, in_key: bytes) -> None:
        """Take the keys and IVs the key exchange derived, for each direction."""
        raise NotImplementedError

    def seal(self, payload: bytes) -> bytes:
        """The next outgoing packet carrying ``payload``, as it goes on the wire."""
        raise NotImplementedError

    def packet_size(self, head: bytes) -> int:
        """The wire size of the incoming packet whose first 4 bytes are ``head``;
        ``BadLength`` if no packet has it."""
        raise NotImplementedError

    def open(self, packet: memoryview) -> bytes:
        """The payload of the next incoming ``packet``; ``Unauthentic`` if forged."""
        raise NotImplementedError


class AEADTransport(SSHTransportBase):
    """Conch's transport framing packets with ``AEADCiphers`` when ``negotiated`` picks them.

    Mix in before ``SSHClientTransport`` or ``SSHServerTransport``.
    """

    def negotiated(self, ciphers: SSHCiphers) -> SSHCiphers | None:
        """The cipher state to use for what the key exchange chose (``ciphers``); None
        refuses the key exchange."""
        return ciphers

    def _keySetup(self, sharedSecret: bytes, exchangeHash: bytes) -> None:
        ciphers = self.negotiated(self.nextEncryptions)
        if ciphers is None:
            self.sendDisconnect(DISCONNECT_KEY_EXCHANGE_FAILED, b"no usable cipher state")
            return
        self.nextEncryptions = ciphers
        super()._keySetup(sharedSecret, exchangeHash)

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        ciphers = self.currentEncryptions
        if not isinstance(ciphers, AEADCiphers):
            super().sendPacket(messageType, payload)
        elif (self._keyExchangeState != self._KEY_EXCHANGE_NONE
                and not self._allowedKeyExchangeMessageType(messageType)):
            self._blockedByKeyExchange.append((messageType, payload))
        else:
            transport: Any = self.transport  # an ITransport: zope, which mypy cannot read
            transport.write(ciphers.seal(bytes((messageType,)) + payload))
            self.outgoingPacketSequence += 1

    def getPacket(self) -> bytes | None:
        ciphers = self.currentEncryptions
        if not isinstance(ciphers, AEADCiphers):
            packet: bytes | None = super().getPacket()
            return packet
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
        except Unauthentic:
            self.sendDisconnect(DISCONNECT_MAC_ERROR, b"bad MAC")
            return None
        self.buf = self.buf[size:]
        self.incomingPacketSequence += 1
        return payload
