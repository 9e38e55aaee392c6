"""dssr check's "private data" check, fed with Slurm's output captured on the accounting rig
(tests/fixtures/slurm/accounting/, ``capture.sh privatedata``)."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.checks import privatedata
from dssr.checks.report import Status
from tests.slurm.fakes import captured, ok
from tests.test_check import FakeRemote, done, result

MAPPED = ["dssr-alice", "dssr-bob"]


def rig(withcoord: str = "sacctmgr_withcoord", withcoord_status: int = 0,
        config: bytes | None = None):
    """The rig's answers: PrivateData=jobs,usage, the service account dssr-svc."""
    def answer(argv, user):
        if argv[:3] == ["scontrol", "show", "config"]:
            if config is not None:
                return ok(config)
            return captured("accounting/scontrol_show_config_privatedata", 0)
        if argv == ["id", "-un"]:
            return ok(b"dssr-svc\n")
        if "assoc" in argv:
            return captured("accounting/sacctmgr_assoc", 0)
        if "withcoord" in argv:
            return captured(f"accounting/{withcoord}", withcoord_status)
        raise AssertionError(f"unexpected command {argv}")
    return FakeRemote(answer)


class ParseTests(SynchronousTestCase):
    def test_private_data_of_the_captured_config(self):
        text = captured("accounting/scontrol_show_config_privatedata", 0).stdout.decode()
        self.assertEqual(privatedata.parse_private_data(text), {"jobs", "usage"})

    def test_private_data_none_or_absent(self):
        self.assertEqual(privatedata.parse_private_data("PrivateData             = none\n"),
                         set())
        self.assertEqual(privatedata.parse_private_data("SlurmUser = slurm(64030)\n"), set())

    def test_accounts_and_coordinators(self):
        self.assertEqual(privatedata.parse_accounts("alice|a1\nalice|a2\n|root\nbob|b\n"),
                         {"alice": {"a1", "a2"}, "bob": {"b"}})
        self.assertEqual(privatedata.parse_coordinated("svc|a1,b\nother|c\n", "svc"),
                         {"a1", "b"})
        self.assertEqual(privatedata.parse_coordinated("svc|\n", "svc"), set())
        self.assertEqual(privatedata.parse_coordinated("", "svc"), set())


class CheckTests(SynchronousTestCase):
    def test_coordinator_passes(self):
        outcome = done(privatedata.check_private_data(rig(), MAPPED))
        self.assertEqual((outcome.status, outcome.detail), (Status.PASS, (
            "PrivateData=jobs,usage: dssr-svc coordinates dssr-users, the accounts of every "
            "mapped user")))

    def test_missing_coordinator_rights_name_the_command(self):
        outcome = done(privatedata.check_private_data(rig("sacctmgr_withcoord_none"), MAPPED))
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertEqual(outcome.detail, (
            "PrivateData=jobs hides the jobs of dssr-alice, dssr-bob from dssr-svc: it "
            "coordinates no account of theirs (dssr-users)"))
        self.assertEqual(outcome.fixes, (
            "sacctmgr -i add coordinator account=dssr-users names=dssr-svc",))

    def test_private_data_off_needs_no_rights(self):
        remote = rig(config=b"PrivateData             = usage\n")
        outcome = done(privatedata.check_private_data(remote, MAPPED))
        self.assertEqual((outcome.status, outcome.detail), (Status.PASS, (
            "PrivateData=usage does not hide jobs: the service account sees the mapped "
            "users' jobs")))
        self.assertEqual(len(remote.calls), 1)

    def test_slurmdbd_down_is_said(self):
        outcome = done(privatedata.check_private_data(
            rig("sacctmgr_dbd_down", 1), MAPPED))
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertTrue(outcome.detail.startswith(
            "PrivateData=jobs hides the mapped users' jobs from dssr-svc, and sacctmgr cannot "
            "tell whom it coordinates: "), outcome.detail)
        self.assertIn("slurmdbd", outcome.fixes[0])

    def test_user_without_an_account(self):
        outcome = done(privatedata.check_private_data(rig(), [*MAPPED, "dssr-carol"]))
        self.assertEqual(outcome.status, Status.FAIL)
        self.assertEqual(outcome.detail, (
            "dssr-carol belongs to no Slurm account, so no coordinator sees their jobs under "
            "PrivateData=jobs"))

    def test_config_unreadable(self):
        remote = FakeRemote(lambda argv, user: result(1, b"", b"slurm_load_ctl_conf error\n"))
        outcome = done(privatedata.check_private_data(remote, MAPPED))
        self.assertEqual(outcome.detail, "scontrol show config: slurm_load_ctl_conf error")

    def test_users_are_arguments_never_shell(self):
        remote = rig()
        done(privatedata.check_private_data(remote, ["a;rm -rf /", "b"]))
        assoc = next(argv for argv, _ in remote.calls if "assoc" in argv)
        self.assertEqual(assoc[0], "sacctmgr")
        self.assertIn("users=a;rm -rf /,b", assoc)
