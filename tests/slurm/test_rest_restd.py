"""``RestSlurm`` over a scripted slurmrestd: requests made, answers read, failures loud."""

from twisted.internet.defer import ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import Unavailable
from dssr.jobfiles import CLAIM_SUBMIT
from dssr.remote.logged import LoggedRemote
from dssr.slurm.accounting import ACCOUNTING_RECHECK
from dssr.slurm.interfaces import BatchJob, Refused, Setup
from dssr.slurm.rest.client import Answer
from dssr.slurm.rest.restd import RestSlurm
from tests.slurm.fakes import FakeRemote, exited, ok
from tests.slurm.restd_fixtures import document, status

SETUP = Setup(CLAIM_SUBMIT, ("directory", "claim", "120", "20"))
JOB = BatchJob(name="jarvice_j-1", script="#!/bin/bash\ntrue\n", output=".jarvice/j-1.out",
               nodes=1, tasks=2)
OPENAPI = {"paths": {"/slurm/v0.0.38/jobs": {}, "/slurm/v0.0.41/jobs/": {}}}


class FakeClient:
    """Answers (or exceptions) by ``(method, path)``; records each request."""

    base = where = "http://login1:6820"

    def __init__(self, **routes):
        self.routes = dict(routes)
        self.calls = []
        self.last_failure = None

    def on(self, method, path, *answers):
        self.routes[(method, path)] = list(answers)

    def request(self, method, path, user, token, body=None):
        self.calls.append((method, path, user, token, body))
        answers = self.routes.get((method, path))
        if not answers:
            raise AssertionError(f"unscripted request {method} {path}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return fail(answer) if isinstance(answer, Exception) else succeed(answer)

    def metrics(self):
        return ()

    def close(self):
        return None


class FakeTokens:
    name = "minted"

    def __init__(self):
        self.forgotten = []

    def token(self, user):
        return succeed(f"token-of-{user}")

    def forget(self, user):
        self.forgotten.append(user)


def answer(status, doc):
    return Answer(status, doc)


def home(call):
    """The claim was ours: the submit's mark (its last argument), then the home."""
    return ok(f"{call.argv[-1]}/home/dssr-alice\n".encode())


class RestSlurmTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1764400600)
        self.client = FakeClient()
        self.client.on("GET", "/openapi/v3", answer(200, OPENAPI))
        self.remote = FakeRemote(submit=[home], rm=[ok()], record=[ok()])
        self.tokens = FakeTokens()
        self.slurm = RestSlurm(self.client, self.tokens, LoggedRemote(self.remote, self.clock),
                               self.clock, "dssr-svc")

    def run_(self, coroutine):
        return self.successResultOf(ensureDeferred(coroutine))

    def failure(self, coroutine, kind):
        return self.failureResultOf(ensureDeferred(coroutine), kind).value

    def test_submit_prepares_as_the_user_then_posts_as_the_user(self):
        self.client.on("POST", "/slurm/v0.0.41/job/submit",
                       answer(200, document("v0.0.41", "submit")))
        jobid = self.run_(self.slurm.submit(JOB, "dssr-alice", SETUP))
        self.assertEqual(jobid, "4242")
        prepare, record = self.remote.calls
        self.assertEqual((prepare.key, prepare.user), ("submit", "dssr-alice"))
        self.assertEqual((record.key, record.argv[-2:], record.user),
                         ("record", ("claim", "4242"), "dssr-alice"))
        _, _, user, token, body = self.client.calls[-1]
        self.assertEqual((user, token), ("dssr-alice", "token-of-dssr-alice"))
        self.assertEqual(body["job"]["current_working_directory"], "/home/dssr-alice")
        self.assertEqual(body["job"]["standard_output"], "/home/dssr-alice/.jarvice/j-1.out")

    def test_a_name_claimed_before_is_that_job_and_one_in_progress_is_busy(self):
        self.remote.answer("submit", ok(b"4242\n"))
        self.assertEqual(self.run_(self.slurm.submit(JOB, "dssr-alice", SETUP)), "4242")
        self.remote.answer("submit", ok(b"pending-0123456789abcdef:/home/dssr-alice\n"))
        self.assertIn("in progress", self.failure(self.slurm.submit(JOB, None, SETUP),
                                                  Unavailable).message)
        self.remote.answer("submit", exited(75, b"another submit of this job name"))
        self.failure(self.slurm.submit(JOB, None, SETUP), Unavailable)
        self.assertEqual(self.client.calls, [])

    def test_a_refused_submit_is_refused_with_slurms_reason(self):
        self.slurm.version = "v0.0.38"
        self.client.on("POST", "/slurm/v0.0.38/job/submit",
                       answer(status("v0.0.38", "submit_bad_partition"),
                              document("v0.0.38", "submit_bad_partition")))
        refusal = self.failure(self.slurm.submit(JOB, None, SETUP), Refused)
        self.assertIn("partition", str(refusal).lower())
        self.assertEqual(self.remote.keys(), ["submit", "rm"])  # the claim let go

    def test_a_failed_setup_submits_nothing(self):
        self.remote.answer("submit", exited(1, b"mkdir: permission denied"))
        error = self.failure(self.slurm.submit(JOB, None, SETUP), Unavailable)
        self.assertIn("permission denied", error.message)
        self.assertEqual(self.client.calls, [])

    def test_the_queue_is_one_get_as_the_service_account(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs", answer(200, document("v0.0.41", "jobs")))
        jobs = self.run_(self.slurm.queue())
        self.assertEqual(len(jobs), 7)
        self.assertEqual([call[:3] for call in self.client.calls],
                         [("GET", "/openapi/v3", "dssr-svc"),
                          ("GET", "/slurm/v0.0.41/jobs", "dssr-svc")])
        self.run_(self.slurm.queue())
        self.assertEqual(len(self.client.calls), 3)  # the version is not asked again

    def test_a_queue_that_cannot_be_read_is_unavailable_never_empty(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs",
                       answer(500, {"errors": [{"error_number": 1007,
                                                "error": "Unable to contact slurm controller"}]}),
                       Unavailable("slurmrestd at x did not answer: connection refused"),
                       answer(200, {"jobs": "garbage"}))
        for _ in range(3):
            self.failure(self.slurm.queue(), Unavailable)

    def test_a_refused_token_and_a_controller_down_read_alike_in_v0038(self):
        self.slurm.version = "v0.0.38"
        self.client.on("GET", "/slurm/v0.0.38/jobs",
                       answer(status("v0.0.38", "jobs_bad_token"),
                              document("v0.0.38", "jobs_bad_token")))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("Failed while looking for jobs", error.message)
        self.assertIn("slurmctld is down, or it refused the minted token of dssr-svc",
                      error.message)

    def test_the_version_is_detected_again_after_slurmrestd_was_unreachable(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs", Unavailable("refused"),
                       answer(200, document("v0.0.41", "jobs")))
        self.failure(self.slurm.queue(), Unavailable)
        self.assertEqual(self.slurm.version, "")
        self.run_(self.slurm.queue())
        self.assertEqual([call[1] for call in self.client.calls].count("/openapi/v3"), 2)

    def test_a_pinned_version_is_never_asked(self):
        slurm = RestSlurm(self.client, self.tokens, LoggedRemote(self.remote, self.clock),
                          self.clock, "dssr-svc", "v0.0.40")
        self.client.on("GET", "/slurm/v0.0.40/ping", answer(200, document("v0.0.40", "ping")))
        self.run_(slurm.ping())
        self.assertEqual([call[1] for call in self.client.calls], ["/slurm/v0.0.40/ping"])

    def test_a_refused_token_is_unavailable_and_forgotten(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs", Answer(401, None, "Authentication failure"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("refused the minted token of dssr-svc", error.message)
        self.assertIn("Authentication failure", error.message)
        self.assertNotIn("token-of", error.message)
        self.assertEqual(self.tokens.forgotten, ["dssr-svc"])

    def test_cancel_as_the_owner_and_permission_denied_is_refused(self):
        path = "/slurm/v0.0.41/job/102?signal=KILL"
        self.client.on("DELETE", path, answer(200, {"errors": []}))
        self.run_(self.slurm.cancel("102", "dssr-alice"))
        self.assertEqual(self.client.calls[-1][2], "dssr-alice")
        self.client.on("DELETE", path, answer(500, document("v0.0.41", "delete_denied")))
        self.failure(self.slurm.cancel("102", "dssr-bob"), Refused)

    def test_release_of_a_job_slurm_forgot(self):
        self.client.on("POST", "/slurm/v0.0.41/job/5", answer(200, {"errors": []}))
        self.run_(self.slurm.release("5"))
        self.assertEqual(self.client.calls[-1][4], {"hold": False})
        self.client.on("POST", "/slurm/v0.0.41/job/6",
                       answer(500, document("v0.0.41", "job_unknown")))
        self.assertTrue(self.failure(self.slurm.release("6"), Refused).unknown_job)

    def test_one_job_as_its_owner(self):
        self.client.on("GET", "/slurm/v0.0.41/job/105",
                       answer(200, document("v0.0.41", "job_failed")))
        self.client.on("GET", "/slurm/v0.0.41/job/9",
                       answer(500, document("v0.0.41", "job_unknown")))
        self.assertEqual(self.run_(self.slurm.job("105", "dssr-alice")).state, "FAILED")
        self.assertIsNone(self.run_(self.slurm.job("9", "dssr-alice")))
        self.assertIn("job_state=", self.run_(self.slurm.show("105")))

    def test_accounting_and_no_accounting(self):
        self.client.on("GET", "/slurmdb/v0.0.41/job/105",
                       answer(200, document("v0.0.41", "slurmdb_job_oom")))
        self.assertEqual(self.run_(self.slurm.accounting("105", "dssr-alice")).state,
                         "OUT_OF_MEMORY")
        self.client.on("GET", "/slurmdb/v0.0.41/job/107",
                       answer(200, document("v0.0.38", "slurmdb_job_unknown")))
        self.assertIsNone(self.run_(self.slurm.accounting("107")))  # no record: still asked
        self.client.on("GET", "/slurmdb/v0.0.41/job/106", Answer(404, None, "Not Found"))
        self.assertIsNone(self.run_(self.slurm.accounting("106")))
        self.assertIsNone(self.run_(self.slurm.accounting("105")))  # not asked again
        self.assertEqual([call[1] for call in self.client.calls].count(
            "/slurmdb/v0.0.41/job/105"), 1)
        # ...until ACCOUNTING_RECHECK has passed (a site may have turned it on).
        self.clock.advance(ACCOUNTING_RECHECK)
        self.assertEqual(self.run_(self.slurm.accounting("105", "dssr-alice")).state,
                         "OUT_OF_MEMORY")

    def test_ping_and_readiness(self):
        self.client.on("GET", "/slurm/v0.0.41/ping", answer(200, document("v0.0.41", "ping")),
                       answer(500, {"pings": [], "errors": [{"error": "down"}]}))
        self.run_(self.slurm.ping())
        self.failure(self.slurm.ping(), Unavailable)
        self.assertIsNone(self.slurm.unready())
        self.client.last_failure = "connection refused"
        self.assertIn("connection refused", self.slurm.unready())
        self.remote.connection = ("connecting", "timeout")
        self.assertEqual(self.slurm.unready(), "SSH connecting: timeout")

    def test_job_ids_are_checked_before_any_request(self):
        self.failure(self.slurm.cancel("1;rm"), ValueError)
        self.assertEqual(self.client.calls, [])
