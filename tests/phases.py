"""Run tests in phases, side by side where they allow it: ``python -m tests.phases
[-j N] [--matrix | NAME...]`` (``tox`` runs it on ``tests``, ``tox -e matrix`` with
``--matrix``: what every Slurm release must pass).

First every test that shares the machine and the rig runs, ``N`` at a time (trial's
``-j``, default 3). Then, for each set of rig modes some classes need that the rig is
not in (``RigCase.modes``: accounting off, PrivateData with or without coordinator
rights), the rig is switched with ``tests/cluster/ctl.sh``, in the order that switches
it least, and those classes run side by side; then the rig is switched back. Last come
the classes that say why they must run alone (``alone = "..."``: they stop a daemon,
switch modes themselves, or hold the machine to a time bound), one test after another.
The exit status is 0 only when every phase passed.
"""

import argparse
import itertools
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
# What every Slurm release must pass, over the commands and over slurmrestd.
MATRIX = (
    "tests.integration.test_slurm.JobLifecycleTests",
    "tests.integration.test_slurm.JobLifecycleOverRestTests",
    "tests.integration.test_slurm.PurgeAndRestartTests",
    "tests.integration.test_slurm.PurgeAndRestartOverRestTests",
    "tests.integration.test_slurm.MappedUserTests",
    "tests.integration.test_slurm.MappedUserOverRestTests",
    "tests.integration.test_slurm.ControllerDownTests",
    "tests.integration.test_slurm.ControllerDownOverRestTests",
    "tests.integration.test_accounting.WithAccountingTests",
    "tests.integration.test_accounting.WithAccountingOverRestTests",
    "tests.integration.test_accounting.WithoutAccountingTests",
    "tests.integration.test_accounting.WithoutAccountingOverRestTests",
    "tests.integration.test_accounting.CoordinatorTests",
    "tests.integration.test_accounting.CoordinatorOverRestTests",
    "tests.integration.test_accounting.NoCoordinatorTests",
    "tests.integration.test_accounting.NoCoordinatorOverRestTests",
    "tests.integration.test_interactive.InteractiveTests.test_an_app_through_the_proxy",
    "tests.integration.test_check.CheckTests.test_passes_against_the_rig",
    "tests.integration.test_check.RestCheckTests.test_passes_against_the_rig",
    "tests.integration.test_restd",
)


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


def target(wanted: tuple, base: dict[str, bool]) -> dict[str, bool]:
    """The rig's modes for a phase that wants ``wanted``: ``base`` for the others, and
    coordinator rights left as in ``base`` while accounting is off (they need it)."""
    modes = {**base, **dict(wanted)}
    if not modes["accounting"]:
        modes["coordinator"] = base["coordinator"]
    return modes


def moves(now: dict[str, bool], then: dict[str, bool]) -> list[tuple[str, bool]]:
    """The ``(mode, on)`` switches from ``now`` to ``then``, in an order ctl.sh takes:
    accounting on first and off last, coordinator rights while accounting is on."""
    changed = [mode for mode in ("coordinator", "privatedata") if now[mode] != then[mode]]
    if now["accounting"] == then["accounting"]:
        return [(mode, then[mode]) for mode in changed]
    if then["accounting"]:
        return [("accounting", True)] + [(mode, then[mode]) for mode in changed]
    return [(mode, then[mode]) for mode in changed] + [("accounting", False)]


def switches(order, base: dict[str, bool]) -> int:
    """How many ctl.sh switches take the rig from ``base`` through the phases that want
    ``order`` (each a phase's wanted modes), one after another, and back."""
    path = [base, *(target(wanted, base) for wanted in order), base]
    return sum(len(moves(now, then)) for now, then in itertools.pairwise(path))


def fewest_switches(groups: list[tuple], base: dict[str, bool]) -> list[tuple]:
    """``groups`` (each a phase's wanted modes) in the order that switches the rig least
    on the way from ``base`` through them all and back."""
    return list(min(itertools.permutations(groups), key=lambda order: switches(order, base)))


def switch_to(now: dict[str, bool], then: dict[str, bool]) -> None:
    """Switch the rig from ``now`` to ``then``; ``now`` follows each switch made."""
    for mode, on in moves(now, then):
        ctl(mode, "on" if on else "off")
        now[mode] = on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.phases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-j", "--jobs", type=int, default=3,
                        help="tests run side by side in a phase (default 3)")
    parser.add_argument("--temp-directory", default="_trial_temp",
                        help="trial's working directory (default _trial_temp)")
    parser.add_argument("--matrix", action="store_true",
                        help="run what every Slurm release must pass (tests.phases.MATRIX)")
    parser.add_argument("names", nargs="*",
                        help="modules, classes or tests, as trial takes them (default tests)")
    options = parser.parse_args(argv)
    if options.matrix and options.names:
        parser.error("--matrix names its own tests: give no NAME with it")
    names = list(MATRIX) if options.matrix else options.names or ["tests"]
    found = test_ids(TestLoader().loadByNames(names, recurse=True))
    everything = [test for test, _ in found]
    now = rig_modes()
    phases: dict[object, list[str]] = defaultdict(list)
    for test, case in found:
        phases[phase_of(case, now)].append(test)
    codes = []
    if phases[SHARED]:
        codes.append(trial(shortest_names(phases[SHARED], everything, names),
                           options.jobs, SHARED, options.temp_directory))
    groups = [wanted for wanted in phases if wanted not in (SHARED, ALONE)]
    if groups and now is not None:
        state = dict(now)
        try:
            for wanted in fewest_switches(groups, now):
                switch_to(state, target(wanted, now))
                title = ", ".join(f"{mode} {'on' if on else 'off'}" for mode, on in wanted)
                codes.append(trial(shortest_names(phases[wanted], everything, names),
                                   options.jobs, title, options.temp_directory))
        finally:
            switch_to(state, now)
    if phases[ALONE]:
        codes.append(trial(shortest_names(phases[ALONE], everything, names), 1, ALONE,
                           options.temp_directory))
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
