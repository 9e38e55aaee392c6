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

    def test_bad_values_name_the_setting_as_written(self):
        for environ, expected in (
                ({"JARVICE_SLURM_CLUSTER_PORT": "ssh"},
                 "JARVICE_SLURM_CLUSTER_PORT ('ssh'): must be a positive integer"),
                ({"JARVICE_SCHED_LOGLEVEL": "x"},
                 "JARVICE_SCHED_LOGLEVEL ('x'): must be an integer"),
                ({"DSSR_SNAPSHOT_TTL": "soon"},
                 "DSSR_SNAPSHOT_TTL ('soon'): must be a number, zero or more"),
                ({"JARVICE_DUMMY_JOB_FAILING_PERCENT": "101"},
                 "JARVICE_DUMMY_JOB_FAILING_PERCENT ('101'): must be between 0 and 100"),
                ({"WAITRESS_PORT": "abc"},
                 "WAITRESS_PORT ('abc'): must be a port number, 0 to 65535"),
                ({"WAITRESS_PORT": "70000"},
                 "WAITRESS_PORT ('70000'): must be a port number, 0 to 65535"),
                ({"DSSR_PROXY_LISTEN": "tcp:70000"},
                 "DSSR_PROXY_LISTEN ('tcp:70000'): port '70000' must be a port number, 0 to "
                 "65535 (e.g. tcp:5000:interface=127.0.0.1)")):
            error = self.assertRaises(SettingsError, settings.load, environ=environ)
            self.assertEqual(str(error), expected)

    def test_bad_listen_names_the_option_or_key(self):
        for listen, expected in (
                ("tcp:abc", "port 'abc' must be a port number"),
                ("5001", "a port alone is not an endpoint: write tcp:5001"),
                ("localhost:5001", "'localhost' is not an endpoint type (tcp, tcp6, ssl, "
                                   "unix, ...): write e.g. tcp:5001:interface=localhost")):
            error = self.assertRaises(SettingsError, settings.load, {"listen": listen})
            self.assertTrue(str(error).startswith(f"--listen ({listen!r}): {expected}"), error)
        path = self.write("listen: [1, 2]\n")
        error = self.assertRaises(SettingsError, settings.load, config_path=path)
        self.assertEqual(str(error), f"listen in {path} ([1, 2]): must be a Twisted endpoint "
                                     f"string, e.g. tcp:5000:interface=127.0.0.1")
        for fine in ("unix:/run/dssr.sock", "tcp6:5000:interface=\\:\\:1",
                     "systemd:domain=INET:index=0"):
            self.assertEqual(settings.load({"listen": fine}).listen, fine)

    def test_server_key_needs_both_parts(self):
        for key in (":", "user:", ":password"):
            error = self.assertRaises(SettingsError, settings.load,
                                      environ={"JARVICE_SCHED_SERVER_KEY": key})
            self.assertEqual(str(error), "JARVICE_SCHED_SERVER_KEY: must be user:password, "
                                         "neither part empty (or unset for no key)")
        self.assertEqual(settings.load(environ={"JARVICE_SCHED_SERVER_KEY": "u:p:q"}).server_key,
                         "u:p:q")

    def test_unknown_yaml_key_is_refused(self):
        error = self.assertRaises(SettingsError, settings.load,
                                  config_path=self.write("conector: slurm\n"))
        self.assertIn("conector", str(error))

    def test_yaml_errors_say_where_never_what(self):
        path = self.write("loglevel: 10\nserver_key: upstream:VerySecretPassw0rd: x\n")
        error = self.assertRaises(SettingsError, settings.load, config_path=path)
        self.assertEqual(str(error), f"{path} is not valid YAML at line 2, column 40: mapping "
                                     f"values are not allowed here")
        path = self.write("a: 'VerySecret\n")
        error = self.assertRaises(SettingsError, settings.load, config_path=path)
        self.assertIn(f"{path} is not valid YAML at line 2", str(error))
        self.assertNotIn("VerySecret", str(error))

    def test_open_settings_file_is_warned_of(self):
        path = self.write("loglevel: 10\n")
        os.chmod(path, 0o644)
        self.assertEqual(settings.config_warnings(path), [
            f"the settings file {path} is readable by group or others (mode 0644): run "
            f"chmod 600 {path}"])
        os.chmod(path, 0o600)
        self.assertEqual(settings.config_warnings(path), [])
        self.assertEqual(settings.config_warnings(None), [])

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
