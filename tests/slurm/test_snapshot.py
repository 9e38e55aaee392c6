"""The shared queue snapshot: sharing, TTL, invalidation, failures (on a driven Clock)."""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.slurm.snapshot import Snapshot


class Fetcher:
    """Hands out Deferreds the test fires by hand."""

    def __init__(self):
        self.pending = []

    def __call__(self):
        d = Deferred()
        self.pending.append(d)
        return d


class SnapshotTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.fetch = Fetcher()
        self.snapshot = Snapshot(self.fetch, self.clock, ttl=2.0)

    def test_concurrent_callers_share_one_fetch(self):
        calls = [self.snapshot.get() for _ in range(50)]
        self.assertEqual(len(self.fetch.pending), 1)
        self.fetch.pending[0].callback(["job"])
        self.assertEqual({tuple(self.successResultOf(d)) for d in calls}, {("job",)})
        self.assertEqual((self.snapshot.fetches, self.snapshot.shared), (1, 49))

    def test_reused_within_ttl_then_refetched(self):
        self.snapshot.get()
        self.fetch.pending[0].callback("one")
        self.clock.advance(1.9)
        self.assertEqual(self.successResultOf(self.snapshot.get()), "one")
        self.assertEqual(self.snapshot.age, 1.9)
        self.clock.advance(0.1)
        later = self.snapshot.get()
        self.assertEqual(len(self.fetch.pending), 2)
        self.fetch.pending[1].callback("two")
        self.assertEqual(self.successResultOf(later), "two")

    def test_max_age_zero_forces_a_fetch(self):
        self.snapshot.get()
        self.fetch.pending[0].callback("one")
        self.clock.advance(0.5)
        fresh = self.snapshot.get(max_age=0)
        self.assertNoResult(fresh)
        self.fetch.pending[1].callback("two")
        self.assertEqual(self.successResultOf(fresh), "two")

    def test_invalidate_drops_cache_and_in_flight(self):
        self.snapshot.get()
        self.fetch.pending[0].callback("before submit")
        self.snapshot.invalidate()
        self.assertIsNone(self.snapshot.age)
        old = self.snapshot.get()
        self.snapshot.invalidate()  # e.g. a submit while that fetch is in flight
        new = self.snapshot.get()
        self.assertEqual(len(self.fetch.pending), 3)
        self.fetch.pending[1].callback("stale")
        self.fetch.pending[2].callback("fresh")
        self.assertEqual(self.successResultOf(old), "stale")
        self.assertEqual(self.successResultOf(new), "fresh")
        # Only the fetch started after the last invalidate is cached.
        self.assertEqual(self.successResultOf(self.snapshot.get()), "fresh")
        self.assertEqual(len(self.fetch.pending), 3)

    def test_failure_reaches_every_waiter_and_is_not_cached(self):
        calls = [self.snapshot.get() for _ in range(3)]
        self.fetch.pending[0].errback(RuntimeError("squeue failed"))
        for call in calls:
            self.failureResultOf(call, RuntimeError)
        retry = self.snapshot.get()
        self.assertEqual(len(self.fetch.pending), 2)
        self.fetch.pending[1].callback("ok")
        self.assertEqual(self.successResultOf(retry), "ok")

    def test_synchronous_fetch(self):
        snapshot = Snapshot(lambda: succeed("now"), self.clock, ttl=2.0)
        self.assertEqual(self.successResultOf(snapshot.get()), "now")
        self.assertEqual(self.successResultOf(snapshot.get()), "now")
        self.assertEqual(snapshot.fetches, 1)

    def test_fetch_raising_is_a_failure(self):
        def broken():
            raise ValueError("bad output")

        self.failureResultOf(Snapshot(broken, self.clock, ttl=2.0).get(), ValueError)


class StaleWhileRefreshingTests(SynchronousTestCase):
    """A slow scheduler: the last snapshot, up to ``max_stale`` old, while one refresh runs."""

    def setUp(self):
        self.clock = Clock()
        self.fetch = Fetcher()
        self.snapshot = Snapshot(self.fetch, self.clock, ttl=2.0, max_stale=10.0)
        self.snapshot.get()
        self.fetch.pending[0].callback("one")

    def test_stale_answer_at_once_while_one_refresh_runs(self):
        self.clock.advance(3)
        answers = [self.snapshot.get() for _ in range(20)]
        self.assertEqual({self.successResultOf(d) for d in answers}, {"one"})
        self.assertEqual(len(self.fetch.pending), 2)  # one refresh for all of them
        self.assertEqual(self.snapshot.stale_served, 20)
        self.fetch.pending[1].callback("two")
        self.assertEqual(self.successResultOf(self.snapshot.get()), "two")

    def test_never_older_than_the_bound(self):
        self.clock.advance(3)
        self.snapshot.get()  # starts a refresh that hangs
        self.clock.advance(6.9)
        self.assertEqual(self.successResultOf(self.snapshot.get()), "one")  # 9.9 s old
        self.clock.advance(0.1)
        late = self.snapshot.get()  # 10 s old: wait for the refresh
        self.assertNoResult(late)
        self.fetch.pending[1].callback("two")
        self.assertEqual(self.successResultOf(late), "two")

    def test_a_failed_refresh_ends_stale_answers(self):
        self.clock.advance(3)
        self.snapshot.get()
        self.fetch.pending[1].errback(RuntimeError("squeue failed"))
        waiting = self.snapshot.get()
        self.assertNoResult(waiting)  # no stale answer after a failure: a fresh fetch
        self.fetch.pending[2].errback(RuntimeError("squeue failed"))
        self.failureResultOf(waiting, RuntimeError)

    def test_fresh_readers_never_get_a_stale_snapshot(self):
        self.clock.advance(3)
        fresh = self.snapshot.get(max_age=0)
        self.assertNoResult(fresh)
        self.fetch.pending[1].callback("two")
        self.assertEqual(self.successResultOf(fresh), "two")

    def test_invalidated_is_never_served(self):
        self.snapshot.invalidate()
        self.assertNoResult(self.snapshot.get())
