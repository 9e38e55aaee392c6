"""The body of ``POST .../job/submit`` for a ``BatchJob``, per OpenAPI version.

v0.0.38 reads each field through ``sbatch``'s own option parser, so it gets the
strings ``sbatch`` would (``--time``, ``--mem``...): the same job as the CLI path.
v0.0.40 and later take typed fields: minutes and megabytes in ``{number, set}``
objects, GPUs as TRES strings, the environment as a list. An ``sbatch_<option>``
device with no field in the version spoken is refused with a 400 naming
``JOBOBJ_DEVICES``. The job starts with its user's login environment, as a job
``sbatch`` submits over SSH does: slurmd loads it (``su - user``) for a job whose
environment holds ``SLURM_GET_USER_ENV=1``, and lets the job's own variables override
it, so the body sets no ``PATH`` (the login's finds the site's Slurm commands). Pure
functions: the job in, a JSON-ready dict out.
"""

import re
from collections.abc import Callable
from typing import Any

from dssr.errors import BadRequest
from dssr.slurm.interfaces import BatchJob
from dssr.slurm.rest.versions import since, typed

DEVICES_FIELD = "JOBOBJ_DEVICES"
WALLTIME_FIELD = "JOBOBJ_WALLTIME"
# The job's own environment: slurmd adds the user's login environment (sbatch
# --get-user-env, or --export=NONE), and Slurm its SLURM_* variables.
ENVIRONMENT = {"SLURM_GET_USER_ENV": "1"}


def number(value: int) -> dict[str, Any]:
    """A v0.0.40+ ``{number, set, infinite}`` object holding ``value``."""
    return {"set": True, "infinite": False, "number": value}


INFINITE = {"set": False, "infinite": True, "number": 0}

_TIME = re.compile(r"(?:(?P<days>[0-9]+)-)?(?P<rest>[0-9]+(?::[0-9]+){0,2})")


def minutes(text: str, field: str = WALLTIME_FIELD) -> int | None:
    """Slurm's time format (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in
    minutes, seconds rounded up as Slurm does; None for UNLIMITED/INFINITE."""
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise BadRequest(f"{field}: not a Slurm time: {text!r}", field=field)
    parts = [int(part) for part in match["rest"].split(":")]
    if match["days"] is not None:  # D-H, D-H:M, D-H:M:S
        days, (hours, mins, secs) = int(match["days"]), [*parts, 0, 0][:3]
    elif len(parts) == 3:  # H:M:S
        days, (hours, mins, secs) = 0, parts
    else:  # M, M:S
        days, hours, (mins, secs) = 0, 0, [*parts, 0][:2]
    return days * 1440 + hours * 60 + mins + (1 if secs else 0)


_SIZE = re.compile(r"(?P<count>[0-9]+)(?P<unit>[KMGT]?)B?", re.IGNORECASE)
_MEGABYTES = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def megabytes(text: str) -> int:
    """A size as sbatch reads it (``512``, ``512M``, ``4G``; megabytes by default) in MB."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r}")
    return max(1, int(int(match["count"]) * _MEGABYTES[match["unit"].upper()]))


# How a v0.0.40+ field is written from the option's text.
def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    return int(value)


def _size(value: str) -> dict[str, Any]:
    return number(megabytes(value))


def _time(value: str) -> dict[str, Any]:
    found = minutes(value, DEVICES_FIELD)
    return INFINITE if found is None else number(found)


def _gpus(value: str) -> str:
    return f"gres/gpu:{value}"


def _gres(value: str) -> str:
    return ",".join(item if item.startswith("gres/") else "gres/" + item
                    for item in value.split(","))


def _items(value: str) -> list[str]:
    return [item for item in value.split(",") if item]


def _true(value: str) -> bool:
    return True


def _false(value: str) -> bool:
    return False


Convert = Callable[[str], object]
# sbatch option -> (v0.0.38 field, or None), (v0.0.40+ field and converter, or None).
# v0.0.38's fields are those of its job_properties schema; the later ones those of
# job_desc_msg in the OpenAPI documents Slurm 25.05 and 26.05 serve.
EXTRAS: dict[str, tuple[str | None, tuple[str, Convert] | None]] = {
    "account": ("account", ("account", _text)),
    "qos": ("qos", ("qos", _text)),
    "reservation": ("reservation", ("reservation", _text)),
    "constraint": ("constraints", ("constraints", _text)),
    "prefer": ("prefer", ("prefer", _text)),
    "comment": ("comment", ("comment", _text)),
    "wckey": ("wckey", ("wckey", _text)),
    "mem-per-cpu": ("memory_per_cpu", ("memory_per_cpu", _size)),
    "mem-per-gpu": ("memory_per_gpu", None),
    "cpus-per-task": ("cpus_per_task", ("cpus_per_task", _integer)),
    "cpus-per-gpu": ("cpus_per_gpu", ("cpus_per_tres", _gpus)),
    "mincpus": ("minimum_cpus_per_node", ("minimum_cpus_per_node", _integer)),
    "ntasks-per-node": ("tasks_per_node", ("tasks_per_node", _integer)),
    "ntasks-per-core": ("tasks_per_core", ("tasks_per_core", _integer)),
    "ntasks-per-socket": ("tasks_per_socket", ("tasks_per_socket", _integer)),
    "sockets-per-node": ("sockets_per_node", ("sockets_per_node", _integer)),
    "cores-per-socket": ("cores_per_socket", ("cores_per_socket", _integer)),
    "threads-per-core": ("threads_per_core", ("threads_per_core", _integer)),
    "hint": ("cpu_binding_hint", None),
    "gres": ("gres", ("tres_per_node", _gres)),
    "gres-flags": ("gres_flags", None),
    "gpus": ("gpus", ("tres_per_job", _gpus)),
    "gpus-per-task": ("gpus_per_task", ("tres_per_task", _gpus)),
    "gpus-per-socket": ("gpus_per_socket", ("tres_per_socket", _gpus)),
    "tmp": (None, ("temporary_disk_per_node", megabytes)),
    "nice": ("nice", ("nice", _integer)),
    "begin": ("begin_time", None),
    "deadline": ("deadline", None),
    "time-min": ("time_minimum", ("time_minimum", _time)),
    "signal": ("signal", None),
    "mail-type": ("mail_type", ("mail_type", _items)),
    "mail-user": ("mail_user", ("mail_user", _text)),
    "exclude": (None, ("excluded_nodes", _items)),
    "nodelist": (None, ("required_nodes", _items)),
    "distribution": ("distribution", ("distribution", _text)),
    "switches": (None, None),
    "requeue": ("requeue", ("requeue", _true)),
    "no-requeue": ("requeue", ("requeue", _false)),
    "contiguous": (None, ("contiguous", _true)),
    "spread-job": ("spread_job", None),
    "overcommit": (None, ("overcommit", _true)),
}
# Typed fields that only a later version has: option -> the first version with it.
FIRST = {"cores-per-socket": "v0.0.45"}


def extra_fields(extra: tuple[tuple[str, str], ...], version: str) -> dict[str, Any]:
    """The job fields of the ``sbatch_*`` devices; 400 for one with no field here."""
    fields: dict[str, Any] = {}
    for option, value in extra:
        v38, later = EXTRAS.get(option, (None, None))
        if not typed(version):
            if v38 is None:
                raise _no_field(option, version)
            if option == "no-requeue":
                fields[v38] = False
            else:
                fields[v38] = value if value else True
            continue
        if later is None or not since(version, FIRST.get(option, version)):
            raise _no_field(option, version)
        name, convert = later
        try:
            fields[name] = convert(value)
        except ValueError:
            raise BadRequest(f"device sbatch_{option}={value!r}: slurmrestd {version} needs "
                             f"a plain number or size for {name}", field=DEVICES_FIELD) from None
    return fields


def _no_field(option: str, version: str) -> BadRequest:
    return BadRequest(f"device sbatch_{option} has no slurmrestd {version} job field "
                      f"(JARVICE_SLURM_INTERFACE=cli passes it to sbatch)", field=DEVICES_FIELD)


def job_body(job: BatchJob, version: str, home: str) -> dict[str, Any]:
    """The submit body for ``job``, run in ``home`` (absolute) with its user's login
    environment."""
    output = job.output if job.output.startswith("/") else f"{home.rstrip('/')}/{job.output}"
    desc: dict[str, Any] = {"name": job.name, "current_working_directory": home,
                            "standard_output": output, "tasks": job.tasks}
    if job.partition:
        desc["partition"] = job.partition
    if job.licenses:
        desc["licenses"] = job.licenses
    if job.held:
        desc["hold"] = True
    if typed(version):
        desc["environment"] = [f"{name}={value}" for name, value in ENVIRONMENT.items()]
        desc["minimum_nodes"] = desc["maximum_nodes"] = job.nodes
        if job.memory_gb:
            desc["memory_per_node"] = number(job.memory_gb * 1024)
        if job.gpus_per_node:
            desc["tres_per_node"] = f"gres/gpu:{job.gpus_per_node}"
        if job.exclusive:
            desc["shared"] = ["none"]
        if job.walltime:
            found = minutes(job.walltime)
            desc["time_limit"] = INFINITE if found is None else number(found)
        desc["script"] = job.script
        body: dict[str, Any] = {"job": desc}
    else:
        desc["environment"] = dict(ENVIRONMENT)
        desc["nodes"] = str(job.nodes)
        if job.memory_gb:
            desc["memory_per_node"] = f"{job.memory_gb}G"
        if job.gpus_per_node:
            desc["gpus_per_node"] = str(job.gpus_per_node)
        if job.exclusive:
            desc["exclusive"] = "exclusive"
        if job.walltime:
            desc["time_limit"] = job.walltime
        body = {"script": job.script, "job": desc}
    desc.update(extra_fields(job.extra, version))
    return body

