"""The ``dssr`` command: operator tools beside the service (``twistd dssr`` runs that).

Each subcommand lives in its own module exposing ``configure(parser)`` (add its
arguments) and ``run(args) -> int`` (the exit code).
"""

import argparse
import importlib
import os
import sys
from typing import Any, TextIO

from dssr import __version__

SUBCOMMANDS = {
    "check": ("dssr.check", "check the settings, the login node and Slurm, each with a fix"),
    "sim": ("dssr.sim", "act as Jarvice upstream: submit a job to a DSSR and follow it"),
}


class ReaderGone:
    """stdout for the commands: once its reader has gone (``dssr check | head -2``), the
    rest of the output is dropped instead of ending the command in a traceback."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
                self._stream.flush()
            except BrokenPipeError:
                self.gone = True
                # What is still buffered would fail again when Python exits.
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        return len(text)

    def flush(self) -> None:
        """Every write is flushed already."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; its result is the exit code."""
    parser = argparse.ArgumentParser(
        prog="dssr", description="Operator tools for DSSR (the service itself runs with "
                                 "`twistd dssr`).")
    parser.add_argument("--version", action="version", version=f"dssr {__version__}")
    # dest is not "command": a subcommand may well have a --command option.
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = modules[name] = importlib.import_module(module_name)
        module.configure(commands.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    sys.stdout = ReaderGone(sys.stdout)
    code: int = modules[args.subcommand].run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
