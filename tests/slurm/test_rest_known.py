"""``KnownJobs``: which jobs a snapshot shows one by one, and when it lists them all."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.slurm.rest import answers
from dssr.slurm.rest.known import FEW, RELIST, SHARE, KnownJobs
from tests.slurm.restd_fixtures import captured, document

PENDING, RUNNING, DONE = ["PENDING"], ["RUNNING"], ["COMPLETED"]


def job(jobid: int, state: list[str], name: str = "jarvice_j") -> dict:
    return {"job_id": jobid, "name": name, "job_state": state}


class KnownJobsTests(SynchronousTestCase):
    def setUp(self):
        self.known = KnownJobs()
        self.states = {"1": PENDING, "2": RUNNING, "3": RUNNING, "4_1": RUNNING}
        # Jobs 1 and 2 are Jarvice's; 3 and the array task are not.
        self.known.listed(self.states, [job(1, PENDING), job(2, RUNNING)], 100.0)

    def test_nothing_known_is_a_full_listing(self):
        self.assertIsNone(KnownJobs().to_show({"1": PENDING}, 0.0))

    def test_nothing_changed_shows_nothing(self):
        self.assertEqual(self.known.to_show(self.states, 101.0), [])
        self.assertEqual(self.known.jobs(self.states), [job(1, PENDING), job(2, RUNNING)])

    def test_a_changed_jarvice_job_and_a_new_job_are_shown(self):
        states = {**self.states, "1": RUNNING, "3": DONE, "5": PENDING, "6_[1-9]": PENDING}
        # Job 3 is not Jarvice's: its state does not matter; an array is never DSSR's.
        self.assertEqual(self.known.to_show(states, 101.0), ["1", "5"])
        self.known.shown("1", job(1, RUNNING))
        self.known.shown("5", None)
        self.assertEqual(self.known.to_show(states, 102.0), [])
        self.assertEqual(self.known.jobs(states), [job(1, RUNNING), job(2, RUNNING)])

    def test_a_job_gone_from_the_states_is_forgotten(self):
        states = {"1": PENDING, "4_1": RUNNING}
        self.assertEqual(self.known.jobs(states), [job(1, PENDING)])
        # Were it to come back (it cannot: ids are not reused), it would be shown.
        self.assertEqual(self.known.to_show({**states, "2": RUNNING, "3": RUNNING}, 101.0),
                         ["2", "3"])

    def test_a_job_shown_as_none_is_no_longer_a_jarvice_job(self):
        self.known.shown("2", None)  # renamed, hidden, or gone
        self.assertEqual(self.known.jobs(self.states), [job(1, PENDING)])
        self.assertEqual(self.known.to_show(self.states, 101.0), [])

    def test_too_many_changes_are_a_full_listing(self):
        fresh = {str(jobid): PENDING for jobid in range(10, 10 + FEW)}
        self.assertEqual(len(self.known.to_show({**self.states, **fresh}, 101.0)), FEW)
        fresh[str(10 + FEW)] = PENDING
        self.assertIsNone(self.known.to_show({**self.states, **fresh}, 101.0))
        # In a large queue, one job in SHARE may change.
        large = {str(jobid): PENDING for jobid in range(100 * SHARE)}
        self.known.listed(large, [job(jobid, PENDING) for jobid in range(101)], 200.0)
        changed = {str(jobid): RUNNING for jobid in range(100)}
        self.assertEqual(len(self.known.to_show({**large, **changed}, 201.0)), 100)
        changed["100"] = RUNNING
        self.assertIsNone(self.known.to_show({**large, **changed}, 201.0))

    def test_every_relist_seconds_a_full_listing(self):
        self.assertEqual(self.known.to_show(self.states, 100.0 + RELIST - 1), [])
        self.assertIsNone(self.known.to_show(self.states, 100.0 + RELIST))

    def test_forget_is_a_full_listing(self):
        self.known.forget()
        self.assertIsNone(self.known.to_show(self.states, 101.0))
        self.assertEqual(self.known.jobs(self.states), [])

    def test_captured_states_and_listing_agree(self):
        """A live slurmrestd's job states, taken just before its listing: every Jarvice
        job's state reads the same in both, so a snapshot after a listing shows none."""
        tried = 0
        for release, version in captured():
            if version == "v0.0.38":
                continue  # it has no jobs/state
            where = f"{release}/{version}"
            states = answers.states(document(where, "jobs_state"))
            listed = answers.jarvice_jobs(document(where, "jobs"))
            self.assertTrue(listed, where)
            known = KnownJobs()
            known.listed(states, listed, 0.0)
            self.assertEqual(known.to_show(states, 1.0), [], where)
            self.assertEqual(known.jobs(states), listed, where)
            tried += 1
        self.assertEqual(tried, 8)  # v0.0.40-43 of 25.05, v0.0.42-45 of 26.05
