"""The settings the singularity executor reads, as one frozen value.

The executor never reads ``dssr.settings.Settings`` itself: the connector builds an
``ExecutorSettings`` once, so the executor's functions stay pure and tests pass values in.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExecutorSettings:
    """Site settings the job script is filled with (reference ``JARVICE_*`` names in comments).

    Registry credentials are the decoded text (the environment carries them in base64).
    """

    # JARVICE_SYSTEM_REGISTRY, JARVICE_SYSTEM_REPO_BASE, JARVICE_IMAGES_TAG
    system_registry: str = "us-docker.pkg.dev"
    system_repo_base: str = "jarvice-system/images"
    images_tag: str = "latest"
    # JARVICE_LOCAL_REGISTRY, JARVICE_LOCAL_REPO_BASE: app images cached locally
    local_registry: str = ""
    local_repo_base: str = ""
    # JARVICE_REGISTRY_PROXY_PORT (0: no proxy), JARVICE_REGISTRY_PROXY_REPOS
    registry_proxy_port: int = 0
    registry_proxy_repos: tuple[str, ...] = ()
    # JARVICE_DOCKER_USERNAME, JARVICE_DOCKER_PASSWORD: pull the init image
    init_docker_username: str = field(default="", repr=False)
    init_docker_password: str = field(default="", repr=False)
    # JARVICE_JOB_SCRATCH_DIR, JARVICE_JOB_GLOBAL_SCRATCH_DIR, JARVICE_JOB_GLOBAL_REGISTRIES
    job_scratch_dir: str = ""
    job_global_scratch_dir: str = ""
    job_global_registries: tuple[str, ...] = ()
    # JARVICE_SINGULARITY_TMPDIR, _OVERLAY_SIZE (MB, 0: writable tmpfs), _VERBOSE
    singularity_tmpdir: str = "/tmp"  # noqa: S108 - the reference's default, a path on the node
    singularity_overlay_size: int = 600
    singularity_verbose: bool = False
    # JARVICE_BAREMETAL_HTTP_PROXY, _HTTPS_PROXY, _NO_PROXY: for pulls on the nodes
    # (the URLs may hold user:password@)
    http_proxy: str = field(default="", repr=False)
    https_proxy: str = field(default="", repr=False)
    no_proxy: str = ""
    # Ports the job's services listen on inside the container (fixed in the reference).
    service_port: int = 2228
    ssh_port: int = 2227
    # JARVICE_JOBS_DOMAIN set: interactive jobs can be reached, so they are accepted.
    interactive: bool = False


def dir_prefix(path: str) -> str:
    """``path`` ending in ``/``, or empty: scripts append ``.jarvice/...`` to it directly."""
    if not path or path.endswith("/"):
        return path
    return path + "/"
