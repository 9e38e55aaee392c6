"""The ``dssr`` command: operator tools beside the service (``twistd dssr`` runs that).

Each subcommand lives in its own module exposing ``configure(parser)`` (add its
arguments) and ``run(args) -> int`` (the exit code).
"""

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "check": ("dssr.check", "check the settings, the login node and Slurm, each with a fix"),
    "sim": ("dssr.sim", "act as Jarvice upstream: submit a job to a DSSR and follow it"),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; its result is the exit code."""
    parser = argparse.ArgumentParser(
        prog="dssr", description="Operator tools for DSSR (the service itself runs with "
                                 "`twistd dssr`).")
    # dest is not "command": a subcommand may well have a --command option.
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = modules[name] = importlib.import_module(module_name)
        module.configure(commands.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return modules[args.subcommand].run(args)


if __name__ == "__main__":
    sys.exit(main())
