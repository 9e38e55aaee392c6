"""Tests for dssr.slurm.states: every Slurm job state code, short and long."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.slurm.states import LONG_NAMES, Category, category, exit_code, long_name

Q, R, E = Category.QUEUED, Category.RUNNING, Category.ENDED

# code: (long name, category, /exitstatus rc) for every code in squeue(1) and sacct(1).
EXPECTED = {
    "BF": ("BOOT_FAIL", E, -9),
    "CA": ("CANCELLED", E, -15),
    "CD": ("COMPLETED", E, 0),
    "CF": ("CONFIGURING", Q, -9),
    "CG": ("COMPLETING", R, -9),
    "DL": ("DEADLINE", E, -15),
    "F": ("FAILED", E, 1),
    "NF": ("NODE_FAIL", E, 1),
    "OOM": ("OUT_OF_MEMORY", E, 1),
    "PD": ("PENDING", Q, -9),
    "PR": ("PREEMPTED", E, -15),
    "R": ("RUNNING", R, -9),
    "RD": ("RESV_DEL_HOLD", Q, -9),
    "RF": ("REQUEUE_FED", Q, -9),
    "RH": ("REQUEUE_HOLD", R, -9),
    "RQ": ("REQUEUED", Q, -9),
    "RS": ("RESIZING", R, -9),
    "RV": ("REVOKED", E, -9),
    "SI": ("SIGNALING", R, -9),
    "SE": ("SPECIAL_EXIT", Q, -9),
    "SO": ("STAGE_OUT", R, -9),
    "ST": ("STOPPED", R, -9),
    "S": ("SUSPENDED", R, -9),
    "TO": ("TIMEOUT", E, -9),
}


class StateTableTests(SynchronousTestCase):
    """Each code and long name maps as docs/protocol.rst says."""

    def test_table_covers_every_code(self) -> None:
        """The module knows exactly the 24 codes of squeue(1)."""
        self.assertEqual(set(LONG_NAMES), set(EXPECTED))

    def test_codes(self) -> None:
        """A code gives its long name, category and rc."""
        for code, (name, kind, rc) in EXPECTED.items():
            with self.subTest(code=code):
                self.assertEqual(long_name(code), name)
                self.assertEqual(category(code), kind)
                self.assertEqual(exit_code(code), rc)

    def test_long_names(self) -> None:
        """A long name gives the same category and rc as its code."""
        for name, kind, rc in EXPECTED.values():
            with self.subTest(name=name):
                self.assertEqual(long_name(name), name)
                self.assertEqual(category(name), kind)
                self.assertEqual(exit_code(name), rc)

    def test_protocol_lists(self) -> None:
        """The running and queued codes of docs/protocol.rst, plus RQ and SE as queued."""
        running = {code for code in EXPECTED if category(code) is R}
        queued = {code for code in EXPECTED if category(code) is Q}
        self.assertEqual(running, {"R", "RH", "RS", "SI", "ST", "S", "CG", "SO"})
        self.assertEqual(queued, {"CF", "PD", "RD", "RF", "RQ", "SE"})


class SacctFormTests(SynchronousTestCase):
    """sacct's decorated states and odd input."""

    def test_cancelled_by(self) -> None:
        """sacct's ``CANCELLED by UID`` is CANCELLED."""
        self.assertEqual(long_name("CANCELLED by 1001"), "CANCELLED")
        self.assertEqual(exit_code("CANCELLED by 0"), -15)
        self.assertEqual(category("CANCELLED by 0"), E)

    def test_case_and_space(self) -> None:
        """Lower case and surrounding space are tolerated."""
        self.assertEqual(long_name(" running\n"), "RUNNING")
        self.assertEqual(category("pd"), Q)

    def test_unknown(self) -> None:
        """A state from a newer Slurm is UNKNOWN (alive to callers) and rc -9."""
        self.assertEqual(long_name("launch_failed"), "LAUNCH_FAILED")
        self.assertEqual(category("LAUNCH_FAILED"), Category.UNKNOWN)
        self.assertEqual(exit_code("LAUNCH_FAILED"), -9)
        self.assertEqual(category(""), Category.UNKNOWN)
        self.assertEqual(exit_code(""), -9)
