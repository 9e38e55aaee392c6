"""The settings the singularity executor reads, as one frozen value.

The executor never reads ``dssr.settings.Settings`` itself: the composition root
builds an ``ExecutorSettings`` once (``dssr.compose``), so the executor's functions
stay pure and tests pass values in. Defaults are the settings table's.
"""

from dataclasses import dataclass, field

from dssr.settings import default


@dataclass(frozen=True)
class ExecutorSettings:
    """Site settings the job script is filled with (field names are the settings' keys).

    Registry credentials are the decoded text (the environment carries them in base64).
    """

    # Where the Jarvice init images come from
    system_registry: str = default("system_registry")
    system_repo_base: str = default("system_repo_base")
    images_tag: str = default("images_tag")
    # App images cached locally, and pulled through a registry proxy
    local_registry: str = default("local_registry")
    local_repo_base: str = default("local_repo_base")
    registry_proxy_port: int = default("registry_proxy_port")
    registry_proxy_repos: tuple[str, ...] = default("registry_proxy_repos")
    # The login that pulls the init image
    init_docker_username: str = field(default=default("init_docker_username"), repr=False)
    init_docker_password: str = field(default=default("init_docker_password"), repr=False)
    # Scratch for job output, and the shared image cache
    job_scratch_dir: str = default("job_scratch_dir")
    job_global_scratch_dir: str = default("job_global_scratch_dir")
    job_global_registries: tuple[str, ...] = default("job_global_registries")
    # Singularity on the nodes (overlay in MB, 0: writable tmpfs)
    singularity_tmpdir: str = default("singularity_tmpdir")
    singularity_overlay_size: int = default("singularity_overlay_size")
    singularity_verbose: bool = default("singularity_verbose")
    # Proxies for pulls on the nodes (the URLs may hold user:password@)
    http_proxy: str = field(default=default("http_proxy"), repr=False)
    https_proxy: str = field(default=default("https_proxy"), repr=False)
    no_proxy: str = default("no_proxy")
    # Ports the job's services listen on inside the container (fixed in the reference).
    service_port: int = 2228
    ssh_port: int = 2227
    # jobs_domain set: interactive jobs can be reached, so they are accepted.
    interactive: bool = False
    # The path of interactive jobs' addresses, $ for the job number ("/" host-based).
    jobs_path: str = "/"
