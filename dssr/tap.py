"""``twistd dssr``: command-line options and the service tree, readable top to bottom."""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from twisted.logger import ILogObserver
from twisted.python import usage

from dssr import __version__, compose, exposure
from dssr import settings as settings_module
from dssr.api import DSSRApi
from dssr.connectors.loader import ConnectorError, is_embedded, resolve
from dssr.edge import EdgeLimits, http_service, shared_budget
from dssr.logs import LoggingMultiService, destination, make_observer
from dssr.proxy.server import proxy_service
from dssr.startup import StartupReport
from dssr.typos import environment_warnings, unknown_key_fix


def _default_from(key: str) -> str:
    """Where an option's value comes from when it is not given, for ``--help``."""
    setting = settings_module.BY_KEY[key]
    return f"--config, {setting.env}, else {setting.default or 'none'}"


class Options(usage.Options):
    """``twistd dssr`` options; anything not given comes from YAML, environment, defaults."""

    optParameters = [
        ["listen", None, None, "Twisted endpoint string to serve the API on [default: "
         f"--config, WAITRESS_PORT, else {settings_module.default('listen')}]"],
        ["connector", None, None, "dummy, slurm, or a dotted path to a third-party connector "
         f"[default: {_default_from('connector')}]"],
        ["config", None, None, "YAML file of settings (keys as in the README's table)"],
        ["state-dir", None, None, f"Directory for local state [default: "
         f"{_default_from('state_dir')}]"],
        ["log-format", None, None, "text or json (one JSON object a line) "
         f"[default: {_default_from('log_format')}]"],
        ["proxy-listen", None, None, "Twisted endpoint string to serve the proxy to "
         f"interactive jobs' apps on [default: {_default_from('proxy_listen')}]"],
    ]

    def __init__(self, environ: Mapping[str, str] | None = None):
        super().__init__()
        self.environ = os.environ if environ is None else environ

    def opt_version(self) -> NoReturn:
        """Print DSSR's version and exit."""
        print(f"dssr {__version__}")
        raise SystemExit(0)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """As usual, but a usage error is one line and a hint, not the whole help."""
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            raise SystemExit(f"twistd dssr: {error}\n"
                             "(`twistd dssr --help` lists the options)") from None

    def postOptions(self) -> None:
        cli = {"listen": self["listen"], "connector": self["connector"],
               "state_dir": self["state-dir"], "log_format": self["log-format"],
               "proxy_listen": self["proxy-listen"]}
        try:
            self.settings = settings_module.load(cli, self["config"], self.environ)
            self.connector_factory = resolve(self.settings.connector)
        except (settings_module.SettingsError, ConnectorError) as error:
            fix = unknown_key_fix(str(error))
            raise usage.UsageError(f"{error}: {fix}" if fix else str(error)) from None


@contextmanager
def _endpoint_errors(key: str, description: str) -> Iterator[None]:
    """An endpoint Twisted cannot build (a missing certificate, a bad part) as one line."""
    try:
        yield
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise SystemExit(f"dssr: {key} {description!r} cannot be used: {error}") from None


def makeService(options: Options, reactor: Any = None) -> LoggingMultiService:
    """The whole process: the connector's service (if any), the HTTP server, the report."""
    if reactor is None:
        from twisted.internet import reactor
    settings = options.settings
    real = not is_embedded(options.connector_factory)
    refusal = exposure.refusal(settings, real)
    if refusal is not None:
        raise SystemExit(f"dssr: {refusal}")
    try:
        connector = compose.connector(settings, reactor, options.connector_factory)
    except (settings_module.SettingsError, ConnectorError) as error:
        raise SystemExit(
            f"dssr: cannot start the {settings.connector} connector: {error}") from None
    api = DSSRApi(connector, executor=settings.executor, server_key=settings.server_key,
                  open_metrics=settings.metrics_open,
                  hosts=None if settings.server_key else exposure.allowed_hosts(settings.listen))

    def observer() -> ILogObserver | None:
        output = destination(getattr(options, "parent", None))
        if output is None:
            return None
        return make_observer(output, settings.loglevel, settings.log_format == "json")

    top = LoggingMultiService(observer)
    if connector.service is not None:
        connector.service.setName("connector")
        connector.service.setServiceParent(top)
    edge_limits = EdgeLimits.from_settings(settings)
    budget = shared_budget(edge_limits)  # one for both listeners: neither starves the other
    with _endpoint_errors("listen", settings.listen):
        server = http_service(reactor, settings.listen, api, edge_limits, budget)
    server.setServiceParent(top)
    if settings.proxy_listen:
        jobs_url = compose.jobs_url(settings)
        if jobs_url is None:
            raise SystemExit("dssr: proxy_listen needs jobs_domain (the addresses it serves)")
        with _endpoint_errors("proxy_listen", settings.proxy_listen):
            proxy = proxy_service(reactor, settings.proxy_listen, jobs_url, connector,
                                  compose.proxy_limits(settings),
                                  compose.access_tokens(settings), budget)
        proxy.setServiceParent(top)
        api.metrics.add(proxy.factory.metrics)
    warnings = [exposure.warning(settings, real), *environment_warnings(options.environ),
                *settings_module.config_warnings(options["config"]),
                exposure.cleartext_warning(settings) if real else None]
    report = StartupReport(settings, connector, reactor, warnings=[w for w in warnings if w])
    report.setName("startup")
    report.setServiceParent(top)
    return top
