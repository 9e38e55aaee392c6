"""A scripted ``IRemote`` and the captured Slurm outputs, for the connector tests."""

import re
from dataclasses import dataclass

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.filepath import FilePath
from zope.interface import implementer

from dssr.jobfiles import CLAIM_SUBMIT, COLLECTED, LIST_DIRECTORY, PRUNE, TAIL
from dssr.remote.interfaces import IRemote, RemoteResult
from dssr.slurm.cli import with_setup
from dssr.slurm.interfaces import Setup
from dssr.slurm.rest.restd import RECORD

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("slurm")


def fixture_text(stem: str, stream: str = "out") -> bytes:
    """The captured ``STEM.out`` or ``STEM.err`` (empty when the capture left none);
    ``STEM`` may name a subfolder (``accounting/sacct_timeout``)."""
    path = FIXTURES.descendant(f"{stem}.{stream}".split("/"))
    return path.getContent() if path.exists() else b""


def captured(stem: str, status: int) -> RemoteResult:
    """The captured run ``stem`` as a ``RemoteResult``; ``status`` as README.rst records it."""
    return RemoteResult(status, None, fixture_text(stem, "out"), fixture_text(stem, "err"))


def ok(stdout: bytes = b"") -> RemoteResult:
    return RemoteResult(0, None, stdout, b"")


def exited(status: int, stderr: bytes = b"", stdout: bytes = b"") -> RemoteResult:
    return RemoteResult(status, None, stdout, stderr)


# The start of a record in a snapshot captured with the plain SNAPSHOT_FORMAT.
_RECORD_START = re.compile(rb"^(?=[0-9]+(?:_[^|]*)?(?:\+[0-9]+)?\|[A-Z_]+\|)", re.MULTILINE)


def tokened(captured: bytes, token: str) -> bytes:
    """A snapshot captured with the plain format as squeue prints it with ``token``:
    each record (not a name's continuation line) led by ``token|``."""
    return _RECORD_START.sub(token.encode() + b"|", captured)


def with_token(result: RemoteResult, argv) -> RemoteResult:
    """``result`` of a snapshot as squeue answers the call ``argv`` (its token)."""
    token = next(word for word in argv if word.startswith("--format=")).split("=")[1]
    return RemoteResult(result.status, result.signal, tokened(result.stdout,
                        token.split("|")[0]), result.stderr)


@dataclass(frozen=True)
class Call:
    """One command the connector ran."""

    argv: tuple[str, ...]
    stdin: bytes | None
    user: str | None

    @property
    def key(self) -> str:
        return command_key(self.argv)


# The program a submit runs: the name's claim around sbatch (its argv follows).
SUBMIT = with_setup(Setup(CLAIM_SUBMIT, ()), [])[2]
_SCRIPTS = {SUBMIT: "submit", RECORD: "record", COLLECTED: "collected", PRUNE: "prune",
            LIST_DIRECTORY: "list", TAIL: "tail"}


def command_key(argv) -> str:
    """What a command is, for scripting answers: ``squeue``, ``scontrol ping``,
    ``submit`` (the ``sh -c SUBMIT ... sbatch`` wrapper), ``collected``, ``list``..."""
    if list(argv[:2]) == ["sh", "-c"]:
        return _SCRIPTS[argv[2]]  # any other shell program is a surprise: KeyError
    if argv[0] == "scontrol":
        return f"scontrol {argv[1]}"
    return argv[0]


@implementer(IRemote)
class FakeRemote:
    """Records every ``run`` and answers from ``script``: command key -> list of answers.

    Each answer is used once, except the last of a list, which answers every later
    call. An answer is a ``RemoteResult``, an exception (the transport fails with it),
    a ``Deferred`` (fired by the test), or a function of the ``Call`` returning one of
    these. A command with no scripted answer fails the test.
    """

    service = None

    def __init__(self, **script):
        self.script = {key.replace("_", " "): list(answers) for key, answers in script.items()}
        self.calls: list[Call] = []
        self.connection = ("connected", None)

    def answer(self, key: str, *answers) -> None:
        self.script[key] = list(answers)

    def run(self, argv, stdin=None, user=None, timeout=None):
        assert all(isinstance(word, str) for word in argv), argv
        call = Call(tuple(argv), stdin, user)
        self.calls.append(call)
        answers = self.script.get(call.key)
        if not answers:
            raise AssertionError(f"unscripted command: {argv!r}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer(call)
        if call.key == "squeue" and isinstance(answer, RemoteResult):
            answer = with_token(answer, argv)
        if isinstance(answer, Deferred):
            if call.key == "squeue":
                answer.addCallback(lambda result: with_token(result, argv))
            return answer
        if isinstance(answer, BaseException):
            return fail(answer)
        return succeed(answer)

    def tcp_endpoint(self, host, port, user=None):
        return ("tcp", host, port, user)

    def unix_endpoint(self, path, user=None):
        return ("unix", path, user)

    def state(self):
        return self.connection

    def metrics(self):
        return ()

    def keys(self) -> list[str]:
        return [call.key for call in self.calls]

    def of(self, key: str) -> list[Call]:
        return [call for call in self.calls if call.key == key]
