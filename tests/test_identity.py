"""ID mapping: parsing the mapping file and picking a user from a bearer token."""

import base64
import json
import os
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from dssr import compose
from dssr.errors import BadRequest, Forbidden
from dssr.identity import (
    IdentityMap,
    MappingError,
    email_key,
    parse_mapping,
    unverified_tokens_refusal,
)
from dssr.settings import SettingsError, load

KEY = base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n").decode()
MAPPING = f"""
users_id_mapping:
  - user: alice
    jarvice_user: alice
    mail: Alice@Example.org
    mapped_user: dssr-alice
    ssh_private_key_b64: {KEY}
  - user: bob
    jarvice_user: bob
    mail: bob@example.org
    mapped_user: dssr-bob
    ssh_private_key_b64: {KEY}
"""


class ParseTests(SynchronousTestCase):
    def test_parse(self):
        users = parse_mapping(MAPPING)
        self.assertEqual(sorted(users), ["alice@example.org", "bob@example.org"])
        self.assertEqual(users["alice@example.org"].cluster_user, "dssr-alice")
        self.assertTrue(users["bob@example.org"].private_key.startswith(b"-----BEGIN"))
        self.assertNotIn("BEGIN", repr(users["bob@example.org"]))

    def test_errors_name_the_entry_and_hide_the_key(self):
        for text, word in (("users_id_mapping: 3", "users_id_mapping list"),
                           ("users_id_mapping: [{mail: a@b}]", "[0] lacks mapped_user"),
                           ("users_id_mapping: [{mail: a@b, mapped_user: u, "
                            "ssh_private_key_b64: 'not base64!'}]", "not base64"),
                           ("users_id_mapping: [", "not valid YAML"),
                           (MAPPING.replace("bob@", "alice@"), "[1]: mail alice@example.org "
                                                               "is mapped twice"),
                           (MAPPING.replace("bob@", "\u212aob@"), "[1]: mail is not in "
                                                                  "Unicode NFC")):
            error = self.assertRaises(MappingError, parse_mapping, text)
            self.assertIn(word, str(error))
            self.assertNotIn("not base64!", str(error))


    def test_yaml_errors_show_no_key(self):
        text = ("users_id_mapping:\n  - mail: a@b\n    ssh_private_key_b64: LS0tLS1CRUdJTi: x\n")
        error = self.assertRaises(MappingError, parse_mapping, text, "m.yaml")
        self.assertEqual(str(error), "m.yaml is not valid YAML at line 3, column 40: mapping "
                                     "values are not allowed here")


class BearerTests(SynchronousTestCase):
    def setUp(self):
        self.private = ed25519.Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.users = parse_mapping(MAPPING)

    def token(self, key=None, exp=3600, **claims):
        """A signed token; ``exp`` seconds from now (None: no exp claim)."""
        if exp is not None:
            claims["exp"] = int(time.time()) + exp
        return jwt.encode(claims, key or self.private, algorithm="EdDSA")

    def refused(self, identities, token, words):
        error = self.assertRaises(BadRequest, identities.for_bearer, token)
        self.assertEqual(error.field, "bearer")
        self.assertIn(words, error.message)

    def test_unverified_decode(self):
        identities = IdentityMap(self.users)
        self.assertEqual(identities.for_bearer(self.token(email="alice@example.org")).cluster_user,
                         "dssr-alice")
        self.assertEqual(identities.by_cluster_user("dssr-bob").email, "bob@example.org")
        self.assertIsNone(identities.by_cluster_user("root"))

    def test_verified_signature(self):
        identities = IdentityMap(self.users, self.public)
        self.assertEqual(identities.for_bearer(self.token(email="BOB@example.org")).cluster_user,
                         "dssr-bob")
        forged = self.token(ed25519.Ed25519PrivateKey.generate(), email="bob@example.org")
        error = self.assertRaises(BadRequest, identities.for_bearer, forged)
        self.assertEqual(error.field, "bearer")

    def test_verified_with_a_jwks_set(self):
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "EdDSA"}]}).encode()
        identities = IdentityMap(self.users, jwks)
        expiry = int(time.time()) + 60
        signed = jwt.encode({"email": "bob@example.org", "exp": expiry}, self.private,
                            algorithm="EdDSA", headers={"kid": "k1"})
        self.assertEqual(identities.for_bearer(signed).cluster_user, "dssr-bob")
        other = jwt.encode({"email": "bob@example.org", "exp": expiry}, self.private,
                           algorithm="EdDSA", headers={"kid": "k2"})
        self.assertRaises(BadRequest, identities.for_bearer, other)
        forged = jwt.encode({"email": "bob@example.org", "exp": expiry},
                            ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA",
                            headers={"kid": "k1"})
        self.assertRaises(BadRequest, identities.for_bearer, forged)

    def test_bad_jwks_is_a_mapping_error(self):
        self.assertRaises(MappingError, IdentityMap, self.users, b'{"keys": 3}')

    def test_unknown_email_is_forbidden(self):
        error = self.assertRaises(Forbidden, IdentityMap(self.users).for_bearer,
                                  self.token(email="mallory@example.org"))
        self.assertIn("mallory@example.org", error.message)

    def test_garbage_and_missing_claim(self):
        identities = IdentityMap(self.users)
        self.assertRaises(BadRequest, identities.for_bearer, "not-a-jwt")
        self.assertRaises(BadRequest, identities.for_bearer, self.token(sub="x"))

    def test_alg_none_refused_when_verifying(self):
        unsigned = jwt.encode({"email": "bob@example.org", "exp": int(time.time()) + 60},
                              None, algorithm="none")
        self.refused(IdentityMap(self.users, self.public), unsigned, "alg")

    def test_verified_tokens_need_an_unexpired_exp(self):
        identities = IdentityMap(self.users, self.public)
        self.refused(identities, self.token(email="bob@example.org", exp=None), '"exp"')
        self.refused(identities, self.token(email="bob@example.org", exp=-60), "expired")

    def test_audience_and_issuer_when_configured(self):
        identities = IdentityMap(self.users, self.public, audience="dssr-site",
                                 issuer="https://idp.example.org")
        good = {"email": "bob@example.org", "aud": "dssr-site", "iss": "https://idp.example.org"}
        self.assertEqual(identities.for_bearer(self.token(**good)).cluster_user, "dssr-bob")
        self.assertEqual(identities.for_bearer(self.token(
            **{**good, "aud": ["other", "dssr-site"]})).cluster_user, "dssr-bob")
        self.refused(identities, self.token(**{**good, "aud": "other-site"}), "Audience")
        self.refused(identities, self.token(**{**good, "iss": "https://evil.example"}), "issuer")
        for missing in ("aud", "iss"):
            claims = {k: v for k, v in good.items() if k != missing}
            self.refused(identities, self.token(**claims), f'"{missing}"')

    def test_audience_not_checked_unless_configured(self):
        identities = IdentityMap(self.users, self.public)
        token = self.token(email="bob@example.org", aud="anything", iss="anyone")
        self.assertEqual(identities.for_bearer(token).cluster_user, "dssr-bob")

    def test_kelvin_sign_never_matches(self):
        mapping = MAPPING.replace("Alice@Example.org", "kirby@example.org")
        for identities in (IdentityMap(parse_mapping(mapping)),
                           IdentityMap(parse_mapping(mapping), self.public)):
            self.assertEqual(identities.for_bearer(self.token(
                email="KIRBY@example.org")).cluster_user, "dssr-alice")
            error = self.assertRaises(Forbidden, identities.for_bearer,
                                      self.token(email="\u212airby@example.org"))
            self.assertEqual(error.field, "bearer")

    def test_unverified_logged_by_how_much_is_trusted(self):
        for trusted, level in ((True, LogLevel.warn), (False, LogLevel.critical)):
            with capturedLogs() as events:
                IdentityMap(self.users, trusted_upstream=trusted)
            self.assertEqual([e["log_level"] for e in events], [level])
        with capturedLogs() as events:
            IdentityMap(self.users, self.public)
        self.assertEqual(events, [])


class EmailKeyTests(SynchronousTestCase):
    def test_ascii_letters_only_are_lowered(self):
        self.assertEqual(email_key("Kirby@Example.ORG"), "kirby@example.org")
        self.assertEqual(email_key("\u00c9lodie@example.org"), "\u00c9lodie@example.org")
        self.assertEqual(email_key("stra\u00dfe@example.org"), "stra\u00dfe@example.org")
        self.assertEqual(email_key("I@example.org"), "i@example.org")
        self.assertNotEqual(email_key("\u0130@example.org"), email_key("i@example.org"))

    def test_text_not_in_nfc_has_no_key(self):
        self.assertIsNone(email_key("\u212airby@example.org"))  # Kelvin sign
        self.assertIsNone(email_key("e\u0301lodie@example.org"))  # decomposed
        self.assertEqual(email_key("\u00e9lodie@example.org"), "\u00e9lodie@example.org")


class UnverifiedTokensPolicyTests(SynchronousTestCase):
    def refusal(self, **values):
        settings = load().replace(**values)
        return unverified_tokens_refusal(settings, settings.id_mapping_file)

    def test_mapping_needs_a_key_an_authenticated_upstream_or_the_opt_out(self):
        refusal = self.refusal(id_mapping_file="m.yaml")
        self.assertNotIn("\n", refusal)
        for name in ("DSSR_JWT_PUBLIC_KEY_FILE", "JARVICE_SCHED_SERVER_KEY",
                     "DSSR_TRUST_UNVERIFIED_TOKENS=true (trust_unverified_tokens)"):
            self.assertIn(name, refusal)
        for allowed in ({"jwt_public_key_file": "k.pem"}, {"server_key": "u:p"},
                        {"trust_unverified_tokens": "true"}, {"id_mapping_file": ""}):
            self.assertIsNone(self.refusal(**{"id_mapping_file": "m.yaml", **allowed}), allowed)


class FromSettingsTests(SynchronousTestCase):
    """The settings wire the policy, the key, the audience and the issuer in."""

    def write(self, data: bytes) -> str:
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o600)
        return path

    def test_a_mapping_file_others_can_read_is_refused(self):
        path = self.write(MAPPING.encode())
        os.chmod(path, 0o640)
        error = self.assertRaises(SettingsError, compose.identities,
                                  load().replace(id_mapping_file=path, server_key="u:p"))
        self.assertEqual(str(error), f"id_mapping_file {path} is readable by group or others "
                                     f"(mode 0640) and holds secrets: run chmod 600 {path}")

    def test_wiring(self):
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        base = load().replace(id_mapping_file=self.write(MAPPING.encode()))
        error = self.assertRaises(SettingsError, compose.identities, base)
        self.assertIn("trust_unverified_tokens", str(error))
        unsigned = jwt.encode({"email": "bob@example.org"}, None, algorithm="none")
        for trusted in (base.replace(server_key="u:p"),
                        base.replace(trust_unverified_tokens="true")):
            user = compose.identities(trusted).for_bearer(unsigned)
            self.assertEqual(user.cluster_user, "dssr-bob")
        verified = compose.identities(base.replace(jwt_public_key_file=self.write(public),
                                                 jwt_audience="site", jwt_issuer="idp"))
        claims = {"email": "bob@example.org", "exp": int(time.time()) + 60, "aud": "site"}
        for iss, works in (("idp", True), ("other", False)):
            token = jwt.encode({**claims, "iss": iss}, private, algorithm="EdDSA")
            if works:
                self.assertEqual(verified.for_bearer(token).cluster_user, "dssr-bob")
            else:
                self.assertRaises(BadRequest, verified.for_bearer, token)
        self.assertRaises(BadRequest, verified.for_bearer, unsigned)
