"""The composition root: settings in, the objects DSSR runs with out.

``twistd dssr`` (``dssr.tap``) and ``dssr check`` build through here, so the service
and its checks reach the cluster through the same code. Nothing below this module
reads settings: the transport, the Slurm client, the job files, the ID mapping and
the executor each take plain values.
"""

import os
import pwd
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from twisted.conch.ssh.keys import Key
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory

from dssr.connectors.interfaces import IConnector
from dssr.connectors.loader import Factory, build, resolve
from dssr.connectors.slurm import SlurmConnector
from dssr.executors.config import ExecutorSettings
from dssr.files import FileProblem, read_private
from dssr.identity import IdentityMap, MappingError, parse_mapping, unverified_tokens_refusal
from dssr.jobfiles import JobFiles
from dssr.proxy.server import ProxyLimits
from dssr.proxy.tokens import AccessTokens, derive_key
from dssr.proxy.urls import JobsAddresses, JobsURL, parse_jobs_domain
from dssr.remote.conch import Connection, Target, dial
from dssr.remote.hostkeys import KnownHosts, host_token
from dssr.remote.interfaces import IRemote
from dssr.remote.keys import decode_key_text, load_private_key
from dssr.remote.local import LocalRemote
from dssr.remote.logged import LoggedRemote
from dssr.remote.policy import Policy
from dssr.remote.ssh import SSHRemote, UserKeys
from dssr.settings import BY_KEY, Settings, SettingsError, default
from dssr.slurm.cli import CLISlurm
from dssr.slurm.interfaces import JOB_PREFIX, ISlurm
from dssr.slurm.rest.client import (
    RestClient,
    ThroughRemote,
    ToSocket,
    agent,
    base_url,
    socket_path,
)
from dssr.slurm.rest.offload import JobsReader
from dssr.slurm.rest.restd import RestSlurm
from dssr.slurm.rest.tokens import MintedTokens, ScontrolTokens, StaticToken, Tokens

_log = Logger(namespace="dssr.compose")

# The settings the SSH transport cannot do without.
SSH_REQUIRED = ("cluster_addr", "ssh_user", "ssh_pkey")
# ``login(user, key)``: one SSH login, firing with a connection.
Login = Callable[[str, Key], Deferred[Connection]]
# ``slurm(commands, users)``: the ``ISlurm`` the Slurm connector asks.
SlurmFactory = Callable[[LoggedRemote, tuple[str, ...]], ISlurm]


def connector(settings: Settings, reactor: Any, factory: Factory | None = None) -> IConnector:
    """The connector the ``connector`` setting names (or ``factory``, already resolved).

    ``ConnectorError`` or ``SettingsError`` when it cannot be built.
    """
    return build(factory or resolve(settings.connector), settings, reactor)


# -- the pieces -------------------------------------------------------------------

# The reference downstream reads its ID mapping from this file in its working directory.
REFERENCE_MAPPING_FILE = "users_id_mapping_configuration.yaml"


def executor_settings(settings: Settings) -> ExecutorSettings:
    """The executor's slice of the settings (its fields are setting keys)."""
    values = {field.name: getattr(settings, field.name) for field in fields(ExecutorSettings)
              if field.name in BY_KEY}
    published = jobs_url(settings)
    return ExecutorSettings(**values, interactive=published is not None,
                            jobs_path=published.path if published is not None else "/")


def _read(path: str, what: str) -> bytes:
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            return handle.read()
    except OSError as error:
        raise SettingsError(f"{what} {path}: {error.strerror}") from None


def _read_private(path: str, what: str) -> bytes:
    try:
        return read_private(path, what)
    except FileProblem as error:
        raise SettingsError(str(error)) from None


def mapping_file(settings: Settings) -> str:
    """The ID mapping file to use: ``id_mapping_file``, else the reference's file when
    it is in the working directory (a drop-in upgrade keeps mapping users), else ""."""
    configured: str = settings.id_mapping_file
    if configured:
        return configured
    if os.path.isfile(REFERENCE_MAPPING_FILE):
        return os.path.abspath(REFERENCE_MAPPING_FILE)
    return ""


def identities(settings: Settings) -> IdentityMap | None:
    """The ID mapping the settings name, or None when every job runs as the service account."""
    path = mapping_file(settings)
    if not path:
        return None
    if path != settings.id_mapping_file:
        _log.info("ID mapping from {path}, the reference downstream's file in the working "
                  "directory (id_mapping_file is unset)", path=path)
    refusal = unverified_tokens_refusal(settings, path)
    if refusal:
        raise SettingsError(refusal)
    text = _read_private(path, "id_mapping_file").decode("utf-8", "replace")
    try:
        users = parse_mapping(text, path)
    except MappingError as error:
        raise SettingsError(str(error)) from None
    public_key = None
    if settings.jwt_public_key_file:
        public_key = _read(settings.jwt_public_key_file, "jwt_public_key_file")
    return IdentityMap(users, public_key, settings.jwt_audience, settings.jwt_issuer,
                       trusted_upstream=bool(settings.server_key))


def mapped_keys(mapping: IdentityMap | None) -> dict[str, bytes]:
    """Each mapped cluster user's private key, for the SSH transport."""
    return {user.cluster_user: user.private_key for user in (mapping.users.values()
                                                             if mapping else ())}


def policy(settings: Settings, **overrides: float) -> Policy:
    """The SSH links' limits: each ``ssh_<field>`` setting, then ``overrides``."""
    values = {field.name: getattr(settings, "ssh_" + field.name) for field in fields(Policy)
              if "ssh_" + field.name in BY_KEY}
    return Policy(**{**values, **overrides})


def private_key(settings: Settings) -> Key:
    """The service account's key; ``ValueError`` (never showing key material) if unusable."""
    return load_private_key(decode_key_text(settings.ssh_pkey), settings.ssh_pkey_passphrase)


def known_hosts(settings: Settings, kind: type[KnownHosts] = KnownHosts) -> KnownHosts:
    """The host keys the login node is checked against, as ``ssh_host_key_policy`` says."""
    return kind(settings.ssh_known_hosts,
                accept_new=settings.ssh_host_key_policy == "accept-new")


def ssh_login(settings: Settings, reactor: Any, trusted: KnownHosts, timeout: float) -> Login:
    """``login(user, key)``: one SSH login to the login node, firing with a connection
    (``dssr.remote.conch.dial``) within ``timeout`` seconds."""
    host, port = settings.cluster_addr, settings.cluster_port

    def login(user: str, key: Key) -> Deferred[Connection]:
        endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        return dial(endpoint, Target(host, port, user, key, trusted), reactor, timeout)

    return login


def ssh_remote(settings: Settings, reactor: Any, user_keys: UserKeys | None = None,
               key: Key | None = None, trusted: KnownHosts | None = None,
               **overrides: float) -> SSHRemote:
    """The persistent SSH transport to the login node.

    ``key`` replaces the configured service account key, ``trusted`` the known_hosts
    check, ``overrides`` some ``Policy`` fields. ``SettingsError`` when the login node
    or the key is not usable.
    """
    for name in SSH_REQUIRED:
        if not getattr(settings, name) and not (key and name == "ssh_pkey"):
            raise SettingsError(f"{name} must be set to use the SSH transport")
    if key is None:
        try:
            key = private_key(settings)
        except ValueError as error:  # PrivateKeyError, or neither key text nor base64
            raise SettingsError(f"ssh_pkey: {error}") from None
    limits = policy(settings, **overrides)
    login = ssh_login(settings, reactor, trusted or known_hosts(settings),
                      limits.connect_timeout)
    return SSHRemote(login, reactor, host_token(settings.cluster_addr, settings.cluster_port),
                     settings.ssh_user, key, user_keys, limits,
                     user_labels=settings.metrics_user_labels)


def local_remote(settings: Settings, reactor: Any) -> LocalRemote:
    """The transport for a DSSR on the login node itself: processes on this host."""
    return LocalRemote(reactor, settings.ssh_command_timeout, settings.ssh_max_output)


def remote(settings: Settings, reactor: Any, mapping: IdentityMap | None) -> IRemote:
    """The ``IRemote`` the ``remote`` setting names, able to act as ``mapping``'s users."""
    if settings.remote == "local":
        if mapping is not None:
            raise SettingsError("id_mapping_file needs remote=ssh: a local transport "
                                "cannot act as other users")
        return local_remote(settings, reactor)
    return ssh_remote(settings, reactor, user_keys=mapped_keys(mapping))


# -- the Slurm connector -----------------------------------------------------------


def slurm_tokens(settings: Settings, clock: IReactorTime, commands: LoggedRemote,
                 service_user: str) -> Tokens:
    """Where slurmrestd tokens come from: minted with the cluster's key, one static
    SlurmUser token, else ``scontrol token`` run as each user over ``commands``."""
    if settings.slurm_jwt_key_file:
        key = _read_private(settings.slurm_jwt_key_file, "slurm_jwt_key_file")
        if not key:
            raise SettingsError(f"slurm_jwt_key_file {settings.slurm_jwt_key_file} is empty")
        return MintedTokens(key, clock, settings.slurm_jwt_lifespan)
    if settings.slurm_sa_token:
        return StaticToken(settings.slurm_sa_token)
    return ScontrolTokens(commands, clock, settings.slurm_jwt_lifespan, service_user)


def rest_client(settings: Settings, reactor: Any, remote: IRemote | None = None) -> RestClient:
    """The HTTP client of the slurmrestd the settings name: connecting directly, or
    (``slurmrestd_via: ssh``) through ``remote``, the login node connecting for DSSR;
    to a TCP port, or to a unix socket (``unix:/path``)."""
    if not settings.slurmrestd_addr:
        raise SettingsError("slurmrestd_addr must be set for slurm_interface=http "
                            "(JARVICE_SLURMRESTD_ADDR, e.g. http://login1)")
    try:
        base = base_url(settings.slurmrestd_addr, settings.slurmrestd_port)
        socket = socket_path(settings.slurmrestd_addr)
    except ValueError as error:
        raise SettingsError(f"slurmrestd_addr ({settings.slurmrestd_addr!r}): {error}") from None
    authorities = None
    if settings.slurmrestd_ca_file:
        authorities = _read(settings.slurmrestd_ca_file, "slurmrestd_ca_file")
    endpoints: IAgentEndpointFactory | None = None
    if settings.slurmrestd_via == "ssh":
        assert remote is not None  # the transport slurmrestd_via=ssh goes through
        endpoints = (ToSocket(lambda: remote.unix_endpoint(socket)) if socket is not None
                     else ThroughRemote(remote, authorities))
    elif socket is not None:
        endpoints = ToSocket(lambda: UNIXClientEndpoint(reactor, socket,
                                                        settings.slurmrestd_timeout))
    pool = HTTPConnectionPool(reactor, persistent=True)
    return RestClient(agent(reactor, settings.slurmrestd_timeout, authorities, endpoints, pool),
                      base, reactor, settings.slurmrestd_timeout, pool,
                      settings.slurmrestd_addr if socket is not None else None,
                      JobsReader(reactor, JOB_PREFIX, settings.slurmrestd_timeout))


def rest_slurm(settings: Settings, reactor: Any, commands: LoggedRemote) -> RestSlurm:
    """``ISlurm`` over the slurmrestd the settings name (see ``rest_client``)."""
    user = service_user(settings)
    return RestSlurm(rest_client(settings, reactor, commands.remote),
                     slurm_tokens(settings, reactor, commands, user), commands, reactor,
                     user, settings.slurmrestd_api_version)


def slurm_over(remote: IRemote, clock: IReactorTime, executor: ExecutorSettings,
               identities: IdentityMap | None = None,
               snapshot_ttl: float = default("snapshot_ttl"), listing_root: str = "",
               service_user: str = "",
               output_retention: float = default("output_retention"),
               snapshot_max_stale: float = default("snapshot_max_stale"),
               jobs: JobsAddresses | None = None,
               slurm: SlurmFactory = CLISlurm) -> SlurmConnector:
    """The Slurm connector on the job files over ``remote`` and ``slurm(commands, users)``,
    an ``ISlurm`` (default: Slurm's commands over ``remote``)."""
    commands = LoggedRemote(remote, clock, service_user)
    files = JobFiles(commands, executor.job_scratch_dir, listing_root, output_retention)
    users: tuple[str, ...] = (service_user,) if service_user else ()
    if service_user and identities is not None:
        users += tuple(user.cluster_user for user in identities.users.values())
    return SlurmConnector(slurm(commands, users), files, clock, executor, identities,
                          snapshot_ttl, service_user, snapshot_max_stale, jobs)


def service_user(settings: Settings) -> str:
    """The cluster account DSSR's own commands run as: ``ssh_user`` over SSH, this
    process's user on the login node itself (``ssh_user`` does not apply there)."""
    if settings.remote == "local":
        return pwd.getpwuid(os.geteuid()).pw_name
    user: str = settings.ssh_user
    return user


def slurm_connector(settings: Settings, reactor: Any) -> SlurmConnector:
    """The ``slurm`` connector as the settings describe it (``slurm_interface``: Slurm's
    commands, or slurmrestd)."""
    mapping = identities(settings)
    slurm: SlurmFactory = CLISlurm
    if settings.slurm_interface == "http":
        def slurm(commands: LoggedRemote, users: tuple[str, ...]) -> ISlurm:
            return rest_slurm(settings, reactor, commands)
    return slurm_over(remote(settings, reactor, mapping), reactor, executor_settings(settings),
                      mapping, settings.snapshot_ttl, settings.pvcls_root,
                      service_user(settings), settings.output_retention,
                      settings.snapshot_max_stale, jobs_addresses(settings), slurm)


def proxy_limits(settings: Settings) -> ProxyLimits:
    """The proxy's stream caps, idle timeout, and the API's head deadline."""
    return ProxyLimits(settings.proxy_max_streams, settings.proxy_max_job_streams,
                       settings.proxy_idle_timeout, header_timeout=settings.header_timeout)


def access_tokens(settings: Settings) -> AccessTokens:
    """The proxy's access tokens: keyed by the server key, so replicas agree."""
    return AccessTokens(derive_key(settings.server_key))


def jobs_addresses(settings: Settings) -> JobsAddresses | None:
    """Interactive jobs' addresses with their tokens, or None when they are not published."""
    published = jobs_url(settings)
    return None if published is None else JobsAddresses(published, access_tokens(settings))


def jobs_url(settings: Settings) -> JobsURL | None:
    """Where interactive jobs are published (``jobs_domain``), or None when they are not."""
    if not settings.jobs_domain:
        return None
    try:
        return parse_jobs_domain(settings.jobs_domain)
    except ValueError as error:
        raise SettingsError(f"jobs_domain: {error}") from None
