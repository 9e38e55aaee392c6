"""The startup report: what this DSSR is set up to do, and whether the cluster answers.

Logged once at start so an admin reading the log sees the configuration (secrets
masked) and the first connectivity check; the service starts even when the cluster
is down, and ``/ready`` keeps saying why.
"""

from collections.abc import Iterable

from twisted.application.service import Service
from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from dssr import __version__, exposure
from dssr.connectors.interfaces import IConnector
from dssr.connectors.loader import is_embedded, resolve
from dssr.errors import Unavailable
from dssr.settings import Settings
from dssr.slurm.rest.client import location

_log = Logger(namespace="dssr")


def _token_source(settings: Settings) -> str:
    """Where slurmrestd tokens come from, in words (never a token)."""
    if settings.slurm_jwt_key_file:
        return f"minted with {settings.slurm_jwt_key_file}"
    if settings.slurm_sa_token:
        return "from slurm_sa_token (set)"
    return "from scontrol token over the remote"


def report_lines(settings: Settings) -> list[str]:
    """Human-readable lines describing the configuration; never a secret's value."""
    lines = [
        f"DSSR {__version__} serving the Jarvice API on {settings.listen} with the "
        f"{settings.connector} connector and the {settings.executor} executor; upstream auth "
        + ("required (HTTP Basic)" if settings.server_key else "NOT required "
           "(set JARVICE_SCHED_SERVER_KEY)"),
    ]
    proxy = exposure.proxy_report(settings)
    if proxy:
        lines.append(proxy)
    factory = resolve(settings.connector)
    if is_embedded(factory):
        lines.append(
            f"dummy cluster: jobs queue {settings.dummy_queued_time:g}s, run "
            f"{settings.dummy_running_time:g}s, {settings.dummy_failing_percent}% fail; "
            f"state in {settings.state_dir}")
        return lines
    if factory is not resolve("slurm"):
        lines.append(f"{settings.connector}: a third-party connector; it reports its own "
                     "setup (DSSR's cluster settings are the slurm connector's)")
        return lines
    if settings.remote == "local":
        lines.append("cluster: commands run on this host (remote=local)")
    else:
        user = settings.ssh_user or "(no ssh_user)"
        host = settings.cluster_addr or "(no cluster_addr)"
        lines.append(
            f"cluster: {user}@{host}:{settings.cluster_port}, key "
            f"{'set' if settings.ssh_pkey else 'MISSING'}, host keys from "
            f"{settings.ssh_known_hosts} ({settings.ssh_host_key_policy}), at most "
            f"{settings.ssh_max_channels} commands at once")
    if settings.slurm_interface == "http":
        where = location(settings.slurmrestd_addr or "(no slurmrestd_addr)",
                         settings.slurmrestd_port)
        lines.append(f"slurm: slurmrestd at {where}, OpenAPI "
                     f"{settings.slurmrestd_api_version or 'detected'}, tokens "
                     + _token_source(settings))
    lines.append(
        f"users: ID mapping from {settings.id_mapping_file}, tokens "
        + ("verified" if settings.jwt_public_key_file else "NOT verified")
        if settings.id_mapping_file else
        f"users: every job runs as {settings.ssh_user or 'the service account'}")
    lines.append(f"job output: {settings.job_scratch_dir or '~'}/.jarvice/ on the cluster; "
                 f"queue snapshot reused {settings.snapshot_ttl:g}s")
    lines.append(
        f"singularity: registry {settings.system_registry}/{settings.system_repo_base}:"
        f"{settings.images_tag}, tmpdir {settings.singularity_tmpdir}, overlay "
        f"{settings.singularity_overlay_size} MB, init registry login "
        + ("set" if settings.init_docker_username else "none"))
    return lines


class StartupReport(Service):
    """Logs ``report_lines`` (and ``warnings``, loudly) at start, then the first
    readiness check of the connector."""

    def __init__(self, settings: Settings, connector: IConnector, clock: IReactorTime,
                 wait: float = 10.0, step: float = 0.5, warnings: Iterable[str] = ()):
        self._settings = settings
        self._warnings = tuple(warnings)
        self._connector = connector
        self._clock = clock
        self._wait = wait
        self._step = step

    def startService(self) -> None:
        super().startService()
        for line in report_lines(self._settings):
            _log.info("{line}", line=line)
        for line in self._warnings:
            _log.critical("{line}", line=line)
        self.checked = ensureDeferred(self._first_check())

    async def _first_check(self) -> None:
        """Ask ``ready()`` until it answers or ``wait`` seconds pass; log the outcome."""
        reason = "no answer"
        for _ in range(max(1, int(self._wait / self._step))):
            try:
                await self._connector.ready()
            except Unavailable as error:
                reason = error.message
            else:
                _log.info("first check: the cluster is ready")
                return
            await deferLater(self._clock, self._step, lambda: None)
        _log.warn("first check: the cluster is NOT ready ({reason}); DSSR keeps running "
                  "and /ready says why", reason=reason)
