"""slurmrestd tokens: minted with the cluster's key, static, or from scontrol; renewed."""

import jwt
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import Unavailable
from dssr.remote.logged import LoggedRemote
from dssr.slurm.rest.tokens import (
    MintedTokens,
    ScontrolTokens,
    StaticToken,
    parse_scontrol_token,
)
from tests.slurm.fakes import FakeRemote, exited, ok

KEY = bytes(range(32))


class TokenTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def token(self, tokens, user):
        return self.successResultOf(ensureDeferred(tokens.token(user)))

    def test_minted_tokens_carry_the_user_and_expire(self):
        tokens = MintedTokens(KEY, self.clock, 600)
        claims = jwt.decode(self.token(tokens, "kirby"), KEY, algorithms=["HS256"],
                            options={"verify_exp": False})
        self.assertEqual(claims, {"sun": "kirby", "iat": 1_700_000_000, "exp": 1_700_000_600})

    def test_a_token_is_reused_then_renewed_with_a_third_left(self):
        tokens = MintedTokens(KEY, self.clock, 600)
        first = self.token(tokens, "kirby")
        self.clock.advance(399)
        self.assertEqual(self.token(tokens, "kirby"), first)
        self.assertNotEqual(self.token(tokens, "bob"), first)
        self.clock.advance(2)
        renewed = self.token(tokens, "kirby")
        self.assertNotEqual(renewed, first)
        tokens.forget("kirby")
        self.clock.advance(1)
        self.assertNotEqual(self.token(tokens, "kirby"), renewed)

    def test_a_static_token_acts_for_everyone(self):
        tokens = StaticToken("sa-token")
        self.assertEqual({self.token(tokens, user) for user in ("a", "b")}, {"sa-token"})

    def test_scontrol_tokens_are_asked_as_each_user(self):
        remote = FakeRemote(scontrol_token=[ok(b"SLURM_JWT=eyJ.a.b\n"), ok(b"SLURM_JWT=eyJ.c.d\n")])
        tokens = ScontrolTokens(LoggedRemote(remote, self.clock), self.clock, 900, "dssr-svc")
        self.assertEqual(self.token(tokens, "dssr-svc"), "eyJ.a.b")
        self.assertEqual(self.token(tokens, "kirby"), "eyJ.c.d")
        self.assertEqual([(call.argv, call.user) for call in remote.calls], [
            (("scontrol", "token", "lifespan=900"), None),
            (("scontrol", "token", "lifespan=900"), "kirby")])

    def test_scontrol_refusing_is_unavailable_without_a_token(self):
        remote = FakeRemote(scontrol_token=[exited(1, b"scontrol: error: auth/jwt not set")])
        tokens = ScontrolTokens(LoggedRemote(remote, self.clock), self.clock, 900, "svc")
        error = self.failureResultOf(ensureDeferred(tokens.token("svc")), Unavailable).value
        self.assertIn("auth/jwt", error.message)
        self.assertRaises(ValueError, parse_scontrol_token, "nothing here")
