"""Hypothesis strategies for fuzzing the legacy API, kept in one place.

Everything here builds *untrusted input* as upstream (or anyone who can reach the
port) could send it: job names, ids and numbers of every JSON type, ``args`` objects
of random shapes, raw ``args`` text that is not JSON, upstream-like job scripts with
hostile headers, ``/request/...`` paths and query strings. String positions often
carry a *canary*: a shell snippet that creates a file under ``CANARY`` if any shell
ever interprets it, so a fuzz run can prove that no request text reached a shell.
"""

import base64
import json
import os
import string
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

# Every canary creates a file whose name starts with this; the form that fired is
# the file's suffix. /tmp is shared by this process and the rig's jobs.
CANARY = f"/tmp/dssr-fuzz-canary-{os.getpid()}"
INJECTIONS = {
    "dollar": "$(touch {path})",
    "backtick": "`touch {path}`",
    "semicolon": ";touch {path};",
    "pipe": "|touch {path}",
    "newline": "\ntouch {path}\n",
    "and": "&&touch {path}",
    "squote": "';touch {path};'",
    "dquote": '";touch {path};"',
    "dollar-in-dquote": '"$(touch {path})"',
}
ENDPOINTS = ("/live", "/ready", "/metrics", "/gc", "/nodes", "/online", "/submit",
             "/running", "/queued", "/runstatus", "/exitstatus", "/terminate", "/release",
             "/events")
REQUEST_METHODS = ("ping", "connect", "shutdown", "abort", "info", "tail", "screenshot")
HEADER_KEYS = ("JOBOBJ_APPDEFVERSION", "JOBOBJ_INTERACTIVE", "JOBOBJ_ARCH", "JOBOBJ_NAE",
               "JOBOBJ_REPO", "JOBOBJ_CTRSECRET", "JOBOBJ_DOCKER_SECRET", "JOBOBJ_USER",
               "JOBOBJ_DEVICES", "JOBOBJ_GPUS", "JOBOBJ_RAM", "JOBOBJ_LICENSES",
               "JOBOBJ_WALLTIME", "JARVICE_CPU_CORES")
# A quoted here-document: the script lines inside it are what DSSR parses as the job
# header, but the job's shell reads them as inert text (see ``upstream_scripts``).
INERT_START = ": <<'DSSR_FUZZ_HEADER_END'"
INERT_END = "DSSR_FUZZ_HEADER_END"


def canary_hits() -> list[str]:
    """Canary files that exist: each one is a request string some shell executed."""
    directory, prefix = os.path.split(CANARY)
    return sorted(name for name in os.listdir(directory) if name.startswith(prefix))


def canaries() -> st.SearchStrategy[str]:
    """One shell injection whose file is named for its form."""
    return st.sampled_from(sorted(INJECTIONS)).map(
        lambda form: INJECTIONS[form].format(path=f"{CANARY}-{form}"))


def _huge(alphabet: str = "a") -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(alphabet), st.integers(256, 20_000)).map(
        lambda pair: pair[0] * pair[1])


def hostile_text(max_size: int = 30) -> st.SearchStrategy[str]:
    """Strings meant to break something: canaries, control characters, surrogates,
    path tricks, unicode, and huge runs."""
    return st.one_of(
        st.text(max_size=max_size),
        canaries(),
        st.tuples(st.text(max_size=8), canaries(), st.text(max_size=8)).map("".join),
        st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=4),
        st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                max_size=2),
        st.sampled_from(["", " ", ".", "..", "/", "//", "../..", "\\", "%00", "%2e%2e",
                         "-", "--help", "-n", "\u202e", "\ufeff", "\x00", "null", "NaN"]),
        _huge("a-9\u00e9\U0001f600;"),
    )


def job_names() -> st.SearchStrategy[str]:
    """Valid Jarvice job names, and hostile ones (every one a string)."""
    valid = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
    return st.one_of(
        valid,
        st.just("20261124140000-A1B2C-jarvice-ubuntu-kirby_s1"),
        st.sampled_from(["a" * 255, "a" * 256]),
        st.tuples(valid, canaries()).map("".join),
        hostile_text(),
    )


def jobids() -> st.SearchStrategy:
    """Slurm job ids as strings and ints, valid and hostile."""
    return st.one_of(
        st.from_regex(r"[0-9]{1,19}(?:[_+][0-9]{1,10})?", fullmatch=True),
        st.integers(-(2**70), 2**70),
        st.tuples(st.from_regex(r"[0-9]{1,5}", fullmatch=True), canaries()).map("".join),
        hostile_text(),
        json_values(),
    )


def numbers() -> st.SearchStrategy:
    """What might stand where an integer belongs: ints of any size, bools, floats,
    numeric strings, and other JSON."""
    return st.one_of(
        st.integers(1, 100),
        st.integers(-(2**80), 2**80),
        st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, 10**400]),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.from_regex(r"-?[0-9]{1,25}", fullmatch=True),
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=5),
        hostile_text(),
        st.none(),
    )


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    """Any JSON value, nested a little."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(), hostile_text(10))
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6), children, max_size=4),
        max_leaves=max_leaves,
    )


def query_objects() -> st.SearchStrategy:
    """``qs`` values: parsed query strings ``{key: [values]}`` and everything else."""
    keys = st.one_of(st.sampled_from(["lines", "path", "details"]), hostile_text(8))
    values = st.one_of(
        st.from_regex(r"[0-9]{1,6}", fullmatch=True),
        st.sampled_from(["true", "false", "/", "/data", "..", "/../etc", "a/../../b", "0",
                         "10000", "10001", "-1", "1e3", "\uff11"]),
        hostile_text(),
    )
    return st.one_of(
        st.dictionaries(keys, st.one_of(st.lists(values, max_size=3), values, json_values()),
                        max_size=4),
        json_values(),
    )


# -- job scripts (hpc_script) ---------------------------------------------------------

def header_values() -> st.SearchStrategy[str]:
    """A value for a header line: plausible, or a hostile single line."""
    plausible = st.sampled_from(["2", "1", "True", "False", "amd64", "4", "0", "-3",
                                 "docker.io/library/ubuntu:22.04", "ubuntu", "1:00:00",
                                 "UNLIMITED", "{}", '{"server":"r","username":"u",'
                                 '"password":"p"}', "e30=", "user1"])
    return st.one_of(plausible, hostile_text()).map(
        lambda value: value.replace("\r", " ").replace("\n", " "))


def devices() -> st.SearchStrategy[str]:
    """A ``JOBOBJ_DEVICES`` value: a JSON list of ``k=v`` pseudo-devices, or not JSON."""
    keys = st.one_of(
        st.sampled_from(["partition", "exclusive", "overlay", "sbatch_comment",
                         "sbatch_mail-user", "sbatch_wckey", "sbatch_constraint",
                         "sbatch_o", "sbatch_wrap", "sbatch_export", "gpu", ""]),
        st.from_regex(r"sbatch_[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True),
        hostile_text(8),
    )
    values = st.one_of(st.sampled_from(["", "False", "True", "debug", "100", "-1"]),
                       hostile_text())
    item = st.one_of(st.tuples(keys, values).map("=".join), hostile_text())
    return st.one_of(
        st.lists(item, max_size=4).map(json.dumps),
        st.lists(item, max_size=4).map(lambda items: json.dumps(items, ensure_ascii=False)),
        json_values().map(json.dumps),
        hostile_text(),
    ).map(lambda value: value.replace("\r", " ").replace("\n", " "))


def _double_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@st.composite
def upstream_scripts(draw, inert_header: bool = False) -> str:
    """A decoded ``singularity`` script in upstream's shape, with random header lines
    and values, doubled or stray braces, and the ``{DOWNSTREAM_PARAMETERS}`` field.

    With ``inert_header`` the header lines sit inside a quoted here-document: DSSR
    still parses them (they start at column 0), but the job's shell does not run
    them. Upstream's header lines are its own shell text, so only then does a canary
    that fires prove that DSSR put request text into a shell.
    """
    header = {"JOBOBJ_APPDEFVERSION": "2", "JARVICE_CPU_CORES": "1",
              "JOBOBJ_REPO": "docker.io/library/ubuntu:24.04",
              "JOBOBJ_DEVICES": '["exclusive=False"]'}
    for key in draw(st.lists(st.sampled_from(HEADER_KEYS), max_size=5, unique=True)):
        header[key] = draw(devices() if key == "JOBOBJ_DEVICES" else header_values())
    for key in draw(st.lists(st.sampled_from(sorted(header)), max_size=1)):
        del header[key]
    double = draw(st.booleans()) or inert_header
    lines = [f"{key}={_double_braces(value) if double else value}"
             for key, value in header.items()]
    lines.append("JARVICE_CMD='true'")
    if inert_header:
        lines = [INERT_START, *lines, INERT_END]
    extra = st.one_of(
        st.sampled_from(["{DOWNSTREAM_PARAMETERS}", "{{HOME}}", "${{HOME}}", "{", "}",
                         "{0}", "{}", "{DOWNSTREAM_PARAMETERS!r}", "{DOWNSTREAM_PARAMETERS.x}",
                         "{DOWNSTREAM_PARAMETERS[0]}", "{__class__}", "{{{{", "}}}}"]),
        hostile_text(20).map(_double_braces),
    )
    if not inert_header:
        lines += draw(st.lists(extra, max_size=3))
    if draw(st.integers(0, 9)) or inert_header:
        lines.append("{DOWNSTREAM_PARAMETERS}")
    lines.append("echo JARVICE_CMD_SUCCESS")
    return "\n".join(lines) + "\n"


def utf8_text(text: str) -> str:
    """``text`` with lone surrogates replaced: what the API accepts as a string."""
    return text.encode("utf-8", "replace").decode("utf-8")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hpc_scripts(executor: str = "singularity", inert_header: bool = False) -> st.SearchStrategy:
    """``hpc_script`` values: base64 of upstream-like scripts, and everything wrong."""
    scripts = upstream_scripts(inert_header).map(lambda text: text.encode("utf-8",
                                                                          "surrogatepass"))
    good = scripts.map(lambda data: {executor: b64(data)})
    if inert_header:
        return good
    return st.one_of(
        good,
        good,
        st.binary(max_size=64).map(lambda data: {executor: b64(data)}),
        st.binary(max_size=16).map(lambda data: {executor: b64(b"\xff\xfe" + data)}),
        hostile_text().map(lambda text: {executor: text}),
        st.tuples(scripts, st.sampled_from(["=", "==", "!", "\n", " "])).map(
            lambda pair: {executor: b64(pair[0])[:-3] + pair[1]}),
        st.dictionaries(st.text(max_size=12), json_values(), max_size=3),
        json_values(),
    )


# -- args ---------------------------------------------------------------------------------

@st.composite
def args_objects(draw, inert_header: bool = False) -> dict:
    """An ``args`` object with each known key present or not, of a right or wrong type,
    plus unknown keys."""
    value = draw(st.fixed_dictionaries({}, optional={
        "name": job_names(),
        "number": numbers(),
        "jobid": jobids(),
        "nodes": numbers(),
        "hpc_script": hpc_scripts(inert_header=inert_header),
        "bearer": st.one_of(hostile_text(), json_values()),
        "held": st.one_of(st.booleans(), json_values()),
        "qs": query_objects(),
    }))
    value.update(draw(st.dictionaries(hostile_text(8), json_values(), max_size=2)))
    return value


@st.composite
def valid_submits(draw, inert_header: bool = False) -> dict:
    """``/submit`` args that pass the API's own checks, their script still random; the
    name starts with ``fz<pid>-`` so the jobs of a run are easy to tell apart."""
    return {
        "name": draw(st.from_regex(r"[A-Za-z0-9._-]{0,30}", fullmatch=True).map(
            lambda tail: f"fz{os.getpid()}-{tail}")),
        "number": draw(st.integers(1, 2**63 - 1)),
        "nodes": 1,
        "hpc_script": draw(hpc_scripts(inert_header=inert_header)),
        "bearer": draw(hostile_text().map(utf8_text)),
        "held": False,
    }


def raw_args_text() -> st.SearchStrategy[str]:
    """``args`` text that is not a JSON object: garbage, truncated, deeply nested."""
    return st.one_of(
        hostile_text(),
        json_values().map(json.dumps),
        args_objects().map(json.dumps).flatmap(
            lambda text: st.integers(0, max(0, len(text) - 1)).map(lambda cut: text[:cut])),
        st.integers(1, 200_000).map(lambda depth: "[" * depth + "]" * depth),
        st.integers(1, 200_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
        st.sampled_from(["NaN", "Infinity", '{"name": NaN}', "{'name': 'x'}", "{", "[]",
                         '{"a":1}{"b":2}', '"\\ud800"', '{"name":"\\u0000"}', "1e999"]),
    )


def args_text(inert_header: bool = False) -> st.SearchStrategy[str]:
    """``args`` as sent: mostly a JSON object (ASCII or not), sometimes raw text."""
    objects = st.one_of(args_objects(inert_header), valid_submits(inert_header))
    return st.one_of(
        objects.map(json.dumps),
        objects.map(lambda value: json.dumps(value, ensure_ascii=False)),
        raw_args_text(),
    )


# -- the HTTP request ------------------------------------------------------------------

_KEEP = set(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%?#[]`|^{}\\\"<>")


def wire_path(text: str, encode_all: bool = False) -> str:
    """``text`` as request-target characters: what a client cannot send raw (controls,
    space, non-ASCII) %-encoded as UTF-8; with ``encode_all`` everything but letters
    and digits."""
    out = []
    for char in text:
        if char in _KEEP and not (encode_all and not char.isalnum()):
            out.append(char)
        else:
            out.append(quote(char.encode("utf-8", "surrogatepass"), safe=""))
    return "".join(out)


@st.composite
def request_paths(draw) -> str:
    """``/request/...`` paths: job paths with every method, ``pvcls``, and random
    segments with ``..``, ``//``, %-encoding and unicode."""
    segment = st.one_of(job_names(), jobids().map(str), numbers().map(str),
                        st.sampled_from([*REQUEST_METHODS, "pvcls", "..", ".", "", "%2F",
                                         "%2e%2e", "%00", "%"]),
                        hostile_text(12))
    shape = draw(st.sampled_from(["job", "pvcls", "random"]))
    if shape == "job":
        segments = [draw(job_names()), str(draw(numbers())), str(draw(jobids())),
                    draw(st.one_of(st.sampled_from(REQUEST_METHODS), hostile_text(12)))]
    elif shape == "pvcls":
        segments = ["pvcls"]
    else:
        segments = draw(st.lists(segment, max_size=6))
    encode_all = draw(st.booleans())
    return "/request/" + "/".join(wire_path(part, encode_all) for part in segments)


@dataclass(frozen=True)
class FuzzRequest:
    """One HTTP request as it goes on the wire (``target``: path and query, ASCII)."""

    method: str
    target: str
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    def describe(self) -> str:
        return f"{self.method} {self.target[:300]!r} {self.headers} body={self.body[:300]!r}"


FORM = "application/x-www-form-urlencoded"


def _query(pairs) -> str:
    return urlencode([(key.encode("utf-8", "surrogatepass"),
                       value.encode("utf-8", "surrogatepass")) for key, value in pairs])


@st.composite
def api_requests(draw, paths=None, inert_header: bool = False) -> FuzzRequest:
    """A request to any endpoint (or none), ``args`` sent as a form field, a JSON body,
    in the query string, as garbage, or not at all."""
    if paths is None:
        paths = st.one_of(
            st.sampled_from(ENDPOINTS),
            st.sampled_from(ENDPOINTS),
            request_paths(),
            st.tuples(st.sampled_from(ENDPOINTS), hostile_text(10)).map(
                lambda pair: pair[0] + "/" + wire_path(pair[1])),
            st.sampled_from(["/", "//submit", "/submit/", "/live/..", "/%2e%2e/live",
                             "/request", "/request/", "/SUBMIT", "/request//", "/favicon.ico"]),
            hostile_text(10).map(lambda text: "/" + wire_path(text)),
        )
    path = draw(paths)
    method = draw(st.sampled_from(["GET", "POST", "GET", "POST", "PUT", "DELETE", "PATCH",
                                   "OPTIONS"]))
    args = draw(args_text(inert_header))
    mode = draw(st.sampled_from(["form", "json", "query", "none", "raw", "form"]))
    headers, body, query = {}, b"", []
    if mode == "form":
        pairs = [("args", args)]
        pairs += draw(st.lists(st.tuples(st.sampled_from(["args", "ARGS", "qs", "x"]),
                                         hostile_text(10)), max_size=2))
        body = _query(pairs).encode()
        headers["Content-Type"] = draw(st.sampled_from([FORM, FORM + "; charset=latin-1"]))
    elif mode == "json":
        body = args.encode("utf-8", "surrogatepass")
        headers["Content-Type"] = draw(st.sampled_from(["application/json",
                                                        "Application/JSON; charset=utf-8"]))
    elif mode == "query":
        query.append(("args", args))
    elif mode == "raw":
        body = draw(st.binary(max_size=200))
        headers["Content-Type"] = draw(st.sampled_from(
            [FORM, "application/json", "text/plain", "multipart/form-data; boundary=x", ""]))
    query += draw(st.lists(st.tuples(st.sampled_from(["args", "qs", "lines", "path"]),
                                     hostile_text(10)), max_size=2))
    target = path + ("?" + _query(query) if query else "")
    return FuzzRequest(method, target, headers, body)


# -- Slurm's and upstream's own text, for property tests of the pure parsers ---------

_HOST_TEXT = st.text(string.ascii_lowercase + "-.", min_size=1, max_size=6)


@st.composite
def _bracket_group(draw) -> tuple[str, list[str]]:
    """One ``[...]`` group of numbers and ranges, and the numbers it stands for, in order."""
    width = draw(st.integers(1, 4))
    items, numbers = [], []
    for low, span in draw(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 5)),
                                   min_size=1, max_size=4)):
        low_text = f"{low:0{width}d}"
        items.append(low_text if span == 0 else f"{low_text}-{low + span:0{width}d}")
        # Every number of an item is zero-padded like its lower bound.
        numbers += [f"{n:0{len(low_text)}d}" for n in range(low, low + span + 1)]
    return "[" + ",".join(items) + "]", numbers


@st.composite
def hostlists(draw) -> tuple[str, list[str]]:
    """A Slurm host list (``node[01-03,7],gpu1``, ``rack[1-2]-n[1-2]``) and the host names
    ``scontrol show hostnames`` gives for it, in order."""
    names, hosts = [], []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(_HOST_TEXT)
        expansions = [name]
        for _ in range(draw(st.integers(0, 2))):  # groups, each followed by literal text
            group, numbers = draw(_bracket_group())
            after = draw(st.sampled_from(["", "-ib", "x", "-n"]))
            name += group + after
            # The first group varies slowest.
            expansions = [done + number + after for done in expansions for number in numbers]
        names.append(name)
        hosts += expansions
    return ",".join(names), hosts


@st.composite
def elapsed_times(draw) -> tuple[str, int]:
    """An elapsed time as squeue prints it (``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``) and
    how many seconds it is."""
    seconds = draw(st.integers(0, 1000 * 86400))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}", seconds
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}", seconds
    return f"{minutes}:{secs:02d}", seconds


def doubled(text: str) -> str:
    """``text`` as upstream writes literal text in a template: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


@st.composite
def templates(draw) -> tuple[str, list[str]]:
    """An upstream job script template with one or more ``{DOWNSTREAM_PARAMETERS}`` and
    the literal text around each field (braces as the job will see them)."""
    pieces = draw(st.lists(st.text(max_size=40), min_size=2, max_size=4))
    return "{DOWNSTREAM_PARAMETERS}".join(doubled(piece) for piece in pieces), pieces
