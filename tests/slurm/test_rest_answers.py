"""Reading slurmrestd's answers, each on what a live slurmrestd of the rig gave
(tests/fixtures/slurmrestd/<release>/<version>): Slurm 22.05.8 for v0.0.38, 25.05.8 for
v0.0.40 to v0.0.43, 26.05.3 for v0.0.42 to v0.0.45."""

import re

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import Unavailable
from dssr.settings import API_VERSIONS
from dssr.slurm.rest import answers
from dssr.slurm.rest.answers import AnswerError
from dssr.slurm.rest.versions import SUPPORTED, choose, offered, release, serving, since, typed
from tests.slurm.restd_fixtures import FIXTURES, captured, conforms, document, status

V38 = "22.05.8/v0.0.38"
# Every typed version as a live slurmrestd served it: "25.05.8/v0.0.40"...
TYPED = [f"{release}/{version}" for release, version in captured() if typed(version)]
# The schema of each kind of answer (by the name capture.py saves it under).
# Not jobs/state's: the document names openapi_job_info_resp for it, which its answers
# do not follow (a string job_id and a state); answers.states reads them as they are.
ROOTS = (("slurmdb_", "openapi_slurmdbd_jobs_resp"), ("jobs_state", None),
         ("job", "openapi_job_info_resp"),
         ("submit", "openapi_job_submit_response"), ("ping", "openapi_ping_array_resp"),
         ("delete", "openapi_kill_job_resp"), ("release", "openapi_job_post_response"))
# Where slurmrestd's answers leave its own schemas (25.05 and 26.05 alike), in parts DSSR
# does not read: a step's TRES records carry node and task, and an absent object is null.
SLURM_GAPS = re.compile(r"\.steps\[\d+\]\.tres\.\w+\.\w+\[\d+\]\.(node|task): not a property$"
                        r"|: None is not (object|array)$")


def version_of(where: str) -> str:
    return where.rsplit("/", 1)[1]


def jobid(where: str, submit: str) -> str:
    """The id of the job the captured answer ``submit`` gave."""
    found = answers.submitted(document(where, submit))
    assert found is not None, (where, submit)
    return found


def job(where: str, name: str) -> dict:
    """The one job of a captured ``GET .../job/{id}`` answer."""
    return document(where, name)["jobs"][0]


class LiveShapeTests(SynchronousTestCase):
    def test_every_release_and_version_was_captured(self):
        self.assertEqual(captured(), [
            ("22.05.8", "v0.0.38"), ("25.05.8", "v0.0.40"), ("25.05.8", "v0.0.41"),
            ("25.05.8", "v0.0.42"), ("25.05.8", "v0.0.43"), ("26.05.3", "v0.0.42"),
            ("26.05.3", "v0.0.43"), ("26.05.3", "v0.0.44"), ("26.05.3", "v0.0.45")])

    def test_every_answer_follows_the_schemas_its_slurmrestd_served(self):
        # What a reader meets is what the schemas say (and so the schemas the job
        # bodies are checked against were cut right).
        for where in TYPED:
            names = [path.basename().removesuffix(".json")
                     for path in FIXTURES.preauthChild(where).children()]
            for name in names:
                root = next((root for prefix, root in ROOTS if name.startswith(prefix)), None)
                if root == "openapi_kill_job_resp" and not since(version_of(where), "v0.0.42"):
                    root = "openapi_resp"  # v0.0.40/41 of 25.05: errors and warnings only
                if root is not None:
                    found = conforms(document(where, name), root, where)
                    self.assertEqual([item for item in found if not SLURM_GAPS.search(item)],
                                     [], f"{where} {name}")


class TypedQueueTests(SynchronousTestCase):
    def jobs(self, where: str) -> dict:
        found = document(where, "jobs")
        now = answers.number(found["last_update"])
        return {job.jobid: job for job in answers.queue(found, now)}

    def test_held_pending_suspended_and_running_jobs(self):
        for where in TYPED:
            jobs = self.jobs(where)
            held, pending, suspended, running = (
                jobs[jobid(where, name)] for name in ("submit_held", "submit_pending",
                                                      "submit_running", "submit_killed"))
            self.assertEqual((held.name, held.owner, held.state, held.reason, held.nodes,
                              held.elapsed),
                             ("capture-held", "dssr-alice", "PENDING", "JobHeldUser", (),
                              "00:00:00"), where)
            self.assertEqual((pending.state, pending.reason), ("PENDING", "Dependency"), where)
            # The backfill scheduler gives a pending job the start and end it expects:
            # it has still run for no time (squeue's 0:00), not its time limit.
            raw = next(found for found in document(where, "jobs")["jobs"]
                       if str(found["job_id"]) == pending.jobid)
            expected = {**raw, "start_time": {"set": True, "infinite": False,
                                              "number": 1796700000},
                        "end_time": {"set": True, "infinite": False, "number": 1796703600}}
            self.assertEqual(answers.queue_job(expected, 1796690000).elapsed, "00:00:00")
            # Suspended a few seconds after it started: its time stops there.
            raw = next(found for found in document(where, "jobs")["jobs"]
                       if str(found["job_id"]) == suspended.jobid)
            ran = answers.number(raw["pre_sus_time"])
            self.assertTrue(0 < ran < 60, where)
            self.assertEqual((suspended.state, suspended.nodes, suspended.elapsed),
                             ("SUSPENDED", ("vm",), f"00:00:{ran:02d}"), where)
            self.assertEqual((running.state, running.nodes), ("RUNNING", ("vm",)), where)
            self.assertRegex(running.elapsed, r"^00:00:0[2-9]$")

    def test_ended_jobs_states_and_exit_codes(self):
        for where in TYPED:
            read = {name: (answers.state(found["job_state"]),
                           answers.exit_status(found["exit_code"]))
                    for name in ("completed", "failed", "oom")
                    for found in [job(where, f"job_{name}")]}
            self.assertEqual(read, {"completed": ("COMPLETED", (0, 0)),
                                    "failed": ("FAILED", (3, 0)),
                                    # no return code: "signal" 125, as slurmrestd says
                                    "oom": ("OUT_OF_MEMORY", (0, 125))}, where)
            # Cancelled with SIGKILL and read at once: CANCELLED and COMPLETING, shown
            # as squeue shows it, and no longer live.
            killed = job(where, "job_killed")
            self.assertEqual(killed["job_state"], ["CANCELLED", "COMPLETING"], where)
            self.assertEqual(answers.state(killed["job_state"]), "COMPLETING")
            self.assertFalse(answers.live(killed))
            self.assertTrue(answers.live(job(where, "job_running")))

    def test_submit_answers_lose_result_in_v0042(self):
        for where in TYPED:
            submitted = document(where, "submit")
            self.assertEqual("result" in submitted, not since(version_of(where), "v0.0.42"))
            self.assertEqual(answers.submitted(submitted),
                             str(job(where, "job_completed")["job_id"]))
            # A held job's submit says so as news (v0.0.40/41 also as error_code 2042).
            self.assertEqual(answers.error_numbers(document(where, "submit_held")), set())
            self.assertIsNotNone(answers.submitted(document(where, "submit_held")))
            refused = document(where, "submit_bad_partition")
            self.assertIsNone(answers.submitted(refused))
            self.assertIn("Invalid partition name specified", answers.error_text(refused))
            self.assertEqual(status(where, "submit_bad_partition"),
                             422 if where.startswith("26.05") else 500)

    def test_pings_say_responding_from_v0042_and_only_that_in_v0045(self):
        for where in TYPED:
            up, down = document(where, "ping"), document(where, "ping_controller_down")
            self.assertTrue(answers.pinged(up), where)
            self.assertFalse(answers.pinged(down), where)
            self.assertEqual(status(where, "ping_controller_down"), 200)  # the answer tells
            version = version_of(where)
            self.assertEqual("responding" in up["pings"][0], since(version, "v0.0.42"))
            self.assertEqual("pinged" in up["pings"][0], not since(version, "v0.0.45"))

    def test_a_refused_cancel_is_a_per_job_status_from_v0042(self):
        for where in TYPED:
            denied, unknown = (document(where, name) for name in ("delete_other_users_job",
                                                                  "delete_unknown"))
            done = document(where, "delete_running")
            self.assertEqual([status(where, name) for name in ("delete_other_users_job",
                                                               "delete_unknown")], [200, 200])
            self.assertFalse(answers.refusal_unsaid(done) and since(version_of(where),
                                                                    "v0.0.42"))
            if since(version_of(where), "v0.0.42"):
                self.assertEqual(answers.error_numbers(denied), {answers.ACCESS_DENIED})
                self.assertEqual(answers.error_text(denied), "Access/permission denied")
                self.assertEqual(answers.error_numbers(unknown), {answers.INVALID_JOB_ID})
                self.assertEqual(answers.error_numbers(done), set())
            else:  # 25.05's v0.0.40/41: nothing said either way
                for answer in (denied, unknown, done):
                    self.assertTrue(answers.refusal_unsaid(answer), where)
                    self.assertEqual(answers.error_numbers(answer), set(), where)

    def test_errors_by_number(self):
        for where in TYPED:
            self.assertEqual(answers.error_numbers(document(where, "release_other_users_job")),
                             {answers.NOT_THE_OWNER}, where)
            for name in ("job_unknown", "release_unknown"):
                self.assertEqual(answers.error_numbers(document(where, name)),
                                 {answers.INVALID_JOB_ID}, (where, name))
                self.assertEqual(status(where, name), 404)
            # A token slurmctld refuses: HTTP 511 and Slurm's authentication error.
            for name in ("jobs_bad_token", "jobs_wrong_user"):
                self.assertEqual(answers.error_numbers(document(where, name)),
                                 {answers.AUTHENTICATION}, (where, name))
                self.assertEqual(status(where, name), 511)
            down = document(where, "jobs_controller_down")
            self.assertEqual(status(where, "jobs_controller_down"), 502)
            self.assertIn("Unable to contact slurm controller", answers.error_text(down))

    def test_accounting(self):
        for where in TYPED:
            records = {name: answers.accounted(document(where, f"slurmdb_job_{name}"))
                       for name in ("completed", "failed", "killed", "oom", "oom_step")}
            self.assertEqual({name: (record.state, record.exit_code, record.name)
                              for name, record in records.items()},
                             {"completed": ("COMPLETED", 0, "jarvice_capture-ok"),
                              "failed": ("FAILED", 3, "jarvice_capture-fail"),
                              "killed": ("CANCELLED", 0, "jarvice_capture-kill"),
                              "oom": ("OUT_OF_MEMORY", 0, "jarvice_capture-oom"),
                              # as DSSR's jobs meet it: the batch script failed after
                              # its srun step ran out of memory
                              "oom_step": ("OUT_OF_MEMORY", 1,
                                           "jarvice_capture-oom-step")}, where)
            self.assertEqual(answers.state(job(where, "job_oom_step")["job_state"]), "FAILED")
            # No record: a warning, no error (22.05 said error 9003).
            unknown = document(where, "slurmdb_job_unknown")
            self.assertIsNone(answers.accounted(unknown))
            self.assertEqual(answers.errors(unknown), [])

    def test_what_cannot_be_read_is_an_error_not_an_empty_queue(self):
        for broken in ({}, {"jobs": None}, {"jobs": [{"name": "jarvice_x"}]},
                       {"jobs": [{"name": "jarvice_x", "job_id": 1, "job_state": 7}]}):
            self.assertRaises(AnswerError, answers.queue, broken, 0)
        self.assertRaises(AnswerError, answers.live, {"job_state": []})


class VersionTests(SynchronousTestCase):
    def test_each_release_offers_its_versions_and_the_newest_is_spoken(self):
        for name, versions in (("25.05.8", ["v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43"]),
                               ("26.05.3", ["v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"])):
            served = document(name, "openapi")
            self.assertEqual((offered(served), choose(served), release(served)),
                             (versions, versions[-1], name))
        self.assertEqual(choose(document("22.05.8", "openapi")), "v0.0.38")
        self.assertIsNone(release(document("22.05.8", "openapi")))  # no x-slurm before 23.11

    def test_the_newest_version_both_speak(self):
        paths = {"/slurm/v0.0.39/jobs": {}, "/slurm/v0.0.40/jobs/": {},
                 "/slurmdb/v0.0.41/jobs": {}, "/slurm/v0.0.46/jobs": {}}
        self.assertEqual(offered({"paths": paths}), ["v0.0.39", "v0.0.40", "v0.0.46"])
        self.assertEqual(choose({"paths": paths}), "v0.0.40")

    def test_the_settings_offer_the_versions_spoken(self):
        self.assertEqual(API_VERSIONS, SUPPORTED)

    def hint(self, release_name, *versions) -> str:
        info = {"x-slurm": {"release": release_name}} if release_name else {}
        served = {"info": info, "paths": {f"/slurm/{version}/jobs/": {} for version in versions}}
        return self.assertRaises(Unavailable, choose, served).message

    def test_none_in_common_says_how_for_the_release_offered(self):
        # Since 23.11 plugins are loaded by daemon: openapi/v0.0.38 is no fix there.
        message = self.hint("24.05.4", "v0.0.39")
        self.assertIn("slurmrestd of Slurm 24.05.4 offers v0.0.39; DSSR speaks v0.0.45",
                      message)
        self.assertIn("-s openapi/slurmctld,openapi/slurmdbd and no -d", message)
        self.assertNotIn("openapi/v0.0.38", message)
        # Before, a plugin per version.
        self.assertIn("load one with slurmrestd -s openapi/v0.0.38", self.hint("", "v0.0.39"))
        self.assertIn("newer than this DSSR: upgrade DSSR", self.hint("27.05.1", "v0.0.46"))
        self.assertIn("older than DSSR knows", self.hint("", "v0.0.36", "v0.0.37"))
        self.assertIn("offers no /slurm API", self.hint("26.05.3"))


    def test_serving_another_version_says_how_for_the_release(self):
        since_23_11 = serving(document("26.05.3", "openapi"), "v0.0.41")
        self.assertIn("Slurm 26.05.3's slurmrestd serves every version it has with -s "
                      "openapi/slurmctld,openapi/slurmdbd and no -d", since_23_11)
        self.assertIn("-d data_parser/v0.0.41", since_23_11)
        self.assertEqual(serving(document("22.05.8", "openapi"), "v0.0.38"),
                         "load it with slurmrestd -s openapi/v0.0.38,openapi/dbv0.0.38")


class CapturedV38Tests(SynchronousTestCase):
    """The real slurmrestd of Slurm 22.05.8 on the rig (tests/fixtures/slurmrestd/22.05.8)."""

    def jobs(self):
        jobs = answers.queue(document(V38, "jobs"), 1795941112)
        return {job.name: job for job in jobs if job.name.startswith("capture-")}

    def test_the_queue(self):
        jobs = self.jobs()
        self.assertEqual(jobs["capture-held"].state, "PENDING")
        self.assertEqual(jobs["capture-held"].reason, "JobHeldUser")
        self.assertEqual(jobs["capture-held"].nodes, ())
        running = jobs["capture-run"]
        self.assertEqual((running.state, running.nodes, running.owner, running.elapsed),
                         ("RUNNING", ("vm",), "dssr-alice", "00:00:14"))
        # Deleted with slurmrestd's default SIGKILL: Slurm's terminate, so CANCELLED
        # (the batch shell's TERM trap ran: exit 143); signal=TERM reaches only the job,
        # which then ends FAILED.
        self.assertEqual(jobs["capture-kill"].state, "CANCELLED")
        self.assertEqual(jobs["capture-term"].state, "FAILED")

    def test_exit_codes_are_raw_wait_statuses(self):
        killed = job(V38, "job_killed")
        self.assertEqual(answers.exit_status(killed["exit_code"]), (143, 0))
        failed = job(V38, "job_failed")
        self.assertEqual((failed["job_state"], answers.exit_status(failed["exit_code"])),
                         ("FAILED", (3, 0)))
        self.assertEqual(answers.exit_status(256), (1, 0))
        self.assertEqual(answers.exit_status(9), (0, 9))
        self.assertEqual(answers.exit_status(job(V38, "job_completed")["exit_code"]), (0, 0))
        self.assertTrue(answers.live(job(V38, "job_running")))
        self.assertFalse(answers.live(killed))

    def test_submits(self):
        self.assertEqual(answers.submitted(document(V38, "submit")), "5122")
        held = document(V38, "submit_held")  # an "error" 2042 that is only news
        self.assertEqual(answers.submitted(held), "5125")
        noted = job(V38, "job_comment")  # sbatch's text, as sbatch
        self.assertEqual(noted["comment"], "a-note")
        refused = document(V38, "submit_bad_partition")
        self.assertIsNone(answers.submitted(refused))
        self.assertEqual(answers.error_text(refused), "Invalid partition name specified")
        # v0.0.38 wants the environment as an object, and exclusive as a word.
        for name in ("submit_environment_list", "submit_exclusive_true"):
            self.assertIsNone(answers.submitted(document(V38, name)))
        self.assertIn("environment must be a dictionary",
                      answers.error_text(document(V38, "submit_environment_list")))

    def test_errors_by_number(self):
        self.assertEqual(answers.error_numbers(document(V38, "delete_other_users_job")),
                         {answers.ACCESS_DENIED})
        for name in ("job_unknown", "delete_unknown", "release_unknown"):
            self.assertEqual(answers.error_numbers(document(V38, name)),
                             {answers.INVALID_JOB_ID}, name)
        # A token slurmctld refuses, and a controller that is down, read alike: -1.
        for name in ("jobs_bad_token", "jobs_wrong_user", "jobs_controller_down"):
            self.assertEqual(answers.error_numbers(document(V38, name)), {-1})

    def test_pings(self):
        self.assertTrue(answers.pinged(document(V38, "ping")))
        self.assertFalse(answers.pinged(document(V38, "ping_controller_down")))

    def test_accounting(self):
        records = {name: answers.accounted(document(V38, f"slurmdb_job_{name}"))
                   for name in ("completed", "failed", "killed")}
        self.assertEqual({name: (record.state, record.name) for name, record in
                          records.items()},
                         {"completed": ("COMPLETED", "jarvice_capture-ok"),
                          "failed": ("FAILED", "jarvice_capture-fail"),
                          "killed": ("CANCELLED", "jarvice_capture-kill")})
        self.assertIsNone(answers.accounted(document(V38, "slurmdb_job_unknown")))
        self.assertEqual(answers.error_numbers(document(V38, "slurmdb_job_unknown")),
                         {answers.NOTHING_FOUND})
