"""``RestSlurm`` over a scripted slurmrestd: requests made, answers read, failures loud."""

from twisted.internet.defer import ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import Unavailable
from dssr.jobfiles import CLAIM_SUBMIT
from dssr.remote.logged import LoggedRemote
from dssr.slurm.accounting import ACCOUNTING_RECHECK
from dssr.slurm.interfaces import BatchJob, Refused, Setup
from dssr.slurm.rest import answers
from dssr.slurm.rest.client import Answer
from dssr.slurm.rest.known import RELIST
from dssr.slurm.rest.restd import RestSlurm
from tests.slurm.fakes import FakeRemote, exited, ok
from tests.slurm.restd_fixtures import document, status

# Answers as live slurmrestds gave them (tests/fixtures/slurmrestd).
V38, V41, V45 = "22.05.8/v0.0.38", "25.05.8/v0.0.41", "26.05.3/v0.0.45"

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
        self.listings = []  # the paths asked for as listings of jobs (read cut down)
        self.last_failure = None

    def on(self, method, path, *answers):
        self.routes[(method, path)] = list(answers)

    def request(self, method, path, user, token, body=None, listing=False):
        self.calls.append((method, path, user, token, body))
        if listing:
            self.listings.append(path)
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


def captured(where, name):
    """A captured answer with its status."""
    return Answer(status(where, name), document(where, name))


def jarvice_ids(where):
    """The ids of the Jarvice jobs in the listing captured in ``where``."""
    return [str(job["job_id"]) for job in document(where, "jobs")["jobs"]
            if job["name"].startswith("jarvice_")]


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

    def samples(self):
        return {sample.name: sample.value for sample in self.slurm.metrics()
                if sample.name in ("dssr_slurmrestd_listings", "dssr_slurmrestd_jobs_shown")}

    def run_(self, coroutine):
        return self.successResultOf(ensureDeferred(coroutine))

    def failure(self, coroutine, kind):
        return self.failureResultOf(ensureDeferred(coroutine), kind).value

    def test_submit_prepares_as_the_user_then_posts_as_the_user(self):
        self.client.on("POST", "/slurm/v0.0.41/job/submit", captured(V41, "submit"))
        jobid = self.run_(self.slurm.submit(JOB, "dssr-alice", SETUP))
        self.assertEqual(jobid, answers.submitted(document(V41, "submit")))
        prepare, record = self.remote.calls
        self.assertEqual((prepare.key, prepare.user), ("submit", "dssr-alice"))
        self.assertEqual((record.key, record.argv[-2:], record.user),
                         ("record", ("claim", jobid), "dssr-alice"))
        _, _, user, token, body = self.client.calls[-1]
        self.assertEqual((user, token), ("dssr-alice", "token-of-dssr-alice"))
        self.assertEqual(body["job"]["current_working_directory"], "/home/dssr-alice")
        self.assertEqual(body["job"]["standard_output"], "/home/dssr-alice/.jarvice/j-1.out")
        self.assertEqual(body["job"]["environment"], ["SLURM_GET_USER_ENV=1"])

    def test_v0042_on_the_job_id_is_only_at_the_top(self):
        self.slurm.version = "v0.0.45"
        self.client.on("POST", "/slurm/v0.0.45/job/submit", captured(V45, "submit"))
        self.assertEqual(self.run_(self.slurm.submit(JOB, None, SETUP)),
                         str(document(V45, "submit")["job_id"]))

    def test_a_refused_submit_of_26_05_is_a_422(self):
        self.slurm.version = "v0.0.45"
        self.client.on("POST", "/slurm/v0.0.45/job/submit",
                       captured(V45, "submit_bad_partition"))
        refusal = self.failure(self.slurm.submit(JOB, None, SETUP), Refused)
        self.assertIn("Invalid partition name specified", str(refusal))

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
                       captured(V38, "submit_bad_partition"))
        refusal = self.failure(self.slurm.submit(JOB, None, SETUP), Refused)
        self.assertIn("partition", str(refusal).lower())
        self.assertEqual(self.remote.keys(), ["submit", "rm"])  # the claim let go

    def test_a_failed_setup_submits_nothing(self):
        self.remote.answer("submit", exited(1, b"mkdir: permission denied"))
        error = self.failure(self.slurm.submit(JOB, None, SETUP), Unavailable)
        self.assertIn("permission denied", error.message)
        self.assertEqual(self.client.calls, [])

    def test_in_v0038_the_queue_is_one_get_as_the_service_account(self):
        self.slurm.version = "v0.0.38"  # 22.05: no jobs/state
        self.client.on("GET", "/slurm/v0.0.38/jobs", captured(V38, "jobs"))
        jobs = self.run_(self.slurm.queue())
        self.assertEqual([job.jobid for job in jobs], jarvice_ids(V38))
        self.run_(self.slurm.queue())
        self.assertEqual([call[:3] for call in self.client.calls],
                         [("GET", "/slurm/v0.0.38/jobs", "dssr-svc")] * 2)
        # Only the list of jobs may be read cut down to the Jarvice jobs.
        self.assertEqual(self.client.listings, ["/slurm/v0.0.38/jobs"] * 2)

    def test_the_queue_is_the_states_and_the_jobs_that_changed(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs/state", captured(V41, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.41/jobs", captured(V41, "jobs"))
        first = self.run_(self.slurm.queue())
        self.assertEqual([job.jobid for job in first], jarvice_ids(V41))
        self.assertEqual([call[:3] for call in self.client.calls],
                         [("GET", "/openapi/v3", "dssr-svc"),
                          ("GET", "/slurm/v0.0.41/jobs/state", "dssr-svc"),
                          ("GET", "/slurm/v0.0.41/jobs", "dssr-svc")])
        self.clock.advance(1)
        self.assertEqual(self.run_(self.slurm.queue()), first)  # nothing changed
        self.assertEqual(self.client.calls[-1][1], "/slurm/v0.0.41/jobs/state")
        self.assertEqual(self.client.listings, ["/slurm/v0.0.41/jobs"])
        # The suspended job runs again: it alone is asked for.
        running = str(document(V41, "job_running")["jobs"][0]["job_id"])
        states = document(V41, "jobs_state")
        for job in states["jobs"]:
            if job["job_id"] == running:
                self.assertEqual(job["state"], ["SUSPENDED"])
                job["state"] = ["RUNNING"]
        self.client.on("GET", "/slurm/v0.0.41/jobs/state", answer(200, states))
        self.client.on("GET", f"/slurm/v0.0.41/job/{running}", captured(V41, "job_running"))
        third = {job.jobid: job for job in self.run_(self.slurm.queue())}
        self.assertEqual(self.client.calls[-1][1], f"/slurm/v0.0.41/job/{running}")
        self.assertEqual(third[running].state, "RUNNING")
        self.assertEqual({key: job for key, job in third.items() if key != running},
                         {job.jobid: job for job in first if job.jobid != running})
        self.assertEqual(self.samples(), {"dssr_slurmrestd_listings": 1,
                                          "dssr_slurmrestd_jobs_shown": 1})
        # RELIST seconds after the listing, every job is listed again.
        self.clock.advance(RELIST)
        self.client.on("GET", "/slurm/v0.0.41/jobs/state", captured(V41, "jobs_state"))
        self.run_(self.slurm.queue())
        self.assertEqual(self.client.listings, ["/slurm/v0.0.41/jobs"] * 2)

    def test_a_new_job_is_asked_for_and_a_gone_one_dropped(self):
        self.slurm.version = "v0.0.45"
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", captured(V45, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.45/jobs", captured(V45, "jobs"))
        listed = [job.jobid for job in self.run_(self.slurm.queue())]
        states = document(V45, "jobs_state")
        gone = states["jobs"].pop(0)["job_id"]
        self.assertIn(gone, listed)
        states["jobs"] += [{"job_id": "999998", "state": ["PENDING"]},
                           {"job_id": "999999", "state": ["PENDING"]}]
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", answer(200, states))
        self.client.on("GET", "/slurm/v0.0.45/job/999998", captured(V45, "job_running"))
        self.client.on("GET", "/slurm/v0.0.45/job/999999", captured(V45, "job_unknown"))
        jobs = [job.jobid for job in self.run_(self.slurm.queue())]
        # job_running.json is another job id: not the job asked for, so not a job.
        self.assertEqual(jobs, [jobid for jobid in listed if jobid != gone])
        self.assertEqual(self.client.listings, ["/slurm/v0.0.45/jobs"])
        self.run_(self.slurm.queue())  # both known now: neither is asked for again
        self.assertEqual([call[1] for call in self.client.calls].count(
            "/slurm/v0.0.45/job/999999"), 1)

    def test_a_job_that_cannot_be_shown_makes_the_snapshot_unavailable(self):
        self.slurm.version = "v0.0.45"
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", captured(V45, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.45/jobs", captured(V45, "jobs"))
        self.run_(self.slurm.queue())
        states = document(V45, "jobs_state")
        states["jobs"].append({"job_id": "999999", "state": ["PENDING"]})
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", answer(200, states))
        self.client.on("GET", "/slurm/v0.0.45/job/999999",
                       captured(V45, "jobs_controller_down"), answer(200, {"jobs": [7]}))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("could not show job 999999 (HTTP 502): Unable to contact slurm "
                      "controller", error.message)
        self.assertIn("not a job: 7", self.failure(self.slurm.queue(), Unavailable).message)

    def test_without_jobs_state_every_snapshot_is_a_listing(self):
        # A typed version of a release before jobs/state (404): asked once, then not.
        self.client.on("GET", "/slurm/v0.0.41/jobs/state", Answer(404, None, "Not Found"))
        self.client.on("GET", "/slurm/v0.0.41/jobs", captured(V41, "jobs"))
        for _ in range(3):
            self.assertEqual([job.jobid for job in self.run_(self.slurm.queue())],
                             jarvice_ids(V41))
        self.assertEqual([call[1] for call in self.client.calls].count(
            "/slurm/v0.0.41/jobs/state"), 1)
        self.assertEqual(self.client.listings, ["/slurm/v0.0.41/jobs"] * 3)

    def test_a_queue_that_cannot_be_read_is_unavailable_never_empty(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs/state",
                       captured(V41, "jobs_state_controller_down"),
                       Unavailable("slurmrestd at x did not answer: connection refused"),
                       answer(200, {"jobs": "garbage"}),
                       answer(200, {"jobs": [{"job_id": 7, "state": ["RUNNING"]}]}),
                       captured(V41, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.41/jobs", answer(200, {"jobs": "garbage"}))
        for _ in range(5):
            self.failure(self.slurm.queue(), Unavailable)

    def test_a_refused_token_and_a_controller_down_read_alike_in_v0038(self):
        self.slurm.version = "v0.0.38"
        self.client.on("GET", "/slurm/v0.0.38/jobs",
                       captured(V38, "jobs_bad_token"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("Failed while looking for jobs", error.message)
        self.assertIn("slurmctld is down, or it refused the minted token of dssr-svc",
                      error.message)

    def test_the_version_is_detected_again_after_slurmrestd_was_unreachable(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs/state", Unavailable("refused"),
                       captured(V41, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.41/jobs", captured(V41, "jobs"))
        self.failure(self.slurm.queue(), Unavailable)
        self.assertEqual(self.slurm.version, "")
        self.run_(self.slurm.queue())
        self.assertEqual([call[1] for call in self.client.calls].count("/openapi/v3"), 2)

    def test_a_pinned_version_is_never_asked(self):
        slurm = RestSlurm(self.client, self.tokens, LoggedRemote(self.remote, self.clock),
                          self.clock, "dssr-svc", "v0.0.40")
        self.client.on("GET", "/slurm/v0.0.40/ping", captured("25.05.8/v0.0.40", "ping"))
        self.run_(slurm.ping())
        self.assertEqual([call[1] for call in self.client.calls], ["/slurm/v0.0.40/ping"])

    def test_a_refused_token_is_unavailable_and_forgotten(self):
        self.client.on("GET", "/slurm/v0.0.41/jobs/state",
                       Answer(401, None, "Authentication failure"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("refused the minted token of dssr-svc", error.message)
        self.assertIn("Authentication failure", error.message)
        self.assertNotIn("token-of", error.message)
        self.assertEqual(self.tokens.forgotten, ["dssr-svc"])

    def test_a_token_slurmctld_refuses_is_said_and_forgotten_since_25_05(self):
        # 22.05 could not tell it from a controller down (see the v0.0.38 test above);
        # 25.05 and 26.05 pass slurmctld's authentication error on as HTTP 511.
        self.slurm.version = "v0.0.45"
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", captured(V45, "jobs_state_bad_token"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("refused the minted token of dssr-svc (HTTP 511: Protocol "
                      "authentication error", error.message)
        self.assertEqual(self.tokens.forgotten, ["dssr-svc"])
        self.client.on("GET", "/slurm/v0.0.45/jobs/state",
                       captured(V45, "jobs_state_controller_down"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("could not list the job states (HTTP 500): Unable to query job states "
                      "(Slurm gave no error number: is slurmctld down?)", error.message)
        # The full listing says it itself.
        self.client.on("GET", "/slurm/v0.0.45/jobs/state", captured(V45, "jobs_state"))
        self.client.on("GET", "/slurm/v0.0.45/jobs", captured(V45, "jobs_controller_down"))
        error = self.failure(self.slurm.queue(), Unavailable)
        self.assertIn("(HTTP 502): Unable to contact slurm controller", error.message)
        self.assertNotIn("no error number", error.message)

    def test_cancel_as_the_owner_and_a_refusal_in_the_jobs_status(self):
        self.slurm.version = "v0.0.45"
        path = "/slurm/v0.0.45/job/97?signal=KILL"
        self.client.on("DELETE", path, captured(V45, "delete_running"))
        self.run_(self.slurm.cancel("97", "dssr-alice"))
        self.assertEqual(self.client.calls[-1][:3], ("DELETE", path, "dssr-alice"))
        # 200, and the refusal in the job's status: never taken for a cancel.
        self.client.on("DELETE", path, captured(V45, "delete_other_users_job"))
        refusal = self.failure(self.slurm.cancel("97", "dssr-bob"), Refused)
        self.assertIn("Access/permission denied", str(refusal))
        self.client.on("DELETE", path, captured(V45, "delete_unknown"))
        self.assertTrue(self.failure(self.slurm.cancel("97"), Refused).unknown_job)
        self.assertEqual(len(self.client.calls), 3)  # the answers said it all

    def test_a_cancel_25_05_says_nothing_of_is_checked_on_the_job(self):
        # v0.0.40/41 of 25.05 answer 200 and nothing else, refused or not.
        path = "/slurm/v0.0.41/job/13?signal=KILL"
        self.client.on("DELETE", path, captured(V41, "delete_other_users_job"))
        self.client.on("GET", "/slurm/v0.0.41/job/13", captured(V41, "job_running"))
        refusal = self.failure(self.slurm.cancel("13", "dssr-bob"), Refused)
        self.assertIn("did not cancel job 13", str(refusal))
        self.assertIn("still RUNNING", str(refusal))
        self.assertEqual(self.client.calls[-1][:3], ("GET", "/slurm/v0.0.41/job/13", "dssr-bob"))
        self.client.on("DELETE", path, captured(V41, "delete_killed"))
        for shown in ("job_killed", "job_unknown"):  # cancelled (COMPLETING), or gone
            self.client.on("GET", "/slurm/v0.0.41/job/13", captured(V41, shown))
            self.run_(self.slurm.cancel("13", "dssr-alice"))

    def test_release_of_a_job_slurm_forgot(self):
        self.client.on("POST", "/slurm/v0.0.41/job/5", captured(V41, "release_held"))
        self.run_(self.slurm.release("5"))
        self.assertEqual(self.client.calls[-1][4], {"hold": False})
        self.client.on("POST", "/slurm/v0.0.41/job/6", captured(V41, "release_unknown"))
        self.assertTrue(self.failure(self.slurm.release("6"), Refused).unknown_job)

    def test_a_release_of_another_users_job_is_refused_not_unavailable(self):
        # 25.05 (HTTP 500) and 26.05 (HTTP 422) alike: Slurm's "Invalid user id".
        for where in (V41, V45):
            self.slurm.version = version = where.rsplit("/", 1)[1]
            self.client.on("POST", f"/slurm/{version}/job/5",
                           captured(where, "release_other_users_job"))
            refusal = self.failure(self.slurm.release("5", "dssr-bob"), Refused)
            self.assertIn("Invalid user id", str(refusal))
            self.assertFalse(refusal.unknown_job)

    def test_one_job_as_its_owner(self):
        failed = str(document(V41, "job_failed")["jobs"][0]["job_id"])
        self.client.on("GET", f"/slurm/v0.0.41/job/{failed}", captured(V41, "job_failed"))
        self.client.on("GET", "/slurm/v0.0.41/job/999999", captured(V41, "job_unknown"))
        self.assertEqual(self.run_(self.slurm.job(failed, "dssr-alice")).state, "FAILED")
        self.assertIsNone(self.run_(self.slurm.job("999999", "dssr-alice")))
        self.assertIn("job_state=", self.run_(self.slurm.show(failed)))

    def test_accounting_and_no_accounting(self):
        self.client.on("GET", "/slurmdb/v0.0.41/job/105", captured(V41, "slurmdb_job_oom"))
        self.assertEqual(self.run_(self.slurm.accounting("105", "dssr-alice")).state,
                         "OUT_OF_MEMORY")
        self.client.on("GET", "/slurmdb/v0.0.41/job/107", captured(V41, "slurmdb_job_unknown"))
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
        self.client.on("GET", "/slurm/v0.0.41/ping", captured(V41, "ping"),
                       answer(500, {"pings": [], "errors": [{"error": "down"}]}))
        self.run_(self.slurm.ping())
        self.failure(self.slurm.ping(), Unavailable)
        # 26.05: HTTP 200 and the controller not responding.
        self.slurm.version = "v0.0.45"
        self.client.on("GET", "/slurm/v0.0.45/ping", captured(V45, "ping"),
                       captured(V45, "ping_controller_down"))
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
