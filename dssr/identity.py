"""ID mapping: which cluster user runs a Jarvice user's jobs.

The mapping file (``users_id_mapping: [{user, jarvice_user, mail, mapped_user,
ssh_private_key_b64}]``) pairs a Jarvice user's e-mail with a cluster account and
that account's SSH key. The e-mail comes from the ``email`` claim of the JWT
``bearer`` upstream sends with each submit.

Whoever can present a token naming a mapped e-mail runs jobs as that account, so a
token is believed only when its signature is verified (``jwt_public_key_file``) or
it comes from an authenticated upstream (``server_key``); anything else needs the
explicit ``trust_unverified_tokens``.
"""

import base64
import binascii
import string
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import yaml
from twisted.logger import Logger

from dssr.errors import BadRequest, Forbidden
from dssr.files import yaml_problem

if TYPE_CHECKING:
    from dssr.settings import Settings

_log = Logger(namespace="dssr.identity")
SIGNED_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class MappingError(ValueError):
    """The mapping file cannot be used; the message says where (never a key)."""


@dataclass(frozen=True)
class MappedUser:
    """A cluster account that runs one Jarvice user's jobs."""

    email: str
    cluster_user: str
    private_key: bytes

    def __repr__(self) -> str:
        return f"MappedUser({self.email!r}, {self.cluster_user!r})"


def email_key(address: str) -> str | None:
    """What an e-mail address is matched by: A-Z lower-cased, nothing else folded.

    Only text already in Unicode NFC has a key (None otherwise, so it matches
    nothing): normalising would turn look-alikes into letters (the Kelvin sign
    U+212A becomes K), and full case folding would too, letting one address stand
    for another.
    """
    if not unicodedata.is_normalized("NFC", address):
        return None
    return address.translate(_ASCII_LOWER)


def parse_mapping(text: str, source: str = "the ID mapping file") -> dict[str, MappedUser]:
    """``email_key`` of each ``mail`` → ``MappedUser`` from the YAML mapping text."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise MappingError(yaml_problem(error, source)) from None
    entries = data.get("users_id_mapping") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MappingError(f"{source} needs a users_id_mapping list")
    users = {}
    for index, entry in enumerate(entries):
        where = f"{source}, users_id_mapping[{index}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{where} is not a mapping")
        missing = [k for k in ("mail", "mapped_user", "ssh_private_key_b64")
                   if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise MappingError(f"{where} lacks {', '.join(missing)}")
        try:
            key = base64.b64decode(entry["ssh_private_key_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise MappingError(f"{where}: ssh_private_key_b64 is not base64") from None
        email = email_key(entry["mail"].strip())
        if email is None:
            raise MappingError(f"{where}: mail is not in Unicode NFC form")
        if email in users:
            raise MappingError(f"{where}: mail {email} is mapped twice")
        users[email] = MappedUser(email, entry["mapped_user"], key)
    return users


def unverified_tokens_refusal(settings: "Settings", mapping_file: str) -> str | None:
    """Why ID mapping (from ``mapping_file``, empty: none) must not start: tokens nobody
    verifies, from callers nobody knows."""
    if (not mapping_file or settings.jwt_public_key_file or settings.server_key
            or settings.trust_unverified_tokens):
        return None
    return (f"ID mapping ({mapping_file}) would believe bearer tokens unverified from "
            "unauthenticated callers (anyone could name any mapped user): set "
            "DSSR_JWT_PUBLIC_KEY_FILE (jwt_public_key_file) to verify them, or "
            "JARVICE_SCHED_SERVER_KEY (server_key) so only upstream is heard, or accept "
            "the risk with DSSR_TRUST_UNVERIFIED_TOKENS=true (trust_unverified_tokens)")


def verification_keys(text: bytes) -> list[jwt.PyJWK | bytes]:
    """The keys tokens may be signed with: one PEM public key, or a JWKS (JSON) set."""
    if text.lstrip().startswith(b"{"):
        try:
            return list(jwt.PyJWKSet.from_json(text.decode("utf-8")).keys)
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as error:
            raise MappingError(f"the JWKS file cannot be used: {error}") from None
    return [text]


class IdentityMap:
    """Finds the ``MappedUser`` for a submit's bearer token.

    With ``public_key`` (PEM text or a JWKS document) the token's signature is
    verified, it must carry ``exp``, and ``audience``/``issuer`` (when given) must
    match its ``aud``/``iss``. Without it tokens are only decoded, and that is
    logged once at startup: as a warning when upstream authenticates
    (``trusted_upstream``), as critical when anyone could send one.
    """

    def __init__(self, users: dict[str, MappedUser], public_key: bytes | None = None,
                 audience: str = "", issuer: str = "", trusted_upstream: bool = True):
        self.users = users
        self._keys = None if public_key is None else verification_keys(public_key)
        self._audience = audience or None
        self._issuer = issuer or None
        if public_key is None and users:
            if trusted_upstream:
                _log.warn("ID mapping: bearer tokens are NOT verified (no JWT public key "
                          "set); they are believed because upstream authenticates")
            else:
                _log.critical("ID mapping: bearer tokens are NOT verified and callers are "
                              "NOT authenticated (trust_unverified_tokens): anyone who "
                              "reaches DSSR can run jobs as any mapped user")

    def by_cluster_user(self, name: str) -> MappedUser | None:
        """The mapped user running as cluster account ``name``, if any."""
        return next((u for u in self.users.values() if u.cluster_user == name), None)

    def for_bearer(self, bearer: str) -> MappedUser:
        """The mapped user named by the token's ``email`` claim."""
        try:
            claims = self._claims(bearer)
        except (jwt.PyJWTError, ValueError) as error:
            raise BadRequest(f"bearer is not a valid token: {error}", field="bearer") from None
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise BadRequest("bearer token has no email claim", field="bearer")
        key = email_key(email)
        user = None if key is None else self.users.get(key)
        if user is None:
            raise Forbidden(f"no cluster user is mapped to {email}", field="bearer")
        return user

    def _claims(self, bearer: str) -> dict[str, Any]:
        """The token's claims, its signature checked when keys are configured."""
        if self._keys is None:
            return jwt.decode(bearer, options={"verify_signature": False})
        kid = jwt.get_unverified_header(bearer).get("kid")
        keys = [k for k in self._keys if not isinstance(k, jwt.PyJWK) or kid in (None, k.key_id)]
        if not keys:
            raise jwt.InvalidKeyError(f"no configured key has id {kid!r}")
        for key in keys[:-1]:
            try:
                return self._verified(bearer, key)
            except jwt.InvalidSignatureError:
                continue
        return self._verified(bearer, keys[-1])

    def _verified(self, bearer: str, key: jwt.PyJWK | bytes) -> dict[str, Any]:
        """The claims of a token signed by ``key``, unexpired, for this audience and issuer."""
        return jwt.decode(bearer, key, algorithms=SIGNED_ALGORITHMS, audience=self._audience,
                          issuer=self._issuer,
                          options={"require": ["exp"], "verify_aud": self._audience is not None})
