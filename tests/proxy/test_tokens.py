"""Access tokens: only DSSR's key makes them, and each opens one job at one address."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.proxy.tokens import AccessTokens, derive_key


class AccessTokenTests(SynchronousTestCase):
    def setUp(self):
        self.tokens = AccessTokens(derive_key("upstream:secret"))

    def test_an_issued_token_opens_its_job_at_its_number(self):
        token = self.tokens.issue("123", 7)
        self.assertTrue(token.startswith("123."))
        self.assertEqual(self.tokens.verify(token, 7), "123")

    def test_a_token_opens_no_other_number_or_job(self):
        token = self.tokens.issue("123", 7)
        self.assertIsNone(self.tokens.verify(token, 8))
        mac = token.partition(".")[2]
        self.assertIsNone(self.tokens.verify(f"124.{mac}", 7))

    def test_another_key_makes_tokens_that_do_not_open(self):
        other = AccessTokens(derive_key("upstream:other")).issue("123", 7)
        self.assertIsNone(self.tokens.verify(other, 7))

    def test_replicas_with_one_server_key_agree(self):
        again = AccessTokens(derive_key("upstream:secret"))
        self.assertEqual(again.issue("123", 7), self.tokens.issue("123", 7))

    def test_without_a_server_key_the_key_is_random_but_one_per_process(self):
        self.assertEqual(derive_key(""), derive_key(""))
        self.assertEqual(len(derive_key("")), 32)
        self.assertNotEqual(derive_key(""), derive_key("upstream:secret"))

    def test_malformed_tokens_are_refused(self):
        token = self.tokens.issue("123", 7)
        for bad in (token + "\n", token + "=", " " + token, token[:-1], "123", "",
                    "x" + token, token.replace(".", ":"), "-1." + token.partition(".")[2]):
            self.assertIsNone(self.tokens.verify(bad, 7), repr(bad))
