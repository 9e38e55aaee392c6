"""LocalRemote: real processes on this host, through the same interface as SSH."""

import os
import pwd

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface.verify import verifyObject

from dssr.remote.interfaces import (
    CommandTimeout,
    IRemote,
    OutputTooLarge,
    RemoteError,
    RemoteResult,
)
from dssr.remote.local import LocalRemote


class LocalRemoteTests(TestCase):
    def setUp(self):
        self.remote = LocalRemote(reactor, command_timeout=10, max_output=1024 * 1024)

    def test_provides_iremote(self):
        verifyObject(IRemote, self.remote)
        self.assertEqual(self.remote.state(), ("connected", None))

    def test_status_output_and_signal(self):
        runs = gatherResults([
            self.remote.run(["sh", "-c", "echo out; echo err >&2; exit 3"]),
            self.remote.run(["sh", "-c", "kill -TERM $$"]),
            self.remote.run(["no-such-command-dssr"]),
        ])

        def check(results):
            failed, killed, missing = results
            self.assertEqual(failed, RemoteResult(3, None, b"out\n", b"err\n"))
            self.assertEqual((killed.status, killed.signal), (None, "TERM"))
            self.assertEqual(missing.status, 127)
        return runs.addCallback(check)

    def test_argv_is_not_shell_text(self):
        marker = os.path.abspath(self.mktemp())
        argv = ["printf", "%s|", "a b", "$HOME", "; touch " + marker]

        def check(result):
            self.assertEqual(result.stdout, b"a b|$HOME|; touch " + marker.encode() + b"|")
            self.assertFalse(os.path.exists(marker))
        return self.remote.run(argv).addCallback(check)

    def test_stdin_round_trip(self):
        data = os.urandom(10 * 1024 * 1024)
        remote = LocalRemote(reactor, command_timeout=10, max_output=len(data))
        return remote.run(["cat"], stdin=data).addCallback(
            lambda result: self.assertTrue(result.stdout == data))

    def test_timeout_kills_even_with_a_grandchild_holding_the_pipes(self):
        started = reactor.seconds()
        pid_file = os.path.abspath(self.mktemp())
        running = self.remote.run(
            ["sh", "-c", 'sleep 30 & echo $! > "$1"; wait', "sh", pid_file], timeout=0.3)

        def check(ignored):
            self.assertLess(reactor.seconds() - started, 5)
            with open(pid_file) as pid:
                os.kill(int(pid.read()), 9)  # the grandchild is not ours to wait for
        return self.assertFailure(running, CommandTimeout).addCallback(check)

    def test_output_cap(self):
        return self.assertFailure(
            self.remote.run(["head", "-c", "5000000", "/dev/zero"]), OutputTooLarge)

    def test_runs_in_the_users_home(self):
        home = pwd.getpwuid(os.geteuid()).pw_dir
        return self.remote.run(["pwd"]).addCallback(
            lambda result: self.assertEqual(result.stdout.decode().strip(),
                                            os.path.realpath(home)))

    def test_mapped_user(self):
        if os.geteuid() != 0:
            raise SkipTest("running commands as another user needs root")
        return self.remote.run(["id", "-un"], user="nobody").addCallback(
            lambda result: self.assertEqual(result.stdout, b"nobody\n"))

    def test_commands_do_not_inherit_dssrs_environment(self):
        environ = {**os.environ, "JARVICE_SCHED_SERVER_KEY": "u:canary-server-key",
                   "DSSR_SSH_PKEY_PASSPHRASE": "canary-passphrase", "SLURM_CONF": "/x.conf"}
        remote = LocalRemote(reactor, command_timeout=10, max_output=1 << 20, environ=environ)

        def check(result):
            names = {line.split("=", 1)[0] for line in result.stdout.decode().splitlines()}
            self.assertNotIn(b"canary", result.stdout)
            self.assertIn(b"SLURM_CONF=/x.conf\n", result.stdout)
            # Whatever sh itself adds (PWD, SHLVL, _) besides the minimum.
            self.assertLessEqual(names - {"PWD", "SHLVL", "_", "OLDPWD"},
                                 {"PATH", "LANG", "SLURM_CONF", "HOME", "USER", "LOGNAME"})
        return remote.run(["env"]).addCallback(check)

    def test_unknown_user(self):
        return self.assertFailure(self.remote.run(["true"], user="no-such-user-dssr"),
                                  RemoteError)
