"""Settings: parsing, precedence (command line > YAML > environment > default), secrets."""

import os

from twisted.trial.unittest import SynchronousTestCase

from dssr import settings
from dssr.settings import SettingsError


class LoadTests(SynchronousTestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_defaults(self):
        loaded = settings.load()
        self.assertEqual((loaded.listen, loaded.connector, loaded.state_dir, loaded.max_body),
                         ("tcp:5000:interface=127.0.0.1", "dummy", "./dssr-state",
                          1024 * 1024))
        self.assertEqual((loaded.allow_unauthenticated, loaded.trust_unverified_tokens,
                          loaded.metrics_user_labels, loaded.jwt_audience, loaded.jwt_issuer),
                         (False, False, False, "", ""))

    def test_environment_names_of_the_reference(self):
        loaded = settings.load(environ={
            "JARVICE_BAREMETAL_CONNECTOR": "slurm", "JARVICE_DUMMY_JOB_FAILING_PERCENT": "7",
            "JARVICE_SLURM_CLUSTER_PORT": "2222", "JARVICE_DUMMY_JOBS_ARE_INTERACTIVE": "true"})
        self.assertEqual((loaded.connector, loaded.dummy_failing_percent, loaded.cluster_port,
                          loaded.dummy_interactive), ("slurm", 7, 2222, True))

    def test_alias_of_the_chart(self):
        self.assertEqual(settings.load(environ={"JARVICE_SLURM_SCHED_LOGLEVEL": "10"}).loglevel,
                         10)
        self.assertEqual(settings.load(environ={"JARVICE_SLURM_SCHED_LOGLEVEL": "10",
                                                "JARVICE_SCHED_LOGLEVEL": "30"}).loglevel, 30)

    def test_waitress_port_and_address(self):
        # A port alone keeps the default's loopback interface; all interfaces are asked for.
        self.assertEqual(settings.load(environ={"WAITRESS_PORT": "8080"}).listen,
                         "tcp:8080:interface=127.0.0.1")
        self.assertEqual(
            settings.load(environ={"WAITRESS_PORT": "8080", "WAITRESS_BIND_ADDRESS": "::1"}).listen,
            "tcp:8080:interface=\\:\\:1")
        self.assertEqual(settings.load(environ={"WAITRESS_BIND_ADDRESS": "0.0.0.0"}).listen,
                         "tcp:5000:interface=0.0.0.0")

    def test_precedence(self):
        environ = {"JARVICE_BAREMETAL_CONNECTOR": "from-env", "DSSR_STATE_DIR": "/env",
                   "JARVICE_SCHED_LOGLEVEL": "30"}
        path = self.write("connector: from-yaml\nstate_dir: /yaml\n")
        loaded = settings.load({"connector": "from-cli", "state_dir": None}, path, environ)
        self.assertEqual((loaded.connector, loaded.state_dir, loaded.loglevel),
                         ("from-cli", "/yaml", 30))

    def test_bad_values_name_the_setting(self):
        for environ, word in (({"JARVICE_SLURM_CLUSTER_PORT": "ssh"}, "cluster_port"),
                              ({"JARVICE_DUMMY_JOB_FAILING_PERCENT": "101"}, "failing"),
                              ({"DSSR_SSH_HOST_KEY_POLICY": "yolo"}, "host_key_policy")):
            error = self.assertRaises(SettingsError, settings.load, environ=environ)
            self.assertIn(word, str(error))

    def test_unknown_yaml_key_is_refused(self):
        error = self.assertRaises(SettingsError, settings.load,
                                  config_path=self.write("conector: slurm\n"))
        self.assertIn("conector", str(error))

    def test_yaml_must_be_a_mapping(self):
        self.assertRaises(SettingsError, settings.load, config_path=self.write("- a\n"))
        self.assertRaises(SettingsError, settings.load, config_path=self.write("a: [\n"))
        self.assertRaises(SettingsError, settings.load, config_path="/nonexistent/dssr.yaml")

    def test_secrets_never_echoed(self):
        error = self.assertRaises(SettingsError, settings.load,
                                  environ={"JARVICE_SCHED_SERVER_KEY": "nocolonsecret"})
        self.assertNotIn("nocolonsecret", str(error))

    def test_replace(self):
        self.assertEqual(settings.load().replace(cluster_port="23").cluster_port, 23)


class ReadmeTests(SynchronousTestCase):
    def test_readme_documents_every_setting(self):
        with open(os.path.join(os.path.dirname(__file__), "..", "README.rst")) as readme:
            text = readme.read()
        for setting in settings.SETTINGS:
            self.assertIn(f"``{setting.key}``", text)
            if setting.env:
                self.assertIn(f"``{setting.env}``", text)
