"""SSHRemote against a real OpenSSH sshd on 127.0.0.1 (see ``tests.integration.sshd``)."""

import functools
import os
import pwd

from twisted.conch.ssh.keys import Key
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from dssr import compose
from dssr import settings as dssr_settings
from dssr.remote.interfaces import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    OutputTooLarge,
    RemoteResult,
)
from dssr.remote.keys import fingerprint, load_private_key
from tests.integration.sshd import SSHServer, generate_key, require_sshd

ME = pwd.getpwuid(os.geteuid()).pw_name


def deferred_test(method):
    """Let trial run an ``async def`` test method."""
    @functools.wraps(method)
    def run(self):
        return ensureDeferred(method(self))
    return run


class SSHRemoteTests(TestCase):
    timeout = 60

    def setUp(self):
        require_sshd()
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.server = SSHServer(reactor, self.directory)
        self.client_key, public = generate_key()
        self.server.authorize(public)
        self.known_hosts = os.path.join(self.directory, "known_hosts")
        self.write_known_hosts(self.server.known_hosts_line())
        self.addCleanup(lambda: ensureDeferred(self.server.stop()))
        return ensureDeferred(self.server.start())

    def write_known_hosts(self, data: bytes) -> None:
        with open(self.known_hosts, "wb") as known:
            known.write(data)

    def remote(self, user_keys=None, **values):
        """An SSHRemote for the test server, stopped at cleanup."""
        settings = dssr_settings.load(cli={
            "cluster_addr": self.server.host, "cluster_port": self.server.port,
            "ssh_user": ME, "ssh_pkey": self.client_key.decode(),
            "ssh_known_hosts": self.known_hosts, **values})
        remote = compose.ssh_remote(settings, reactor, user_keys, backoff_base=0.1)
        remote.startService()
        self.addCleanup(remote.stopService)
        return remote

    def marker(self) -> str:
        return os.path.join(self.directory, "ran")

    @deferred_test
    async def test_many_concurrent_commands_share_one_login(self):
        remote = self.remote()
        results = await gatherResults(
            [remote.run(["echo", f"command {n}"]) for n in range(200)])
        self.assertEqual([r.stdout for r in results],
                         [f"command {n}\n".encode() for n in range(200)])
        self.assertEqual(self.server.accepted_logins(), 1)
        self.assertNotIn("no more sessions", self.server.log())
        self.assertEqual(remote.state(), ("connected", None))

    @deferred_test
    async def test_ten_megabytes_of_stdin_round_trip(self):
        data = os.urandom(10 * 1024 * 1024)
        result = await self.remote().run(["cat"], stdin=data)
        self.assertEqual((result.status, len(result.stdout)), (0, len(data)))
        self.assertTrue(result.stdout == data)

    @deferred_test
    async def test_exit_status_stderr_and_signal(self):
        remote = self.remote()
        failed = await remote.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual(failed, RemoteResult(3, None, b"out\n", b"err\n"))
        killed = await remote.run(["sh", "-c", "kill -TERM $$"])
        self.assertEqual((killed.status, killed.signal), (None, "TERM"))

    @deferred_test
    async def test_argv_reaches_the_command_unchanged(self):
        argv = ["printf", "%s|", "a b", "$HOME", "'q'", "; touch " + self.marker()]
        result = await self.remote().run(argv)
        self.assertEqual(result.stdout, "|".join(argv[2:]).encode() + b"|")
        self.assertFalse(os.path.exists(self.marker()))

    @deferred_test
    async def test_command_past_its_timeout_is_cut_off(self):
        remote = self.remote()
        started = reactor.seconds()
        with self.assertRaises(CommandTimeout):
            await remote.run(["sleep", "30"], timeout=0.5)
        self.assertLess(reactor.seconds() - started, 5)
        # The channel is gone and the connection still serves commands.
        result = await remote.run(["echo", "still here"])
        self.assertEqual(result.stdout, b"still here\n")

    @deferred_test
    async def test_commands_cut_off_do_not_use_up_sessions(self):
        # More cut-off commands than sshd's MaxSessions, still running (as root sshd
        # cannot signal them): later commands must still get sessions.
        remote = self.remote()
        cut_off = [remote.run(["sleep", "2"], timeout=0.2) for _ in range(12)]
        for command in cut_off:
            with self.assertRaises(CommandTimeout):
                await command
        results = await gatherResults([remote.run(["true"]) for _ in range(20)])
        self.assertTrue(all(result.ok for result in results))
        self.assertEqual(self.server.accepted_logins(), 1)

    @deferred_test
    async def test_output_cap(self):
        remote = self.remote(ssh_max_output=1024 * 1024)
        with self.assertRaises(OutputTooLarge):
            await remote.run(["head", "-c", "5000000", "/dev/zero"])
        result = await remote.run(["head", "-c", "1048576", "/dev/zero"])
        self.assertEqual(len(result.stdout), 1024 * 1024)

    @deferred_test
    async def test_killed_sshd_fails_in_flight_then_reconnects(self):
        remote = self.remote()
        await remote.run(["true"])
        in_flight = remote.run(["sleep", "30"])
        await deferLater(reactor, 0.2, lambda: None)
        await self.server.stop()
        with self.assertRaises(ConnectionLost):
            await in_flight
        self.assertNotEqual(remote.state()[0], "connected")
        await self.server.start()
        result = await remote.run(["echo", "back"])
        self.assertEqual(result.stdout, b"back\n")
        self.assertEqual(remote.state(), ("connected", None))
        self.assertEqual(self.server.accepted_logins(), 2)

    async def refused(self, remote, error_type):
        """Run a command that must be refused; check nothing ran and return the error."""
        with self.assertRaises(error_type) as caught:
            await remote.run(["touch", self.marker()])
        self.assertFalse(os.path.exists(self.marker()))
        self.assertEqual(self.server.accepted_logins(), 0)
        self.assertEqual(remote.state()[0], "failed")
        return str(caught.exception)

    def server_fingerprint(self) -> str:
        return fingerprint(Key.fromString(self.server.host_public))

    @deferred_test
    async def test_unknown_host_key_is_refused(self):
        self.write_known_hosts(b"")
        message = await self.refused(self.remote(), HostKeyError)
        for part in (f"[127.0.0.1]:{self.server.port}", "unknown", self.server_fingerprint()):
            self.assertIn(part, message)

    @deferred_test
    async def test_changed_host_key_is_refused(self):
        _, other = generate_key()
        self.write_known_hosts(b"[127.0.0.1]:%d %s" % (self.server.port, other))
        message = await self.refused(self.remote(ssh_host_key_policy="accept-new"), HostKeyError)
        for part in (f"[127.0.0.1]:{self.server.port}", "CHANGED", self.server_fingerprint(),
                     fingerprint(Key.fromString(other))):
            self.assertIn(part, message)

    @deferred_test
    async def test_accept_new_trusts_and_records_the_key(self):
        self.write_known_hosts(b"")
        result = await self.remote(ssh_host_key_policy="accept-new").run(["true"])
        self.assertTrue(result.ok)
        with open(self.known_hosts, "rb") as known:
            self.assertEqual(known.read(), self.server.known_hosts_line())
        self.assertTrue((await self.remote().run(["true"])).ok)

    @deferred_test
    async def test_wrong_client_key_is_refused(self):
        self.client_key, _ = generate_key()
        message = await self.refused(self.remote(), AuthenticationFailed)
        client = fingerprint(load_private_key(self.client_key))
        for part in (ME, f"[127.0.0.1]:{self.server.port}", client):
            self.assertIn(part, message)
        self.assertNotIn(self.client_key.decode().splitlines()[1], message)

    @deferred_test
    async def test_rsa_and_ecdsa_client_keys(self):
        for kind in ("rsa", "ecdsa"):
            self.client_key, public = generate_key(kind)
            self.server.authorize(public)
            self.assertTrue((await self.remote().run(["true"])).ok)
        self.assertIn("ssh2: RSA SHA256:", self.server.log())
        self.assertIn("ssh2: ECDSA SHA256:", self.server.log())

    @deferred_test
    async def test_mapped_user_gets_its_own_login(self):
        if os.geteuid() != 0:
            raise SkipTest("logging in as another account needs the test sshd to run as root")
        # sshd reads authorized_keys as the user logging in; trial's temp dir is 0700.
        os.chmod(os.path.dirname(self.directory), 0o755)
        remote = self.remote(user_keys={"nobody": self.client_key})
        await remote.run(["true"])
        mapped = await remote.run(["true"], user="nobody")
        # nobody's shell is nologin: what matters is that sshd let nobody in.
        self.assertIsInstance(mapped, RemoteResult)
        self.assertEqual(self.server.accepted_logins("nobody"), 1)
        self.assertEqual(self.server.accepted_logins(ME), 1)
