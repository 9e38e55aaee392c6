"""The KEY=value header of job scripts, and the pseudo-devices."""

import json
import os
import re

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.executors.header import Devices, DockerSecret, parse_devices, parse_header
from dssr.executors.sbatch_options import ALLOWED
from tests.executors.sample import DEFAULT_HEADER, template


class ParseHeaderTests(SynchronousTestCase):
    def assertRefused(self, script, fragment):
        error = self.assertRaises(BadRequest, parse_header, script)
        self.assertEqual(error.field, "hpc_script")
        self.assertIn(fragment, error.message)
        return error

    def test_typical_header(self):
        params = parse_header(template(
            JOBOBJ_GPUS="2", JOBOBJ_RAM="16", JOBOBJ_LICENSES="matlab:2",
            JOBOBJ_WALLTIME="01:30:00", JOBOBJ_DEVICES='["partition=gpu"]'))
        self.assertEqual(params.appdef_version, 2)
        self.assertEqual(params.cores, 4)
        self.assertFalse(params.interactive)
        self.assertEqual(params.arch, "amd64")
        self.assertEqual(params.nae, "jarvice-ubuntu")
        self.assertEqual(params.repo, "us-docker.pkg.dev/jarvice/images/ubuntu:24.04")
        self.assertEqual(params.ctrsecret, DEFAULT_HEADER["JOBOBJ_CTRSECRET"])
        self.assertIsNone(params.docker_secret)
        self.assertEqual(params.user, "kirby")
        self.assertEqual(params.devices, Devices(partition="gpu"))
        self.assertEqual((params.gpus, params.ram), (2, 16))
        self.assertEqual((params.licenses, params.walltime), ("matlab:2", "01:30:00"))
        self.assertEqual(params.jarvice_cmd, "'/usr/bin/env'")

    def test_defaults_when_unset(self):
        params = parse_header(template(
            JOBOBJ_INTERACTIVE=None, JOBOBJ_GPUS="", JOBOBJ_RAM=None, JOBOBJ_DEVICES="",
            JOBOBJ_ARCH="", JARVICE_CMD=None))
        self.assertFalse(params.interactive)
        self.assertEqual((params.gpus, params.ram, params.arch), (0, 0, ""))
        self.assertEqual(params.devices, Devices())
        self.assertEqual(params.jarvice_cmd, "")

    def test_jarvice_cmd_verbatim_and_undoubled(self):
        command = """'bash -c "echo ${HOME} $((1+2)) \\\\ {a,b}" ; echo x=y'"""
        params = parse_header(template(JARVICE_CMD=command))
        self.assertEqual(params.jarvice_cmd, command)

    def test_value_is_everything_after_first_equals(self):
        params = parse_header(template(JARVICE_CMD="A=b=c"))
        self.assertEqual(params.jarvice_cmd, "A=b=c")

    def test_first_line_wins_even_if_empty(self):
        script = template(JOBOBJ_GPUS="").replace("JOBOBJ_RAM=0", "JOBOBJ_RAM=0\nJOBOBJ_GPUS=4")
        self.assertEqual(parse_header(script).gpus, 0)

    def test_only_column_zero_lines(self):
        script = template(JOBOBJ_GPUS=None) + "  JOBOBJ_GPUS=3\nexport JOBOBJ_GPUS=5\n"
        self.assertEqual(parse_header(script).gpus, 0)

    def test_crlf_lines(self):
        params = parse_header(template().replace("\n", "\r\n"))
        self.assertEqual((params.cores, params.jarvice_cmd), (4, "'/usr/bin/env'"))

    def test_interactive(self):
        self.assertTrue(parse_header(template(JOBOBJ_INTERACTIVE="True")).interactive)
        self.assertRefused(template(JOBOBJ_INTERACTIVE="yes"), "JOBOBJ_INTERACTIVE")

    def test_appdef_below_2_refused(self):
        for version in ("1", "0", "-3"):
            self.assertRefused(template(JOBOBJ_APPDEFVERSION=version), "Appdef V2+ is required")

    def test_appdef_missing_or_garbled(self):
        self.assertRefused(template(JOBOBJ_APPDEFVERSION=None), "no JOBOBJ_APPDEFVERSION")
        self.assertRefused(template(JOBOBJ_APPDEFVERSION="two"), "not an integer")

    def test_cores_required_and_positive(self):
        self.assertRefused(template(JARVICE_CPU_CORES=None), "no JARVICE_CPU_CORES")
        self.assertRefused(template(JARVICE_CPU_CORES="0"), "at least 1")

    def test_bad_numbers(self):
        self.assertRefused(template(JOBOBJ_GPUS="-1"), "JOBOBJ_GPUS=-1")
        self.assertRefused(template(JOBOBJ_RAM="16G"), "JOBOBJ_RAM='16G'")

    def test_bad_strings(self):
        self.assertRefused(template(JOBOBJ_ARCH="amd64; rm"), "JOBOBJ_ARCH")
        self.assertRefused(template(JOBOBJ_REPO="a b"), "JOBOBJ_REPO")
        self.assertRefused(template(JOBOBJ_NAE="../x"), "JOBOBJ_NAE")
        self.assertRefused(template(JOBOBJ_WALLTIME="1 day"), "JOBOBJ_WALLTIME")
        self.assertRefused(template(JOBOBJ_WALLTIME="\u0661:00"), "JOBOBJ_WALLTIME")
        self.assertRefused(template(JOBOBJ_LICENSES="a b"), "JOBOBJ_LICENSES")

    def test_walltime_forms(self):
        for walltime in ("90", "10:00", "01:00:00", "2-12", "2-12:00:00", "UNLIMITED"):
            self.assertEqual(parse_header(template(JOBOBJ_WALLTIME=walltime)).walltime,
                             walltime)

    def test_docker_secret(self):
        secret = {"server": "quay.io", "username": "u", "password": "p"}
        params = parse_header(template(JOBOBJ_DOCKER_SECRET=json.dumps(secret)))
        self.assertEqual(params.docker_secret, DockerSecret("quay.io", "u", "p"))
        self.assertNotIn("'p'", repr(params))
        self.assertIsNone(parse_header(template(JOBOBJ_DOCKER_SECRET="{}")).docker_secret)
        self.assertIsNone(parse_header(template(JOBOBJ_DOCKER_SECRET="null")).docker_secret)

    def test_bad_docker_secret_refused_without_echoing_it(self):
        error = self.assertRefused(template(JOBOBJ_DOCKER_SECRET="{hunter2"), "not JSON")
        self.assertNotIn("hunter2", error.message)
        self.assertRefused(template(JOBOBJ_DOCKER_SECRET='{"server": "x"}'), "server, username")
        self.assertRefused(template(JOBOBJ_DOCKER_SECRET="[" * 100_000), "not JSON")

    def test_ctrsecret_not_in_repr(self):
        self.assertNotIn(DEFAULT_HEADER["JOBOBJ_CTRSECRET"], repr(parse_header(template())))

    def test_bad_devices_json(self):
        deep = "[" * 100_000 + "]" * 100_000  # deeper than json can decode: not a 500
        for devices, fragment in (("[partition=x", "not JSON"), ('{"a": 1}', "list of strings"),
                                  ("[1]", "list of strings"), (deep, "not JSON")):
            error = self.assertRaises(BadRequest, parse_header, template(JOBOBJ_DEVICES=devices))
            self.assertEqual(error.field, "JOBOBJ_DEVICES")
            self.assertIn(fragment, error.message)

    def test_template_errors_surface(self):
        self.assertRefused(template().replace("{DOWNSTREAM_PARAMETERS}", "{OTHER}"), "{OTHER}")


class ParseDevicesTests(SynchronousTestCase):
    def assertRefused(self, items, fragment):
        error = self.assertRaises(BadRequest, parse_devices, items)
        self.assertEqual(error.field, "JOBOBJ_DEVICES")
        self.assertIn(fragment, error.message)
        return error

    def test_empty(self):
        self.assertEqual(parse_devices([]), Devices(partition="", exclusive=True, overlay=None))

    def test_all_kinds(self):
        devices = parse_devices([
            "partition = gpu,debug", "exclusive=False", "overlay=0",
            "sbatch_constraint=a100&ib", "sbatch_requeue=True", "sbatch_comment=x=y"])
        self.assertEqual(devices, Devices(
            partition="gpu,debug", exclusive=False, overlay=0,
            sbatch=(("constraint", "a100&ib"), ("requeue", ""), ("comment", "x=y"))))

    def test_exclusive_values(self):
        self.assertTrue(parse_devices(["exclusive=true"]).exclusive)
        self.assertFalse(parse_devices(["exclusive=false"]).exclusive)
        self.assertRefused(["exclusive=no"], "True or False")

    def test_overlay(self):
        self.assertEqual(parse_devices(["overlay=1200"]).overlay, 1200)
        self.assertRefused(["overlay=-1"], "integer >= 0")
        self.assertRefused(["overlay=big"], "integer >= 0")

    def test_unknown_device(self):
        self.assertRefused(["gpu=1"], "unknown device 'gpu'")

    def test_malformed(self):
        self.assertRefused(["partition"], "malformed device")
        self.assertRefused(["=x"], "malformed device")

    def test_bad_partition(self):
        self.assertRefused(["partition=a b"], "not a partition name")

    def test_sbatch_option_names(self):
        for option in ("sbatch_", "sbatch_-x", "sbatch_a b", "sbatch_x$y", "sbatch_a.b",
                       "sbatch_\u00e9", "sbatch_Account", "sbatch_acc", "sbatch_A"):
            self.assertRefused([f"{option}=1"], "is not an sbatch option a job may set")

    def test_allowed_options(self):
        devices = ["sbatch_account=proj1", "sbatch_qos=high", "sbatch_mem-per-cpu=2G",
                   "sbatch_gpus-per-task=1", "sbatch_begin=now+1hour",
                   "sbatch_mail-user=kirby@example.org", "sbatch_signal=B:USR1@60",
                   "sbatch_nodelist=node[1-4]", "sbatch_ntasks-per-core=1"]
        self.assertEqual(parse_devices(devices).sbatch,
                         tuple(tuple(d.removeprefix("sbatch_").split("=", 1)) for d in devices))

    def test_options_that_change_what_dssr_tracks_or_sets_are_refused(self):
        for option in ("wait", "clusters", "M", "container", "export", "export-file",
                       "chdir", "D", "output", "o", "error", "input", "open-mode", "job-name",
                       "J", "parsable", "wrap", "array", "dependency", "hold", "uid", "gid",
                       "get-user-env", "propagate", "test-only", "partition", "exclusive",
                       "oversubscribe", "kill-on-invalid-dep", "nodes", "ntasks", "mem",
                       "time", "gpus-per-node", "licenses", "L", "outp", "batch"):
            error = self.assertRefused([f"sbatch_{option}=x"], f"'sbatch_{option}'")
            self.assertIn("allowed: sbatch_ and one of account, begin,", error.message)

    def test_empty_value_refused(self):
        # Refused, not passed on: an empty --account would swallow the next option.
        self.assertRefused(["sbatch_account=", "sbatch_qos=high"],
                           "sbatch_account: --account needs a value")
        self.assertRefused(["sbatch_account=  "], "needs a value")

    def test_flags_only_as_true(self):
        self.assertEqual(parse_devices(["sbatch_requeue=true", "sbatch_contiguous=TRUE",
                                        "sbatch_spread-job=True", "sbatch_overcommit=true",
                                        "sbatch_no-requeue=true"]).sbatch,
                         (("requeue", ""), ("contiguous", ""), ("spread-job", ""),
                          ("overcommit", ""), ("no-requeue", "")))
        for value in ("", "false", "1", "yes", "x"):
            self.assertRefused([f"sbatch_requeue={value}"], "set sbatch_requeue=true")

    def test_readme_lists_the_allowlist(self):
        path = os.path.join(os.path.dirname(__file__), "..", "..", "README.rst")
        with open(path) as readme:
            text = " ".join(readme.read().split())
        listed = text.split("spelled out in full: ", 1)[1].split(". Everything else", 1)[0]
        self.assertEqual(set(re.findall(r"``([a-z-]+)``", listed)), ALLOWED)

    def test_long_value_refused(self):
        self.assertEqual(parse_devices(["sbatch_comment=" + "x" * 4096]).sbatch[0][1],
                         "x" * 4096)
        self.assertRefused(["sbatch_comment=" + "x" * 4097], "longer than 4096")

    def test_control_characters_refused(self):
        for value in ("a\nb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b"):
            self.assertRefused([f"sbatch_comment={value}"], "control characters")
        self.assertRefused(["sbatch_requeue=tr\tue"], "control characters")
