"""Disclosure: ``/metrics`` needs the server key, ``/ready`` says what is wrong in
general terms only (the details, with accounts, addresses and paths, go to the log)."""

from tests.abuse.dssr import AbuseCase
from tests.abuse.test_answers import slurm_at_a_closed_port


class DisclosureTests(AbuseCase):
    connector = "slurm"

    def setUp(self):
        self.settings = slurm_at_a_closed_port("/var/tmp/known-hosts-dir-canary")
        super().setUp()

    def test_ready_reason_is_generic(self):
        # Was: /ready's reason carried the SSH error: account, login node, known_hosts.
        for _ in range(10):
            answer = self.dssr.request("GET", "/ready")
            self.assertEqual(answer.status, 503)
            self.assertEqual(answer.json(), {
                "status": "BAD",
                "reason": "the cluster is not reachable or its scheduler is not answering"})
        log = self.dssr.log()
        self.assertIn("not ready: SSH", log)  # the details: in the log
        self.assertLessEqual(log.count("not ready: "), 4)  # when they change, not per probe

    def test_metrics_need_the_server_key(self):
        # Was: /metrics was open by default and named mapped accounts.
        self.assertJSONError(self.dssr.request("GET", "/metrics"), 401)
        self.assertJSONError(self.dssr.request("POST", "/metrics"), 401)
        answer = self.dssr.request("GET", "/metrics", auth=True)
        self.assertEqual(answer.status, 200)
        self.assertIn(b"dssr_http_requests_total", answer.body)
