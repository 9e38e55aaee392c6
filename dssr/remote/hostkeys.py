"""Checking the login node's host key against an OpenSSH known_hosts file.

Twisted's ``KnownHostsFile`` does not match ``[host]:port`` entries and can prompt;
this module matches the way OpenSSH does (plain, wildcard, negated and hashed host
patterns, ``@revoked`` markers) and never asks anyone anything.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

from twisted.conch.ssh.keys import BadKeyError, Key
from twisted.logger import Logger

from dssr.remote.interfaces import HostKeyError
from dssr.remote.keys import describe

_log = Logger()

# Host key algorithms a server may sign with, by the key type named in known_hosts.
_ALGORITHMS = {
    b"ssh-rsa": (b"rsa-sha2-512", b"rsa-sha2-256", b"ssh-rsa"),
}


def host_token(host: str, port: int) -> str:
    """How known_hosts names ``host`` on ``port``: bare for 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class Entry:
    """One known_hosts line: its host patterns, key, optional marker and line number."""

    patterns: str
    key: Key
    marker: str | None
    line: int

    def names(self, token: str) -> bool:
        """Whether this entry applies to ``token`` (see ``host_token``)."""
        return matches_host(self.patterns, token)


def parse_known_hosts(text: bytes) -> list[Entry]:
    """The usable entries of a known_hosts file; comments and unreadable lines are skipped."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.decode("utf-8", "replace").split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3:
            continue
        try:
            key = Key.fromString(base64.b64decode(fields[2]))
        except (BadKeyError, binascii.Error, ValueError):
            continue
        if key.sshType().decode("ascii") != fields[1]:
            continue
        entries.append(Entry(fields[0], key, marker, number))
    return entries


def matches_host(patterns: str, token: str) -> bool:
    """OpenSSH host matching: hashed ``|1|salt|hash``, or comma-separated globs (``!`` negates)."""
    token = token.lower()
    if patterns.startswith("|1|"):
        return _matches_hashed(patterns, token)
    matched = False
    for pattern in patterns.lower().split(","):
        negated = pattern.startswith("!")
        if _glob(pattern.removeprefix("!")).fullmatch(token):
            if negated:
                return False
            matched = True
    return matched


def _matches_hashed(field: str, token: str) -> bool:
    parts = field.split("|")
    if len(parts) != 4:
        return False
    try:
        salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except binascii.Error:
        return False
    mine = hmac.new(salt, token.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(mine, digest)


def _glob(pattern: str) -> re.Pattern[str]:
    # Only * and ? are special: "[host]:port" is literal text, unlike in fnmatch.
    return re.compile("".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    ))


def known_hosts_line(host: str, port: int, key: Key) -> bytes:
    """The line ``ssh`` itself would add for ``key`` (unhashed)."""
    return b"%s %s %s\n" % (
        host_token(host, port).encode("utf-8"),
        key.sshType(),
        base64.b64encode(key.blob()),
    )


def preferred_algorithms(known: list[Key], supported: list[bytes]) -> list[bytes]:
    """``supported`` host key algorithms, those the file has keys for first (as OpenSSH does).

    Otherwise a server holding several host keys could present one we have no entry
    for and be refused as if its key had changed.
    """
    first = []
    for key in known:
        for algorithm in _ALGORITHMS.get(key.sshType(), (key.sshType(),)):
            if algorithm in supported and algorithm not in first:
                first.append(algorithm)
    return first + [algorithm for algorithm in supported if algorithm not in first]


class KnownHosts:
    """The known_hosts file at ``path``; with ``accept_new``, unknown hosts are added to it."""

    def __init__(self, path: str, accept_new: bool = False):
        self.path = os.path.expanduser(path)
        self.accept_new = accept_new

    def _entries(self, token: str) -> list[Entry]:
        try:
            with open(self.path, "rb") as known:
                text = known.read()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise HostKeyError(
                f"cannot read known_hosts file {self.path}: {error.strerror}"
            ) from None
        return [entry for entry in parse_known_hosts(text) if entry.names(token)]

    def keys_for(self, host: str, port: int) -> list[Key]:
        """The keys the file trusts for ``host`` on ``port``."""
        return [entry.key for entry in self._entries(host_token(host, port)) if not entry.marker]

    def check(self, host: str, port: int, key: Key) -> None:
        """Accept ``key`` as ``host``'s, or raise ``HostKeyError`` saying why not."""
        token = host_token(host, port)
        entries = self._entries(token)
        offered = describe(key)
        if any(entry.marker == "@revoked" and entry.key == key for entry in entries):
            raise HostKeyError(
                f"host key {offered} of {token} is marked @revoked in {self.path}; refusing"
            )
        trusted = [entry for entry in entries if entry.marker is None]
        if any(entry.key == key for entry in trusted):
            return
        if trusted:
            expected = ", ".join(f"{describe(e.key)} (line {e.line})" for e in trusted)
            raise HostKeyError(
                f"host key of {token} has CHANGED: it offered {offered}, but {self.path} "
                f"trusts {expected}. Refusing to connect; if the change is expected, "
                f"remove the old entry and add the new key."
            )
        if not self.accept_new:
            raise HostKeyError(
                f"host key of {token} is unknown: it offered {offered}, which is not in "
                f"{self.path}. Check the fingerprint and add the key (ssh-keyscan -p {port} "
                f"{host}), or set ssh_host_key_policy to accept-new."
            )
        self.trust(host, port, key)
        _log.warn("Trusted new host key {key} for {token} (accept-new), added to {path}",
                  key=offered, token=token, path=self.path)

    def trust(self, host: str, port: int, key: Key) -> None:
        """Trust ``key`` for ``host`` from now on (accept-new): append it to the file.

        A subclass may override it to decide without writing (``dssr check`` does).
        """
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            with open(self.path, "ab+") as known:
                start = b"" if _ends_line(known) else b"\n"
                known.write(start + known_hosts_line(host, port, key))
        except OSError as error:
            raise HostKeyError(
                f"cannot add the host key of {host_token(host, port)} to {self.path}: "
                f"{error.strerror}"
            ) from None


def _ends_line(file: BinaryIO) -> bool:
    """Whether ``file`` is empty or ends with a newline, so an appended line stands alone."""
    if file.seek(0, os.SEEK_END) == 0:
        return True
    file.seek(-1, os.SEEK_END)
    return file.read(1) == b"\n"
