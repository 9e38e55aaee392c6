"""The legacy downstream API as upstream calls it: POST, one ``args`` form field, JSON back.

Built on the reactor's own HTTP client (``twisted.web.client.Agent``), passed in, so
tests hand in an Agent of their own. Every failure — DSSR unreachable, slow, or not
answering 200 — is a ``DSSRError`` whose message names the call and the reason.
"""

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from twisted.internet.defer import TimeoutError, ensureDeferred
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import ResponseFailed, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent

from dssr.jobs import JobRef
from dssr.producers import BytesProducer

TAIL_LINES = 1000  # lines of output asked for at each poll of a running job
_SHOWN = 300  # characters of an unexpected answer quoted in an error


class DSSRError(Exception):
    """DSSR could not be asked, or refused; the message says which call and why."""


@dataclass(frozen=True)
class RunStatus:
    """``/runstatus`` of a known job."""

    nodes: tuple[str, ...]
    elapsed: str
    path: str  # name/number/jobid, the prefix of /request/... calls


@dataclass(frozen=True)
class ExitStatus:
    """``/exitstatus``: the job's verdict and the tail of its output."""

    rc: int
    totaltime: str
    stdout: str
    termination: str


def basic_auth(credentials: str) -> bytes:
    """The ``Authorization`` header value for ``user:password``."""
    return b"Basic " + base64.b64encode(credentials.encode())


def _reason(error: Exception) -> str:
    """A readable reason for a failed exchange (ResponseFailed wraps its causes)."""
    if isinstance(error, ResponseFailed) and error.reasons:
        message: str = error.reasons[0].getErrorMessage()
        return message
    return str(error)


def _error_text(body: bytes) -> str:
    """The ``error`` of a DSSR JSON error, else the start of the body."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()
        return text[:_SHOWN] + ("..." if len(text) > _SHOWN else "")


class DSSRClient:
    """Calls to one DSSR at ``url`` (e.g. ``http://127.0.0.1:5000``).

    ``auth`` is the scheduler server key ``user:password`` (None: none sent); each
    call gives up after ``timeout`` seconds on ``clock``.
    """

    def __init__(self, agent: IAgent, url: str, auth: str | None, clock: IReactorTime,
                 timeout: float = 30.0):
        self._agent = agent
        self._url = url.rstrip("/")
        self._headers = {b"Content-Type": [b"application/x-www-form-urlencoded"]}
        if auth:
            self._headers[b"Authorization"] = [basic_auth(auth)]
        self._clock = clock
        self._timeout = timeout

    async def call(self, path: str, args: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """POST ``args`` to ``path``; the status code and body, whatever the code."""
        code, body, _ = await self.call_with_headers(path, args)
        return code, body

    async def call_with_headers(self, path: str, args: dict[str, Any] | None = None
                                ) -> tuple[int, bytes, Headers]:
        """``call``, with the response's headers too."""
        body = urlencode({"args": json.dumps(args)}).encode() if args is not None else b""
        exchange = ensureDeferred(self._exchange(path, body))
        exchange.addTimeout(self._timeout, self._clock)
        try:
            return await exchange
        except TimeoutError:
            raise DSSRError(f"{path}: DSSR at {self._url} did not answer within "
                            f"{self._timeout:g} s") from None
        except (ConnectError, ResponseFailed, OSError) as error:
            raise DSSRError(f"{path}: cannot reach DSSR at {self._url}: "
                            f"{_reason(error)}") from None

    async def _exchange(self, path: str, body: bytes) -> tuple[int, bytes, Headers]:
        response = await self._agent.request(
            b"POST", (self._url + path).encode(), Headers(self._headers),
            BytesProducer(body))
        return response.code, await readBody(response), response.headers

    async def answer(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """The JSON answer of a call that must succeed (200)."""
        code, body = await self.call(path, args)
        if code != 200:
            raise DSSRError(f"{path}: DSSR answered {code}: {_error_text(body)}")
        return _json(body, path)

    async def submit(self, name: str, number: int, nodes: int, hpc_script: dict[str, Any],
                     held: bool = False) -> JobRef:
        """Submit a job; its ref (``bearer`` is empty: the simulator has no token)."""
        args = {"name": name, "number": number, "nodes": nodes, "hpc_script": hpc_script,
                "bearer": ""}
        if held:
            args["held"] = True
        answer = await self.answer("/submit", args)
        if not (isinstance(answer, list) and answer and isinstance(answer[0], str)):
            raise DSSRError(f"/submit: unexpected answer {answer!r:.{_SHOWN}}")
        return JobRef(name, number, answer[0])

    async def listed(self, which: str) -> set[tuple[str, str]]:
        """The ``(name, jobid)`` pairs of ``/running`` or ``/queued``."""
        answer = await self.answer(f"/{which}")
        try:
            return {(str(name), str(jobid)) for name, jobid in answer}
        except (TypeError, ValueError):
            raise DSSRError(f"/{which}: unexpected answer {answer!r:.{_SHOWN}}") from None

    async def runstatus(self, ref: JobRef) -> RunStatus | None:
        """Where and for how long the job runs; None when DSSR does not know it."""
        answer = await self.answer("/runstatus", _ref_args(ref))
        try:
            nodes, elapsed, path, _ = answer
            if path is None:
                return None
            return RunStatus(tuple(map(str, nodes or ())), str(elapsed or "00:00:00"),
                             str(path))
        except (TypeError, ValueError):
            raise DSSRError(f"/runstatus: unexpected answer {answer!r:.{_SHOWN}}") from None

    async def tail(self, path: str, lines: int = TAIL_LINES) -> str | None:
        """The last ``lines`` lines of the job's output; None when it has none yet."""
        code, body = await self.call(f"/request/{quote(path)}/tail",
                                     {"qs": {"lines": [str(lines)]}})
        if code == 404:
            return None
        if code != 200:
            raise DSSRError(f"/request/{path}/tail: DSSR answered {code}: "
                            f"{_error_text(body)}")
        return body.decode("utf-8", "replace")

    async def exitstatus(self, ref: JobRef) -> ExitStatus | None:
        """The verdict of an ended job (DSSR then forgets its output); None when DSSR
        says to ask again (503 with ``Retry-After``: the job is still in the queue)."""
        code, body, headers = await self.call_with_headers("/exitstatus", _ref_args(ref))
        if code == 503 and headers.hasHeader(b"retry-after"):
            return None
        if code != 200:
            raise DSSRError(f"/exitstatus: DSSR answered {code}: {_error_text(body)}")
        answer = _json(body, "/exitstatus")
        try:
            rc, totaltime, output = answer
            stdout, termination = [*output, "", ""][:2]
            return ExitStatus(int(rc), str(totaltime or "00:00:00"), str(stdout or ""),
                              str(termination or ""))
        except (TypeError, ValueError):
            raise DSSRError(f"/exitstatus: unexpected answer {answer!r:.{_SHOWN}}") from None

    async def terminate(self, ref: JobRef) -> None:
        await self.answer("/terminate", _ref_args(ref))

    async def release(self, ref: JobRef) -> None:
        await self.answer("/release", _ref_args(ref))


def _json(body: bytes, path: str) -> Any:
    """The JSON of a 200 answer to ``path``."""
    try:
        return json.loads(body)
    except ValueError:
        raise DSSRError(f"{path}: DSSR answered 200 with non-JSON "
                        f"{_error_text(body)!r}") from None


def _ref_args(ref: JobRef) -> dict[str, Any]:
    return {"name": ref.name, "number": ref.number, "jobid": ref.jobid}
