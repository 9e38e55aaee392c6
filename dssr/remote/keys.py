"""Private keys for logging in, and the fingerprints used to name keys in messages.

Keys are parsed with ``cryptography`` so that every error message is ours: nothing
derived from the key text can leak into a log line or an exception.
"""

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
)
from twisted.conch.ssh.keys import Key

_SUPPORTED = (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)


class PrivateKeyError(ValueError):
    """A private key cannot be used; the message never contains key material."""


def decode_key_text(text: str) -> bytes:
    """A private key given raw (PEM/OpenSSH text) or as base64 of that text."""
    text = str(text).strip()
    if text.startswith("-----BEGIN"):
        return text.encode() + b"\n"
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is neither a PEM/OpenSSH key nor base64 of one") from None


def load_private_key(data: bytes, passphrase: str | bytes | None = None) -> Key:
    """Parse an OpenSSH or PEM private key (ed25519, RSA or ECDSA), decrypting it if needed."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    passphrase = passphrase or None
    if not data.strip():
        raise PrivateKeyError("the private key is empty")
    loader = load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else load_pem_private_key
    try:
        private = loader(data, password=passphrase)
    except TypeError:
        # cryptography's way of saying: encrypted but no passphrase, or the reverse.
        if passphrase is None:
            raise PrivateKeyError("the private key is encrypted and no passphrase is set") from None
        raise PrivateKeyError("a passphrase is set but the private key is not encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateKeyError(
            "the private key cannot be read (wrong passphrase, or not a PEM/OpenSSH private key)"
        ) from None
    if not isinstance(private, _SUPPORTED):
        raise PrivateKeyError(
            f"{type(private).__name__} keys are not supported: use ed25519, RSA or ECDSA"
        )
    return Key(private)


def fingerprint(key: Key) -> str:
    """The key's OpenSSH-style SHA256 fingerprint (``SHA256:...``), as ``ssh-keygen -l`` shows."""
    digest = hashlib.sha256(key.blob()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def describe(key: Key) -> str:
    """Key type and fingerprint, e.g. ``ssh-ed25519 SHA256:...``: safe to log."""
    return f"{key.sshType().decode('ascii')} {fingerprint(key)}"

