"""deploy/: the example settings pass ``dssr check``'s settings checks, the container,
unit and Helm values serve every interface only with a server key, and the alert rules
and dashboard name only metrics DSSR exports."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from unittest import SkipTest

import yaml
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from dssr import exposure
from dssr.api import DSSRApi
from dssr.checks.config import check_settings, unknown_names
from dssr.checks.report import Status
from dssr.compose import slurm_over
from dssr.connectors.loader import is_embedded
from dssr.executors.config import ExecutorSettings
from dssr.tap import Options
from tests.integration.sshd import generate_key
from tests.remote.test_ssh import make_remote
from tests.slurm.fakes import FakeRemote, captured

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy")
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
METRIC = re.compile(r"\bdssr_[a-z_]+")


def deploy_file(name: str) -> str:
    with open(os.path.join(DEPLOY, name), encoding="utf-8") as handle:
        return handle.read()


def env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines as systemd's EnvironmentFile reads them (comments skipped)."""
    values = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            name, _, value = words[0].partition("=")
            values[name] = value
    return values


def settings_and_argv(name: str, env: str, command: str, split) -> tuple[dict, list[str]]:
    """The ``env`` lines' settings and the ``dssr`` arguments of the ``command`` line of
    deploy file ``name`` (``split`` turns that line's rest into argv)."""
    environ, argv = {}, []
    for line in deploy_file(name).splitlines():
        if line.startswith(env):
            environ.update(word.split("=", 1) for word in shlex.split(line[len(env):]))
        elif line.startswith(command):
            words = split(line[len(command):])
            argv = words[words.index("dssr") + 1:]
    return environ, argv


def container() -> tuple[dict[str, str], list[str]]:
    """The Containerfile's ENV settings and the arguments of its CMD."""
    return settings_and_argv("Containerfile", "ENV ", "CMD ", json.loads)


def unit() -> tuple[dict[str, str], list[str]]:
    """The systemd unit's Environment= settings and the arguments of its ExecStart."""
    return settings_and_argv("dssr.service", "Environment=", "ExecStart=", shlex.split)


def chart_env() -> dict[str, str]:
    """The env the Helm values give the container (sshConf becomes the SSH settings)."""
    values = yaml.safe_load(deploy_file("helm-values.yaml"))
    return dict(values["jarvice_slurm_scheduler"]["schedulers"][0]["env"])


class ExampleSettingsTests(SynchronousTestCase):
    def check(self, environ, config=None):
        """The settings check's status and detail, the example's one blank (the key) filled."""
        environ = {**environ, "JARVICE_SLURM_SSH_PKEY": generate_key()[0].decode()}
        outcome, settings = check_settings({}, config, environ, MemoryReactorClock())
        return outcome, settings

    def test_env_file_passes(self):
        outcome, settings = self.check(env_file(deploy_file("dssr.env.example")))
        self.assertEqual(outcome.status, Status.PASS, outcome)
        self.assertEqual((settings.connector, settings.cluster_addr, settings.listen),
                         ("slurm", "login1.example.org", "tcp:5000:interface=0.0.0.0"))

    def test_yaml_config_passes(self):
        # With the environment file beside it: it holds the server key the YAML's
        # every-interface listen needs.
        outcome, settings = self.check(env_file(deploy_file("dssr.env.example")),
                                       os.path.join(DEPLOY, "dssr.yaml.example"))
        self.assertEqual(outcome.status, Status.PASS, outcome)
        self.assertEqual((settings.connector, settings.log_format), ("slurm", "json"))

    def test_env_file_names_only_settings(self):
        self.assertEqual(unknown_names(env_file(deploy_file("dssr.env.example"))), ({}, []))


class ListenTests(SynchronousTestCase):
    """The container, unit and Helm values serve upstream on every interface, so a real
    connector there starts only with a server key."""

    def options(self, environ, argv):
        options = Options(environ=environ)
        options.parseOptions(argv)
        return options

    def refusal(self, options):
        return exposure.refusal(options.settings, not is_embedded(options.connector_factory))

    def test_container_with_the_chart_serves_every_interface_with_a_key(self):
        environ, argv = container()
        options = self.options({**environ, **chart_env()}, argv)
        self.assertEqual(options.settings.listen, "tcp:8080:interface=0.0.0.0")
        self.assertEqual(exposure.reachable_address(options.settings.listen), "all interfaces")
        self.assertEqual(options.settings.connector, "slurm")
        self.assertIsNone(self.refusal(options))
        keyless = {k: v for k, v in chart_env().items() if k != "JARVICE_SCHED_SERVER_KEY"}
        self.assertIn("JARVICE_SCHED_SERVER_KEY", self.refusal(
            self.options({**environ, **keyless}, argv)))

    def test_container_alone_runs_the_dummy(self):
        environ, argv = container()
        self.assertIsNone(self.refusal(self.options(environ, argv)))

    def test_unit_serves_every_interface_and_needs_a_key(self):
        environ, argv = unit()
        slurm = {**environ, "JARVICE_BAREMETAL_CONNECTOR": "slurm"}
        options = self.options(slurm, argv)
        self.assertEqual(options.settings.listen, "tcp:5000:interface=0.0.0.0")
        self.assertIn("JARVICE_SCHED_SERVER_KEY", self.refusal(options))
        self.assertIsNone(self.refusal(self.options(
            {**slurm, "JARVICE_SCHED_SERVER_KEY": "u:p"}, argv)))


class SystemdUnitTests(SynchronousTestCase):
    """deploy/dssr.service as systemd itself judges it (systemd-analyze, offline)."""

    def analyze(self, *argv):
        if not shutil.which("systemd-analyze"):
            raise SkipTest("systemd-analyze not found: apt-get install systemd")
        unit = os.path.join(self.mktemp(), "dssr.service")
        os.makedirs(os.path.dirname(unit))
        with open(unit, "w", encoding="utf-8") as handle:  # the ExecStart must exist
            handle.write(deploy_file("dssr.service").replace("/opt/dssr/bin/twistd", TWISTD))
        result = subprocess.run(["systemd-analyze", *argv, unit], capture_output=True,
                                text=True, timeout=60, check=False)
        return result.returncode, result.stdout + result.stderr

    def test_verify_accepts_it(self):
        self.assertEqual(self.analyze("verify"), (0, ""))

    def test_security_rates_it_ok(self):
        code, output = self.analyze("security", "--offline=true", "--threshold=40")
        self.assertEqual(code, 0, output)
        exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", output)[1])
        self.assertLessEqual(exposure, 4.0, output)


def exported_metrics() -> set[str]:
    """Every metric name (with Prometheus' suffixes) a scrape of a busy DSSR shows."""
    ssh, _ = make_remote()
    ssh.startService()
    remote = FakeRemote(squeue=[captured("squeue_snapshot", 0)])
    remote.metrics = ssh.metrics
    connector = slurm_over(remote, Clock(), ExecutorSettings())
    api = DSSRApi(connector)
    api.metrics.requests.observe("running", 200, 0.01)
    ensureDeferred(connector.running())
    text = api.metrics.exposition().decode()
    return {sample.name for family in text_string_to_metric_families(text)
            for sample in family.samples}


class MonitoringTests(SynchronousTestCase):
    def test_alert_rules_name_exported_metrics(self):
        rules = [rule for group in yaml.safe_load(deploy_file("prometheus-rules.yaml"))["groups"]
                 for rule in group["rules"]]
        named = {name for rule in rules for name in METRIC.findall(rule["expr"])}
        self.assertGreater(len(named), 4)
        self.assertEqual(named - exported_metrics(), set())

    def test_dashboard_names_exported_metrics(self):
        dashboard = json.loads(deploy_file("grafana-dashboard.json"))
        queries = [target["expr"] for panel in dashboard["panels"]
                   for target in panel["targets"]]
        queries += [variable.get("query", "") for variable in dashboard["templating"]["list"]]
        named = {name for query in queries for name in METRIC.findall(query)}
        self.assertGreater(len(named), 8)
        self.assertEqual(named - exported_metrics(), set())
