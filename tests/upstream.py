"""The largest ``/submit`` upstream realistically sends, to size ``max_body`` by.

An upstream-style singularity script with every ``JOBOBJ_*`` header (docker config
secrets for three registries, the app owner's docker secret, a dozen devices, a long
``JARVICE_CMD``), a 32 KiB script body (upstream's own is about a third of that), and
a 2 KiB RS256 bearer JWT, posted the way upstream posts it: ``args`` as a url-encoded
form field.
"""

import base64
import json
import os
from urllib.parse import urlencode


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer_jwt(size: int = 2048) -> str:
    """An RS256-shaped JWT of about ``size`` characters (claims padded with groups)."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k" * 40}).encode())
    claims = {"email": "kirby@example.org", "preferred_username": "kirby", "exp": 2**31,
              "iss": "https://keycloak.example.org/realms/jarvice", "aud": "jarvice",
              "groups": []}
    while len(_b64url(json.dumps(claims).encode())) < size - 400:
        claims["groups"].append(f"/jarvice/projects/project-{len(claims['groups']):04d}")
    signature = _b64url(os.urandom(256))
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"


def upstream_script(body_size: int = 32 * 1024) -> str:
    """A singularity ``hpc_script`` template with every header upstream writes."""
    auths = {registry: {"auth": _b64(f"robot${registry}:{'p' * 64}".encode())}
             for registry in ("us-docker.pkg.dev", "quay.io", "registry.example.org")}
    header = {
        "JOBOBJ_APPDEFVERSION": "2", "JOBOBJ_INTERACTIVE": "True", "JOBOBJ_ARCH": "amd64",
        "JOBOBJ_NAE": "jarvice-ubuntu-desktop",
        "JOBOBJ_REPO": "us-docker.pkg.dev/jarvice/images/ubuntu-desktop:24.04-" + "a" * 64,
        "JOBOBJ_CTRSECRET": _b64(json.dumps({"auths": auths}).encode()),
        "JOBOBJ_DOCKER_SECRET": json.dumps({"server": "quay.io", "username": "owner",
                                            "password": "q" * 64}),
        "JOBOBJ_USER": "kirby",
        "JOBOBJ_DEVICES": json.dumps(["partition=gpu", "exclusive=False", "overlay=2048"]
                                     + [f"sbatch_comment=device-{i}" for i in range(9)]),
        "JOBOBJ_GPUS": "8", "JOBOBJ_RAM": "512", "JOBOBJ_LICENSES": "ansys:64,matlab:4",
        "JOBOBJ_WALLTIME": "7-00:00:00", "JARVICE_CPU_CORES": "128",
        "JARVICE_CMD": "'" + "/usr/local/bin/solver --input /data/case.sim " * 40 + "'",
    }
    lines = "".join(f"{key}={value}\n" for key, value in header.items())
    lines = lines.replace("{", "{{").replace("}", "}}")
    body = ""
    while len(body) < body_size:
        body += (f'[ -n "${{{{JARVICE_STEP_{len(body)}}}}}" ] && echo "step {len(body)}: '
                 'preparing the container runtime and the job environment"\n')
    return "#!/bin/bash\n" + lines + "{DOWNSTREAM_PARAMETERS}\n" + body


def largest_submit() -> dict:
    """``/submit`` args as upstream builds them."""
    return {"name": "20261124140000-A1B2C-jarvice-ubuntu-desktop-kirby_s1",
            "number": 2**31, "nodes": 64,
            "hpc_script": {"singularity": _b64(upstream_script().encode())},
            "bearer": bearer_jwt()}


def form_body(args: dict) -> bytes:
    """``args`` as upstream posts it: one url-encoded form field."""
    return urlencode({"args": json.dumps(args)}).encode()
