"""Every setting DSSR reads, in one table, and how they are merged.

Each setting has a YAML key (also its attribute name), an optional environment
variable (the reference downstream's ``JARVICE_*`` names where one exists, ``DSSR_*``
for DSSR's own), a default, and a parser. Precedence, highest first: command line,
YAML file, environment, default.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dssr import settingtypes as kinds
from dssr.files import loose_mode, yaml_problem

LOOPBACK = "127.0.0.1"
# dssr.slurm.rest.versions.SUPPORTED
API_VERSIONS = ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42", "v0.0.41", "v0.0.40", "v0.0.38")


class SettingsError(ValueError):
    """A setting has a value DSSR cannot use; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    key: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    env: str | None = None
    secret: bool = False
    aliases: tuple[str, ...] = ()  # other variables meaning the same (env wins)


SETTINGS: tuple[Setting, ...] = (
    Setting("listen", f"tcp:5000:interface={LOOPBACK}", kinds.endpoint,
            "Twisted endpoint string to serve the API on (WAITRESS_PORT and "
            "WAITRESS_BIND_ADDRESS are honoured when this is not set)"),
    Setting("connector", "dummy", kinds.plain,
            "Connector: dummy, slurm, or a dotted path to a third-party connector",
            env="JARVICE_BAREMETAL_CONNECTOR"),
    Setting("executor", "singularity", kinds.plain,
            "Key of hpc_script holding the job script", env="JARVICE_BAREMETAL_EXECUTOR"),
    Setting("loglevel", 20, kinds.integer, "Log level (10 debug, 20 info, 30 warning, 40 error)",
            env="JARVICE_SCHED_LOGLEVEL", aliases=("JARVICE_SLURM_SCHED_LOGLEVEL",)),
    Setting("log_format", "text", kinds.choice("text", "json"),
            "Log as text lines or as JSON objects, one a line", env="DSSR_LOG_FORMAT"),
    Setting("server_key", "", kinds.server_key,
            "user:password upstream must send as HTTP Basic auth (empty: no auth)",
            env="JARVICE_SCHED_SERVER_KEY", secret=True),
    Setting("allow_unauthenticated", False, kinds.boolean,
            "Let a real connector serve a non-loopback address without server_key "
            "(anyone who reaches the port can run jobs; warned at every start)",
            env="DSSR_ALLOW_UNAUTHENTICATED"),
    Setting("max_body", 1024 * 1024, kinds.positive_int,
            "Largest request body accepted, in bytes (larger: 413 before it is read)",
            env="DSSR_MAX_BODY"),
    Setting("max_connections", 4096, kinds.positive_int,
            "HTTP connections served at once (kept below the file descriptor limit); "
            "more are answered 503 and closed", env="DSSR_MAX_CONNECTIONS"),
    Setting("max_connections_per_peer", 256, kinds.positive_int,
            "HTTP connections served at once from one client address",
            env="DSSR_MAX_CONNECTIONS_PER_PEER"),
    Setting("header_timeout", 10.0, kinds.positive_float,
            "Seconds a client has to send a request line and headers (408 after)",
            env="DSSR_HEADER_TIMEOUT"),
    Setting("request_timeout", 30.0, kinds.positive_float,
            "Seconds a client has to send a whole request, body included (408 after)",
            env="DSSR_REQUEST_TIMEOUT"),
    Setting("http_idle_timeout", 60.0, kinds.positive_float,
            "Seconds an idle keep-alive connection stays open", env="DSSR_HTTP_IDLE_TIMEOUT"),
    Setting("metrics_open", False, kinds.boolean,
            "/metrics answers without credentials, like /live (false: it needs server_key "
            "when one is set)", env="DSSR_METRICS_OPEN"),
    Setting("metrics_user_labels", False, kinds.boolean,
            "/metrics labels SSH samples with cluster account names (false: by role, "
            "service or mapped)", env="DSSR_METRICS_USER_LABELS"),
    Setting("state_dir", "./dssr-state", kinds.plain,
            "Directory for local state (the dummy connector's database)",
            env="DSSR_STATE_DIR"),
    Setting("dummy_queued_time", 5.0, kinds.non_negative_float,
            "Dummy connector: seconds a job stays queued", env="JARVICE_DUMMY_JOB_QUEUED_TIME"),
    Setting("dummy_running_time", 10.0, kinds.non_negative_float,
            "Dummy connector: seconds a job runs", env="JARVICE_DUMMY_JOB_RUNNING_TIME"),
    Setting("dummy_failing_percent", 50, kinds.percent,
            "Dummy connector: percentage of jobs that fail",
            env="JARVICE_DUMMY_JOB_FAILING_PERCENT"),
    Setting("dummy_interactive", False, kinds.boolean,
            "Dummy connector: jobs are interactive (info gives a URL)",
            env="JARVICE_DUMMY_JOBS_ARE_INTERACTIVE"),
    Setting("cluster_addr", "", kinds.plain, "Login node host name or address",
            env="JARVICE_SLURM_CLUSTER_ADDR"),
    Setting("cluster_port", 22, kinds.positive_int, "Login node SSH port",
            env="JARVICE_SLURM_CLUSTER_PORT"),
    Setting("ssh_user", "", kinds.plain, "Service account on the login node",
            env="JARVICE_SLURM_SSH_USER"),
    Setting("ssh_pkey", "", kinds.plain,
            "Service account private key: PEM/OpenSSH text or its base64",
            env="JARVICE_SLURM_SSH_PKEY", secret=True),
    Setting("ssh_pkey_passphrase", "", kinds.plain, "Passphrase of the private key, if any",
            env="DSSR_SSH_PKEY_PASSPHRASE", secret=True),
    Setting("ssh_known_hosts", "~/.ssh/known_hosts", kinds.plain,
            "known_hosts file the login node's host key is checked against",
            env="JARVICE_SLURM_SSH_KNOWN_HOSTS"),
    Setting("ssh_host_key_policy", "strict", kinds.choice("strict", "accept-new"),
            "strict: unknown host keys are refused; accept-new: trusted on first use "
            "and written to the known_hosts file", env="DSSR_SSH_HOST_KEY_POLICY"),
    Setting("ssh_max_channels", 8, kinds.positive_int,
            "Commands running at once per SSH connection (keep below sshd's MaxSessions)",
            env="DSSR_SSH_MAX_CHANNELS"),
    Setting("ssh_command_timeout", 60.0, kinds.non_negative_float,
            "Seconds a remote command may run before it is cut off (0: no limit)",
            env="DSSR_SSH_COMMAND_TIMEOUT"),
    Setting("ssh_connect_wait", 5.0, kinds.non_negative_float,
            "Seconds a command waits while the SSH connection is down before failing "
            "(the API then answers 503)", env="DSSR_SSH_CONNECT_WAIT"),
    Setting("ssh_max_output", 64 * 1024 * 1024, kinds.positive_int,
            "Largest stdout/stderr kept from one remote command, in bytes",
            env="DSSR_SSH_MAX_OUTPUT"),
    Setting("ssh_keepalive", 30.0, kinds.non_negative_float,
            "Seconds between SSH keepalives (0: none)", env="DSSR_SSH_KEEPALIVE"),
    Setting("ssh_idle_timeout", 300.0, kinds.non_negative_float,
            "Seconds a mapped user's idle connection stays open", env="DSSR_SSH_IDLE_TIMEOUT"),
    Setting("remote", "ssh", kinds.choice("ssh", "local"),
            "How the slurm connector reaches Slurm: ssh to the login node, or local "
            "(DSSR runs on the login node itself)", env="DSSR_REMOTE"),
    Setting("slurm_interface", "cli", kinds.choice("cli", "http"), "How DSSR asks Slurm: cli "
            "(commands) or http (slurmrestd)", env="JARVICE_SLURM_INTERFACE"),
    Setting("slurmrestd_addr", "", kinds.plain, "slurmrestd's URL without the port "
            "(http://login1), or its unix socket (unix:/path)", env="JARVICE_SLURMRESTD_ADDR"),
    Setting("slurmrestd_via", "direct", kinds.choice("direct", "ssh"), "Reach slurmrestd "
            "directly or through the SSH connection", env="DSSR_SLURMRESTD_VIA"),
    Setting("slurmrestd_port", 6820, kinds.positive_int, "slurmrestd's port",
            env="JARVICE_SLURMRESTD_PORT"),
    Setting("slurmrestd_api_version", "", kinds.choice("", *API_VERSIONS), "slurmrestd OpenAPI "
            "version (empty: detected)", env="JARVICE_SLURMRESTD_API_VERSION"),
    Setting("slurmrestd_ca_file", "", kinds.plain, "PEM CA certificates for an https slurmrestd "
            "(empty: the system's)", env="DSSR_SLURMRESTD_CA_FILE"),
    Setting("slurmrestd_timeout", 30.0, kinds.positive_float, "Seconds slurmrestd has to "
            "connect and answer (then 503)", env="DSSR_SLURMRESTD_TIMEOUT"),
    Setting("slurm_jwt_key_file", "", kinds.plain, "The cluster's jwt_hs256.key: DSSR signs "
            "slurmrestd tokens with it", env="DSSR_SLURM_JWT_KEY_FILE"),
    Setting("slurm_sa_token", "", kinds.plain, "A SlurmUser token acting for each user (without "
            "slurm_jwt_key_file)", env="JARVICE_SLURM_SA_TOKEN", secret=True),
    Setting("slurm_jwt_lifespan", 1800, kinds.positive_int, "Seconds a slurmrestd token lives "
            "(renewed with a third left)", env="DSSR_SLURM_JWT_LIFESPAN"),
    Setting("snapshot_ttl", 2.0, kinds.non_negative_float,
            "Seconds one squeue snapshot serves all callers", env="DSSR_SNAPSHOT_TTL"),
    Setting("snapshot_max_stale", 10.0, kinds.non_negative_float,
            "Oldest snapshot (seconds) /running, /queued and /runstatus may get while one "
            "refresh runs (a slow squeue); past it they wait, and 503 if it fails",
            env="DSSR_SNAPSHOT_MAX_STALE"),
    Setting("output_retention", 3 * 86400.0, kinds.non_negative_float,
            "Seconds a job's output and end record stay on the cluster after its first "
            "/exitstatus (repeated calls answer the same); then /gc removes them",
            env="DSSR_OUTPUT_RETENTION"),
    Setting("pvcls_root", "", kinds.plain,
            "Directory on the cluster that /request/pvcls may list (empty: none)",
            env="DSSR_PVCLS_ROOT"),
    Setting("id_mapping_file", "", kinds.plain,
            "YAML file mapping Jarvice users (JWT email) to cluster users (empty: all jobs "
            "run as the service account)", env="DSSR_ID_MAPPING_FILE"),
    Setting("jwt_public_key_file", "", kinds.plain,
            "PEM public key or JWKS that bearer tokens must be signed with (empty: not "
            "verified, which needs server_key or trust_unverified_tokens)",
            env="DSSR_JWT_PUBLIC_KEY_FILE"),
    Setting("jwt_audience", "", kinds.plain,
            "Audience (aud) verified bearer tokens must name (empty: not checked)",
            env="DSSR_JWT_AUDIENCE"),
    Setting("jwt_issuer", "", kinds.plain,
            "Issuer (iss) verified bearer tokens must name (empty: not checked)",
            env="DSSR_JWT_ISSUER"),
    Setting("trust_unverified_tokens", False, kinds.boolean,
            "ID mapping without a JWT key and without server_key: decode bearer tokens "
            "unverified anyway (anyone who reaches DSSR can then act as any mapped user)",
            env="DSSR_TRUST_UNVERIFIED_TOKENS"),
    Setting("system_registry", "us-docker.pkg.dev", kinds.plain,
            "Registry of the Jarvice init images", env="JARVICE_SYSTEM_REGISTRY"),
    Setting("system_repo_base", "jarvice-system/images", kinds.plain,
            "Repository of the init images", env="JARVICE_SYSTEM_REPO_BASE"),
    Setting("images_tag", "latest", kinds.plain,
            "Init image tag (a trailing architecture is swapped for the job's)",
            env="JARVICE_IMAGES_TAG"),
    Setting("local_registry", "", kinds.plain, "Registry app images are cached in (empty: none)",
            env="JARVICE_LOCAL_REGISTRY"),
    Setting("local_repo_base", "", kinds.plain, "Repository in the local registry",
            env="JARVICE_LOCAL_REPO_BASE"),
    Setting("registry_proxy_port", 0, kinds.non_negative_int,
            "Port of a registry proxy on the nodes' localhost (0: none)",
            env="JARVICE_REGISTRY_PROXY_PORT"),
    Setting("registry_proxy_repos", (), kinds.comma_list,
            "Comma-separated repository prefixes pulled through the proxy",
            env="JARVICE_REGISTRY_PROXY_REPOS"),
    Setting("init_docker_username", "", kinds.base64_text,
            "Init image registry user, base64", env="JARVICE_DOCKER_USERNAME", secret=True),
    Setting("init_docker_password", "", kinds.base64_text,
            "Init image registry password, base64", env="JARVICE_DOCKER_PASSWORD", secret=True),
    Setting("job_scratch_dir", "", kinds.plain,
            "Scratch directory for job output on the cluster (empty: the user's home)",
            env="JARVICE_JOB_SCRATCH_DIR"),
    Setting("job_global_scratch_dir", "", kinds.plain, "Shared image cache directory",
            env="JARVICE_JOB_GLOBAL_SCRATCH_DIR"),
    Setting("job_global_registries", (), kinds.comma_list,
            "Comma-separated registries whose images go to the global cache",
            env="JARVICE_JOB_GLOBAL_REGISTRIES"),
    Setting("singularity_tmpdir", "/tmp", kinds.plain,  # noqa: S108 - a path on the nodes
            "Singularity work directory on the nodes", env="JARVICE_SINGULARITY_TMPDIR"),
    Setting("singularity_overlay_size", 600, kinds.non_negative_int,
            "Overlay size in MB (0: writable tmpfs)", env="JARVICE_SINGULARITY_OVERLAY_SIZE"),
    Setting("singularity_verbose", False, kinds.boolean, "Verbose singularity and job script steps",
            env="JARVICE_SINGULARITY_VERBOSE"),
    Setting("http_proxy", "", kinds.plain, "HTTP proxy for image pulls on the nodes",
            env="JARVICE_BAREMETAL_HTTP_PROXY", secret=True),
    Setting("https_proxy", "", kinds.plain, "HTTPS proxy for image pulls on the nodes",
            env="JARVICE_BAREMETAL_HTTPS_PROXY", secret=True),
    Setting("no_proxy", "", kinds.plain, "Hosts reached without the proxy",
            env="JARVICE_BAREMETAL_NO_PROXY"),
    Setting("jobs_domain", "", kinds.plain,
            "Where interactive jobs are published: host-based domain, domain/path$, or a "
            "full URL ($: the job number; empty: interactive jobs refused)",
            env="JARVICE_JOBS_DOMAIN"),
    Setting("proxy_listen", "", kinds.optional(kinds.endpoint),
            "Twisted endpoint string for the proxy to interactive jobs' apps (empty: none)",
            env="DSSR_PROXY_LISTEN"),
    Setting("proxy_max_streams", 1024, kinds.positive_int,
            "Proxy connections to apps open at once, in all", env="DSSR_PROXY_MAX_STREAMS"),
    Setting("proxy_max_job_streams", 256, kinds.positive_int,
            "Proxy connections to one job's app open at once",
            env="DSSR_PROXY_MAX_JOB_STREAMS"),
    Setting("proxy_idle_timeout", 300.0, kinds.positive_float,
            "Seconds a proxy connection may pass no byte before it is closed",
            env="DSSR_PROXY_IDLE_TIMEOUT"),
)

BY_KEY = {setting.key: setting for setting in SETTINGS}


def default(key: str) -> Any:
    """The default of setting ``key``: what objects built without settings start from."""
    return BY_KEY[key].default


class Settings:
    """Resolved settings, read as attributes (``settings.listen``)."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed (parsed like any other source)."""
        return Settings({**self._values, **_parse_all(changes, lambda key: key)})


def _parse(setting: Setting, raw: Any, label: str) -> Any:
    """``raw`` parsed; else an error naming the setting as the user wrote it (``label``)."""
    try:
        return setting.parse(raw)
    except (TypeError, ValueError) as error:
        # Never echo a secret's value back.
        shown = "" if setting.secret else f" ({raw!r})"
        raise SettingsError(f"{label}{shown}: {error}") from None


def _parse_all(raw: Mapping[str, Any], label: Callable[[str], str],
               source: str = "the command line") -> dict[str, Any]:
    values = {}
    for key, value in raw.items():
        if key not in BY_KEY:
            raise SettingsError(f"unknown setting {key!r} in {source}")
        values[key] = _parse(BY_KEY[key], value, label(key))
    return values


def option_label(key: str) -> str:
    """How the command line spells setting ``key``: ``--state-dir``."""
    return "--" + key.replace("_", "-")


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings an environment sets (only those it names)."""
    values = {}
    for setting in SETTINGS:
        for name in (setting.env, *setting.aliases):
            if name and name in environ:
                values[setting.key] = _parse(setting, environ[name], name)
                break
    port = environ.get("WAITRESS_PORT")
    address = environ.get("WAITRESS_BIND_ADDRESS")
    if port or address:
        # Like the default, a port alone serves loopback only; all interfaces must be asked for.
        port = _parse(Setting("WAITRESS_PORT", 5000, kinds.port, ""), port or 5000,
                      "WAITRESS_PORT")
        address = (address or LOOPBACK).replace("\\", "\\\\").replace(":", "\\:")
        values["listen"] = f"tcp:{port}:interface={address}"
    return values


def from_yaml(text: str, source: str) -> dict[str, Any]:
    """The settings a YAML mapping sets; unknown keys are an error (likely typos)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(yaml_problem(error, source)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{source} must hold a mapping of setting: value")
    return _parse_all(data, lambda key: f"{key} in {source}", source)


def config_warnings(config_path: str | None) -> list[str]:
    """What to warn of about the settings file itself (secrets others may read)."""
    loose = loose_mode(config_path) if config_path else None
    return [f"the settings file {loose}"] if loose else []


def load(
    cli: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < environment < YAML file < command line."""
    values = {setting.key: setting.default for setting in SETTINGS}
    values.update(from_environment(environ or {}))
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as config:
                text = config.read()
        except OSError as error:
            raise SettingsError(f"cannot read {config_path}: {error.strerror}") from None
        values.update(from_yaml(text, config_path))
    values.update(_parse_all({k: v for k, v in (cli or {}).items() if v is not None},
                             option_label))
    return Settings(values)
