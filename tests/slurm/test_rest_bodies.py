"""Job bodies for slurmrestd: v0.0.38 as sbatch strings, v0.0.40+ typed and checked
against the schemas each live slurmrestd served for its versions."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.slurm.interfaces import BatchJob
from dssr.slurm.rest.bodies import EXTRAS, FIRST, job_body, megabytes, minutes
from dssr.slurm.rest.versions import since, typed
from tests.slurm.restd_fixtures import captured, conforms

# Every typed version as a live slurmrestd served it: "25.05.8/v0.0.40"...
TYPED = [f"{release}/{version}" for release, version in captured() if typed(version)]

JOB = BatchJob(name="jarvice_job-1", script="#!/bin/bash\necho hi\n",
               output=".jarvice/job-1.out", nodes=2, tasks=8, partition="debug",
               memory_gb=4, gpus_per_node=1, exclusive=True, walltime="1-02:03:04",
               licenses="matlab:1", held=True)


class TimeTests(SynchronousTestCase):
    def test_slurm_time_formats_in_minutes_seconds_rounded_up(self):
        cases = {"90": 90, "5:30": 6, "5:00": 5, "01:02:03": 63, "2-3": 2 * 1440 + 180,
                 "1-02:03": 1440 + 123, "1-02:03:04": 1440 + 124, "0:0:0": 0}
        for text, expected in cases.items():
            self.assertEqual(minutes(text), expected, text)
        self.assertIsNone(minutes("UNLIMITED"))
        error = self.assertRaises(BadRequest, minutes, "1:2:3:4")
        self.assertEqual(error.field, "JOBOBJ_WALLTIME")

    def test_sizes_in_megabytes(self):
        for text, expected in {"512": 512, "512M": 512, "4G": 4096, "1T": 1048576,
                               "2048K": 2, "4gb": 4096}.items():
            self.assertEqual(megabytes(text), expected, text)
        self.assertRaises(ValueError, megabytes, "lots")


class V38Tests(SynchronousTestCase):
    def test_fields_are_what_sbatch_gets(self):
        body = job_body(JOB, "v0.0.38", "/home/kirby")
        self.assertEqual(body["script"], JOB.script)
        self.assertEqual(body["job"], {
            "name": "jarvice_job-1", "current_working_directory": "/home/kirby",
            "standard_output": "/home/kirby/.jarvice/job-1.out", "tasks": 8,
            "partition": "debug", "licenses": "matlab:1", "hold": True,
            "environment": {"SLURM_GET_USER_ENV": "1"},
            "nodes": "2", "memory_per_node": "4G", "gpus_per_node": "1",
            "exclusive": "exclusive", "time_limit": "1-02:03:04"})

    def test_a_shared_job_says_nothing_of_exclusivity(self):
        job = BatchJob(name="jarvice_x", script="s", output="/abs/x.out", nodes=1, tasks=1,
                       exclusive=False)
        body = job_body(job, "v0.0.38", "/home/k")["job"]
        self.assertNotIn("exclusive", body)
        self.assertEqual(body["standard_output"], "/abs/x.out")

    def test_extras_keep_their_sbatch_text(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       extra=(("constraint", "ib&gpu"), ("mem-per-cpu", "2G"),
                              ("requeue", ""), ("no-requeue", "")))
        body = job_body(job, "v0.0.38", "/h")["job"]
        self.assertEqual((body["constraints"], body["memory_per_cpu"], body["requeue"]),
                         ("ib&gpu", "2G", False))

    def test_an_option_without_a_field_is_a_400_naming_the_devices(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       extra=(("exclude", "node1"),))
        error = self.assertRaises(BadRequest, job_body, job, "v0.0.38", "/h")
        self.assertEqual(error.field, "JOBOBJ_DEVICES")
        self.assertIn("sbatch_exclude", error.message)


class TypedTests(SynchronousTestCase):
    def test_every_versions_body_matches_its_live_schema(self):
        self.assertEqual(len(TYPED), 8)  # 25.05: v0.0.40-43; 26.05: v0.0.42-45
        for where in TYPED:
            body = job_body(JOB, where.rsplit("/", 1)[1], "/home/kirby")
            self.assertEqual(conforms(body, "job_submit_req", where), [], where)
            job = body["job"]
            self.assertNotIn("script", body)
            self.assertEqual(job["script"], JOB.script)
            self.assertEqual((job["minimum_nodes"], job["maximum_nodes"], job["tasks"]),
                             (2, 2, 8))
            self.assertEqual(job["memory_per_node"], {"set": True, "infinite": False,
                                                      "number": 4096})
            self.assertEqual(job["time_limit"]["number"], 1440 + 124)
            self.assertEqual(job["tres_per_node"], "gres/gpu:1")
            self.assertEqual(job["shared"], ["none"])

    def test_the_job_starts_with_its_users_login_environment(self):
        # slurmd loads it (su - user) and lets the job's variables override it: no PATH
        # here, or a site's Slurm commands under their own prefix go unfound.
        for version in ("v0.0.38", "v0.0.40", "v0.0.45"):
            environment = job_body(JOB, version, "/home/kirby")["job"]["environment"]
            self.assertIn(environment, (["SLURM_GET_USER_ENV=1"], {"SLURM_GET_USER_ENV": "1"}))

    def test_every_mapped_extra_is_a_field_of_each_live_schema(self):
        values = {"mem-per-cpu": "2G", "tmp": "10G", "time-min": "30", "mail-type": "END,FAIL",
                  "exclude": "n1,n2", "nodelist": "n3", "gpus": "2", "gres": "gpu:a100:2"}
        for where in TYPED:
            version = where.rsplit("/", 1)[1]
            extra = tuple((option, values.get(option, "3"))
                          for option, (_, later) in EXTRAS.items()
                          if later is not None and since(version, FIRST.get(option, version)))
            job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                           extra=extra)
            body = job_body(job, version, "/h")
            self.assertEqual(conforms(body, "job_submit_req", where), [], where)
            self.assertEqual(body["job"]["tres_per_node"], "gres/gpu:a100:2")
            self.assertEqual(body["job"]["excluded_nodes"], ["n1", "n2"])

    def test_cores_per_socket_from_v0045_on(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       extra=(("cores-per-socket", "4"),))
        self.assertEqual(job_body(job, "v0.0.45", "/h")["job"]["cores_per_socket"], 4)
        error = self.assertRaises(BadRequest, job_body, job, "v0.0.44", "/h")
        self.assertIn("sbatch_cores-per-socket has no slurmrestd v0.0.44 job field",
                      error.message)

    def test_an_unlimited_walltime_is_infinite(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       walltime="UNLIMITED")
        self.assertTrue(job_body(job, "v0.0.41", "/h")["job"]["time_limit"]["infinite"])

    def test_refusals_name_the_devices(self):
        for extra in ((("begin", "now+1hour"),), (("mem-per-cpu", "lots"),)):
            job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                           extra=extra)
            error = self.assertRaises(BadRequest, job_body, job, "v0.0.41", "/h")
            self.assertEqual(error.field, "JOBOBJ_DEVICES")
