"""The settings checks: names in the environment, values, and whether they fit together.

Everything here is about text DSSR already has; nothing touches the network.
"""

from collections.abc import Mapping

import yaml
from twisted.internet import endpoints

from dssr import compose, exposure
from dssr.checks.report import Outcome, failed, passed
from dssr.connectors.loader import ConnectorError, is_embedded, resolve
from dssr.identity import unverified_tokens_refusal
from dssr.remote.hostkeys import host_token
from dssr.settings import BY_KEY, Settings, SettingsError, load
from dssr.slurm.rest.client import base_url, location
from dssr.typos import unknown_key_fix, unknown_names


def env_label(key: str) -> str:
    """How a fix names a setting: its YAML key and, if it has one, its environment variable."""
    env = BY_KEY[key].env
    return f"{env} ({key})" if env else key


def check_environment(environ: Mapping[str, str]) -> Outcome:
    """✗ for each environment name that looks like a misspelt setting (it would be ignored)."""
    typos, others = unknown_names(environ)
    if typos:
        names = ", ".join(typos)
        return failed(f"{names}: not a setting DSSR knows, so it is ignored (likely a typo)",
                      *(f"rename {name} to {meant}" for name, meant in typos.items()))
    detail = "no misspelt JARVICE_*/DSSR_* names"
    if others:
        detail += f"; ignored (DSSR does not use them): {', '.join(others)}"
    return passed(detail)


def settings_fix(message: str) -> str:
    """How to put right the ``SettingsError`` whose message is ``message``."""
    return unknown_key_fix(message) or (
        "correct that value (the README's Settings table gives each setting's form and "
        "default)")


def missing_ssh_settings(settings: Settings) -> list[str]:
    """The settings the SSH transport cannot do without that are empty."""
    return [key for key in compose.SSH_REQUIRED if not getattr(settings, key)]


def missing_fix(key: str) -> str:
    """What to set when the required SSH setting ``key`` is empty."""
    what = {
        "cluster_addr": "the login node's host name or address",
        "ssh_user": "the service account's user name on the login node",
        "ssh_pkey": "the service account's private key (its text, or base64 -w0 of the file)",
    }[key]
    return f"set {env_label(key)} to {what}"


def check_settings(cli: Mapping, config_path: str | None, environ: Mapping[str, str],
                   reactor) -> tuple[Outcome, Settings | None]:
    """Whether the settings parse and fit together; the ``Settings`` when the cluster
    checks apply (the slurm connector), else None."""
    try:
        settings = load(cli, config_path, environ)
    except SettingsError as error:
        return failed(str(error), settings_fix(str(error))), None
    problems, fixes = [], []
    try:
        endpoints.serverFromString(reactor, settings.listen)
    except (ValueError, TypeError, OSError) as error:
        problems.append(f"listen {settings.listen!r} is not a usable endpoint: {error}")
        fixes.append("set listen to a Twisted endpoint string, e.g. tcp:5000")
    try:
        factory = resolve(settings.connector)
    except ConnectorError as error:
        problems.append(str(error))
        fixes.append(f"set {env_label('connector')} to dummy, slurm, or an importable "
                     f"module or callable")
        factory = None
    # Only for a usable listen endpoint: an unusable one is the problem to fix first.
    refusal = factory and not problems and exposure.refusal(settings, not is_embedded(factory))
    if refusal:
        problems.append(refusal)
        fixes.append(f"set {env_label('server_key')} to user:password (upstream's "
                     f"scheduler server key), or serve loopback only")
    if factory is compose.slurm_connector:
        for problem, fix in slurm_problems(settings):
            problems.append(problem)
            fixes.append(fix)
    if problems:
        return failed("; ".join(problems), *fixes), None
    if factory is not compose.slurm_connector:
        return passed(f"connector {settings.connector}: DSSR checks no cluster behind it, so "
                      f"only the settings checks apply"), None
    cleartext = exposure.cleartext_warning(settings)
    return passed(describe_slurm(settings) + (f"; WARNING: {cleartext}" if cleartext else "")), \
        settings


def slurm_named(cli: Mapping, config_path: str | None, environ: Mapping[str, str]) -> bool:
    """Whether the connector the operator named is the slurm connector, even when the
    settings as a whole do not load."""
    named = (cli.get("connector") or _yaml_values(config_path).get("connector")
             or environ.get(BY_KEY["connector"].env))
    try:
        return bool(named) and resolve(str(named)) is compose.slurm_connector
    except ConnectorError:
        return False


def _yaml_values(config_path: str | None) -> Mapping:
    """The raw mapping of a YAML settings file, or nothing when it cannot be read."""
    try:
        with open(config_path or "", encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError):
        return {}
    return values if isinstance(values, dict) else {}


def slurm_problems(settings: Settings) -> list[tuple[str, str]]:
    """What keeps the slurm connector from starting with ``settings``, each with its fix."""
    rest = rest_problems(settings) if settings.slurm_interface == "http" else []
    if settings.remote == "local":
        if settings.id_mapping_file:
            return [("id_mapping_file is set but remote is local: a local transport cannot "
                     "act as other users",
                     f"set {env_label('remote')} to ssh, or unset "
                     f"{env_label('id_mapping_file')}"), *rest]
        return rest
    problems = [(f"{key} is not set", missing_fix(key)) for key in missing_ssh_settings(settings)]
    problems += rest
    refusal = unverified_tokens_refusal(settings, compose.mapping_file(settings))
    if refusal:
        problems.append((refusal, f"set {env_label('jwt_public_key_file')} or "
                                  f"{env_label('server_key')}"))
        return problems
    try:
        compose.identities(settings)
    except SettingsError as error:
        problems.append((str(error), f"fix {env_label('id_mapping_file')} or "
                                     f"{env_label('jwt_public_key_file')} (readable YAML: "
                                     f"users_id_mapping: [{{mail, mapped_user, "
                                     f"ssh_private_key_b64}}])"))
    return problems


def rest_problems(settings: Settings) -> list[tuple[str, str]]:
    """What keeps the slurmrestd client from being built, each with its fix."""
    problems = []
    address_fix = (f"set {env_label('slurmrestd_addr')} to slurmrestd's URL, e.g. "
                   "http://login1 (the port goes in JARVICE_SLURMRESTD_PORT), or to its "
                   "unix socket, unix:/path")
    if not settings.slurmrestd_addr:
        problems.append(("slurmrestd_addr is not set (slurm_interface is http)", address_fix))
    else:
        try:
            base_url(settings.slurmrestd_addr, settings.slurmrestd_port)
        except ValueError as error:
            problems.append((f"slurmrestd_addr ({settings.slurmrestd_addr!r}): {error}",
                             address_fix))
    try:
        compose.slurm_tokens(settings, None, None, "")
    except SettingsError as error:
        problems.append((str(error), f"set {env_label('slurm_jwt_key_file')} to a readable "
                                     "copy of the cluster's jwt_hs256.key, or unset it"))
    return problems


def describe_slurm(settings: Settings) -> str:
    """What the slurm connector will talk to, for the passing settings line."""
    if settings.remote == "local":
        return "connector slurm, run on this host (remote local)"
    target = f"{settings.ssh_user}@{host_token(settings.cluster_addr, settings.cluster_port)}"
    rest = (", Slurm through slurmrestd at "
            + location(settings.slurmrestd_addr, settings.slurmrestd_port)
            if settings.slurm_interface == "http" else "")
    return f"connector slurm over SSH to {target}{rest}"
