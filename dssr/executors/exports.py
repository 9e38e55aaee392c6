"""The ``export NAME=value`` block DSSR puts in place of ``{DOWNSTREAM_PARAMETERS}``.

The variable names are the ones upstream's singularity script reads (as the reference
downstream writes them). Every value DSSR supplies is shell-quoted; ``JARVICE_CMD`` is
upstream's own shell text and is written back exactly as upstream wrote it.
"""

import base64
import shlex

from dssr.executors.config import ExecutorSettings
from dssr.executors.header import JobParameters
from dssr.executors.registry import Credentials, Images, in_global_registries
from dssr.jobfiles import dir_prefix


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def export_values(
    params: JobParameters,
    settings: ExecutorSettings,
    found: Images,
    app_login: Credentials,
) -> tuple[tuple[str, str], ...]:
    """(name, value) of every variable DSSR supplies, in block order."""
    overlay = params.devices.overlay
    return (
        ("JARVICE_JOB_SCRATCH_DIR", dir_prefix(settings.job_scratch_dir)),
        ("JARVICE_JOB_GLOBAL_SCRATCH_DIR", dir_prefix(settings.job_global_scratch_dir)),
        ("JARVICE_JOB_APP_IS_IN_GLOBAL_REGISTRIES",
         str(in_global_registries(found.app, settings))),
        ("SINGULARITYENV_JARVICE_SERVICE_PORT", str(settings.service_port)),
        ("SINGULARITYENV_JARVICE_SSH_PORT", str(settings.ssh_port)),
        ("JARVICE_SINGULARITY_TMPDIR", settings.singularity_tmpdir),
        ("JARVICE_SINGULARITY_OVERLAY_SIZE",
         str(settings.singularity_overlay_size if overlay is None else overlay)),
        ("JARVICE_INIT_DOCKER_USERNAME", _b64(settings.init_docker_username)),
        ("JARVICE_INIT_DOCKER_PASSWORD", _b64(settings.init_docker_password)),
        ("JARVICE_DOCKER_USERNAME", _b64(app_login.username)),
        ("JARVICE_DOCKER_PASSWORD", _b64(app_login.password)),
        ("JARVICE_APP_IMAGE", "docker://" + found.app),
        ("JARVICE_INIT_IMAGE", "docker://" + found.init),
        ("SV", "true" if settings.singularity_verbose else "false"),
        ("SV_FLAG", "-v" if settings.singularity_verbose else "-s"),
        ("SCHTTP_PROXY", settings.http_proxy),
        ("SCHTTPS_PROXY", settings.https_proxy),
        ("SCNO_PROXY", settings.no_proxy),
    )


def export_block(
    params: JobParameters,
    settings: ExecutorSettings,
    found: Images,
    app_login: Credentials,
) -> str:
    """The text that replaces ``{DOWNSTREAM_PARAMETERS}`` (newline-terminated lines)."""
    lines = ["# ---- downstream parameters (DSSR) ----"]
    lines += [f"export {name}={shlex.quote(value)}"
              for name, value in export_values(params, settings, found, app_login)]
    if params.interactive:
        # The port and password the batch wrapper picked on the node (APP_SETUP), and
        # the path of the job's address the app is served under.
        lines += [f'export {name}="$DSSR_SERVICE_{kind}"'
                  for kind in ("PORT", "PASSWORD")
                  for name in (f"JARVICE_SERVICE_{kind}", f"SINGULARITYENV_JARVICE_SERVICE_{kind}")]
        lines.append('export SINGULARITYENV_DSSR_SERVICE_PATH="$DSSR_SERVICE_PATH"')
    lines += [
        'export JOB_LOCAL_USER="$USER"',
        # Upstream's shell text, already quoted by upstream for an assignment.
        f"export JARVICE_CMD={params.jarvice_cmd}",
        "# ---- end of downstream parameters ----",
    ]
    return "\n".join(lines) + "\n"
