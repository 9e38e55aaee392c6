"""``twistd dssr``: the plugin is found, options resolve, the service tree is built."""

import os
import socket
import subprocess
import sys

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from dssr import __version__
from dssr.connectors.dummy import DummyConnector
from dssr.connectors.interfaces import IConnector
from dssr.connectors.loader import ConnectorError, build, resolve
from dssr.settings import load
from dssr.tap import Options, makeService
from tests.fakes import FakeConnector

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
DSSR = os.path.join(os.path.dirname(sys.executable), "dssr")


def make_fake(settings, reactor):
    """A third-party-style factory, reached by dotted path."""
    return FakeConnector()


def make_nothing(settings, reactor):
    return object()


@implementer(IConnector)
class ClassConnector(FakeConnector):
    def __init__(self, settings, reactor):
        super().__init__()


class PluginTests(SynchronousTestCase):
    def test_twistd_finds_dssr(self):
        names = [maker.tapname for maker in getPlugins(IServiceMaker)]
        self.assertIn("dssr", names)


class OptionsTests(SynchronousTestCase):
    def parse(self, argv, environ=None):
        options = Options(environ=environ or {})
        options.parseOptions(argv)
        return options

    def test_nothing_set_serves_dummy(self):
        options = self.parse([])
        self.assertEqual((options.settings.connector, options.settings.listen),
                         ("dummy", "tcp:5000:interface=127.0.0.1"))

    def test_command_line_beats_environment(self):
        options = self.parse(["--listen", "tcp:0", "--connector", "dummy"],
                             {"JARVICE_BAREMETAL_CONNECTOR": "nonexistent.module"})
        self.assertEqual(options.settings.listen, "tcp:0")

    def test_bad_connector_is_one_line_and_a_hint(self):
        error = self.assertRaises(SystemExit, self.parse, ["--connector", "no.such.thing"])
        first, hint = str(error.code).splitlines()
        self.assertTrue(first.startswith("twistd dssr: connector 'no.such.thing' cannot be"))
        self.assertIn("--help", hint)

    def test_bad_setting_is_one_line_and_a_hint(self):
        error = self.assertRaises(SystemExit, self.parse, [],
                                  {"JARVICE_SLURM_CLUSTER_PORT": "x"})
        self.assertIn("JARVICE_SLURM_CLUSTER_PORT", str(error.code).splitlines()[0])

    def test_unknown_yaml_key_gets_the_key_meant(self):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write("conector: slurm\n")
        error = self.assertRaises(SystemExit, self.parse, ["--config", path])
        self.assertEqual(str(error.code).splitlines()[0],
                         f"twistd dssr: unknown setting 'conector' in {path}: rename conector "
                         f"to connector in {path}")

    def test_help_says_where_defaults_come_from(self):
        usage = Options(environ={"JARVICE_BAREMETAL_CONNECTOR": "slurm"}).getUsage()
        self.assertIn("[default: --config, JARVICE_BAREMETAL_CONNECTOR, else dummy]",
                      " ".join(usage.split()))
        self.assertNotIn("[default: dummy]", " ".join(usage.split()))

    def test_unknown_option_is_one_line_and_a_hint(self):
        error = self.assertRaises(SystemExit, self.parse, ["--conector", "slurm"])
        self.assertEqual(str(error.code).splitlines()[0],
                         "twistd dssr: option --conector not recognized")


class CommandLineTests(SynchronousTestCase):
    """What an operator sees from the real ``twistd`` and ``dssr`` commands."""

    def run_command(self, *argv, environ=None):
        directory = os.path.abspath(self.mktemp())  # for twistd.log and the like
        os.makedirs(directory)
        result = subprocess.run([*argv], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": CHECKOUT, **(environ or {})},
                                check=False, cwd=directory)
        return result.returncode, result.stdout + result.stderr

    def test_twistd_usage_error_is_short(self):
        code, output = self.run_command(TWISTD, "dssr", "--connector", "example_connector")
        self.assertEqual(code, 1)
        self.assertEqual(len(output.strip().splitlines()), 2, output)
        self.assertIn("connector 'example_connector' cannot be imported", output)

    def test_reader_gone_is_no_traceback(self):
        read, write = os.pipe()
        os.close(read)  # as `dssr check | head -0` would
        try:
            result = subprocess.run([DSSR, "check", "--connector", "slurm"], stdout=write,
                                    stderr=subprocess.PIPE, text=True, timeout=60,
                                    env={**os.environ, "PYTHONPATH": CHECKOUT}, check=False)
        finally:
            os.close(write)
        self.assertEqual((result.returncode, result.stderr), (1, ""))

    def test_a_port_in_use_ends_the_process_in_one_line(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        state = self.mktemp()
        for environ, argv, expected in (
                ({"WAITRESS_PORT": str(port)}, (),
                 f"dssr: cannot serve the Jarvice API on tcp:{port}:interface=127.0.0.1 "
                 f"(listen): Address already in use"),
                ({"JARVICE_JOBS_DOMAIN": "http://127.0.0.1/job$"},
                 ("--listen", "tcp:0:interface=127.0.0.1", "--proxy-listen",
                  f"tcp:{port}:interface=127.0.0.1"),
                 f"dssr: cannot serve the proxy on tcp:{port}:interface=127.0.0.1 "
                 f"(proxy_listen): Address already in use")):
            code, output = self.run_command(TWISTD, "-n", "--pidfile=", "dssr", "--state-dir",
                                            state, *argv, environ=environ)
            self.assertEqual(code, 1, output)
            self.assertIn(expected, output)
            self.assertNotIn("Traceback", output)
            self.assertNotIn("serving the Jarvice API", output)

    def test_bad_listen_is_one_line(self):
        for environ, argv, named in (({"WAITRESS_PORT": "abc"}, (), "WAITRESS_PORT ('abc')"),
                                     ({}, ("--listen", "tcp:abc"), "--listen ('tcp:abc')"),
                                     ({}, ("--listen", "5001"), "--listen ('5001')")):
            code, output = self.run_command(TWISTD, "-n", "--pidfile=", "dssr", *argv,
                                            environ=environ)
            self.assertEqual(code, 1, output)
            self.assertEqual(len(output.strip().splitlines()), 2, output)
            self.assertTrue(output.startswith(f"twistd dssr: {named}: "), output)

    def test_versions(self):
        self.assertEqual(self.run_command(TWISTD, "dssr", "--version"),
                         (0, f"dssr {__version__}\n"))
        self.assertEqual(self.run_command(DSSR, "--version"), (0, f"dssr {__version__}\n"))


class MakeServiceTests(SynchronousTestCase):
    def test_tree(self):
        options = Options(environ={})
        options.parseOptions(["--listen", "tcp:0", "--state-dir", self.mktemp()])
        reactor = MemoryReactorClock()
        top = makeService(options, reactor=reactor)
        self.assertEqual(sorted(service.name for service in top), ["connector", "http", "startup"])
        top.startService()
        self.addCleanup(top.stopService)
        self.assertEqual(len(reactor.tcpServers), 1)

    def test_tree_with_the_proxy(self):
        options = Options(environ={"JARVICE_JOBS_DOMAIN": "http://127.0.0.1:8081/job$"})
        options.parseOptions(["--listen", "tcp:0", "--state-dir", self.mktemp(),
                              "--proxy-listen", "tcp:8081:interface=127.0.0.1"])
        reactor = MemoryReactorClock()
        top = makeService(options, reactor=reactor)
        self.assertEqual(sorted(service.name for service in top),
                         ["connector", "http", "proxy", "startup"])
        top.startService()
        self.addCleanup(top.stopService)
        self.assertEqual([port for port, *_ in reactor.tcpServers][1], 8081)

    def test_proxy_needs_a_jobs_domain(self):
        options = Options(environ={})
        options.parseOptions(["--state-dir", self.mktemp(), "--proxy-listen", "tcp:8081"])
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        self.assertIn("proxy_listen needs jobs_domain", str(error))


class ExposureTests(SynchronousTestCase):
    """A real connector on an open port needs a server key or an explicit opt-out."""

    def make(self, *argv, **environ):
        options = Options(environ={"DSSR_STATE_DIR": self.mktemp(), **environ})
        options.parseOptions(["--connector", "tests.test_tap.make_fake", *argv])
        return makeService(options, reactor=MemoryReactorClock())

    def test_open_port_without_key_refused(self):
        error = self.assertRaises(SystemExit, self.make, "--listen", "tcp:0")
        self.assertRegex(str(error), r"^dssr: refusing to serve .* on tcp:0 \(all interfaces\)")
        self.assertNotIn("\n", str(error))

    def test_loopback_key_or_dummy_start(self):
        self.make()
        self.make("--listen", "tcp:0", JARVICE_SCHED_SERVER_KEY="u:p")
        options = Options(environ={})
        options.parseOptions(["--listen", "tcp:0", "--state-dir", self.mktemp()])
        makeService(options, reactor=MemoryReactorClock())

    def test_startup_warns_of_typos_open_files_and_tokens_in_clear(self):
        config = self.mktemp()
        with open(config, "w") as handle:
            handle.write("loglevel: 20\n")
        os.chmod(config, 0o644)
        top = self.make("--config", config, JARVICE_BAREMETAL_CONECTOR="slurm",
                        JARVICE_SLURM_INTERFACE="http", JARVICE_SLURMRESTD_ADDR="http://login1")
        with capturedLogs() as events:
            top.startService()
        self.addCleanup(top.stopService)
        loud = [formatEvent(e) for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(loud[0], "JARVICE_BAREMETAL_CONECTOR is not a setting DSSR knows, so "
                                  "it is ignored: did you mean JARVICE_BAREMETAL_CONNECTOR?")
        self.assertEqual(loud[1], f"the settings file {config} is readable by group or others "
                                  f"(mode 0644): run chmod 600 {config}")
        self.assertTrue(loud[2].startswith("slurmrestd at http://login1 is plain HTTP"), loud)
        self.assertEqual(len(loud), 3)

    def test_opt_out_warns_at_every_start(self):
        for _ in range(2):
            top = self.make("--listen", "tcp:0", DSSR_ALLOW_UNAUTHENTICATED="true")
            with capturedLogs() as events:
                top.startService()
            top.stopService()
            loud = [formatEvent(e) for e in events if e["log_level"] == LogLevel.critical]
            self.assertEqual(len(loud), 1)
            self.assertIn("UNAUTHENTICATED", loud[0])


class LoaderTests(SynchronousTestCase):
    def test_builtin_and_reference_names(self):
        for spec in ("dummy", "connectors.dummy.connector", "dssr.connectors.dummy"):
            settings = load({"state_dir": self.mktemp()})
            connector = build(resolve(spec), settings, MemoryReactorClock())
            self.assertIsInstance(connector, DummyConnector)

    def test_dotted_function_and_class(self):
        reactor = MemoryReactorClock()
        self.assertIsInstance(build(resolve("tests.test_tap.make_fake"), None, reactor),
                              FakeConnector)
        self.assertIsInstance(build(resolve("tests.test_tap.ClassConnector"), None, reactor),
                              ClassConnector)

    def test_not_a_connector(self):
        error = self.assertRaises(ConnectorError, build, resolve("tests.test_tap.make_nothing"),
                                  None, MemoryReactorClock())
        self.assertIn("IConnector", str(error))

    def test_unimportable_and_missing_factory(self):
        self.assertIn("cannot be imported", str(self.assertRaises(
            ConnectorError, resolve, "nosuchpackage")))
        self.assertIn("cannot be imported", str(self.assertRaises(
            ConnectorError, resolve, "nosuchpackage.module.thing")))
        self.assertIn("make_connector", str(self.assertRaises(ConnectorError, resolve, "json")))

    def test_a_misspelt_builtin_gets_the_builtin_names(self):
        self.assertEqual(str(self.assertRaises(ConnectorError, resolve, "slrum")),
                         "connector 'slrum' cannot be imported: the builtin connectors are "
                         "dummy and slurm, a third-party one is a module or dotted path")
