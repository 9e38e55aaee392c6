"""Run tests in phases, side by side where they allow it: ``python -m tests.phases
[-j N] [NAME...]`` (``tox`` runs it on ``tests``).

First every test that shares the machine and the rig runs, ``N`` at a time (trial's
``-j``, default 3). Then, for each set of rig modes some classes need that the rig is
not in (``RigCase.modes``: accounting off, PrivateData with or without coordinator
rights), the rig is switched once with ``tests/cluster/ctl.sh``, those classes run side
by side, and the rig is switched back. Last come the classes that say why they must run
alone (``alone = "..."``: they stop a daemon, switch modes themselves, or hold the
machine to a time bound), one test after another. The exit status is 0 only when
every phase passed.
"""

import argparse
import os
import subprocess
import sys
import time
import unittest as pyunit
from collections import defaultdict

from twisted.trial.runner import TestLoader

HERE = os.path.dirname(os.path.abspath(__file__))
CTL = os.path.join(HERE, "cluster", "ctl.sh")
SHARED = "side by side"
ALONE = "alone"
# ctl.sh's modes in the order they may be switched on (coordinator rights need accounting).
MODES = ("accounting", "privatedata", "coordinator")


def test_ids(suite) -> list[tuple[str, type]]:
    """``(id, class)`` of every test in ``suite``, in trial's order."""
    found = []
    for item in suite:
        if isinstance(item, pyunit.TestSuite):
            found += test_ids(item)
        else:
            found.append((item.id(), type(item)))
    return found


def phase_of(case: type, rig_modes: dict[str, bool] | None):
    """The phase a test class runs in: ``ALONE``, ``SHARED``, or the modes it needs
    switched on the rig (a tuple of ``(mode, wanted)``, in the class's order)."""
    if getattr(case, "alone", ""):
        return ALONE
    wanted = getattr(case, "modes", {})
    if rig_modes is None or all(rig_modes.get(mode) == on for mode, on in wanted.items()):
        return SHARED
    return tuple(wanted.items())


def shortest_names(ids: list[str], everything: list[str], asked: list[str]) -> list[str]:
    """``ids`` as trial names: a whole module or class where ``ids`` holds all of it
    that ``everything`` holds and one of the ``asked`` names covers it."""
    chosen = set(ids)
    names: list[str] = []
    for test in ids:
        module_and_class = test.rsplit(".", 1)[0]
        name = test
        for prefix in (module_and_class.rsplit(".", 1)[0], module_and_class):
            if any(prefix == given or prefix.startswith(given + ".") for given in asked) and \
                    all(other in chosen for other in everything if other.startswith(prefix + ".")):
                name = prefix
                break
        if name not in names:
            names.append(name)
    return names


def rig_modes() -> dict[str, bool] | None:
    """The rig's modes now (ctl.sh status), or None without a rig (integration tests
    then skip, and nothing is switched)."""
    rig = os.environ.get("DSSR_RIG")
    if not rig or not os.path.exists(os.path.join(rig, "env")):
        return None
    return {mode: ctl(mode, "status", check=False) == 0 for mode in MODES}


def ctl(*argv: str, check: bool = True) -> int:
    code = subprocess.call(["/bin/bash", CTL, *argv])
    if check and code != 0:
        raise SystemExit(f"tests/cluster/ctl.sh {' '.join(argv)} failed (exit {code})")
    return code


def trial(names: list[str], jobs: int, title: str, temp: str) -> int:
    """Run ``names`` in one trial; its exit status. Says what ran and how long it took."""
    argv = [sys.executable, "-m", "twisted.trial", "--reporter=timing", "--temp-directory", temp]
    if jobs > 1:
        argv += ["-j", str(jobs)]
    print(f"== phase: {title}: {' '.join(names)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(argv + names)
    print(f"== phase: {title}: exit {code} after {time.monotonic() - started:.0f} s",
          flush=True)
    return code


def switched(wanted: tuple, now: dict[str, bool]) -> list[tuple[str, bool]]:
    """Switch the rig to ``wanted``; the ``(mode, was)`` switches that undo it, in order."""
    undo = []
    for mode, on in sorted(wanted, key=lambda item: MODES.index(item[0])):
        if now[mode] != on:
            ctl(mode, "on" if on else "off")
            undo.insert(0, (mode, now[mode]))
    return undo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.phases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-j", "--jobs", type=int, default=3,
                        help="tests run side by side in a phase (default 3)")
    parser.add_argument("--temp-directory", default="_trial_temp",
                        help="trial's working directory (default _trial_temp)")
    parser.add_argument("names", nargs="*", default=["tests"],
                        help="modules, classes or tests, as trial takes them (default tests)")
    options = parser.parse_args(argv)
    found = test_ids(TestLoader().loadByNames(options.names, recurse=True))
    everything = [test for test, _ in found]
    now = rig_modes()
    phases: dict[object, list[str]] = defaultdict(list)
    for test, case in found:
        phases[phase_of(case, now)].append(test)
    codes = []
    if phases[SHARED]:
        codes.append(trial(shortest_names(phases[SHARED], everything, options.names),
                           options.jobs, SHARED, options.temp_directory))
    for wanted, ids in phases.items():
        if wanted in (SHARED, ALONE) or now is None:
            continue
        title = ", ".join(f"{mode} {'on' if on else 'off'}" for mode, on in wanted)
        undo = switched(wanted, now)
        try:
            codes.append(trial(shortest_names(ids, everything, options.names), options.jobs, title,
                               options.temp_directory))
        finally:
            for mode, was in undo:
                ctl(mode, "on" if was else "off")
    if phases[ALONE]:
        codes.append(trial(shortest_names(phases[ALONE], everything, options.names), 1, ALONE,
                           options.temp_directory))
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
