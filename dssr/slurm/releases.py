"""The Slurm releases DSSR is tested on, and what a release's version line says.

``dssr check`` names the release it finds (``scontrol --version`` over SSH, the OpenAPI
document's ``x-slurm`` over slurmrestd) and says when it is not one of these.
"""

import re

# The releases the test rig runs DSSR's suite on (Debian 12's, and two built from source).
TESTED = ("22.05", "25.05", "26.05")
_VERSION = re.compile(r"^slurm(?:-wlm)? ([0-9]+)\.([0-9]+)\.([0-9]+)\S*$")
_RELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def parse_version(text: str) -> str | None:
    """The ``X.Y.Z`` of ``scontrol --version`` (``slurm 26.05.3``, Debian's ``slurm-wlm
    22.05.8``); None for anything else."""
    match = _VERSION.match(text.strip())
    return ".".join(match.groups()) if match else None


def is_release(text: str) -> bool:
    """Whether ``text`` is a release's ``X.Y.Z``."""
    return bool(_RELEASE.fullmatch(text))


def series(version: str) -> tuple[int, int]:
    """The ``(major, minor)`` of an ``X.Y.Z`` release: (26, 5) for 26.05.3."""
    major, minor, *_ = (int(part) for part in version.split("."))
    return major, minor


def tested_note(version: str) -> str:
    """How ``version`` stands to the tested releases, for a check's detail line."""
    found = series(version)
    tested = [series(release) for release in TESTED]
    listed = ", ".join(TESTED)
    if found in tested:
        return f"a tested release ({listed})"
    if tested[0] < found < tested[-1]:
        return f"between the tested releases ({listed}); not itself tested"
    return f"outside the tested releases ({listed}): DSSR may misread its answers"


def describe(version: str) -> str:
    """``Slurm X.Y.Z, <how it stands to the tested releases>``."""
    return f"Slurm {version}, {tested_note(version)}"
