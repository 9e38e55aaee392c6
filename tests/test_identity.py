"""ID mapping: parsing the mapping file and picking a user from a bearer token."""

import base64
import json

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest, Forbidden
from dssr.identity import IdentityMap, MappingError, parse_mapping

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
                           ("users_id_mapping: [", "not valid YAML")):
            error = self.assertRaises(MappingError, parse_mapping, text)
            self.assertIn(word, str(error))
            self.assertNotIn("not base64!", str(error))


class BearerTests(SynchronousTestCase):
    def setUp(self):
        self.private = ed25519.Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.users = parse_mapping(MAPPING)

    def token(self, key=None, **claims):
        return jwt.encode(claims, key or self.private, algorithm="EdDSA")

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
        signed = jwt.encode({"email": "bob@example.org"}, self.private, algorithm="EdDSA",
                            headers={"kid": "k1"})
        self.assertEqual(identities.for_bearer(signed).cluster_user, "dssr-bob")
        other = jwt.encode({"email": "bob@example.org"}, self.private, algorithm="EdDSA",
                           headers={"kid": "k2"})
        self.assertRaises(BadRequest, identities.for_bearer, other)
        forged = jwt.encode({"email": "bob@example.org"}, ed25519.Ed25519PrivateKey.generate(),
                            algorithm="EdDSA", headers={"kid": "k1"})
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
