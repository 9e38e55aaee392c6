"""Reading slurmrestd's answers: v0.0.38 as the rig's slurmrestd gave them, v0.0.40/41
as Slurm's published OpenAPI documents describe them (tests/fixtures/slurmrestd)."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.settings import API_VERSIONS
from dssr.slurm.rest import answers
from dssr.slurm.rest.answers import AnswerError
from dssr.slurm.rest.versions import SUPPORTED, choose, offered
from tests.slurm.restd_fixtures import document, schemas, violations

NOW = 1764400600  # when the hand-written v0.0.40/41 queue was "taken"
TYPED = ("v0.0.40", "v0.0.41")
ROOTS = {"jobs": "openapi_job_info_resp", "job_failed": "openapi_job_info_resp",
         "job_unknown": "openapi_job_info_resp", "submit": "openapi_job_submit_response",
         "ping": "openapi_ping_array_resp", "delete_denied": "openapi_kill_jobs_resp",
         "slurmdb_job_oom": "openapi_slurmdbd_jobs_resp"}


class PublishedShapeTests(SynchronousTestCase):
    def test_the_v0041_payloads_follow_the_published_schemas(self):
        for name, root in ROOTS.items():
            found = violations(document("v0.0.41", name), {"$ref": f"#/v0.0.41_{root}"},
                               schemas())
            if name == "delete_denied":  # only the errors part of a kill answer is used
                found = [item for item in found if "status" not in item]
            self.assertEqual(found, [], name)


class TypedQueueTests(SynchronousTestCase):
    def jobs(self, version):
        return {job.jobid: job for job in answers.queue(document(version, "jobs"), NOW)}

    def test_only_jarvice_jobs_with_squeue_states(self):
        for version in TYPED:
            jobs = self.jobs(version)
            self.assertNotIn("107", jobs)  # not a jarvice_ name
            self.assertEqual({jobid: job.state for jobid, job in jobs.items()}, {
                "101": "PENDING", "102": "RUNNING", "103": "COMPLETING", "104": "COMPLETED",
                "105": "FAILED", "106": "CANCELLED", "108": "SUSPENDED"}, version)

    def test_names_owners_nodes_reasons_and_times(self):
        for version in TYPED:
            jobs = self.jobs(version)
            held, running = jobs["101"], jobs["102"]
            self.assertEqual((held.name, held.owner, held.nodes, held.reason, held.elapsed),
                             ("held-1", "dssr-alice", (), "JobHeldUser", "00:00:00"))
            self.assertEqual((running.nodes, running.elapsed),
                             (("node01", "node02"), "01:02:05"))
            self.assertEqual(jobs["104"].elapsed, "00:01:00")  # end - start, once ended
            self.assertEqual(jobs["108"].elapsed, "00:11:40")  # ran before suspending

    def test_exit_codes_and_pings(self):
        failed = document("v0.0.41", "job_failed")["jobs"][0]
        self.assertEqual(answers.exit_status(failed["exit_code"]), (3, 0))
        killed = document("v0.0.41", "jobs")["jobs"][5]
        self.assertEqual(answers.exit_status(killed["exit_code"]), (0, 9))
        for version in TYPED:
            self.assertTrue(answers.pinged(document(version, "ping")))
            self.assertEqual(answers.submitted(document(version, "submit")), "4242")

    def test_errors_read_by_number(self):
        denied = document("v0.0.41", "delete_denied")
        self.assertEqual(answers.error_numbers(denied), {answers.ACCESS_DENIED})
        self.assertIn("Access/permission denied", answers.error_text(denied))
        self.assertEqual(answers.error_numbers(document("v0.0.41", "job_unknown")),
                         {answers.INVALID_JOB_ID})

    def test_accounting_of_a_job_whose_step_ran_out_of_memory(self):
        for version in TYPED:
            record = answers.accounted(document(version, "slurmdb_job_oom"))
            self.assertEqual((record.state, record.exit_code, record.elapsed, record.name),
                             ("OUT_OF_MEMORY", 1, "00:01:01", "jarvice_oom-1"))
        self.assertIsNone(answers.accounted({"jobs": []}))

    def test_what_cannot_be_read_is_an_error_not_an_empty_queue(self):
        for broken in ({}, {"jobs": None}, {"jobs": [{"name": "jarvice_x"}]},
                       {"jobs": [{"name": "jarvice_x", "job_id": 1, "job_state": 7}]}):
            self.assertRaises(AnswerError, answers.queue, broken, NOW)


class VersionTests(SynchronousTestCase):
    def test_the_newest_version_both_speak(self):
        paths = {"/slurm/v0.0.39/jobs": {}, "/slurm/v0.0.40/jobs/": {},
                 "/slurmdb/v0.0.41/jobs": {}, "/slurm/v0.0.42/jobs": {}}
        self.assertEqual(offered({"paths": paths}), ["v0.0.39", "v0.0.40", "v0.0.42"])
        self.assertEqual(choose({"paths": paths}), "v0.0.40")

    def test_the_settings_offer_the_versions_spoken(self):
        self.assertEqual(API_VERSIONS, SUPPORTED)

    def test_none_in_common_says_what_each_speaks(self):
        from dssr.errors import Unavailable
        error = self.assertRaises(Unavailable, choose, {"paths": {"/slurm/v0.0.44/jobs": {}}})
        self.assertIn("v0.0.44", error.message)
        self.assertIn("v0.0.38", error.message)



class CapturedV38Tests(SynchronousTestCase):
    """The real slurmrestd of Slurm 22.05.8 on the rig (tests/fixtures/slurmrestd/v0.0.38)."""

    def jobs(self):
        jobs = answers.queue(document("v0.0.38", "jobs"), 1795941112)
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
        killed = document("v0.0.38", "job_killed")["jobs"][0]
        self.assertEqual(answers.exit_status(killed["exit_code"]), (143, 0))
        failed = document("v0.0.38", "job_failed")["jobs"][0]
        self.assertEqual((failed["job_state"], answers.exit_status(failed["exit_code"])),
                         ("FAILED", (3, 0)))
        self.assertEqual(answers.exit_status(256), (1, 0))
        self.assertEqual(answers.exit_status(9), (0, 9))
        self.assertEqual(answers.exit_status(
            document("v0.0.38", "job_completed")["jobs"][0]["exit_code"]), (0, 0))

    def test_submits(self):
        self.assertEqual(answers.submitted(document("v0.0.38", "submit")), "5122")
        held = document("v0.0.38", "submit_held")  # an "error" 2042 that is only news
        self.assertEqual(answers.submitted(held), "5125")
        noted = document("v0.0.38", "job_comment")["jobs"][0]  # sbatch's text, as sbatch
        self.assertEqual(noted["comment"], "a-note")
        refused = document("v0.0.38", "submit_bad_partition")
        self.assertIsNone(answers.submitted(refused))
        self.assertEqual(answers.error_text(refused), "Invalid partition name specified")
        # v0.0.38 wants the environment as an object, and exclusive as a word.
        for name in ("submit_environment_list", "submit_exclusive_true"):
            self.assertIsNone(answers.submitted(document("v0.0.38", name)))
        self.assertIn("environment must be a dictionary",
                      answers.error_text(document("v0.0.38", "submit_environment_list")))

    def test_errors_by_number(self):
        self.assertEqual(answers.error_numbers(document("v0.0.38", "delete_other_users_job")),
                         {answers.ACCESS_DENIED})
        for name in ("job_unknown", "delete_unknown", "release_unknown"):
            self.assertEqual(answers.error_numbers(document("v0.0.38", name)),
                             {answers.INVALID_JOB_ID}, name)
        # A token slurmctld refuses, and a controller that is down, read alike: -1.
        for name in ("jobs_bad_token", "jobs_wrong_user", "jobs_controller_down"):
            self.assertEqual(answers.error_numbers(document("v0.0.38", name)), {-1})

    def test_pings(self):
        self.assertTrue(answers.pinged(document("v0.0.38", "ping")))
        self.assertFalse(answers.pinged(document("v0.0.38", "ping_controller_down")))

    def test_the_versions_offered(self):
        self.assertEqual(choose(document("v0.0.38", "openapi")), "v0.0.38")

    def test_accounting(self):
        records = {name: answers.accounted(document("v0.0.38", f"slurmdb_job_{name}"))
                   for name in ("completed", "failed", "killed")}
        self.assertEqual({name: (record.state, record.name) for name, record in
                          records.items()},
                         {"completed": ("COMPLETED", "jarvice_capture-ok"),
                          "failed": ("FAILED", "jarvice_capture-fail"),
                          "killed": ("CANCELLED", "jarvice_capture-kill")})
        self.assertIsNone(answers.accounted(document("v0.0.38", "slurmdb_job_unknown")))
        self.assertEqual(answers.error_numbers(document("v0.0.38", "slurmdb_job_unknown")),
                         {answers.NOTHING_FOUND})
