"""What a simulated upstream submits: a valid job name and a singularity ``hpc_script``.

Pure text work. The script is written the way upstream writes one (docs/protocol.rst,
``hpc_script``): ``KEY=value`` header lines, the ``{DOWNSTREAM_PARAMETERS}`` field, a
body; literal braces doubled so that only that one field is a template field.
"""

import base64
import json
import re
import shlex
import time
from dataclasses import dataclass

from dssr.validate import NAME

_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]+")
_PREFIX_MAX = 200  # leaves room for the timestamp, token and index within 255

# The body of a --direct job: test clusters have no singularity, so the command runs
# on the node itself. JARVICE_CMD_SUCCESS is what the batch script's verdict looks for.
DIRECT_BODY = """\
# dssr sim --direct: no container; the command runs on the node itself.
/bin/bash -c "$JARVICE_CMD" && /bin/echo JARVICE_CMD_SUCCESS
"""

# The body of a --singularity job, shaped like upstream's: registry login from the
# downstream parameters, then the command inside the app image.
SINGULARITY_BODY = """\
export SINGULARITY_DOCKER_USERNAME="$(echo "$JARVICE_DOCKER_USERNAME" | base64 -d)"
export SINGULARITY_DOCKER_PASSWORD="$(echo "$JARVICE_DOCKER_PASSWORD" | base64 -d)"
export SINGULARITY_TMPDIR="$JARVICE_SINGULARITY_TMPDIR"
singularity $SV_FLAG exec --containall --writable-tmpfs "$JARVICE_APP_IMAGE" \\
    /bin/bash -c "$JARVICE_CMD" && /bin/echo JARVICE_CMD_SUCCESS
"""


@dataclass(frozen=True)
class JobSpec:
    """The job every simulated submission asks for."""

    command: str
    cores: int = 1
    arch: str = "amd64"
    repo: str = "docker.io/library/ubuntu:24.04"
    exclusive: bool = False
    direct: bool = True  # False: the body calls singularity as upstream's does


def job_name(prefix: str, when: float, token: str, index: int | None = None) -> str:
    """``<prefix>-<UTC timestamp>-<token>[-<index>]``, made to fit the API's name rule.

    Characters the rule forbids become ``-``; a prefix left with no letter or digit to
    start with becomes ``sim``.
    """
    cleaned = _NOT_IN_NAMES.sub("-", prefix)[:_PREFIX_MAX]
    start = re.search(r"[A-Za-z0-9]", cleaned)
    safe_prefix = cleaned[start.start():] if start else "sim"
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when))
    name = f"{safe_prefix}-{stamp}-{_NOT_IN_NAMES.sub('-', token)}"
    if index is not None:
        name += f"-{index}"
    if not NAME.fullmatch(name):
        raise ValueError(f"cannot make a valid job name from prefix {prefix!r}")
    return name


def escape(text: str) -> str:
    """``text`` as upstream writes it in a template: literal braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def header(spec: JobSpec) -> dict[str, str]:
    """The ``KEY=value`` header lines of ``spec``'s script, values as the job sees them.

    ``JARVICE_CMD`` is shell text ready for an assignment, as upstream writes it.
    """
    return {
        "JOBOBJ_APPDEFVERSION": "2",
        "JOBOBJ_INTERACTIVE": "False",
        "JOBOBJ_ARCH": spec.arch,
        "JOBOBJ_NAE": "dssr-sim",
        "JOBOBJ_REPO": spec.repo,
        "JOBOBJ_DEVICES": json.dumps([f"exclusive={spec.exclusive}"]),
        "JARVICE_CPU_CORES": str(spec.cores),
        "JARVICE_CMD": shlex.quote(spec.command),
    }


def script_text(spec: JobSpec) -> str:
    """The decoded ``hpc_script`` template for ``spec``."""
    lines = "".join(f"{key}={value}\n" for key, value in header(spec).items())
    body = DIRECT_BODY if spec.direct else SINGULARITY_BODY
    return escape("#!/bin/bash\n" + lines) + "{DOWNSTREAM_PARAMETERS}\n" + escape(body)


def hpc_script(spec: JobSpec, executor: str = "singularity") -> dict[str, str]:
    """The ``hpc_script`` value of a ``/submit``: ``{executor: base64(script)}``."""
    return {executor: base64.b64encode(script_text(spec).encode()).decode()}
