"""Upstream-like job scripts for the executor tests."""

import base64
import json

APP_USER = "appuser"
APP_PASSWORD = "app-S3cret-pw"
OTHER_PASSWORD = "other-registry-pw"
OWNER_PASSWORD = "owner-docker-pw"


def ctrsecret(auths: dict) -> str:
    """A JOBOBJ_CTRSECRET value: base64 of a docker config."""
    return base64.b64encode(json.dumps({"auths": auths}).encode()).decode()


def auth(user: str, password: str) -> dict:
    """One docker config entry."""
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


DEFAULT_HEADER = {
    "JOBOBJ_APPDEFVERSION": "2",
    "JOBOBJ_INTERACTIVE": "False",
    "JOBOBJ_ARCH": "amd64",
    "JOBOBJ_NAE": "jarvice-ubuntu",
    "JOBOBJ_REPO": "us-docker.pkg.dev/jarvice/images/ubuntu:24.04",
    "JOBOBJ_CTRSECRET": ctrsecret({
        "https://us-docker.pkg.dev": auth(APP_USER, APP_PASSWORD),
        "quay.io": auth("other", OTHER_PASSWORD),
    }),
    "JOBOBJ_DOCKER_SECRET": "",
    "JOBOBJ_USER": "kirby",
    "JOBOBJ_DEVICES": "[]",
    "JOBOBJ_GPUS": "0",
    "JOBOBJ_RAM": "0",
    "JOBOBJ_LICENSES": "",
    "JOBOBJ_WALLTIME": "",
    "JARVICE_CPU_CORES": "4",
    "JARVICE_CMD": "'/usr/bin/env'",
}

BODY = """\
{DOWNSTREAM_PARAMETERS}

echo "${{HOME}} ${{JARVICE_APP_IMAGE}}"
export SINGULARITY_DOCKER_USERNAME=$(echo $JARVICE_DOCKER_USERNAME | base64 -d)
export SINGULARITY_DOCKER_PASSWORD=$(echo $JARVICE_DOCKER_PASSWORD | base64 -d)
bash -c "$JARVICE_CMD" && /bin/echo JARVICE_CMD_SUCCESS || /bin/echo JARVICE_CMD_FAILURE
"""


def escape(text: str) -> str:
    """``text`` as upstream writes it in a template: literal braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def template(body: str = BODY, **header: str) -> str:
    """A job script template; ``header`` overrides (or, with None, drops) header lines.

    Header values are given as the job should see them and are escaped here.
    """
    values = {**DEFAULT_HEADER, **header}
    lines = [f"{key}={escape(value)}" for key, value in values.items() if value is not None]
    return "#!/bin/bash\n" + "\n".join(lines) + "\n\n" + body
