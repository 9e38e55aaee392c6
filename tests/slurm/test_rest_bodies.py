"""Job bodies for slurmrestd: v0.0.38 as sbatch strings, v0.0.40+ typed and checked
against the v0.0.41 schema cut from Slurm's published OpenAPI document."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.slurm.interfaces import BatchJob
from dssr.slurm.rest.bodies import EXTRAS, environment, job_body, megabytes, minutes
from tests.slurm.restd_fixtures import schemas, violations

JOB = BatchJob(name="jarvice_job-1", script="#!/bin/bash\necho hi\n",
               output=".jarvice/job-1.out", nodes=2, tasks=8, partition="debug",
               memory_gb=4, gpus_per_node=1, exclusive=True, walltime="1-02:03:04",
               licenses="matlab:1", held=True)
ENV = environment("/home/kirby", "kirby")


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
        body = job_body(JOB, "v0.0.38", "/home/kirby", ENV)
        self.assertEqual(body["script"], JOB.script)
        self.assertEqual(body["job"], {
            "name": "jarvice_job-1", "current_working_directory": "/home/kirby",
            "standard_output": "/home/kirby/.jarvice/job-1.out", "tasks": 8,
            "partition": "debug", "licenses": "matlab:1", "hold": True,
            "environment": {"PATH": ENV["PATH"], "HOME": "/home/kirby", "USER": "kirby",
                            "LOGNAME": "kirby"},
            "nodes": "2", "memory_per_node": "4G", "gpus_per_node": "1",
            "exclusive": "exclusive", "time_limit": "1-02:03:04"})

    def test_a_shared_job_says_nothing_of_exclusivity(self):
        job = BatchJob(name="jarvice_x", script="s", output="/abs/x.out", nodes=1, tasks=1,
                       exclusive=False)
        body = job_body(job, "v0.0.38", "/home/k", ENV)["job"]
        self.assertNotIn("exclusive", body)
        self.assertEqual(body["standard_output"], "/abs/x.out")

    def test_extras_keep_their_sbatch_text(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       extra=(("constraint", "ib&gpu"), ("mem-per-cpu", "2G"),
                              ("requeue", ""), ("no-requeue", "")))
        body = job_body(job, "v0.0.38", "/h", ENV)["job"]
        self.assertEqual((body["constraints"], body["memory_per_cpu"], body["requeue"]),
                         ("ib&gpu", "2G", False))

    def test_an_option_without_a_field_is_a_400_naming_the_devices(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       extra=(("exclude", "node1"),))
        error = self.assertRaises(BadRequest, job_body, job, "v0.0.38", "/h", ENV)
        self.assertEqual(error.field, "JOBOBJ_DEVICES")
        self.assertIn("sbatch_exclude", error.message)


class TypedTests(SynchronousTestCase):
    def test_v0041_body_matches_the_published_schema(self):
        for version in ("v0.0.40", "v0.0.41"):
            body = job_body(JOB, version, "/home/kirby", ENV)
            self.assertEqual(violations(body, {"$ref": "#/v0.0.41_job_submit_req"}, schemas()),
                             [])
            job = body["job"]
            self.assertNotIn("script", body)
            self.assertEqual(job["script"], JOB.script)
            self.assertIn("PATH=" + ENV["PATH"], job["environment"])
            self.assertEqual((job["minimum_nodes"], job["maximum_nodes"], job["tasks"]),
                             (2, 2, 8))
            self.assertEqual(job["memory_per_node"], {"set": True, "infinite": False,
                                                      "number": 4096})
            self.assertEqual(job["time_limit"]["number"], 1440 + 124)
            self.assertEqual(job["tres_per_node"], "gres/gpu:1")
            self.assertEqual(job["shared"], ["none"])

    def test_every_mapped_extra_is_a_field_of_the_published_schema(self):
        values = {"mem-per-cpu": "2G", "tmp": "10G", "time-min": "30", "mail-type": "END,FAIL",
                  "exclude": "n1,n2", "nodelist": "n3", "gpus": "2", "gres": "gpu:a100:2"}
        extra = tuple((option, values.get(option, "3")) for option, (_, later) in EXTRAS.items()
                      if later is not None)
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1, extra=extra)
        body = job_body(job, "v0.0.41", "/h", ENV)
        self.assertEqual(violations(body, {"$ref": "#/v0.0.41_job_submit_req"}, schemas()), [])
        self.assertEqual(body["job"]["tres_per_node"], "gres/gpu:a100:2")
        self.assertEqual(body["job"]["excluded_nodes"], ["n1", "n2"])

    def test_an_unlimited_walltime_is_infinite(self):
        job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                       walltime="UNLIMITED")
        self.assertTrue(job_body(job, "v0.0.41", "/h", ENV)["job"]["time_limit"]["infinite"])

    def test_refusals_name_the_devices(self):
        for extra in ((("begin", "now+1hour"),), (("mem-per-cpu", "lots"),)):
            job = BatchJob(name="jarvice_x", script="s", output="x", nodes=1, tasks=1,
                           extra=extra)
            error = self.assertRaises(BadRequest, job_body, job, "v0.0.41", "/h", ENV)
            self.assertEqual(error.field, "JOBOBJ_DEVICES")
