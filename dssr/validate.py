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
from dssr.executors.header import header_values
from dssr.jobs import JOBID, JobRef, SubmitRequest

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
MAX_INT = 2**63 - 1
MAX_NODES = 100_000
MAX_CORES_TEXT = 9  # characters of JARVICE_CPU_CORES: cores * nodes stays printable
MAX_TAIL_LINES = 10000
MAX_FORM_FIELDS = 16
MAX_ARGS_DEPTH = 32
MAX_ARGS_VALUES = 4096

_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def form_decode(text: bytes) -> bytes:
    """Undo url-encoding (``+`` and ``%XY``) at C speed.

    ``urllib``'s decoder loops in Python over every escape (a 1 MiB field of ``%41``
    costs a tenth of a second). Once ``=`` is escaped and ``%`` becomes ``=``, the
    text is quoted-printable, which ``binascii`` decodes in C, with the same result
    for every well-formed escape. A malformed one (``%zz``, a ``%`` before a line
    break) decodes to something else than ``urllib`` would give; what comes out must
    still be a valid JSON object, so that is only a different 400.
    """
    return binascii.a2b_qp(text.replace(b"+", b" ").replace(b"=", b"=3D").replace(b"%", b"="))


def form_field(body: bytes, name: bytes = b"args") -> bytes | None:
    """The first ``name`` field of a url-encoded form, decoded; no other value is decoded.

    At most ``MAX_FORM_FIELDS`` fields are looked at, so a body of a million tiny
    fields costs one bounded split.
    """
    fields = body.split(b"&", MAX_FORM_FIELDS)
    if len(fields) > MAX_FORM_FIELDS:
        raise BadRequest(f"the form has more than {MAX_FORM_FIELDS} fields", field="args")
    for item in fields:
        key, _, value = item.partition(b"=")
        if form_decode(key) == name:
            return form_decode(value)
    return None


def check_json_shape(raw: bytes) -> None:
    """Refuse JSON text nested deeper than ``MAX_ARGS_DEPTH`` or holding more than
    ``MAX_ARGS_VALUES`` values, before ``json.loads`` spends time or memory on it.

    Every step is a bytes method running in C: escaped backslashes and quotes are
    dropped, then what lies between quotes (string contents), so brackets and commas
    inside strings do not count; what is left of valid JSON is its structure.
    """
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in raw else raw
    if unescaped.count(b'"') > 4 * MAX_ARGS_VALUES + 2:  # two strings a value at most
        raise BadRequest(f"args holds more than {MAX_ARGS_VALUES} values", field="args")
    structure = b"".join(unescaped.split(b'"')[0::2]) if b'"' in unescaped else unescaped
    if structure.count(b",") + structure.count(b"[") + structure.count(b"{") > MAX_ARGS_VALUES:
        raise BadRequest(f"args holds more than {MAX_ARGS_VALUES} values", field="args")
    brackets = structure.translate(None, _NOT_BRACKETS)
    for _ in range(MAX_ARGS_DEPTH):
        if not brackets:
            return
        brackets = _EMPTY_PAIR.sub(b"", brackets)
    if brackets:
        raise BadRequest(f"args is not JSON nested at most {MAX_ARGS_DEPTH} deep",
                         field="args")


def parse_args(raw: str | bytes | None) -> dict[str, Any]:
    """Decode the ``args`` JSON text into a dict of UTF-8-encodable text."""
    if raw is None:
        raise BadRequest("missing args (a JSON object: the form field args, or an "
                         "application/json body)", field="args")
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    check_json_shape(raw)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("args is not valid JSON", field="args") from None
    if not isinstance(value, dict):
        raise BadRequest("args must be a JSON object", field="args")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("args holds a lone surrogate (text that is not UTF-8)",
                         field="args") from None
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
    if not number.isdigit() or not number.isascii() or len(number) > len(str(MAX_INT)):
        raise BadRequest("number must be a positive integer", field="number")
    return JobRef(name(job_name), positive_int(int(number), "number"), jobid(job_id))


def submit_request(args: Mapping[str, Any], executor: str) -> SubmitRequest:
    """Validate ``/submit`` args; ``executor`` is the ``hpc_script`` key to use."""
    job_name = name(_require(args, "name"))
    number = positive_int(_require(args, "number"), "number")
    nodes = positive_int(_require(args, "nodes"), "nodes")
    if nodes > MAX_NODES:
        raise BadRequest(f"nodes must be between 1 and {MAX_NODES}", field="nodes")
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
    if len(header_values(script).get("JARVICE_CPU_CORES", "").strip()) > MAX_CORES_TEXT:
        raise BadRequest("JARVICE_CPU_CORES in hpc_script is too large", field="hpc_script")
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
    if (not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_TAIL_LINES))
            or not 1 <= int(text) <= MAX_TAIL_LINES):
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
