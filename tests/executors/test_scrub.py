"""Credential lines out of fscript."""

import base64
import json

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.config import ExecutorSettings
from dssr.executors.header import parse_header
from dssr.executors.scrub import REMOVED, scrub_fscript, secret_values
from tests.executors.sample import (
    APP_PASSWORD,
    OTHER_PASSWORD,
    OWNER_PASSWORD,
    auth,
    ctrsecret,
    template,
)


class ScrubTests(SynchronousTestCase):
    def test_credential_assignments_removed(self):
        lines = [
            "export SINGULARITY_DOCKER_USERNAME=$(echo $U | base64 -d)",
            "export SINGULARITY_DOCKER_PASSWORD=x",
            "export APPTAINER_DOCKER_PASSWORD=x",
            "JOBOBJ_CTRSECRET=abc",
            "JOBOBJ_DOCKER_SECRET={}",
            "export JARVICE_INIT_DOCKER_PASSWORD='x'",
            "MY_TOKEN = x",
            "registry_auth=x",
            "singularity pull --docker-password x docker://a",
            "curl -H 'Authorization: Bearer abc'",
            "echo bearer xyz",
        ]
        self.assertEqual(scrub_fscript("\n".join(lines) + "\n"),
                         (REMOVED + "\n") * len(lines))

    def test_other_lines_kept(self):
        text = "#!/bin/bash\nexport JARVICE_CMD='env'\necho $JOB_LOCAL_USER\n\nlast"
        self.assertEqual(scrub_fscript(text), text)

    def test_lines_holding_a_known_secret_removed(self):
        text = "a\necho hunter22 | login\nb\r\nx hunter22"
        self.assertEqual(scrub_fscript(text, ["hunter22"]),
                         f"a\n{REMOVED}\nb\r\n{REMOVED}")

    def test_short_secrets_do_not_empty_the_script(self):
        self.assertEqual(scrub_fscript("abc\nxyz\n", ["a", ""]), "abc\nxyz\n")

    def test_secret_values(self):
        secret = json.dumps({"server": "quay.io", "username": "owner",
                             "password": OWNER_PASSWORD})
        params = parse_header(template(JOBOBJ_DOCKER_SECRET=secret))
        settings = ExecutorSettings(init_docker_username="_json_key",
                                    init_docker_password='{"private_key": "k"}')
        values = secret_values(params, settings, ["bearer-token"])
        for expected in (APP_PASSWORD, OTHER_PASSWORD, OWNER_PASSWORD, params.ctrsecret,
                         '{"private_key": "k"}', "bearer-token",
                         auth("other", OTHER_PASSWORD)["auth"],
                         base64.b64encode(APP_PASSWORD.encode()).decode()):
            self.assertIn(expected, values)
        self.assertNotIn("owner", values)
        self.assertNotIn("_json_key", values)

    def test_unusable_entry_still_scrubbed(self):
        params = parse_header(template(JOBOBJ_CTRSECRET=ctrsecret(
            {"quay.io": {"auth": "bm9jb2xvbg=="}})))
        self.assertIn("bm9jb2xvbg==", secret_values(params, ExecutorSettings()))
