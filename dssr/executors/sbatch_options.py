"""The ``sbatch_<option>=value`` devices a job may use: an allowlist of sbatch options.

A job may shape its own resources and scheduling (account, QoS, constraints, memory
per CPU, GPUs per task, start time, mail...). It may not change what DSSR tracks or
relies on (job name, output and input files, arrays, dependencies, holds, another
cluster, the parsable job id), how sbatch itself behaves (``--wait``, ``--test-only``,
``--wrap``, ``--export``), who or where it runs as (``--uid``, ``--chdir``,
``--container``), or what DSSR already sets from ``JOBOBJ_*`` and its own devices
(nodes, tasks, ``--mem``, ``--time``, ``--gpus-per-node``, licenses, partition,
exclusive). Options are matched by their full long name: sbatch's own abbreviations
are never needed, so never accepted.
"""

import re

from dssr.errors import BadRequest

# Options that take a value: --<option>=<value>.
VALUE_OPTIONS = frozenset({
    "account", "qos", "reservation", "constraint", "prefer", "comment", "wckey",
    "mem-per-cpu", "mem-per-gpu", "cpus-per-task", "cpus-per-gpu", "mincpus",
    "ntasks-per-node", "ntasks-per-core", "ntasks-per-socket",
    "sockets-per-node", "cores-per-socket", "threads-per-core", "hint",
    "gres", "gres-flags", "gpus", "gpus-per-task", "gpus-per-socket", "tmp",
    "nice", "begin", "deadline", "time-min", "signal", "mail-type", "mail-user",
    "exclude", "nodelist", "distribution", "switches",
})
# Options that take no value: allowed only as sbatch_<option>=true.
FLAG_OPTIONS = frozenset({"requeue", "no-requeue", "contiguous", "spread-job", "overcommit"})
ALLOWED = VALUE_OPTIONS | FLAG_OPTIONS
MAX_VALUE = 4096
DEVICES_FIELD = "JOBOBJ_DEVICES"  # the field device refusals name
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, field=DEVICES_FIELD)


def sbatch_option(key: str, value: str) -> tuple[str, str]:
    """The ``(option, value)`` of device ``sbatch_<option>=value``; ``""`` for a flag.

    Raises ``BadRequest(field="JOBOBJ_DEVICES")`` naming the device for an option not
    in the allowlist, an empty or over-long value, control characters, or a flag
    given anything but ``true``.
    """
    option = key.removeprefix("sbatch_")
    if option not in ALLOWED:
        shown = key if len(key) <= 48 else key[:48] + "..."
        raise _refuse(f"device {shown!r} is not an sbatch option a job may set (allowed: "
                      f"sbatch_ and one of {', '.join(sorted(ALLOWED))})")
    if _CONTROL.search(value):
        raise _refuse(f"device {key}: the value holds control characters")
    if option in FLAG_OPTIONS:
        if value.lower() != "true":
            raise _refuse(f"device {key}: --{option} takes no value; set {key}=true to pass "
                          "it (leave the device out for false)")
        return option, ""
    if not value:
        raise _refuse(f"device {key}: --{option} needs a value")
    if len(value) > MAX_VALUE:
        raise _refuse(f"device {key}: the value is longer than {MAX_VALUE} characters")
    return option, value
