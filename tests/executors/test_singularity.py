"""The whole executor: upstream script in, Slurm batch job out."""

import base64
import json
import re

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.executors import ExecutorSettings, prepare
from dssr.executors.scrub import REMOVED
from dssr.jobs import app_ports
from dssr.slurm.commands import sbatch
from tests.executors.sample import (
    APP_PASSWORD,
    APP_USER,
    OTHER_PASSWORD,
    OWNER_PASSWORD,
    template,
)

NAME = "20261124140000-A1B2C-jarvice-ubuntu-kirby_s1"
INIT_PASSWORD = '{"type": "service_account", "private_key": "-----BEGIN KEY-----"}'
SETTINGS = ExecutorSettings(
    system_registry="us-docker.pkg.dev", system_repo_base="jarvice-system/images",
    images_tag="jarvice-3.24.5-amd64", init_docker_username="_json_key",
    init_docker_password=INIT_PASSWORD, job_scratch_dir="/jxe_scratch/users/kirby",
)


def payload(batch_script: str) -> str:
    """The filled script a batch script carries."""
    chunks = re.findall(r"^export DSSR_PAYLOAD_\d+=(\S*)$", batch_script, re.MULTILINE)
    return base64.b64decode("".join(chunks)).decode()


class PrepareTests(SynchronousTestCase):
    def test_submission(self):
        job = prepare(template(JOBOBJ_ARCH="arm64"), NAME, 2, False, SETTINGS)
        self.assertEqual(sbatch(job.batch)[:4], ["sbatch", "--parsable", "-J", f"jarvice_{NAME}"])
        self.assertIn(f"/jxe_scratch/users/kirby/.jarvice/{NAME}.%j.out", sbatch(job.batch))
        self.assertEqual((job.files.output, job.files.end_record),
                         (f"/jxe_scratch/users/kirby/.jarvice/{NAME}.%j.out",
                          f"/jxe_scratch/users/kirby/.jarvice/{NAME}.%j.end"))
        filled = payload(job.batch.script)
        self.assertIn("export JARVICE_INIT_IMAGE=docker://us-docker.pkg.dev/jarvice-system/"
                      "images/initv2:jarvice-3.24.5-arm64\n", filled)
        self.assertIn("export JARVICE_APP_IMAGE=docker://us-docker.pkg.dev/jarvice/images/"
                      "ubuntu:24.04\n", filled)
        self.assertIn("export JARVICE_DOCKER_USERNAME="
                      + base64.b64encode(APP_USER.encode()).decode(), filled)
        self.assertIn("export JARVICE_CMD='/usr/bin/env'\n", filled)
        self.assertIn('echo "${HOME} ${JARVICE_APP_IMAGE}"', filled)
        self.assertNotIn("{DOWNSTREAM_PARAMETERS}", filled)

    def test_held(self):
        self.assertIn("-H", sbatch(prepare(template(), NAME, 1, True, SETTINGS).batch))
        self.assertNotIn("-H", sbatch(prepare(template(), NAME, 1, False, SETTINGS).batch))

    def test_no_secret_survives_in_fscript(self):
        docker_secret = json.dumps({"server": "us-docker.pkg.dev", "username": "owner",
                                    "password": OWNER_PASSWORD})
        job = prepare(template(JOBOBJ_DOCKER_SECRET=docker_secret), NAME, 1, False, SETTINGS,
                      secrets=["eyJhbGciOiJSUzI1NiJ9.bearer.token"])
        self.assertIn(REMOVED, job.fscript)
        self.assertIn("export JARVICE_CMD='/usr/bin/env'", job.fscript)
        self.assertIn("JOBOBJ_USER=kirby", job.fscript)
        filled = payload(job.batch.script)
        self.assertIn(base64.b64encode(OWNER_PASSWORD.encode()).decode(), filled)
        for secret in (APP_PASSWORD, OTHER_PASSWORD, OWNER_PASSWORD, INIT_PASSWORD,
                       "eyJhbGciOiJSUzI1NiJ9.bearer.token"):
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                self.assertNotIn(form, job.fscript)
        for name in ("JOBOBJ_CTRSECRET", "JOBOBJ_DOCKER_SECRET", "DOCKER_PASSWORD",
                     "DOCKER_USERNAME"):
            self.assertNotIn(name, job.fscript)

    def test_proxy_credentials_reach_the_job_not_fscript(self):
        settings = ExecutorSettings(http_proxy="http://puser:Pr0xy-pw@proxy.example.org:3128",
                                    https_proxy="https://puser:Pr0xy-pw@proxy.example.org:3129",
                                    no_proxy="localhost,.example.org")
        job = prepare(template(), NAME, 1, False, settings)
        filled = payload(job.batch.script)
        self.assertIn("export SCHTTP_PROXY=http://puser:Pr0xy-pw@proxy.example.org:3128\n",
                      filled)
        self.assertIn("export SCHTTPS_PROXY=https://puser:Pr0xy-pw@proxy.example.org:3129\n",
                      filled)
        self.assertIn("export SCHTTP_PROXY='http://***@proxy.example.org:3128'\n", job.fscript)
        self.assertIn("export SCHTTPS_PROXY='https://***@proxy.example.org:3129'\n",
                      job.fscript)
        self.assertIn("export SCNO_PROXY=localhost,.example.org\n", job.fscript)
        self.assertNotIn("Pr0xy-pw", job.fscript)
        self.assertNotIn("puser", job.fscript)
        self.assertEqual(filled.replace("puser:Pr0xy-pw", "***").count("\n"),
                         job.fscript.count("\n"))

    def test_repr_holds_no_secret(self):
        job = prepare(template(), NAME, 1, False, SETTINGS)
        self.assertNotIn(APP_PASSWORD, repr(job))
        self.assertNotIn("DSSR_PAYLOAD", repr(job))
        self.assertNotIn(INIT_PASSWORD, repr(SETTINGS))

    def test_interactive_refused_with_a_clear_message(self):
        error = self.assertRaises(BadRequest, prepare, template(JOBOBJ_INTERACTIVE="True"),
                                  NAME, 1, False, SETTINGS)
        self.assertEqual(error.field, "hpc_script")
        self.assertIn("interactive jobs are not supported on this cluster", error.message)

    def test_interactive_accepted_where_supported(self):
        settings = ExecutorSettings(interactive=True, jobs_path="/jobs/$/")
        job = prepare(template(JOBOBJ_INTERACTIVE="True", JOBOBJ_DEVICES='["exclusive=False"]'),
                      NAME, 1, False, settings, number=42)
        self.assertNotIn("--exclusive", sbatch(job.batch))  # its own port, not the node
        ports = " ".join(map(str, app_ports(NAME, 42)))
        self.assertIn(f"DSSR_APP_PORTS='{ports}' DSSR_SERVICE_PATH=/jobs/42/\n",
                      job.batch.script)
        self.assertIn('export JARVICE_SERVICE_PORT="$DSSR_SERVICE_PORT"', job.fscript)

    def test_refusals_are_bad_requests_on_hpc_script(self):
        for script in (template(JOBOBJ_APPDEFVERSION="1"), template(body="{HOME}"),
                       template(JOBOBJ_REPO=None), template(JOBOBJ_CTRSECRET="%%%")):
            error = self.assertRaises(BadRequest, prepare, script, NAME, 1, False, SETTINGS)
            self.assertEqual(error.field, "hpc_script")
        for devices in ('["gpu=1"]', '["sbatch_wait=true"]'):  # the line more precisely
            error = self.assertRaises(BadRequest, prepare, template(JOBOBJ_DEVICES=devices),
                                      NAME, 1, False, SETTINGS)
            self.assertEqual(error.field, "JOBOBJ_DEVICES")
