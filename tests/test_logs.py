"""Logging: level filter, text and JSON lines, where twistd's log goes, startup report."""

import io
import json
import os
import sys

from twisted.application.service import Application
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger, LogLevel, capturedLogs
from twisted.logger._legacy import publishToNewObserver
from twisted.python.failure import Failure
from twisted.python.log import textFromEventDict
from twisted.trial.unittest import SynchronousTestCase

from dssr import __version__
from dssr import settings as settings_module
from dssr.errors import Unavailable
from dssr.logs import LoggingMultiService, destination, level_of, make_observer
from dssr.startup import StartupReport, report_lines


class LevelTests(SynchronousTestCase):
    def test_numeric_levels(self):
        self.assertEqual([level_of(n) for n in (0, 10, 15, 20, 30, 40, 50, 99)],
                         [LogLevel.debug, LogLevel.debug, LogLevel.debug, LogLevel.info,
                          LogLevel.warn, LogLevel.error, LogLevel.critical, LogLevel.critical])


class ObserverTests(SynchronousTestCase):
    def emit(self, level, json_lines):
        output = io.StringIO()
        log = Logger(namespace="dssr.test", observer=make_observer(output, level, json_lines))
        log.debug("quiet {n}", n=1)
        log.info("hello {who}", who="admin")
        log.warn("careful")
        return output.getvalue()

    def test_text_at_info(self):
        text = self.emit(20, False)
        self.assertNotIn("quiet", text)
        self.assertIn("hello admin", text)
        self.assertIn("careful", text)

    def test_warn_level_drops_info(self):
        self.assertEqual([line.split("] ", 1)[1] for line in self.emit(30, False).splitlines()],
                         ["careful"])

    def test_json_lines(self):
        lines = self.emit(10, True).splitlines()
        events = [json.loads(line) for line in lines]
        self.assertEqual([e["message"] for e in events], ["quiet 1", "hello admin", "careful"])
        self.assertEqual(events[1], {"time": events[1]["time"], "level": "info",
                                     "logger": "dssr.test", "message": "hello admin",
                                     "who": "admin"})
        self.assertEqual([e["level"] for e in events], ["debug", "info", "warn"])
        self.assertRegex(events[0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_json_failure_and_odd_values(self):
        output = io.StringIO()
        log = Logger(namespace="dssr.test", observer=make_observer(output, 20, True))
        try:
            raise ZeroDivisionError("no")
        except ZeroDivisionError:
            log.failure("broke at {path}", path=b"/x", extra=object())
        event = json.loads(output.getvalue())
        self.assertEqual((event["level"], event["message"], event["path"]),
                         ("critical", "broke at b'/x'", "b'/x'"))
        self.assertIn("ZeroDivisionError", event["traceback"])
        self.assertTrue(event["extra"].startswith("<object object"))
        self.assertFalse([key for key in event if key.startswith("log_")])

    def test_json_legacy_twisted_events(self):
        output = io.StringIO()
        observer = make_observer(output, 20, True)
        publishToNewObserver(observer, {"message": ("Starting factory",), "isError": 0,
                                        "system": "-", "time": 1.0}, textFromEventDict)
        event = json.loads(output.getvalue())
        self.assertEqual(set(event), {"time", "level", "logger", "message"})
        self.assertEqual((event["logger"], event["message"]), ("twisted", "Starting factory"))

    def test_json_legacy_failure_has_its_traceback_apart(self):
        output = io.StringIO()
        observer = make_observer(output, 20, True)
        try:
            raise ZeroDivisionError("no")
        except ZeroDivisionError:
            failure = Failure()
        publishToNewObserver(observer, {"message": (), "isError": 1, "failure": failure,
                                        "why": "Unhandled Error", "system": "HTTPChannel,0",
                                        "time": 1.0}, textFromEventDict)
        event = json.loads(output.getvalue())
        self.assertEqual((event["logger"], event["level"], event["message"]),
                         ("HTTPChannel,0", "critical", "Unhandled Error"))
        self.assertIn("ZeroDivisionError: no", event["traceback"])

    def test_json_message_not_repeated_in_a_field(self):
        output = io.StringIO()
        log = Logger(namespace="dssr", observer=make_observer(output, 20, True))
        log.info("{line}", line="DSSR serving")
        log.info("{method} took {ms:.1f} ms", method="GET", ms=1.25)
        first, second = (json.loads(line) for line in output.getvalue().splitlines())
        self.assertEqual(set(first), {"time", "level", "logger", "message"})
        self.assertEqual(second["method"], "GET")


class DestinationTests(SynchronousTestCase):
    def test_foreground_goes_to_stdout(self):
        self.assertIs(destination({"nodaemon": True, "logfile": None}), sys.stdout)
        self.assertIs(destination({"nodaemon": False, "logfile": "-"}), sys.stdout)

    def test_explicit_logger_or_syslog_left_to_twistd(self):
        self.assertIsNone(destination({"logger": "x.y", "logfile": None}))
        self.assertIsNone(destination({"syslog": True, "logfile": None}))

    def test_log_file(self):
        path = self.mktemp()
        log_file = destination({"nodaemon": False, "logfile": path})
        self.addCleanup(log_file.close)
        self.assertEqual(log_file.path, os.path.abspath(path))

    def test_top_service_hands_twistd_its_observer(self):
        application = Application("dssr")
        observer = make_observer(io.StringIO(), 20, False)
        LoggingMultiService(lambda: observer).setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)
        other = Application("other")
        LoggingMultiService(lambda: None).setServiceParent(other)
        self.assertIsNone(other.getComponent(ILogObserver, None))


class FlakyConnector:
    def __init__(self, failures):
        self.failures = failures

    def ready(self):
        if self.failures:
            self.failures -= 1
            return fail(Unavailable("SSH connecting"))
        return succeed(None)


class StartupReportTests(SynchronousTestCase):
    def test_report_masks_secrets(self):
        settings = settings_module.load(environ={
            "JARVICE_BAREMETAL_CONNECTOR": "slurm", "JARVICE_SCHED_SERVER_KEY": "up:pw-secret",
            "JARVICE_SLURM_SSH_PKEY": "KEY-MATERIAL", "JARVICE_SLURM_SSH_USER": "svc",
            "JARVICE_SLURM_CLUSTER_ADDR": "login1", "JARVICE_DOCKER_PASSWORD": "aHVudGVyMg=="})
        text = "\n".join(report_lines(settings))
        for secret in ("pw-secret", "KEY-MATERIAL", "hunter2", "aHVudGVyMg=="):
            self.assertNotIn(secret, text)
        self.assertIn("svc@login1:22", text)
        self.assertIn("auth required", text)

    def test_dummy_report(self):
        text = "\n".join(report_lines(settings_module.load()))
        self.assertIn("dummy cluster", text)
        self.assertTrue(text.startswith(f"DSSR {__version__} serving"), text)

    def test_third_party_report_has_no_cluster_lines(self):
        settings = settings_module.load(environ={
            "JARVICE_BAREMETAL_CONNECTOR": "tests.test_tap.make_fake"})
        lines = report_lines(settings)
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[1].startswith("tests.test_tap.make_fake: a third-party"), lines)
        self.assertNotIn("ssh_user", "\n".join(lines))

    def run_report(self, failures):
        clock = Clock()
        with capturedLogs() as events:
            report = StartupReport(settings_module.load(), FlakyConnector(failures), clock,
                                   wait=2.0, step=0.5)
            report.startService()
            for _ in range(10):
                clock.advance(0.5)
        self.successResultOf(report.checked)
        return [(e["log_level"], e.get("line") or e["log_format"]) for e in events]

    def test_first_check_ready_after_retries(self):
        events = self.run_report(failures=2)
        self.assertEqual(events[-1], (LogLevel.info, "first check: the cluster is ready"))

    def test_first_check_never_ready_is_a_warning(self):
        level, text = self.run_report(failures=100)[-1]
        self.assertEqual(level, LogLevel.warn)
        self.assertIn("NOT ready", text)
