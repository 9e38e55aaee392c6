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


class SwitchTests(SynchronousTestCase):
    off = (("accounting", False),)
    coordinator = (("accounting", True), ("privatedata", True), ("coordinator", True))
    no_coordinator = (("accounting", True), ("privatedata", True), ("coordinator", False))

    def test_each_move_is_one_ctl_takes(self):
        # Coordinator rights are switched only while accounting is on.
        self.assertEqual(
            phases.moves({"accounting": True, "privatedata": True, "coordinator": False},
                         phases.target(self.off, DEFAULTS)),
            [("coordinator", True), ("privatedata", False), ("accounting", False)])
        self.assertEqual(
            phases.moves(phases.target(self.off, DEFAULTS),
                         phases.target(self.no_coordinator, DEFAULTS)),
            [("accounting", True), ("coordinator", False), ("privatedata", True)])
        self.assertEqual(phases.moves(DEFAULTS, DEFAULTS), [])

    def test_the_rig_is_switched_least(self):
        # Each phase switched and undone on its own took 8 switches; in this order, 6.
        groups = [self.off, self.coordinator, self.no_coordinator]
        order = phases.fewest_switches(groups, DEFAULTS)
        self.assertEqual(sorted(order), sorted(groups))
        self.assertEqual(phases.switches(order, DEFAULTS), 6)
        self.assertEqual(phases.switches(groups, DEFAULTS), 6)
        self.assertEqual(phases.switches([self.coordinator, self.off, self.no_coordinator],
                                         DEFAULTS), 8)
        # PrivateData is switched on once for both of its phases.
        self.assertIn(order.index(self.no_coordinator) - order.index(self.coordinator), (1, -1))

    def test_switch_to_follows_the_rig(self):
        made = []
        self.patch(phases, "ctl", lambda *argv: made.append(argv))
        state = dict(DEFAULTS)
        phases.switch_to(state, phases.target(self.no_coordinator, DEFAULTS))
        self.assertEqual(made, [("coordinator", "off"), ("privatedata", "on")])
        self.assertEqual(state, {"accounting": True, "privatedata": True, "coordinator": False})


class MatrixTests(SynchronousTestCase):
    def test_every_matrix_name_loads(self):
        for name in phases.MATRIX:
            self.assertTrue(phases.test_ids(TestLoader().loadByNames([name], recurse=True)),
                            name)

    def test_matrix_takes_no_names(self):
        self.assertRaises(SystemExit, phases.main, ["--matrix", "tests.test_phases"])


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
