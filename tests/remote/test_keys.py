"""Loading private keys from settings text, and naming keys safely."""

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from twisted.trial.unittest import SynchronousTestCase

from dssr.remote.keys import (
    PrivateKeyError,
    decode_key_text,
    describe,
    fingerprint,
    load_private_key,
)

_MAKERS = {
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ecdsa": lambda: ec.generate_private_key(ec.SECP384R1()),
}
_KEYS = {kind: make() for kind, make in _MAKERS.items()}


def encoded(private, fmt, passphrase=None):
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return private.private_bytes(serialization.Encoding.PEM, fmt, encryption)


OPENSSH = serialization.PrivateFormat.OpenSSH
PKCS8 = serialization.PrivateFormat.PKCS8
LEGACY = serialization.PrivateFormat.TraditionalOpenSSL


class LoadTests(SynchronousTestCase):
    def test_every_supported_type_and_format(self):
        for kind, private in _KEYS.items():
            for fmt in (OPENSSH, PKCS8, LEGACY):
                if kind == "ed25519" and fmt is LEGACY:
                    continue  # no such format for ed25519
                key = load_private_key(encoded(private, fmt))
                self.assertFalse(key.isPublic())
                self.assertEqual(key.type(), {"ed25519": "Ed25519", "rsa": "RSA",
                                              "ecdsa": "EC"}[kind])

    def test_base64_of_the_text_via_settings(self):
        text = encoded(_KEYS["ed25519"], OPENSSH)
        key = load_private_key(decode_key_text(base64.b64encode(text).decode()))
        self.assertEqual(key, load_private_key(text))

    def test_passphrase(self):
        for fmt in (OPENSSH, PKCS8):
            text = encoded(_KEYS["ed25519"], fmt, b"s3cret")
            self.assertEqual(load_private_key(text, "s3cret").type(), "Ed25519")

    def test_errors_are_clear_and_never_echo_the_key(self):
        text = encoded(_KEYS["rsa"], OPENSSH, b"s3cret")
        cases = [
            (text, None, "encrypted and no passphrase"),
            (text, "wrong", "wrong passphrase"),
            (encoded(_KEYS["rsa"], OPENSSH), "extra", "not encrypted"),
            (b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
             None, "cannot be read"),
            (b"", None, "empty"),
        ]
        for data, passphrase, expected in cases:
            error = self.assertRaises(PrivateKeyError, load_private_key, data, passphrase)
            self.assertIn(expected, str(error))
            body = data.splitlines()[1:-1]
            self.assertFalse(any(line and line.decode() in str(error) for line in body))
            # Tracebacks do not show the library's own error either.
            self.assertTrue(error.__context__ is None or error.__suppress_context__)

    def test_dsa_is_refused(self):
        private = dsa.generate_private_key(key_size=2048)
        error = self.assertRaises(PrivateKeyError, load_private_key, encoded(private, PKCS8))
        self.assertIn("not supported", str(error))


class FingerprintTests(SynchronousTestCase):
    def test_matches_openssh_format(self):
        key = load_private_key(encoded(_KEYS["ed25519"], OPENSSH))
        public = _KEYS["ed25519"].public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        blob = base64.b64decode(public.split()[1])
        expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        self.assertEqual(fingerprint(key), expected)
        self.assertEqual(describe(key), "ssh-ed25519 " + expected)


class KeyTextTests(SynchronousTestCase):
    PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"

    def test_raw_and_base64(self):
        self.assertEqual(decode_key_text(self.PEM), self.PEM.encode() + b"\n")
        encoded = base64.b64encode(self.PEM.encode()).decode()
        self.assertEqual(decode_key_text(encoded), self.PEM.encode())

    def test_garbage(self):
        self.assertRaises(ValueError, decode_key_text, "not a key!")
