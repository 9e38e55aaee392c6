"""The slurmrestd OpenAPI versions DSSR speaks, and which one a server offers.

v0.0.38 is Slurm 22.05's (what Debian 12 ships); v0.0.40 to v0.0.43 are served by
25.05, v0.0.42 to v0.0.45 by 26.05. v0.0.38 reads a job the way ``sbatch`` reads its
options (strings, an environment object, a raw wait status); from v0.0.40 on fields
are typed (``{number, set, infinite}`` objects, environment as a list, state lists).
Releases since 23.11 load their OpenAPI plugins by daemon (``openapi/slurmctld``,
``openapi/slurmdbd``) and serve each version their data_parser plugins know; older ones
load a plugin per version (``openapi/v0.0.38``).
"""

import re
from typing import Any

from dssr.errors import Unavailable
from dssr.slurm.releases import is_release, series

# Newest first: a server offering several is spoken to in the newest.
SUPPORTED = ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42", "v0.0.41", "v0.0.40", "v0.0.38")
_SLURM_PATH = re.compile(r"^/slurm/(v[0-9]+\.[0-9]+\.[0-9]+)/")
# The first release whose slurmrestd loads its plugins by daemon.
BY_DAEMON = (23, 11)


def typed(version: str) -> bool:
    """Whether ``version`` has typed fields (v0.0.40 on) rather than v0.0.38's strings."""
    return version != "v0.0.38"


def since(version: str, first: str) -> bool:
    """Whether ``version`` is ``first`` or a later one."""
    return _number(version) >= _number(first)


def _number(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.removeprefix("v").split("."))


def offered(document: dict[str, Any]) -> list[str]:
    """The ``/slurm/vX`` versions an OpenAPI document (``GET /openapi/v3``) has paths for."""
    paths = document.get("paths") if isinstance(document, dict) else None
    found = {match[1] for path in paths or () if (match := _SLURM_PATH.match(path))}
    return sorted(found, key=_number)


def release(document: dict[str, Any]) -> str | None:
    """The Slurm release serving an OpenAPI document (its ``info.x-slurm.release``, given
    since 23.11), or None."""
    info = document.get("info") if isinstance(document, dict) else None
    slurm = info.get("x-slurm") if isinstance(info, dict) else None
    found = slurm.get("release") if isinstance(slurm, dict) else None
    return found if isinstance(found, str) and is_release(found) else None


def choose(document: dict[str, Any]) -> str:
    """The newest version both the server and DSSR speak; ``Unavailable`` if none."""
    versions = offered(document)
    for version in SUPPORTED:
        if version in versions:
            return version
    raise Unavailable(f"slurmrestd{_of(document)} offers {', '.join(versions) or 'no /slurm API'}"
                      f"; DSSR speaks {', '.join(SUPPORTED)} ({_hint(document, versions)})")


def _of(document: dict[str, Any]) -> str:
    found = release(document)
    return f" of Slurm {found}" if found else ""


def _hint(document: dict[str, Any], versions: list[str]) -> str:
    """What would make the two meet, for the release that serves ``document``."""
    if versions and all(since(version, SUPPORTED[0]) for version in versions):
        return "this Slurm is newer than this DSSR: upgrade DSSR"
    if versions and not any(since(version, SUPPORTED[-1]) for version in versions):
        return f"this Slurm is older than DSSR knows: it speaks slurmrestd {SUPPORTED[-1]} on"
    found = release(document)
    if found and series(found) >= BY_DAEMON:
        return (f"start slurmrestd with -s openapi/slurmctld,openapi/slurmdbd and no -d (it "
                f"serves every version Slurm {found} has), or -d data_parser/<a version "
                "DSSR speaks>; or set JARVICE_SLURMRESTD_API_VERSION")
    return (f"load one with slurmrestd -s openapi/{SUPPORTED[-1]} (and openapi/db"
            f"{SUPPORTED[-1]} for accounting), or set JARVICE_SLURMRESTD_API_VERSION")


def serving(document: dict[str, Any], version: str) -> str:
    """How the slurmrestd that served ``document`` is made to serve ``version`` too."""
    found = release(document)
    if found and series(found) >= BY_DAEMON:
        return (f"Slurm {found}'s slurmrestd serves every version it has with -s openapi/"
                "slurmctld,openapi/slurmdbd and no -d (or -d data_parser/"
                f"{version}); a version it lacks needs another Slurm release")
    return f"load it with slurmrestd -s openapi/{version},openapi/db{version}"
