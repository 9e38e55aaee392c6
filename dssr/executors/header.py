"""The job parameters upstream writes as ``KEY=value`` lines at the top of the job script.

A line at column 0 whose key is one of ``KEYS`` sets it (value: everything after the
first ``=``, empty means unset; the first such line wins). Values are read from the
script's literal text, braces un-doubled, exactly as the job will see them. Every bad
value is refused with ``BadRequest(field="hpc_script")`` naming the key; a bad
device with ``field="JOBOBJ_DEVICES"``, naming the device.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dssr.errors import BadRequest
from dssr.executors.sbatch_options import DEVICES_FIELD, sbatch_option
from dssr.executors.template import literal_text

KEYS = (
    "JOBOBJ_APPDEFVERSION", "JOBOBJ_INTERACTIVE", "JOBOBJ_ARCH", "JOBOBJ_NAE",
    "JOBOBJ_REPO", "JOBOBJ_CTRSECRET", "JOBOBJ_DOCKER_SECRET", "JOBOBJ_USER",
    "JOBOBJ_DEVICES", "JOBOBJ_GPUS", "JOBOBJ_RAM", "JOBOBJ_LICENSES", "JOBOBJ_WALLTIME",
    "JARVICE_CPU_CORES", "JARVICE_CMD",
)

_ARCH = re.compile(r"[A-Za-z0-9_]+")
_NAE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_LICENSES = re.compile(r"[A-Za-z0-9_.@:,-]+")
_WALLTIME = re.compile(r"([0-9]+-)?[0-9]+(:[0-9]+){0,2}|UNLIMITED|INFINITE")
_PARTITION = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")


@dataclass(frozen=True)
class Devices:
    """What ``JOBOBJ_DEVICES`` asks for: Slurm placement and container tuning."""

    partition: str = ""
    exclusive: bool = True
    overlay: int | None = None  # MB; None: the site default
    sbatch: tuple[tuple[str, str], ...] = ()  # (long option, value); "" value: a flag


@dataclass(frozen=True)
class DockerSecret:
    """``JOBOBJ_DOCKER_SECRET``: the app owner's credentials for the app image's registry."""

    server: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class JobParameters:
    """The typed header of one job script."""

    appdef_version: int
    cores: int
    interactive: bool = False
    arch: str = ""
    nae: str = ""
    repo: str = ""
    ctrsecret: str = field(default="", repr=False)
    docker_secret: DockerSecret | None = field(default=None, repr=False)
    user: str = ""
    devices: Devices = field(default_factory=Devices)
    gpus: int = 0
    ram: int = 0  # GB
    licenses: str = ""
    walltime: str = ""
    jarvice_cmd: str = ""  # shell text, exactly as upstream wrote it


def _refuse(message: str, field: str = "hpc_script") -> BadRequest:
    return BadRequest(message, field=field)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


def header_values(text: str) -> dict[str, str]:
    """The value of each known key in ``text`` (first line wins; empty ones left out)."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals and key in KEYS and key not in seen:
            seen.add(key)
            if value:
                values[key] = value
    return values


def _integer(
    values: Mapping[str, str], key: str, minimum: int | None, default: int | None
) -> int:
    raw = values.get(key)
    if raw is None:
        if default is None:
            raise _refuse(f"hpc_script has no {key}")
        return default
    try:
        number = int(raw.strip())
    except ValueError:
        raise _refuse(f"{key}={_shown(raw)} in hpc_script is not an integer") from None
    if minimum is not None and number < minimum:
        raise _refuse(f"{key}={number} in hpc_script must be at least {minimum}")
    return number


def _matching(values: Mapping[str, str], key: str, pattern: re.Pattern[str]) -> str:
    raw = values.get(key, "").strip()
    if raw and not pattern.fullmatch(raw):
        raise _refuse(f"{key}={_shown(raw)} in hpc_script is not valid")
    return raw


def _boolean(raw: str, what: str, field: str = "hpc_script") -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _refuse(f"{what}={_shown(raw)} in hpc_script must be True or False", field)


def _docker_secret(raw: str | None) -> DockerSecret | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to decode
        raise _refuse("JOBOBJ_DOCKER_SECRET in hpc_script is not JSON") from None
    if not data:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(name), str) for name in ("server", "username", "password")
    ):
        raise _refuse(
            "JOBOBJ_DOCKER_SECRET in hpc_script must be an object with string "
            "server, username and password"
        )
    return DockerSecret(data["server"], data["username"], data["password"])


def _device_list(raw: str | None) -> list[Any]:
    if raw is None:
        return []
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse("JOBOBJ_DEVICES in hpc_script is not JSON", DEVICES_FIELD) from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _refuse("JOBOBJ_DEVICES in hpc_script must be a JSON list of strings",
                      DEVICES_FIELD)
    return items


def parse_devices(items: Sequence[str]) -> Devices:
    """The ``k=v`` pseudo-devices: partition, exclusive, overlay, sbatch_<option>.

    Anything else is refused, so a job never runs without what it asked for.
    """
    partition = ""
    exclusive = True
    overlay = None
    sbatch: list[tuple[str, str]] = []
    for item in items:
        key, equals, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key:
            raise _refuse(f"malformed device {_shown(item)} (expected key=value)", DEVICES_FIELD)
        if key == "partition":
            if not _PARTITION.fullmatch(value):
                raise _refuse(f"device partition={_shown(value)} is not a partition name",
                              DEVICES_FIELD)
            partition = value
        elif key == "exclusive":
            exclusive = _boolean(value, "device exclusive", DEVICES_FIELD)
        elif key == "overlay":
            try:
                overlay = int(value)
            except ValueError:
                overlay = -1
            if overlay < 0:
                raise _refuse(f"device overlay={_shown(value)} must be an integer >= 0 (MB)",
                              DEVICES_FIELD)
        elif key.startswith("sbatch_"):
            sbatch.append(sbatch_option(key, value))
        else:
            raise _refuse(f"unknown device {_shown(key)} (known: partition, exclusive, "
                          "overlay, sbatch_<option>)", DEVICES_FIELD)
    return Devices(partition, exclusive, overlay, tuple(sbatch))


def parse_header(script: str) -> JobParameters:
    """The ``JobParameters`` of an upstream job script (the template, as received).

    Refuses appdef versions below 2, as the reference does, and any malformed value.
    """
    values = header_values(literal_text(script))
    appdef_version = _integer(values, "JOBOBJ_APPDEFVERSION", None, None)
    if appdef_version < 2:
        raise _refuse("Appdef V2+ is required for this downstream")
    interactive = values.get("JOBOBJ_INTERACTIVE")
    return JobParameters(
        appdef_version=appdef_version,
        cores=_integer(values, "JARVICE_CPU_CORES", 1, None),
        interactive=False if interactive is None else _boolean(interactive,
                                                               "JOBOBJ_INTERACTIVE"),
        arch=_matching(values, "JOBOBJ_ARCH", _ARCH),
        nae=_matching(values, "JOBOBJ_NAE", _NAE),
        repo=_matching(values, "JOBOBJ_REPO", _IMAGE),
        ctrsecret=values.get("JOBOBJ_CTRSECRET", "").strip(),
        docker_secret=_docker_secret(values.get("JOBOBJ_DOCKER_SECRET")),
        user=values.get("JOBOBJ_USER", "").strip(),
        devices=parse_devices(_device_list(values.get("JOBOBJ_DEVICES"))),
        gpus=_integer(values, "JOBOBJ_GPUS", 0, 0),
        ram=_integer(values, "JOBOBJ_RAM", 0, 0),
        licenses=_matching(values, "JOBOBJ_LICENSES", _LICENSES),
        walltime=_matching(values, "JOBOBJ_WALLTIME", _WALLTIME),
        jarvice_cmd=values.get("JARVICE_CMD", ""),
    )
