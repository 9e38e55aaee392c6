"""How tests/phases.py splits the suite: every test in exactly one phase, named as
briefly as trial allows without running a test twice or one not asked for."""

from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase

from tests import phases
from tests.integration import test_accounting, test_slurm

DEFAULTS = {"accounting": True, "privatedata": False, "coordinator": True}


class PhaseTests(SynchronousTestCase):
    def test_a_class_runs_where_its_marks_and_the_rig_put_it(self):
        self.assertEqual(phases.phase_of(test_slurm.ControllerDownTests, DEFAULTS), phases.ALONE)
        self.assertEqual(phases.phase_of(test_slurm.JobLifecycleTests, DEFAULTS), phases.SHARED)
        # Its modes are the rig's: no switch, so it shares.
        self.assertEqual(phases.phase_of(test_accounting.WithAccountingTests, DEFAULTS),
                         phases.SHARED)
        self.assertEqual(phases.phase_of(test_accounting.WithoutAccountingTests, DEFAULTS),
                         (("accounting", False),))
        self.assertEqual(phases.phase_of(test_accounting.NoCoordinatorTests, DEFAULTS),
                         (("accounting", True), ("privatedata", True), ("coordinator", False)))
        # Without a rig nothing is switched: its tests skip wherever they run.
        self.assertEqual(phases.phase_of(test_accounting.WithoutAccountingTests, None),
                         phases.SHARED)

    def test_the_whole_suite_runs_once_over_the_phases(self):
        found = phases.test_ids(TestLoader().loadByNames(["tests"], recurse=True))
        everything = [test for test, _ in found]
        split: dict[object, list[str]] = {}
        for test, case in found:
            split.setdefault(phases.phase_of(case, DEFAULTS), []).append(test)
        ran: list[str] = []
        for ids in split.values():
            names = phases.shortest_names(ids, everything, ["tests"])
            ran += [test for test in everything
                    if any(test == name or test.startswith(name + ".") for name in names)]
        self.assertEqual(sorted(ran), sorted(everything))
        self.assertIn("tests.integration.test_slurm.ControllerDownTests",
                      phases.shortest_names(split[phases.ALONE], everything, ["tests"]))


class NameTests(SynchronousTestCase):
    every = ["m.A.test_1", "m.A.test_2", "m.B.test_1", "n.C.test_1"]

    def test_a_whole_module_or_class_is_named_once(self):
        self.assertEqual(phases.shortest_names(self.every, self.every, ["m", "n"]), ["m", "n"])
        self.assertEqual(phases.shortest_names(["m.A.test_1", "m.A.test_2", "n.C.test_1"],
                                               self.every, ["m", "n"]), ["m.A", "n"])
        self.assertEqual(phases.shortest_names(["m.A.test_2", "m.B.test_1"], self.every,
                                               ["m", "n"]), ["m.A.test_2", "m.B"])

    def test_never_wider_than_what_was_asked(self):
        # Asked for one class: its module is not named even though the class is all
        # of the module that was loaded.
        self.assertEqual(phases.shortest_names(["m.A.test_1", "m.A.test_2"],
                                               ["m.A.test_1", "m.A.test_2"], ["m.A"]), ["m.A"])
        self.assertEqual(phases.shortest_names(["m.A.test_1"], ["m.A.test_1"],
                                               ["m.A.test_1"]), ["m.A.test_1"])
