"""SSHRemote: argv quoting, one link per user, service lifecycle, settings."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.application.service import IService
from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from dssr.remote.interfaces import ConnectionLost, IRemote, NotConnected, RemoteError
from dssr.remote.keys import load_private_key
from dssr.remote.link import Policy
from dssr.remote.ssh import SSHRemote
from tests.remote.fakes import FakeConnection


def key_text(passphrase=None):
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)


SERVICE_KEY = load_private_key(key_text())
ALICE_KEY = key_text()


class Connector:
    """``connect(user, key)`` that succeeds at once with a fake connection per call."""

    def __init__(self):
        self.calls = []

    def __call__(self, user, key):
        conn = FakeConnection()
        self.calls.append((user, key, conn))
        return succeed(conn)


def make_remote(user_keys=None, user_labels=False, **policy):
    connector = Connector()
    remote = SSHRemote(connector, Clock(), "login:22", "svc", SERVICE_KEY,
                       user_keys=user_keys, policy=Policy(**policy), user_labels=user_labels)
    return remote, connector


class RunTests(SynchronousTestCase):
    def test_provides_the_interfaces(self):
        remote, _ = make_remote()
        verifyObject(IRemote, remote)
        verifyObject(IService, remote)

    def test_argv_is_joined_with_shlex(self):
        remote, connector = make_remote()
        remote.run(["squeue", "-o", "%i %j", "--name=jarvice_x; rm -rf /"])
        conn = connector.calls[0][2]
        self.assertEqual(conn.channels[0].command,
                         b"squeue -o '%i %j' '--name=jarvice_x; rm -rf /'")

    def test_argv_must_be_a_list_of_str(self):
        remote, _ = make_remote()
        for bad in ("ls -l", [], [b"ls"], ["ls", 1]):
            self.assertRaises(ValueError, remote.run, bad)

    def test_service_account_by_default_and_by_name(self):
        remote, connector = make_remote()
        remote.run(["true"])
        remote.run(["true"], user="svc")
        self.assertEqual([(user, key) for user, key, _ in connector.calls], [("svc", SERVICE_KEY)])
        self.assertEqual(len(connector.calls[0][2].channels), 2)

    def test_mapped_users_get_their_own_connection_and_key(self):
        remote, connector = make_remote(user_keys={"alice": ALICE_KEY})
        remote.run(["id"], user="alice")
        remote.run(["id"], user="alice")
        self.assertEqual(len(connector.calls), 1)
        user, key, conn = connector.calls[0]
        self.assertEqual((user, key), ("alice", load_private_key(ALICE_KEY)))
        self.assertEqual(len(conn.channels), 2)

    def test_user_keys_may_be_a_callable(self):
        remote, connector = make_remote(user_keys=lambda user: ALICE_KEY if user == "bob" else None)
        remote.run(["id"], user="bob")
        self.assertEqual(connector.calls[0][0], "bob")
        error = self.failureResultOf(remote.run(["id"], user="carol"), RemoteError).value
        self.assertIn("no private key is configured for mapped user carol", str(error))

    def test_user_keys_may_be_text_or_base64(self):
        remote, connector = make_remote(user_keys={
            "alice": ALICE_KEY.decode(), "bob": base64.b64encode(ALICE_KEY).decode()})
        remote.run(["id"], user="alice")
        remote.run(["id"], user="bob")
        self.assertEqual([key for _, key, _ in connector.calls],
                         [load_private_key(ALICE_KEY)] * 2)

    def test_unusable_user_key(self):
        remote, connector = make_remote(user_keys={"alice": b"junk"})
        error = self.failureResultOf(remote.run(["id"], user="alice"), RemoteError).value
        self.assertIn("private key of mapped user alice", str(error))
        self.assertEqual(connector.calls, [])


class ServiceTests(SynchronousTestCase):
    def test_start_connects_and_stop_closes_everything(self):
        remote, connector = make_remote(user_keys={"alice": ALICE_KEY}, max_channels=1)
        self.assertEqual(remote.state(), ("connecting", None))
        remote.startService()
        self.assertEqual(remote.state(), ("connected", None))
        running = remote.run(["a"])
        queued = remote.run(["b"])
        mapped = remote.run(["c"], user="alice")
        self.successResultOf(remote.stopService())
        self.failureResultOf(queued, NotConnected)
        self.failureResultOf(running, ConnectionLost)
        self.failureResultOf(mapped, ConnectionLost)
        self.assertEqual([conn.closed_why for _, _, conn in connector.calls],
                         ["DSSR is shutting down"] * 2)
        self.assertEqual(remote.state(), ("failed", "stopped"))


class MetricsTests(SynchronousTestCase):
    def samples(self, user_labels):
        keys = {"alice": ALICE_KEY, "bob": key_text()}
        remote, connector = make_remote(user_keys=keys, user_labels=user_labels)
        remote.startService()
        self.addCleanup(remote.stopService)
        runs = [remote.run(["true"], user=user) for user in (None, None, "alice", "bob", "bob")]
        for _, _, conn in connector.calls:
            for channel in conn.channels:
                channel.finish()
        for run in runs:
            self.successResultOf(run)
        endpoint = remote.tcp_endpoint("node1", 8080, user="alice")
        opened, refused = (endpoint.connect(Factory.forProtocol(Protocol)) for _ in "ab")
        alice = connector.calls[1][2]
        alice.streams[0].opened.callback(alice.streams[0])
        alice.streams[1].close()
        self.successResultOf(opened)
        self.failureResultOf(refused, ConnectionLost)
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in remote.metrics()}

    def test_by_role_naming_no_account(self):
        samples = self.samples(False)
        service, mapped = (("role", "service"),), (("role", "mapped"),)
        self.assertEqual(samples, {
            ("dssr_ssh_logins", service): 1, ("dssr_ssh_logins", mapped): 2,
            ("dssr_remote_commands", service): 2, ("dssr_remote_commands", mapped): 3,
            ("dssr_remote_command_failures", service): 0,
            ("dssr_remote_command_failures", mapped): 0,
            ("dssr_ssh_connected", service): 1, ("dssr_ssh_connected", mapped): 2,
            ("dssr_ssh_streams", service): 0, ("dssr_ssh_streams", mapped): 2,
            ("dssr_ssh_open_streams", service): 0, ("dssr_ssh_open_streams", mapped): 1})

    def test_by_account_when_asked(self):
        samples = self.samples(True)
        self.assertEqual(samples[("dssr_remote_commands", (("role", "mapped"),
                                                           ("user", "bob")))], 2)
        self.assertEqual(samples[("dssr_remote_commands", (("role", "service"),
                                                           ("user", "svc")))], 2)
        self.assertEqual(len(samples), 18)
