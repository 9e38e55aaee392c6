"""Which images a job pulls, from where, and with which registry credentials.

Rules follow the reference downstream: the init image is
``<system registry>/<repo base>/initv<appdef>:<tag>`` with the tag's trailing
architecture swapped for the job's; the app image comes from the local registry
(cached mode), through the registry proxy, or from its own registry; the app image's
credentials come from ``JOBOBJ_DOCKER_SECRET`` when it names the image's registry, else
from the matching entry of the docker config in ``JOBOBJ_CTRSECRET``.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dssr.errors import BadRequest
from dssr.executors.config import ExecutorSettings
from dssr.executors.header import JobParameters

DOCKER_HUB = "index.docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "registry-1.docker.io", DOCKER_HUB)
# Machine names to Go architectures, as image tags spell them.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_TAG_ARCHES = ("amd64", "arm64", "ppc64le", "s390x", "riscv64")


@dataclass(frozen=True)
class Images:
    """Image references (without ``docker://``) the job pulls."""

    init: str
    app: str


@dataclass(frozen=True)
class Credentials:
    """A registry login; both empty when none applies."""

    username: str = ""
    password: str = field(default="", repr=False)


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, field="hpc_script")


def init_tag(tag: str, arch: str) -> str:
    """``tag`` with a trailing architecture replaced by ``arch`` (``x86_64`` -> ``amd64``).

    Tags without one (multi-arch images) and jobs without an arch keep the tag as is.
    """
    if not arch:
        return tag
    wanted = _GOARCH.get(arch, arch)
    for known in _TAG_ARCHES:
        if tag.endswith(known) and len(tag) > len(known) + 1:
            return tag[: -len(known)] + wanted
    return tag


def _normal_host(host: str) -> str:
    host = host.lower()
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def image_registry(reference: str) -> str:
    """The registry host of an image reference, by Docker's rules (default: Docker Hub)."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return _normal_host(first)
    return DOCKER_HUB


def server_registry(server: str) -> str:
    """The registry host a docker config key or secret ``server`` names (URL or host)."""
    netloc = urlsplit(server).netloc if "//" in server else ""
    return _normal_host(netloc or server.split("/")[0])


def images(params: JobParameters, settings: ExecutorSettings) -> Images:
    """The init and app images of a job."""
    init = (f"{settings.system_registry}/{settings.system_repo_base}/"
            f"initv{params.appdef_version}:{init_tag(settings.images_tag, params.arch)}")
    if settings.local_registry:
        if not params.nae:
            raise _refuse("hpc_script has no JOBOBJ_NAE (needed to find the app image "
                          "in the local registry)")
        base = f"{settings.local_repo_base}/" if settings.local_repo_base else ""
        return Images(init, f"{settings.local_registry}/{base}{params.nae}:latest")
    if not params.repo:
        raise _refuse("hpc_script has no JOBOBJ_REPO")
    app = params.repo
    if settings.registry_proxy_port:
        for prefix in settings.registry_proxy_repos:
            if prefix and app.startswith(prefix):
                host = prefix.split("/")[0]
                app = f"localhost:{settings.registry_proxy_port}{app[len(host):]}"
                break
    return Images(init, app)


def in_global_registries(image: str, settings: ExecutorSettings) -> bool:
    """Whether ``image`` lies below one of the site's global registries (shared cache)."""
    for entry in settings.job_global_registries:
        entry = entry.strip().rstrip("/")
        if entry and (image == entry or image.startswith(entry + "/")):
            return True
    return False


def ctrsecret_auths(ctrsecret: str) -> dict[str, Any]:
    """The ``auths`` map of the docker config ``JOBOBJ_CTRSECRET`` carries in base64."""
    if not ctrsecret:
        return {}
    try:
        config = json.loads(base64.b64decode(ctrsecret, validate=True))
    except (binascii.Error, ValueError):
        raise _refuse("JOBOBJ_CTRSECRET in hpc_script is not base64 of a docker "
                      "config JSON") from None
    auths = config.get("auths", {}) if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        raise _refuse("JOBOBJ_CTRSECRET in hpc_script has no auths map")
    return auths


def auth_entry_credentials(server: str, entry: object) -> Credentials:
    """The login one docker config entry holds: ``auth`` (base64 user:password) or both."""
    if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
        try:
            user, colon, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, ValueError):
            colon = ""
        if colon:
            return Credentials(user, password)
    elif isinstance(entry, dict) and isinstance(entry.get("username"), str) and isinstance(
        entry.get("password"), str
    ):
        return Credentials(entry["username"], entry["password"])
    raise _refuse(f"JOBOBJ_CTRSECRET in hpc_script: the entry for {server!r} holds no "
                  "usable auth")


def registry_credentials(params: JobParameters) -> Credentials:
    """The login for the app image's registry, or empty credentials if none is given."""
    if not params.repo:
        return Credentials()
    registry = image_registry(params.repo)
    secret = params.docker_secret
    if secret is not None and server_registry(secret.server) == registry:
        return Credentials(secret.username, secret.password)
    for server, entry in ctrsecret_auths(params.ctrsecret).items():
        if server_registry(server) == registry:
            return auth_entry_credentials(server, entry)
    return Credentials()
