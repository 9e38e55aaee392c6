"""The slurmrestd OpenAPI versions DSSR speaks, and which one a server offers.

v0.0.38 is Slurm 22.05's (what Debian 12 ships); v0.0.40 and v0.0.41 are Slurm
23.11's and 24.05's. v0.0.38 reads a job the way ``sbatch`` reads its options
(strings, an environment object, a raw wait status); from v0.0.40 on fields are
typed (``{number, set, infinite}`` objects, environment as a list, state lists).
"""

import re

from dssr.errors import Unavailable

# Newest first: a server offering several is spoken to in the newest.
SUPPORTED = ("v0.0.41", "v0.0.40", "v0.0.38")
_SLURM_PATH = re.compile(r"^/slurm/(v[0-9]+\.[0-9]+\.[0-9]+)/")


def typed(version: str) -> bool:
    """Whether ``version`` has typed fields (v0.0.40 on) rather than v0.0.38's strings."""
    return version != "v0.0.38"


def offered(document: dict) -> list[str]:
    """The ``/slurm/vX`` versions an OpenAPI document (``GET /openapi/v3``) has paths for."""
    paths = document.get("paths") if isinstance(document, dict) else None
    found = {match[1] for path in paths or () if (match := _SLURM_PATH.match(path))}
    return sorted(found)


def choose(document: dict) -> str:
    """The newest version both the server and DSSR speak; ``Unavailable`` if none."""
    versions = offered(document)
    for version in SUPPORTED:
        if version in versions:
            return version
    raise Unavailable(f"slurmrestd offers {', '.join(versions) or 'no /slurm API'}; DSSR "
                      f"speaks {', '.join(SUPPORTED)} (load one with slurmrestd -s "
                      f"openapi/{SUPPORTED[-1]}, or set JARVICE_SLURMRESTD_API_VERSION)")
