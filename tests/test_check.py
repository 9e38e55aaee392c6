"""``dssr check``'s pure parts: typo detection, lines, skips, fixes; remote work with fakes."""

import io
import os
import subprocess

from twisted.internet.defer import ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from dssr import check
from dssr.checks import config, login, restd, slurm
from dssr.checks.cluster import STEPS, Cluster
from dssr.checks.login import check_forwarding
from dssr.checks.report import (
    ASCII,
    UNICODE,
    Status,
    failed,
    format_outcome,
    marks_for,
    passed,
    skipped,
    summary,
)
from dssr.checks.runner import Check, Runner
from dssr.errors import Unavailable
from dssr.remote.hostkeys import KnownHosts
from dssr.remote.interfaces import ForwardRefused, HostKeyError, RemoteResult
from dssr.remote.keys import describe, fingerprint
from dssr.settings import load
from dssr.slurm.rest.client import Answer
from tests.integration.sshd import generate_key
from tests.slurm.restd_fixtures import document
from tests.slurm.test_rest_restd import FakeClient, FakeTokens


def result(status=0, stdout=b"", stderr=b""):
    return RemoteResult(status, None, stdout, stderr)


class FakeRemote:
    """An ``IRemote`` answering each argv with ``answer(argv, user)``; records the calls."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def run(self, argv, stdin=None, user=None, timeout=None):
        self.calls.append((argv, user))
        return succeed(self.answer(argv, user))


def done(coroutine):
    """The result of a coroutine that never waits on anything unfired."""
    return SynchronousTestCase().successResultOf(ensureDeferred(coroutine))


class ReportTests(SynchronousTestCase):
    def test_marks_fall_back_to_ascii(self):
        self.assertIs(marks_for("utf-8"), UNICODE)
        self.assertIs(marks_for(None), UNICODE)
        self.assertIs(marks_for("ascii"), ASCII)
        self.assertIs(marks_for("latin-1"), ASCII)
        self.assertIs(marks_for("no-such-codec"), ASCII)

    def test_lines(self):
        self.assertEqual(format_outcome("host key", passed("trusted"), UNICODE),
                         ["✓ host key: trusted"])
        self.assertEqual(format_outcome("host key", failed("unknown", "add it", "or not"), UNICODE),
                         ["✗ host key: unknown", "  fix: add it", "  fix: or not"])
        self.assertEqual(format_outcome("auth", skipped("skipped: needs host key"), ASCII),
                         ["SKIP auth: skipped: needs host key"])
        self.assertEqual(format_outcome("auth", failed("no"), ASCII), ["FAIL auth: no"])

    def test_summary(self):
        self.assertEqual(summary([passed("a"), passed("b")]), "all 2 checks passed")
        self.assertEqual(summary([passed("a"), failed("b"), skipped("c")]),
                         "1 of 3 checks failed, 1 skipped")


class RunnerTests(SynchronousTestCase):
    def test_order_and_skips(self):
        ran, reported = [], []

        def check(name, outcome, needs=()):
            async def run():
                ran.append(name)
                return outcome
            return Check(name, run, needs)

        runner = Runner(lambda name, outcome: reported.append((name, outcome.status)))
        done(runner.run([
            check("a", passed("")), check("b", failed("")), check("c", passed(""), ("a",)),
            check("d", passed(""), ("a", "b")), check("e", passed(""), ("d",)),
        ]))
        self.assertEqual(ran, ["a", "b", "c"])
        self.assertEqual(reported, [("a", Status.PASS), ("b", Status.FAIL), ("c", Status.PASS),
                                    ("d", Status.SKIP), ("e", Status.SKIP)])
        self.assertEqual([o.detail for o in runner.outcomes[3:]],
                         ["skipped: needs b", "skipped: needs d"])


class EnvironmentTests(SynchronousTestCase):
    def test_typos_get_the_closest_name(self):
        typos, others = config.unknown_names({
            "JARVICE_SLURM_CLUSTER_ADRR": "login1", "JARVICE_SSH_USER": "jarvice",
            "DSSR_SSH_HOST_KEY_POLCY": "strict", "JARVICE_SLURM_CLUSTER_ADDR": "login1"})
        self.assertEqual(typos, {"DSSR_SSH_HOST_KEY_POLCY": "DSSR_SSH_HOST_KEY_POLICY",
                                 "JARVICE_SLURM_CLUSTER_ADRR": "JARVICE_SLURM_CLUSTER_ADDR",
                                 "JARVICE_SSH_USER": "JARVICE_SLURM_SSH_USER"})
        self.assertEqual(others, [])

    def test_names_that_are_nobodys_typo(self):
        typos, others = config.unknown_names({
            "JARVICE_SLURMRESTD_ADDR": "x", "JARVICE_SLURMRESTD_API_VERSION": "v0.0.39",
            "JARVICE_API_SERVICE_HOST": "10.0.0.1", "JARVICE_API_PORT": "tcp://10.0.0.1:8080",
            "JARVICE_DAL_PORT_8080_TCP_ADDR": "10.0.0.2", "WAITRESS_PORT": "5000",
            "DSSR_RIG": "/var/tmp/dssr-rig", "DSSR_RIG_BOB_KEY": "/k", "PATH": "/bin",
            "JARVICE_SYSTEM_NAMESPACE": "jarvice-system"})
        self.assertEqual((typos, others), ({}, ["JARVICE_SYSTEM_NAMESPACE"]))

    def test_environment_line_never_shows_a_value(self):
        outcome = config.check_environment({"JARVICE_SLURM_SSH_PKY": "c2VjcmV0LWtleQ=="})
        self.assertEqual(outcome, failed(
            "JARVICE_SLURM_SSH_PKY: not a setting DSSR knows, so it is ignored (likely a typo)",
            "rename JARVICE_SLURM_SSH_PKY to JARVICE_SLURM_SSH_PKEY"))

    def test_passing_line_names_what_is_ignored(self):
        outcome = config.check_environment({"JARVICE_SYSTEM_NAMESPACE": "jarvice-system",
                                            "JARVICE_SLURMRESTD_PORT": "6820",
                                            "JARVICE_BAREMETAL_CONNECTOR": "slurm"})
        self.assertEqual(outcome, passed("no misspelt JARVICE_*/DSSR_* names; ignored (DSSR "
                                         "does not use them): JARVICE_SYSTEM_NAMESPACE"))


class SettingsTests(SynchronousTestCase):
    def settings(self, environ, config_text=None):
        path = None
        if config_text is not None:
            path = self.mktemp()
            with open(path, "w") as handle:
                handle.write(config_text)
        return config.check_settings({}, path, environ, MemoryReactorClock())

    def test_dummy_only_has_settings_checks(self):
        outcome, settings = self.settings({})
        self.assertEqual(outcome, passed(
            "connector dummy: DSSR checks no cluster behind it, so only the settings checks "
            "apply"))
        self.assertIsNone(settings)

    def test_unknown_yaml_key_gets_the_closest_key(self):
        outcome, _ = self.settings({}, "conector: slurm\n")
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertRegex(outcome.fixes[0], r"^rename conector to connector in .+$")

    def test_bad_secret_is_not_echoed(self):
        outcome, _ = self.settings({"JARVICE_DOCKER_PASSWORD": "not base64 s3cr3t!"})
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertIn("JARVICE_DOCKER_PASSWORD: must be base64", outcome.detail)
        self.assertNotIn("s3cr3t", outcome.detail + "".join(outcome.fixes))

    def test_slurm_needs_the_login_settings(self):
        outcome, settings = self.settings({"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                           "JARVICE_SLURM_SSH_USER": "jarvice"},
                                          "listen: ssl:5000:privateKey=/nonexistent/k.pem\n")
        self.assertIsNone(settings)
        self.assertEqual(outcome.detail.split("; ")[1:],
                         ["cluster_addr is not set", "ssh_pkey is not set"])
        self.assertEqual(outcome.fixes, (
            "set listen to a Twisted endpoint string, e.g. tcp:5000",
            "set JARVICE_SLURM_CLUSTER_ADDR (cluster_addr) to the login node's host name or "
            "address",
            "set JARVICE_SLURM_SSH_PKEY (ssh_pkey) to the service account's private key (its "
            "text, or base64 -w0 of the file)"))

    def test_open_port_without_server_key(self):
        environ = {"JARVICE_BAREMETAL_CONNECTOR": "slurm", "DSSR_REMOTE": "local",
                   "WAITRESS_BIND_ADDRESS": "0.0.0.0"}
        outcome, _ = self.settings(environ)
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertIn("refusing to serve the slurm connector", outcome.detail)
        self.assertIn("JARVICE_SCHED_SERVER_KEY (server_key)", outcome.fixes[0])
        for opened in ({"JARVICE_SCHED_SERVER_KEY": "u:p"}, {"DSSR_ALLOW_UNAUTHENTICATED": "1"},
                       {"JARVICE_BAREMETAL_CONNECTOR": "dummy"}):
            outcome, _ = self.settings({**environ, **opened})
            self.assertEqual(outcome.status, Status.PASS, opened)

    def test_plain_http_slurmrestd_elsewhere_is_a_warning(self):
        outcome, _ = self.settings({"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                    "JARVICE_SLURM_CLUSTER_ADDR": "login1",
                                    "JARVICE_SLURM_SSH_USER": "jarvice",
                                    "JARVICE_SLURM_SSH_PKEY": "LS0t",
                                    "JARVICE_SLURM_INTERFACE": "http",
                                    "JARVICE_SLURMRESTD_ADDR": "http://login1",
                                    "JARVICE_SLURM_SA_TOKEN": "t"})
        self.assertEqual(outcome.status, Status.PASS)
        self.assertIn("; WARNING: slurmrestd at http://login1 is plain HTTP to another host",
                      outcome.detail)

    def test_mapping_without_key_or_server_key(self):
        outcome, _ = self.settings({"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                    "JARVICE_SLURM_CLUSTER_ADDR": "login1",
                                    "JARVICE_SLURM_SSH_USER": "jarvice",
                                    "JARVICE_SLURM_SSH_PKEY": "LS0t",
                                    "DSSR_ID_MAPPING_FILE": "/nonexistent/m.yaml"})
        self.assertIn("ID mapping (/nonexistent/m.yaml) would believe bearer tokens unverified",
                      outcome.detail)
        self.assertEqual(outcome.fixes, (
            "set DSSR_JWT_PUBLIC_KEY_FILE (jwt_public_key_file) or JARVICE_SCHED_SERVER_KEY "
            "(server_key)",))

    def test_local_remote_cannot_map_users(self):
        outcome, _ = self.settings({"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                    "DSSR_REMOTE": "local", "DSSR_ID_MAPPING_FILE": "/m.yaml"})
        self.assertIn("id_mapping_file is set but remote is local", outcome.detail)


class LoginTests(SynchronousTestCase):
    def test_private_key_errors_hold_no_key_material(self):
        private, _ = generate_key()
        garbage = private.replace(private.splitlines()[2], b"A" * 70)
        for text, passphrase, word in ((garbage.decode(), "", "cannot be read"),
                                       ("bm90IGEga2V5", "", "cannot be read"),
                                       ("!!!", "", "neither")):
            settings = load(cli={"ssh_pkey": text, "ssh_pkey_passphrase": passphrase})
            outcome, key = login.check_private_key(settings)
            self.assertIsNone(key)
            self.assertIn(word, outcome.detail)
            self.assertNotIn(text, outcome.detail + "".join(outcome.fixes))

    def known_hosts(self, text: bytes) -> KnownHosts:
        path = self.mktemp()
        with open(path, "wb") as handle:
            handle.write(text)
        return KnownHosts(path)

    def host_key_error(self, known: KnownHosts, key) -> HostKeyError:
        return self.assertRaises(HostKeyError, known.check, "login1", 2222, key)

    def test_unknown_host_key_fix_names_the_command_and_fingerprint(self):
        offered = login.throwaway_key().public()
        known = self.known_hosts(b"")
        fixes = login.host_key_fixes(self.host_key_error(known, offered), offered, "login1",
                                     2222, known.path)
        self.assertEqual(fixes, [
            f"on login1, check that `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` shows "
            f"ssh-ed25519 {fingerprint(offered)}, then add it: "
            f"ssh-keyscan -p 2222 -t ed25519 login1 >> {known.path}",
            "or set DSSR_SSH_HOST_KEY_POLICY (ssh_host_key_policy) to accept-new to trust the "
            "key offered on first connect"])

    def test_changed_host_key_fix_drops_the_old_entry_first(self):
        old, offered = login.throwaway_key(), login.throwaway_key().public()
        known = self.known_hosts(b"[login1]:2222 ssh-ed25519 "
                                 + old.public().toString("openssh").split()[1] + b"\n")
        fixes = login.host_key_fixes(self.host_key_error(known, offered), offered, "login1",
                                     2222, known.path)
        self.assertEqual(fixes[0], (
            f"if the change is expected (on login1, check that `ssh-keygen -lf "
            f"/etc/ssh/ssh_host_ed25519_key.pub` shows {describe(offered)}), drop the old "
            f"entry: ssh-keygen -R '[login1]:2222' -f {known.path}"))
        self.assertEqual(fixes[1], f"then add the new key: ssh-keyscan -p 2222 -t ed25519 "
                                   f"login1 >> {known.path}")

    def test_revoked_host_key(self):
        offered = login.throwaway_key().public()
        known = self.known_hosts(b"@revoked [login1]:2222 ssh-ed25519 "
                                 + offered.public().toString("openssh").split()[1] + b"\n")
        fixes = login.host_key_fixes(self.host_key_error(known, offered), offered, "login1",
                                     2222, known.path)
        self.assertIn("marked @revoked: give the login node a new host key", fixes[0])


class ForwardingEndpoints:
    """``tcp_endpoint`` whose connects fail with SSH's ``code`` for some users."""

    def __init__(self, codes):
        self.codes = codes

    def tcp_endpoint(self, host, port, user=None):
        code = self.codes.get(user)
        endpoint = type("Endpoint", (), {})()
        endpoint.connect = lambda factory: fail(ForwardRefused("refused", code))
        return endpoint


class ForwardingCheckTests(SynchronousTestCase):
    def outcome(self, codes):
        return self.successResultOf(ensureDeferred(check_forwarding(
            ForwardingEndpoints(codes), [None, "dssr-alice"], "login1", 22)))

    def test_nothing_listening_means_forwarding_is_allowed(self):
        self.assertEqual(self.outcome({None: 2, "dssr-alice": 2}).status, Status.PASS)

    def test_prohibited_names_the_accounts_and_the_fix(self):
        outcome = self.outcome({None: 2, "dssr-alice": 1})
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertIn("dssr-alice", outcome.detail)
        self.assertNotIn("service account", outcome.detail)
        self.assertIn("AllowTcpForwarding yes", " ".join(outcome.fixes))


class CheckProgramTests(SynchronousTestCase):
    """The checks' shell programs, run for real under sh and bash in a temporary directory."""

    def setUp(self):
        self.dir = os.path.realpath(self.mktemp())
        os.makedirs(self.dir)

    def run_program(self, shell, program, *args):
        return subprocess.run([shell, "-c", program, shell, *args], cwd=self.dir,
                              capture_output=True, check=False, timeout=30)

    def test_find_says_where_each_command_is(self):
        for shell in ("sh", "bash"):
            done = self.run_program(shell, slurm.FIND, "sh", "no-such-command-dssr")
            found = slurm.parse_found(done.stdout.decode())
            self.assertEqual(found["no-such-command-dssr"], None)
            self.assertTrue(found["sh"].endswith("/sh"), found)

    def test_scratch_steps(self):
        os.makedirs(os.path.join(self.dir, "scratch"))
        with open(os.path.join(self.dir, "file"), "w"):
            pass
        for shell in ("sh", "bash"):
            done = self.run_program(shell, slurm.SCRATCH, "scratch", "scratch/.jarvice")
            self.assertEqual((done.returncode, done.stdout.decode()),
                             (0, os.path.join(self.dir, "scratch", ".jarvice") + "\n"))
            self.assertEqual(os.listdir(os.path.join(self.dir, "scratch", ".jarvice")), [])
            self.assertEqual(self.run_program(shell, slurm.SCRATCH, "", ".jarvice").returncode,
                             0)
            self.assertEqual(self.run_program(shell, slurm.SCRATCH, "nope", "nope/.j").returncode,
                             3)
            self.assertEqual(self.run_program(shell, slurm.SCRATCH, "", "file/.j").returncode, 4)

    def test_mkdir_then_runs_the_command(self):
        for shell in ("sh", "bash"):
            done = self.run_program(shell, slurm.MKDIR_THEN, f"{shell}/a b", "printf", "%s|",
                                    "x y")
            self.assertEqual(done.stdout, b"x y|")
            self.assertTrue(os.path.isdir(os.path.join(self.dir, shell, "a b")))


class SlurmCheckTests(SynchronousTestCase):
    def test_missing_commands(self):
        remote = FakeRemote(lambda argv, user: result(
            stdout=b"sbatch /opt/slurm/bin/sbatch\nsqueue -\nscancel /opt/slurm/bin/scancel\n"
                   b"scontrol -\nsacct -\n"))
        outcome = done(slurm.check_commands(remote, "jarvice", "login1"))
        self.assertEqual(outcome.detail, "not found on login1 for jarvice: squeue, scontrol")
        self.assertIn("`ssh jarvice@login1 command -v squeue` must print a path",
                      outcome.fixes[0])

    def test_commands_found(self):
        remote = FakeRemote(lambda argv, user: result(stdout=b"".join(
            b"%s /usr/bin/%s\n" % (name, name) for name in (b"sbatch", b"squeue", b"scancel",
                                                              b"scontrol")) + b"sacct -\n"))
        self.assertEqual(done(slurm.check_commands(remote, "jarvice", "login1")), passed(
            "sbatch, squeue, scancel, scontrol in /usr/bin; no sacct (fine: DSSR's end records "
            "stand in for accounting)"))

    def test_controller_down(self):
        remote = FakeRemote(lambda argv, user: result(
            1, b"Slurmctld(primary) at ctl1 is DOWN\n"))
        outcome = done(slurm.check_controller(remote))
        self.assertEqual(outcome.detail, "scontrol ping: Slurmctld(primary) at ctl1 is DOWN")

    def test_controller_up_names_the_release(self):
        versions = {b"slurm 26.05.3\n": "Slurm 26.05.3, a tested release (22.05, 25.05, 26.05)",
                    b"slurm-wlm 22.05.8\n": "Slurm 22.05.8, a tested release",
                    b"slurm 24.11.1\n": "Slurm 24.11.1, between the tested releases",
                    b"slurm 21.08.8-2\n": "Slurm 21.08.8, outside the tested releases",
                    b"slurm 27.05.0\n": "Slurm 27.05.0, outside the tested releases",
                    b"nope\n": "Slurm release unknown (scontrol --version: 'nope')"}
        for said, expected in versions.items():
            remote = FakeRemote(lambda argv, user, said=said: result(
                stdout=said if argv[1] == "--version" else b"Slurmctld(primary) at c1 is UP\n"))
            outcome = done(slurm.check_controller(remote))
            self.assertTrue(outcome.detail.startswith(
                f"Slurmctld(primary) at c1 is UP; {expected}"), outcome.detail)
            self.assertEqual(remote.calls, [(["scontrol", "ping"], None),
                                            (["scontrol", "--version"], None)])

    def test_scratch_in_home_is_relative_to_it(self):
        remote = FakeRemote(lambda argv, user: result(stdout=b"/home/jarvice/.jarvice\n"))
        outcome = done(slurm.scratch_outcome(remote, "", "jarvice", "login1"))
        self.assertEqual(outcome, passed("/home/jarvice/.jarvice is writable by jarvice"))
        self.assertEqual(remote.calls, [(["sh", "-c", slurm.SCRATCH, "sh", "", ".jarvice"], None)])

    def test_scratch_failures_by_step(self):
        for status, start in ((5, "jarvice cannot create a file in /scratch/.jarvice: "),
                              (6, "jarvice cannot remove a file from /scratch/.jarvice: ")):
            remote = FakeRemote(lambda argv, user, status=status: result(status, b"", b"nope\n"))
            outcome = done(slurm.scratch_outcome(remote, "/scratch/", "jarvice", "login1"))
            self.assertEqual(outcome.detail, start + "nope")

    def test_submit_test_waits_reads_and_cleans_up(self):
        clock = Clock()
        states = [b"PENDING|Resources\n", b"RUNNING|None\n", b""]

        def answer(argv, user):
            if "sbatch" in argv:
                return result(stdout=b"42\n")
            if argv[0] == "squeue":
                return result(stdout=states.pop(0))
            if argv[0] == "cat":
                return result(stdout=b"DSSR_CHECK_OK on node7\n")
            return result()

        remote = FakeRemote(answer)
        test = slurm.SubmitTest(remote, clock, "/scratch", timeout=60)
        running = ensureDeferred(test.run())
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(self.successResultOf(running),
                         passed("job 42 ran on node7 and its output came back in 2s"))
        self.assertEqual(remote.calls[-1], (["rm", "-f", "--", test.output], None))
        self.assertTrue(test.output.startswith("/scratch/.jarvice/dssr-check-"))

    def test_submit_test_gives_up_and_cancels(self):
        clock = Clock()
        remote = FakeRemote(lambda argv, user: result(
            stdout=b"7\n" if "sbatch" in argv else b"PENDING|Priority\n"))
        running = ensureDeferred(slurm.SubmitTest(remote, clock, "", timeout=5).run())
        clock.pump([1] * 7)
        outcome = self.successResultOf(running)
        self.assertEqual(outcome.detail, "job 7 still PENDING after 5s (reason: Priority)")
        self.assertIn((["scancel", "7"], None), remote.calls)


class CommandTests(SynchronousTestCase):
    def test_dummy_connector_run(self):
        out = io.StringIO()
        code = done(check.check(MemoryReactorClock(), check.parse([]), {}, out))
        self.assertEqual(code, 0)
        self.assertEqual(out.getvalue().splitlines(), [
            "✓ environment: no misspelt JARVICE_*/DSSR_* names",
            "✓ settings: connector dummy: DSSR checks no cluster behind it, so only the "
            "settings checks apply",
            "all 2 checks passed"])

    def test_unset_slurm_lists_the_cluster_checks_as_skipped(self):
        out = io.StringIO()
        argv = ["--connector", "slurm", "--submit-test"]
        code = done(check.check(MemoryReactorClock(), check.parse(argv), {}, out))
        self.assertEqual(code, 1)
        lines = out.getvalue().splitlines()
        skipped_names = [line[2:].split(":")[0] for line in lines
                         if line.endswith("skipped: needs settings")]
        self.assertEqual(skipped_names, [*STEPS, "submit test"])
        self.assertEqual(lines[-1], "1 of 10 checks failed, 8 skipped")

    def test_steps_are_the_checks_cluster_runs(self):
        settings = load(environ={"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                 "JARVICE_SLURM_CLUSTER_ADDR": "login1",
                                 "JARVICE_SLURM_SSH_USER": "svc",
                                 "JARVICE_SLURM_SSH_PKEY": generate_key()[0].decode()})
        names = [c.name for c in Cluster(MemoryReactorClock(), settings, 1, 1).checks(True)]
        self.assertEqual(names, [*STEPS, "submit test"])

    def test_a_typo_fails_the_run(self):
        out = io.StringIO()
        code = done(check.check(MemoryReactorClock(), check.parse(["--connector", "dummy"]),
                                {"JARVICE_DUMMY_JOB_RUNNING_TIM": "3"}, out))
        self.assertEqual(code, 1)
        self.assertEqual(out.getvalue().splitlines()[:2], [
            "✗ environment: JARVICE_DUMMY_JOB_RUNNING_TIM: not a setting DSSR knows, so it is "
            "ignored (likely a typo)",
            "  fix: rename JARVICE_DUMMY_JOB_RUNNING_TIM to JARVICE_DUMMY_JOB_RUNNING_TIME"])


class RestdCheckTests(SynchronousTestCase):
    """slurmrestd's checks: reachable, its version, a token round trip; each with fixes."""

    def setUp(self):
        self.client, self.tokens = FakeClient(), FakeTokens()
        self.settings = load({"connector": "slurm", "slurm_interface": "http",
                              "slurmrestd_addr": "http://login1"})

    def test_a_silent_endpoint_says_how_to_start_it(self):
        self.client.on("GET", "/openapi/v3", Unavailable("slurmrestd at x: connection refused"))
        outcome = done(restd.check_endpoint(self.client, self.settings))
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertIn("slurmrestd -a rest_auth/jwt", outcome.fixes[0])
        self.assertIn("JARVICE_SLURMRESTD_ADDR", outcome.fixes[0])

    def test_version_and_token_round_trip(self):
        self.client.on("GET", "/openapi/v3",
                       Answer(200, {"paths": {"/slurm/v0.0.38/ping": {}}}))
        self.client.on("GET", "/slurm/v0.0.38/ping",
                       Answer(200, document("22.05.8/v0.0.38", "ping")),
                       Answer(401, None, "Authentication failure"))
        outcome, version = done(restd.check_version(self.client, self.tokens, "svc",
                                                    self.settings))
        self.assertEqual((outcome.status, version), (Status.PASS, "v0.0.38"))
        ok = done(restd.check_token(self.client, self.tokens, "svc", version, self.settings))
        self.assertEqual(ok.status, Status.PASS, ok.detail)
        refused = done(restd.check_token(self.client, self.tokens, "svc", version,
                                         self.settings))
        self.assertEqual(refused.status, Status.FAIL)
        self.assertIn("Authentication failure", refused.detail)
        self.assertIn("DSSR_SLURM_JWT_KEY_FILE", refused.fixes[1])
        self.assertNotIn("token-of", refused.detail + "".join(refused.fixes))

    def test_the_version_names_the_release_serving_it(self):
        for release, newest, said in (
                ("26.05.3", "v0.0.45", "; Slurm 26.05.3, a tested release (22.05, 25.05, 26.05)"),
                ("25.05.8", "v0.0.43", "; Slurm 25.05.8, a tested release"),
                ("22.05.8", "v0.0.38", "; its Slurm release unnamed (before 23.11)")):
            self.client.on("GET", "/openapi/v3", Answer(200, document(release, "openapi")))
            outcome, version = done(restd.check_version(self.client, self.tokens, "svc",
                                                        self.settings))
            self.assertEqual((outcome.status, version), (Status.PASS, newest))
            self.assertIn(said, outcome.detail)

    def test_a_pinned_version_the_server_lacks(self):
        self.client.on("GET", "/openapi/v3", Answer(200, {"paths": {"/slurm/v0.0.38/x": {}}}))
        settings = load({"slurm_interface": "http", "slurmrestd_addr": "http://l",
                         "slurmrestd_api_version": "v0.0.40"})
        outcome, _ = done(restd.check_version(self.client, self.tokens, "svc", settings))
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertIn("not v0.0.40", outcome.detail)

    def test_settings_check_names_what_http_lacks(self):
        problems = config.rest_problems(load({"slurm_interface": "http",
                                              "slurm_jwt_key_file": "/nonexistent"}))
        self.assertEqual(problems[0][0],
                         "slurmrestd_addr is not set (slurm_interface is http)")
        self.assertIn("slurm_jwt_key_file /nonexistent", problems[1][0])

    def test_the_checks_follow_the_cluster_ones(self):
        settings = load(environ={"JARVICE_BAREMETAL_CONNECTOR": "slurm",
                                 "JARVICE_SLURM_CLUSTER_ADDR": "login1",
                                 "JARVICE_SLURM_SSH_USER": "svc",
                                 "JARVICE_SLURM_INTERFACE": "http",
                                 "JARVICE_SLURMRESTD_ADDR": "http://login1",
                                 "JARVICE_SLURM_SSH_PKEY": generate_key()[0].decode()})
        names = [c.name for c in Cluster(MemoryReactorClock(), settings, 1, 1).checks(False)]
        self.assertEqual(names, [*STEPS, "slurmrestd", "slurmrestd version", "slurmrestd token"])
