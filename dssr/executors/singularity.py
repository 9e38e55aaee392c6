"""The singularity executor: an upstream job script in, a Slurm batch job out.

Pure text work, no I/O: ``prepare`` parses the script's header, checks the job is one
this cluster can run, fills ``{DOWNSTREAM_PARAMETERS}``, and wraps the result for
Slurm. The connector submits ``batch`` and hands ``fscript`` back to upstream.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from dssr.errors import BadRequest
from dssr.executors.config import ExecutorSettings
from dssr.executors.exports import export_block
from dssr.executors.header import JobParameters, parse_header
from dssr.executors.registry import images, registry_credentials
from dssr.executors.scrub import scrub_fscript, secret_values, shown_settings
from dssr.executors.slurm_batch import batch_job
from dssr.executors.template import fill_template
from dssr.jobfiles import SBATCH_JOBID, JobPaths, job_paths, name_prefix
from dssr.slurm.interfaces import BatchJob


@dataclass(frozen=True)
class SingularityJob:
    """Everything needed to submit one job and to report on it."""

    params: JobParameters
    batch: BatchJob  # its script holds credentials: never log it
    fscript: str = field(repr=False)  # the filled script, credential lines removed
    files: JobPaths


def check_supported(params: JobParameters, settings: ExecutorSettings) -> None:
    """Refuse jobs this site cannot run (the reference crashes on interactive ones)."""
    if params.interactive and not settings.interactive:
        raise BadRequest(
            "interactive jobs are not supported on this cluster (JOBOBJ_INTERACTIVE=True; "
            "the site has no JARVICE_JOBS_DOMAIN to publish them)",
            field="hpc_script",
        )


def prepare(
    script: str,
    name: str,
    nodes: int,
    held: bool,
    settings: ExecutorSettings,
    secrets: Iterable[str] = (),
    number: int = 0,
) -> SingularityJob:
    """Turn the decoded ``singularity`` script of a ``/submit`` into a Slurm submission.

    ``secrets`` (e.g. the bearer token) are scrubbed from ``fscript`` along with the
    registry and proxy credentials; ``number`` is the Jarvice job number (an
    interactive job's ports and address derive from it). Raises ``BadRequest`` for any
    refusal (field ``hpc_script``, or ``JOBOBJ_DEVICES`` for a device).
    """
    params = parse_header(script)
    check_supported(params, settings)
    app_login = registry_credentials(params)
    found = images(params, settings)
    filled = fill_template(script, export_block(params, settings, found, app_login))
    shown = fill_template(script, export_block(params, shown_settings(settings), found,
                                               app_login))
    files = job_paths(settings.job_scratch_dir, name, SBATCH_JOBID)
    known = secret_values(params, settings, [app_login.password, *secrets])
    return SingularityJob(
        params=params,
        batch=batch_job(name, nodes, params, files.output,
                        name_prefix(settings.job_scratch_dir, name), held, filled, number,
                        settings.jobs_path.replace("$", str(number))),
        fscript=scrub_fscript(shown, known),
        files=files,
    )
