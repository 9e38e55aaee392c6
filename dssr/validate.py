"""Turn untrusted ``args`` into typed requests, or raise ``BadRequest`` naming the field.

Everything a request carries passes through here before any connector sees it, so
names, job ids and numbers that reach a command line are known to be inert.
"""

import base64
import binascii
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from dssr.errors import BadRequest
from dssr.jobs import JobRef, SubmitRequest

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
JOBID = re.compile(r"[0-9]{1,19}(?:[_+][0-9]{1,10})?")
MAX_INT = 2**63 - 1
MAX_TAIL_LINES = 10000


def parse_args(raw: str | bytes | None) -> dict:
    """Decode the ``args`` JSON text into a dict."""
    if raw is None:
        raise BadRequest("missing args (a JSON object)", field="args")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("args is not valid JSON", field="args") from None
    if not isinstance(value, dict):
        raise BadRequest("args must be a JSON object", field="args")
    return value


def _require(args: Mapping[str, Any], field: str) -> Any:
    if field not in args:
        raise BadRequest(f"missing {field}", field=field)
    return args[field]


def name(value: Any, field: str = "name") -> str:
    """A Jarvice job name: ``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 255 characters."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string", field=field)
    if not NAME.fullmatch(value):
        raise BadRequest(
            f"{field} must be 1-255 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


def positive_int(value: Any, field: str) -> int:
    """A JSON integer of at least 1 (booleans and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field} must be a positive integer", field=field)
    if not 1 <= value <= MAX_INT:
        raise BadRequest(f"{field} must be a positive integer", field=field)
    return value


def jobid(value: Any, field: str = "jobid") -> str:
    """A Slurm-style job id: digits, optionally ``_task`` (arrays) or ``+offset`` (het jobs)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not JOBID.fullmatch(value):
        raise BadRequest(f"{field} must be a Slurm job id such as 1234", field=field)
    return value


def job_ref(args: Mapping[str, Any]) -> JobRef:
    """The ``{name, number, jobid}`` triple most endpoints take."""
    return JobRef(
        name=name(_require(args, "name")),
        number=positive_int(_require(args, "number"), "number"),
        jobid=jobid(_require(args, "jobid")),
    )


def job_path(segments: list[str]) -> JobRef:
    """The ``name/number/jobid`` prefix of ``/request/...`` as a ``JobRef``."""
    job_name, number, job_id = segments
    if not number.isdigit() or not number.isascii():
        raise BadRequest("number must be a positive integer", field="number")
    return JobRef(name(job_name), positive_int(int(number), "number"), jobid(job_id))


def submit_request(args: Mapping[str, Any], executor: str) -> SubmitRequest:
    """Validate ``/submit`` args; ``executor`` is the ``hpc_script`` key to use."""
    job_name = name(_require(args, "name"))
    number = positive_int(_require(args, "number"), "number")
    nodes = positive_int(_require(args, "nodes"), "nodes")
    scripts = _require(args, "hpc_script")
    if not isinstance(scripts, dict) or not all(isinstance(v, str) for v in scripts.values()):
        raise BadRequest("hpc_script must be an object of base64 strings", field="hpc_script")
    if executor not in scripts:
        raise BadRequest(f"hpc_script has no {executor!r} script", field="hpc_script")
    try:
        script = base64.b64decode(scripts[executor], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequest(
            f"hpc_script[{executor!r}] is not base64 of UTF-8 text", field="hpc_script"
        ) from None
    bearer = args.get("bearer", "")
    if bearer is None:
        bearer = ""
    if not isinstance(bearer, str):
        raise BadRequest("bearer must be a string", field="bearer")
    held = args.get("held", False)
    if not isinstance(held, bool):
        raise BadRequest("held must be true or false", field="held")
    return SubmitRequest(job_name, number, nodes, executor, script, bearer, held)


def query_value(query: Any, key: str) -> str | None:
    """The first value of ``key`` in a parsed query string ``{key: [values]}``."""
    if query is None:
        return None
    if not isinstance(query, dict):
        raise BadRequest("qs must be an object of lists", field="qs")
    values = query.get(key)
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values or not isinstance(values[0], str):
        raise BadRequest(f"qs.{key} must be a list of strings", field=f"qs.{key}")
    return values[0]


def tail_lines(query: Any) -> int:
    """``qs["lines"][0]`` as a count between 1 and 10000 (default 100)."""
    text = query_value(query, "lines")
    if text is None:
        return 100
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TAIL_LINES:
        raise BadRequest(f"lines must be between 1 and {MAX_TAIL_LINES}", field="qs.lines")
    return int(text)


def listing_path(query: Any) -> str:
    """``qs["path"][0]`` as a normalised absolute path without ``..`` or control characters."""
    text = query_value(query, "path")
    if text is None:
        text = "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) or len(text) > 4096:
        raise BadRequest("path contains control characters or is too long", field="qs.path")
    if ".." in text.split("/"):
        raise BadRequest("path must not contain '..'", field="qs.path")
    return posixpath.normpath("/" + text.lstrip("/"))


def details(query: Any) -> bool:
    """``qs["details"][0] == "true"``."""
    return query_value(query, "details") == "true"
