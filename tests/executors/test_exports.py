"""The export block that fills {DOWNSTREAM_PARAMETERS}."""

import base64
import shlex
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.config import ExecutorSettings
from dssr.executors.exports import export_block, export_values
from dssr.executors.header import parse_header
from dssr.executors.registry import Credentials, Images
from tests.executors.sample import template

FOUND = Images(init="reg/sys/initv2:tag", app="quay.io/a/app:1")
LOGIN = Credentials("app'user", 'pa"ss $word')
HOSTILE = "/scratch/it's $HOME `id` \\ \"x\" {y}"


def exported(block: str) -> dict:
    """The variables a bash shell ends up with after running ``block``."""
    names = [line.split("=", 1)[0].split()[1] for line in block.splitlines()
             if line.startswith("export ")]
    dump = "".join(f'printf "%s\\0" "${name}"\n' for name in names)
    result = subprocess.run(["bash", "-c", block + dump], capture_output=True, check=True,
                            env={"USER": "kirby", "PATH": "/usr/bin:/bin"})
    return dict(zip(names, result.stdout.decode().split("\0"), strict=False))


class ExportBlockTests(SynchronousTestCase):
    def test_variable_list(self):
        names = [name for name, _ in export_values(
            parse_header(template()), ExecutorSettings(), FOUND, LOGIN)]
        self.assertEqual(names, [
            "JARVICE_JOB_SCRATCH_DIR", "JARVICE_JOB_GLOBAL_SCRATCH_DIR",
            "JARVICE_JOB_APP_IS_IN_GLOBAL_REGISTRIES", "SINGULARITYENV_JARVICE_SERVICE_PORT",
            "SINGULARITYENV_JARVICE_SSH_PORT", "JARVICE_SINGULARITY_TMPDIR",
            "JARVICE_SINGULARITY_OVERLAY_SIZE", "JARVICE_INIT_DOCKER_USERNAME",
            "JARVICE_INIT_DOCKER_PASSWORD", "JARVICE_DOCKER_USERNAME",
            "JARVICE_DOCKER_PASSWORD", "JARVICE_APP_IMAGE", "JARVICE_INIT_IMAGE", "SV",
            "SV_FLAG", "SCHTTP_PROXY", "SCHTTPS_PROXY", "SCNO_PROXY"])

    def test_values_reach_the_shell_intact(self):
        settings = ExecutorSettings(
            job_scratch_dir=HOSTILE, job_global_scratch_dir="/global/",
            singularity_tmpdir=HOSTILE, init_docker_username="_json_key",
            init_docker_password='{"k": "v\'"}', http_proxy="http://p:3128",
            no_proxy="a,b", singularity_verbose=True,
            job_global_registries=("quay.io",))
        params = parse_header(template(JARVICE_CMD="'echo hi'"))
        env = exported(export_block(params, settings, FOUND, LOGIN))
        self.assertEqual(env["JARVICE_JOB_SCRATCH_DIR"], HOSTILE + "/")
        self.assertEqual(env["JARVICE_JOB_GLOBAL_SCRATCH_DIR"], "/global/")
        self.assertEqual(env["JARVICE_JOB_APP_IS_IN_GLOBAL_REGISTRIES"], "True")
        self.assertEqual(env["SINGULARITYENV_JARVICE_SERVICE_PORT"], "2228")
        self.assertEqual(env["SINGULARITYENV_JARVICE_SSH_PORT"], "2227")
        self.assertEqual(env["JARVICE_SINGULARITY_TMPDIR"], HOSTILE)
        self.assertEqual(env["JARVICE_SINGULARITY_OVERLAY_SIZE"], "600")
        self.assertEqual(base64.b64decode(env["JARVICE_INIT_DOCKER_USERNAME"]), b"_json_key")
        self.assertEqual(base64.b64decode(env["JARVICE_INIT_DOCKER_PASSWORD"]),
                         b'{"k": "v\'"}')
        self.assertEqual(base64.b64decode(env["JARVICE_DOCKER_USERNAME"]), b"app'user")
        self.assertEqual(base64.b64decode(env["JARVICE_DOCKER_PASSWORD"]), b'pa"ss $word')
        self.assertEqual(env["JARVICE_APP_IMAGE"], "docker://quay.io/a/app:1")
        self.assertEqual(env["JARVICE_INIT_IMAGE"], "docker://reg/sys/initv2:tag")
        self.assertEqual((env["SV"], env["SV_FLAG"]), ("true", "-v"))
        self.assertEqual(env["SCHTTP_PROXY"], "http://p:3128")
        self.assertEqual(env["SCHTTPS_PROXY"], "")
        self.assertEqual(env["SCNO_PROXY"], "a,b")
        self.assertEqual(env["JOB_LOCAL_USER"], "kirby")
        self.assertEqual(env["JARVICE_CMD"], "echo hi")

    def test_defaults(self):
        env = exported(export_block(parse_header(template()), ExecutorSettings(), FOUND,
                                    Credentials()))
        self.assertEqual(env["JARVICE_JOB_SCRATCH_DIR"], "")
        self.assertEqual(env["JARVICE_JOB_APP_IS_IN_GLOBAL_REGISTRIES"], "False")
        self.assertEqual(env["JARVICE_SINGULARITY_TMPDIR"], "/tmp")
        self.assertEqual(env["JARVICE_DOCKER_PASSWORD"], "")
        self.assertEqual((env["SV"], env["SV_FLAG"]), ("false", "-s"))

    def test_overlay_device_overrides_setting(self):
        params = parse_header(template(JOBOBJ_DEVICES='["overlay=0"]'))
        env = exported(export_block(params, ExecutorSettings(), FOUND, LOGIN))
        self.assertEqual(env["JARVICE_SINGULARITY_OVERLAY_SIZE"], "0")

    def test_jarvice_cmd_written_verbatim(self):
        command = "'it'\"'\"'s {a} \\x'\"$USER\""
        block = export_block(parse_header(template(JARVICE_CMD=command)),
                             ExecutorSettings(), FOUND, LOGIN)
        self.assertIn(f"\nexport JARVICE_CMD={command}\n", block)
        self.assertEqual(exported(block)["JARVICE_CMD"], "it's {a} \\xkirby")

    def test_every_supplied_value_is_quoted(self):
        block = export_block(parse_header(template()), ExecutorSettings(
            job_scratch_dir=HOSTILE), FOUND, LOGIN)
        self.assertIn(f"export JARVICE_JOB_SCRATCH_DIR={shlex.quote(HOSTILE + '/')}", block)
