"""Credential lines out of fscript."""

import base64
import json

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.config import ExecutorSettings
from dssr.executors.header import parse_header
from dssr.executors.scrub import (
    REMOVED,
    redact_url,
    scrub_fscript,
    secret_values,
    shown_settings,
)
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


class ProxyTests(SynchronousTestCase):
    def test_redact_url(self):
        for url, shown in (
                ("http://user:pa55word@proxy.example.org:3128",
                 "http://***@proxy.example.org:3128"),
                ("https://u%40corp:p%2Fw@10.0.0.1:8080/", "https://***@10.0.0.1:8080/"),
                ("http://us:p/w@d@proxy:3128", "http://***@proxy:3128"),
                ("user:secret@proxy:3128", "***@proxy:3128"),
                ("http://proxy:3128", "http://proxy:3128"),
                ("proxy:3128", "proxy:3128"),
                ("", "")):
            self.assertEqual(redact_url(url), shown)

    def test_shown_settings_and_secrets(self):
        settings = ExecutorSettings(http_proxy="http://user:pa55word@proxy:3128",
                                    https_proxy="http://us:p/w@d@proxy:3129",
                                    no_proxy="localhost")
        shown = shown_settings(settings)
        self.assertEqual((shown.http_proxy, shown.https_proxy, shown.no_proxy),
                         ("http://***@proxy:3128", "http://***@proxy:3129", "localhost"))
        values = secret_values(parse_header(template()), settings)
        for secret in ("pa55word", "user:pa55word", "p/w@d", "us:p/w@d"):
            self.assertIn(secret, values)
        self.assertNotIn("pa55word", repr(settings))
