"""Hypothesis fuzzing of a DSSR on the Slurm rig (tests/cluster), whose jobs really run:
no 5xx, no traceback or HTML, and no canary fires (see tests/test_fuzz.py)."""

import json
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.threads import deferToThread

from tests.integration.rig import RigCase
from tests.strategies import ENDPOINTS, FuzzRequest, api_requests, canary_hits, request_paths
from tests.test_fuzz import fuzz_settings, wire_assertions


def rig_paths() -> st.SearchStrategy[str]:
    """Mostly endpoints that reach the cluster; ``/submit`` most of all."""
    return st.one_of(st.just("/submit"), st.just("/submit"), st.sampled_from(ENDPOINTS),
                     request_paths())


def submitted_name(request: FuzzRequest) -> str | None:
    """The job name a request's ``args`` carried, wherever it was sent."""
    query = urlsplit(request.target).query
    texts = [request.body.decode("utf-8", "replace")]
    texts += parse_qs(texts[0]).get("args", []) + parse_qs(query).get("args", [])
    for text in texts:
        try:
            args = json.loads(text)
        except ValueError:
            continue
        if isinstance(args, dict) and isinstance(args.get("name"), str):
            return args["name"]
    return None


class RigFuzzTests(RigCase):
    """Hostile requests to a DSSR on the real Slurm rig; the jobs it accepts run, and
    none may execute a canary."""

    alone = "its exclusive jobs hold the whole node"

    timeout = 240
    examples = 250

    async def test_hostile_requests_on_the_rig(self):
        accepted: list[dict] = []

        @fuzz_settings(self.examples)
        @given(request=api_requests(paths=rig_paths(), inert_header=True))
        def run(request):
            code, body = wire_assertions(self, self.base, request)
            if code == 200 and urlsplit(request.target).path == "/submit":
                self.note_submitted(request, body, accepted)

        await deferToThread(run)
        # Hostile submits are mostly refused at the edge; whatever was accepted runs
        # to its end before the canaries are checked (tests/integration/test_slurm.py
        # submits accepted jobs carrying canaries on purpose).
        await self.settle(accepted)
        self.assertEqual(canary_hits(), [])
        self.assertEqual(await self.answer("/live"), {"status": "OK"})
        self.assertEqual(await self.answer("/ready"), {"status": "OK"})

    def note_submitted(self, request: FuzzRequest, body: bytes, accepted: list) -> None:
        """Remember an accepted job so it is waited for, collected and cleaned up."""
        jobid, _ = json.loads(body)
        ref = {"name": submitted_name(request), "number": 1, "jobid": jobid}
        accepted.append(ref)
        self.submitted.append(ref)

    async def settle(self, accepted: list[dict]) -> None:
        """Let the accepted jobs run (that is when a canary would fire), then cancel
        what is left and collect every one with /exitstatus."""
        pending = [ref for ref in accepted if ref["name"] is not None]
        for _ in range(240):
            live = {(name, jobid) for which in ("/queued", "/running")
                    for name, jobid in await self.answer(which)}
            pending = [ref for ref in pending if (ref["name"], ref["jobid"]) in live]
            if not pending:
                break
            await self.sleep(0.25)
        accepted = [ref for ref in accepted if ref["name"] is not None]
        for ref in accepted:
            self.assertIs(await self.answer("/terminate", ref), True)
        for ref in accepted:
            # A job still in the queue is "ask again" (503), never an ended job.
            await self.wait_for(ref, None)
            await self.answer("/exitstatus", ref)
