"""known_hosts matching the way OpenSSH does it, and the strict / accept-new policies."""

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from twisted.conch.ssh.keys import Key
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.hostkeys import (
    KnownHosts,
    host_token,
    known_hosts_line,
    matches_host,
    parse_known_hosts,
    preferred_algorithms,
)
from dssr.remote.interfaces import HostKeyError
from dssr.remote.keys import fingerprint

SERVER = Key(ed25519.Ed25519PrivateKey.generate()).public()
OTHER = Key(ed25519.Ed25519PrivateKey.generate()).public()
ECDSA = Key(ec.generate_private_key(ec.SECP256R1())).public()


def hashed(token: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, token.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def line(patterns: str, key: Key, marker: str = "") -> bytes:
    prefix = marker + " " if marker else ""
    return f"{prefix}{patterns} {key.toString('openssh').decode()} comment\n".encode()


class MatchTests(SynchronousTestCase):
    def test_token(self):
        self.assertEqual(host_token("login", 22), "login")
        self.assertEqual(host_token("login", 2222), "[login]:2222")

    def test_plain_and_bracketed_ports(self):
        self.assertTrue(matches_host("login,10.0.0.1", "login"))
        self.assertTrue(matches_host("[login]:2222", "[login]:2222"))
        self.assertFalse(matches_host("login", "[login]:2222"))
        self.assertFalse(matches_host("[login]:2222", "[login]:2223"))
        self.assertFalse(matches_host("[login]:2222", "login"))

    def test_globs_case_and_negation(self):
        self.assertTrue(matches_host("*.cluster.org", "LOGIN.cluster.org"))
        self.assertTrue(matches_host("login?", "login2"))
        self.assertFalse(matches_host("*.cluster.org,!bad.cluster.org", "bad.cluster.org"))
        self.assertTrue(matches_host("[*.cluster.org]:2222", "[a.cluster.org]:2222"))
        self.assertFalse(matches_host("[*.cluster.org]:2222", "a.cluster.org"))

    def test_hashed(self):
        self.assertTrue(matches_host(hashed("[login]:2222"), "[login]:2222"))
        self.assertFalse(matches_host(hashed("[login]:2222"), "login"))
        self.assertFalse(matches_host("|1|bad|entry", "login"))

    def test_parse_skips_comments_and_junk(self):
        text = (b"# comment\n\n" + line("a", SERVER) + b"b ssh-ed25519 not-base64\n"
                + b"short line\n" + line("c", OTHER, "@revoked") + b"d ssh-rsa "
                + base64.b64encode(SERVER.blob()) + b"\n")
        entries = parse_known_hosts(text)
        self.assertEqual([(e.patterns, e.marker, e.line) for e in entries],
                         [("a", None, 3), ("c", "@revoked", 6)])

    def test_preferred_algorithms_put_known_types_first(self):
        supported = [b"ecdsa-sha2-nistp256", b"rsa-sha2-512", b"ssh-ed25519"]
        self.assertEqual(preferred_algorithms([SERVER], supported),
                         [b"ssh-ed25519", b"ecdsa-sha2-nistp256", b"rsa-sha2-512"])
        self.assertEqual(preferred_algorithms([], supported), supported)
        self.assertEqual(preferred_algorithms([ECDSA, SERVER], supported),
                         [b"ecdsa-sha2-nistp256", b"ssh-ed25519", b"rsa-sha2-512"])


class PolicyTests(SynchronousTestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp(), "known_hosts")
        os.makedirs(os.path.dirname(self.path))

    def write(self, data: bytes) -> None:
        with open(self.path, "wb") as known:
            known.write(data)

    def read(self) -> bytes:
        with open(self.path, "rb") as known:
            return known.read()

    def test_known_key_is_accepted(self):
        self.write(line("[login]:2222", OTHER) + line(hashed("[login]:2222"), SERVER))
        KnownHosts(self.path).check("login", 2222, SERVER)

    def test_unknown_host_is_refused_with_host_and_fingerprint(self):
        self.write(line("[login]:2223", SERVER))
        error = self.assertRaises(HostKeyError, KnownHosts(self.path).check,
                                  "login", 2222, SERVER)
        for part in ("[login]:2222", "unknown", fingerprint(SERVER), self.path):
            self.assertIn(part, str(error))

    def test_missing_file_is_an_unknown_host(self):
        error = self.assertRaises(HostKeyError, KnownHosts(self.path).check, "login", 22, SERVER)
        self.assertIn("unknown", str(error))

    def test_changed_key_is_refused_naming_both(self):
        self.write(line("login", OTHER))
        error = self.assertRaises(HostKeyError, KnownHosts(self.path, accept_new=True).check,
                                  "login", 22, SERVER)
        for part in ("CHANGED", fingerprint(SERVER), fingerprint(OTHER), "line 1"):
            self.assertIn(part, str(error))
        self.assertEqual(self.read(), line("login", OTHER))

    def test_revoked_key_is_refused(self):
        self.write(line("login", SERVER) + line("*", SERVER, "@revoked"))
        error = self.assertRaises(HostKeyError, KnownHosts(self.path).check, "login", 22, SERVER)
        self.assertIn("@revoked", str(error))

    def test_accept_new_writes_the_standard_line_then_trusts_it(self):
        self.write(b"other ssh-ed25519 " + base64.b64encode(OTHER.blob()))  # no final newline
        KnownHosts(self.path, accept_new=True).check("login", 2222, SERVER)
        expected = b"[login]:2222 ssh-ed25519 " + base64.b64encode(SERVER.blob()) + b"\n"
        self.assertEqual(self.read().splitlines(keepends=True)[1], expected)
        self.assertEqual(known_hosts_line("login", 2222, SERVER), expected)
        KnownHosts(self.path).check("login", 2222, SERVER)
        self.assertEqual(KnownHosts(self.path).keys_for("login", 2222), [SERVER])

    def test_accept_new_creates_the_file(self):
        path = os.path.join(self.mktemp(), "ssh", "known_hosts")
        KnownHosts(path, accept_new=True).check("login", 22, SERVER)
        with open(path, "rb") as known:
            self.assertEqual(known.read(), known_hosts_line("login", 22, SERVER))
