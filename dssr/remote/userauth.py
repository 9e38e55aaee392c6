"""Logging in to the login node: public key authentication with one key, never a prompt."""

from twisted.conch.ssh.common import NS
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.service import SSHService
from twisted.conch.ssh.transport import SSHTransportBase
from twisted.conch.ssh.userauth import MSG_USERAUTH_REQUEST, SSHUserAuthClient
from twisted.internet.defer import Deferred, succeed

from dssr.remote.quiet import CONCH_LOG
from dssr.twisted_private.ssh import logs_to


@logs_to(CONCH_LOG)
class PublicKeyAuth(SSHUserAuthClient):
    """Public key authentication with ``key`` only, then ``instance`` (the connection);
    RSA signs with SHA-2 when allowed.

    (Conch's stock client signs RSA with SHA-1, which OpenSSH 8.8+ refuses.)
    """

    preferredOrder = [b"publickey"]
    transport: SSHTransportBase  # set by Conch before the service starts

    def __init__(self, user: str, key: Key, instance: SSHService):
        super().__init__(user.encode("utf-8"), instance)
        self._key = key
        self._tried = False

    def tryAuth(self, kind: bytes) -> Deferred[bool] | None:
        # Conch takes any result through maybeDeferred: succeed() changes nothing.
        return succeed(self._publickey()) if kind == b"publickey" else None

    def _publickey(self) -> bool:
        if self._tried:
            return False
        self._tried = True
        algorithm = self._algorithm()
        blob = self._key.blob()
        assert self.transport.sessionID is not None  # set by the first key exchange
        signed = (
            NS(self.transport.sessionID) + bytes((MSG_USERAUTH_REQUEST,)) + NS(self.user)
            + NS(self.instance.name) + NS(b"publickey") + b"\x01" + NS(algorithm) + NS(blob)
        )
        signature = self._key.sign(signed, signatureType=algorithm)
        self.askForAuth(b"publickey", b"\x01" + NS(algorithm) + NS(blob) + NS(signature))
        return True

    def _algorithm(self) -> bytes:
        if self._key.type() != "RSA":
            own: bytes = self._key.sshType()
            return own
        advertised = self.transport.peerExtensions.get(b"server-sig-algs", b"").split(b",")
        for algorithm in (b"rsa-sha2-512", b"rsa-sha2-256"):
            if algorithm in advertised:
                return algorithm
        return b"ssh-rsa"
