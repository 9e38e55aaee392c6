"""The composition root: settings become the transport, the connector and their parts."""

import base64
import os
import pwd
from dataclasses import fields

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from dssr import compose
from dssr import settings as dssr_settings
from dssr.connectors.interfaces import IConnector
from dssr.connectors.slurm import SlurmConnector
from dssr.executors.config import ExecutorSettings
from dssr.remote.interfaces import IRemote
from dssr.remote.link import Policy
from dssr.remote.local import LocalRemote
from dssr.remote.ssh import SSHRemote
from dssr.settings import SettingsError
from dssr.slurm.interfaces import ISlurm
from dssr.slurm.rest.client import ClientService
from dssr.slurm.rest.restd import RestSlurm
from dssr.slurm.rest.tokens import MintedTokens, ScontrolTokens, StaticToken
from dssr.startup import report_lines


def key_text(passphrase=None):
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)


def settings(**values):
    base = dict(cluster_addr="login", cluster_port=2222, ssh_user="svc",
                ssh_pkey=key_text().decode(), ssh_known_hosts="/nonexistent/known_hosts")
    return dssr_settings.load(cli={**base, **values})


class SSHRemoteTests(SynchronousTestCase):
    def test_builds_from_settings(self):
        remote = compose.ssh_remote(settings(ssh_max_channels=3), Clock(), queue_timeout=5)
        verifyObject(IRemote, remote)
        self.assertEqual(remote._policy.max_channels, 3)
        self.assertFalse(remote._user_labels)
        labelled = compose.ssh_remote(settings(metrics_user_labels="true"), Clock())
        self.assertTrue(labelled._user_labels)
        self.assertEqual(remote._policy.queue_timeout, 5)

    def test_encrypted_key_with_passphrase(self):
        text = key_text(b"pw").decode()
        compose.ssh_remote(settings(ssh_pkey=text, ssh_pkey_passphrase="pw"), Clock())

    def test_missing_settings_are_named(self):
        for name in ("cluster_addr", "ssh_user", "ssh_pkey"):
            error = self.assertRaises(SettingsError, compose.ssh_remote,
                                      settings(**{name: ""}), Clock())
            self.assertIn(name, str(error))

    def test_bad_key_is_a_settings_error_without_the_key(self):
        text = key_text(b"pw").decode()
        error = self.assertRaises(SettingsError, compose.ssh_remote,
                                  settings(ssh_pkey=text, ssh_pkey_passphrase="nope"), Clock())
        self.assertIn("ssh_pkey", str(error))
        self.assertNotIn(text.splitlines()[1], str(error))


class DefaultsTests(SynchronousTestCase):
    """Objects built without settings start where the settings table does."""

    def test_policy(self):
        self.assertEqual(compose.policy(dssr_settings.load()), Policy())
        changed = compose.policy(settings(ssh_keepalive="7", ssh_idle_timeout="9"),
                                 keepalive=0)
        self.assertEqual((changed.keepalive, changed.idle_timeout), (0, 9))

    def test_executor_settings(self):
        self.assertEqual(compose.executor_settings(dssr_settings.load()), ExecutorSettings())
        every = {field.name for field in fields(ExecutorSettings)}
        self.assertEqual(every - set(dssr_settings.BY_KEY),
                         {"service_port", "ssh_port", "interactive", "jobs_path"})
        made = compose.executor_settings(dssr_settings.load(
            {"job_scratch_dir": "/s", "jobs_domain": "jobs.example.org"}))
        self.assertEqual((made.job_scratch_dir, made.interactive, made.jobs_path),
                         ("/s", True, "/"))
        path_based = compose.executor_settings(dssr_settings.load(
            {"jobs_domain": "jobs.example.org/x/job$"}))
        self.assertEqual(path_based.jobs_path, "/x/job$/")


class ConnectorTests(SynchronousTestCase):
    def test_slurm_over_ssh(self):
        connector = compose.connector(settings(connector="slurm"), MemoryReactorClock())
        verifyObject(IConnector, connector)
        self.assertIsInstance(connector.service, SSHRemote)
        verifyObject(ISlurm, connector.slurm)

    def test_slurm_on_this_host(self):
        connector = compose.slurm_connector(dssr_settings.load({"remote": "local"}),
                                            MemoryReactorClock())
        self.assertIsInstance(connector, SlurmConnector)
        self.assertIsNone(connector.service)
        self.assertIsInstance(connector.slurm._commands.remote, LocalRemote)

    def test_service_user_on_this_host_is_this_process_user(self):
        # ssh_user names the SSH login; on the login node itself DSSR's jobs are its own.
        me = pwd.getpwuid(os.geteuid()).pw_name
        local = dssr_settings.load({"remote": "local", "ssh_user": "someone-else"})
        self.assertEqual(compose.service_user(local), me)
        ssh = dssr_settings.load({"ssh_user": "someone-else"})
        self.assertEqual(compose.service_user(ssh), "someone-else")

    def test_local_remote_cannot_map_users(self):
        path = self.mktemp()
        with open(path, "w") as mapping:
            mapping.write("users_id_mapping: []\n")
        os.chmod(path, 0o600)
        error = self.assertRaises(
            SettingsError, compose.slurm_connector,
            dssr_settings.load({"remote": "local", "id_mapping_file": path,
                                "server_key": "upstream:pw"}), Clock())
        self.assertIn("remote=ssh", str(error))

    def test_unreadable_mapping_file(self):
        error = self.assertRaises(SettingsError, compose.identities,
                                  settings(id_mapping_file="/nonexistent/mapping.yaml",
                                           server_key="upstream:pw"))
        self.assertIn("id_mapping_file /nonexistent/mapping.yaml", str(error))

    def in_a_directory_holding(self, name: str | None, text: str = "") -> None:
        """Run the rest of the test in a fresh working directory with file ``name``."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        if name:
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(text)
            os.chmod(os.path.join(directory, name), 0o600)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(directory)

    def test_the_references_mapping_file_in_the_working_directory(self):
        key = base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n").decode()
        self.in_a_directory_holding(compose.REFERENCE_MAPPING_FILE, (
            "users_id_mapping:\n  - user: kirby\n    jarvice_user: kirby\n"
            f"    mail: kirby@example.org\n    mapped_user: dssr-kirby\n"
            f"    ssh_private_key_b64: {key}\n"))
        with capturedLogs() as events:
            mapping = compose.identities(settings(server_key="u:p"))
        self.assertTrue(mapping.by_cluster_user("dssr-kirby"))
        said = "".join(formatEvent(event) for event in events)
        self.assertIn(os.path.abspath(compose.REFERENCE_MAPPING_FILE), said)
        # id_mapping_file, when set, wins.
        error = self.assertRaises(SettingsError, compose.identities,
                                  settings(server_key="u:p",
                                           id_mapping_file="/nonexistent/mapping.yaml"))
        self.assertIn("/nonexistent/mapping.yaml", str(error))
        # Unverified tokens from anyone are refused for this file as for any other.
        error = self.assertRaises(SettingsError, compose.identities, settings())
        self.assertIn(f"ID mapping ({os.path.abspath(compose.REFERENCE_MAPPING_FILE)}) "
                      "would believe bearer tokens unverified", str(error))

    def test_no_mapping_file_anywhere_is_no_mapping(self):
        self.in_a_directory_holding(None)
        self.assertIsNone(compose.identities(settings()))


class RestTests(SynchronousTestCase):
    """slurm_interface=http: slurmrestd's client, its tokens, and what is refused."""

    def key_file(self, data=b"k" * 32, mode=0o600):
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)
        return path

    def connector(self, **values):
        values = {"slurmrestd_addr": "http://login1", **values}
        return compose.slurm_connector(settings(connector="slurm", slurm_interface="http",
                                                **values), MemoryReactorClock())

    def test_each_token_source(self):
        minted = self.connector(slurm_jwt_key_file=self.key_file()).slurm
        verifyObject(ISlurm, minted)
        self.assertIsInstance(minted, RestSlurm)
        self.assertIsInstance(minted._tokens, MintedTokens)
        self.assertEqual(minted._client.base, "http://login1:6820")
        static = self.connector(slurm_sa_token="sa", slurmrestd_port="7000").slurm
        self.assertIsInstance(static._tokens, StaticToken)
        self.assertEqual(static._client.base, "http://login1:7000")
        self.assertIsInstance(self.connector().slurm._tokens, ScontrolTokens)
        self.assertEqual(self.connector(slurmrestd_api_version="v0.0.40").slurm.version,
                         "v0.0.40")

    def test_the_service_holds_the_transport_and_the_client(self):
        service = self.connector(slurm_sa_token="sa").service
        self.assertEqual([type(child) for child in service],
                         [SSHRemote, ClientService])

    def test_what_cannot_work_is_refused_at_start(self):
        for values, named in (({"slurmrestd_addr": ""}, "slurmrestd_addr"),
                              ({"slurmrestd_addr": "ftp://x"}, "slurmrestd_addr"),
                              ({"slurm_jwt_key_file": "/nonexistent/key"}, "slurm_jwt_key_file"),
                              ({"slurm_jwt_key_file": self.key_file(b"")}, "is empty"),
                              ({"slurm_jwt_key_file": self.key_file(mode=0o644)},
                               "(mode 0644) and holds secrets: run chmod 600")):
            error = self.assertRaises(SettingsError, self.connector, **values)
            self.assertIn(named, str(error))
        self.assertRaises(SettingsError, settings, slurmrestd_api_version="v0.0.39")

    def test_the_startup_report_names_no_token(self):
        text = "\n".join(report_lines(settings(
            connector="slurm", slurm_interface="http", slurmrestd_addr="http://login1",
            slurm_sa_token="sa-token-secret")))
        self.assertIn("slurmrestd at http://login1 port 6820", text)
        self.assertNotIn("sa-token-secret", text)
