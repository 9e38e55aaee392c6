"""The job files: their layout, their parsers, and the shell programs run for real.

Each constant shell program runs under ``sh`` and ``bash`` (login nodes have either
as ``/bin/sh``) in a temporary directory; ``JobFiles`` itself runs over a real
``LocalRemote``.
"""

import os
import subprocess
import time

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dssr.jobfiles import (
    CLAIM_SUBMIT,
    COLLECTED,
    LIST_DIRECTORY,
    PRUNE,
    TAIL,
    AppRecord,
    EndRecord,
    JobFiles,
    JobPaths,
    ListingRefused,
    job_paths,
    name_prefix,
    parse_app_record,
    parse_end_record,
    parse_listing,
)
from dssr.jobs import DirEntry, JobRef
from dssr.remote.local import LocalRemote
from dssr.remote.logged import LoggedRemote

SHELLS = ("sh", "bash")
DAY = 24 * 3600


def run(shell: str, program: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    """``program`` as DSSR runs it (``sh -c PROGRAM sh ARGS...``), under ``shell``."""
    return subprocess.run([shell, "-c", program, shell, *args], cwd=cwd, capture_output=True,
                          check=False, timeout=30)


class LayoutTests(SynchronousTestCase):
    def test_paths(self):
        self.assertEqual(job_paths("/scratch", "n", "7"), JobPaths(
            "/scratch/.jarvice", "/scratch/.jarvice/n.7", "/scratch/.jarvice/n.7.out",
            "/scratch/.jarvice/n.7.end", "/scratch/.jarvice/n.7.cancelled",
            "/scratch/.jarvice/n.7.app"))
        self.assertEqual(job_paths("/scratch/", "n", "%j").output,
                         "/scratch/.jarvice/n.%j.out")
        self.assertEqual(job_paths("", "n", "7").output, ".jarvice/n.7.out")
        self.assertEqual(name_prefix("/scratch", "n"), "/scratch/.jarvice/n.")

    def test_two_jobs_of_one_name_share_no_file(self):
        one, two = job_paths("/s", "n", "7"), job_paths("/s", "n", "17")
        self.assertFalse({one.output, one.end_record, one.cancel_marker}
                         & {two.output, two.end_record, two.cancel_marker})

    def test_app_record(self):
        text = "NODE=node1\nPORT=34567\nPASSWORD=p=w\n"
        self.assertEqual(parse_app_record(text), AppRecord("node1", 34567, "p=w"))
        self.assertEqual(parse_app_record(text + "URL=https://%PUBLICADDR%/?a=b\n").url_template,
                         "https://%PUBLICADDR%/?a=b")
        for port in ("x", "0", "65536", "+1", " 1", "²", "1_0", "0034567"):
            self.assertIsNone(parse_app_record(text.replace("PORT=34567", f"PORT={port}")), port)
        for broken in ("", text.replace("NODE=node1", "NODE="),
                       text.replace("PASSWORD=p=w", "PASSWORD=")):
            self.assertIsNone(parse_app_record(broken), broken)

    def test_setup_before_a_submit(self):
        files = JobFiles(None, "/scratch")
        setup = files.setup("n")
        self.assertEqual(setup.program, CLAIM_SUBMIT)
        self.assertEqual(setup.args, ("/scratch/.jarvice", "/scratch/.jarvice/n.claim", "120",
                                      "20"))
        self.assertEqual(JobFiles(None, "").setup("n").args[0], ".jarvice")


class EndRecordTests(SynchronousTestCase):
    def test_parse(self):
        record = parse_end_record(
            "JOBID=7\nSTATE=COMPLETED\nEXIT_CODE=0\nSTEP_EXIT_CODE=0\nSTART=100\nEND=160\n",
            "7")
        self.assertEqual(record, EndRecord("7", "COMPLETED", 0, 100, 160))
        self.assertEqual(record.seconds, 60)

    def test_cancelled_and_timeout(self):
        for state in ("CANCELLED", "TIMEOUT"):
            record = parse_end_record(
                f"JOBID=7\nSTATE={state}\nEXIT_CODE=143\nSTART=5\nEND=4\n", "7")
            self.assertEqual((record.state, record.exit_code, record.seconds), (state, 143, 0))

    def test_another_jobs_record_is_none(self):
        text = "JOBID=7\nSTATE=COMPLETED\nEXIT_CODE=0\nSTART=1\nEND=2\n"
        self.assertIsNone(parse_end_record(text, "17"))
        self.assertIsNone(parse_end_record(text.replace("JOBID=7\n", ""), "7"))

    def test_incomplete_or_garbled(self):
        for text in ("", "JOBID=7\nSTATE=COMPLETED\nEXIT_CODE=0\nSTART=1\n",
                     "JOBID=7\nSTATE=COMPLETED\nEXIT_CODE=x\nSTART=1\nEND=2\n",
                     "JOBID=7\nSTATE=RUNNING\nEXIT_CODE=0\nSTART=1\nEND=2\n", "garbage"):
            self.assertIsNone(parse_end_record(text, "7"))


class ListingParseTests(SynchronousTestCase):
    def test_records(self):
        data = (b"1732533000.1234567890\t4096\td\tresults\0"
                b"1732533001.5000000000\t12\tf\tnotes with\ttab.txt\0")
        self.assertEqual(parse_listing(data, "/proj/x"), [
            DirEntry("proj/x/notes with\ttab.txt", False, 1732533001, 12),
            DirEntry("proj/x/results", True, 1732533000, 4096)])
        self.assertEqual(parse_listing(b"", "/"), [])

    def test_names_that_could_forge_lines_are_left_out(self):
        data = (b"1\t1\tf\tok\0"
                b"1\t1\tf\tx\n2 3 /data/forged\0"
                b"1\t1\tf\tcr\rhere\0"
                b"1\t1\tf\ttab\tok\0")
        self.assertEqual([entry.path for entry in parse_listing(data, "/")],
                         ["ok", "tab\tok"])


class ProgramCase(SynchronousTestCase):
    def setUp(self):
        self.dir = os.path.realpath(self.mktemp())
        os.makedirs(self.dir)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def write(self, relative: str, data: bytes = b"x\n", age: float = 0) -> str:
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        if age:
            then = time.time() - age
            os.utime(path, (then, then))
        return path


# A stand-in for sbatch: counts its calls in $1, keeps its stdin in $1.stdin, prints $2
# (exits 1 when $2 is "fail").
FAKE_SBATCH = ["sh", "-c", 'echo call >> "$1"; cat > "$1.stdin"; '
               '[ "$2" = fail ] && { echo "sbatch: error: no" >&2; exit 1; }; echo "$2"',
               "sbatch"]


class ClaimProgramTests(ProgramCase):
    def claim(self, shell: str, jobid: str = "42", stale: int = 120, patience: int = 20,
              stdin: bytes = b"#!/bin/bash\n") -> subprocess.CompletedProcess:
        directory = self.path(shell, ".jarvice")
        return subprocess.run(
            [shell, "-c", CLAIM_SUBMIT, shell, directory, directory + "/n.claim", str(stale),
             str(patience), *FAKE_SBATCH, self.path(shell + ".calls"), jobid],
            cwd=self.dir, input=stdin, capture_output=True, check=False, timeout=60)

    def calls(self, shell: str) -> int:
        path = self.path(shell + ".calls")
        return len(open(path).readlines()) if os.path.exists(path) else 0

    def test_first_submit_claims_and_records_later_ones_get_its_job(self):
        for shell in SHELLS:
            done = self.claim(shell, stdin=b"the script")
            self.assertEqual((done.returncode, done.stdout), (0, b"42\n"), done.stderr)
            with open(self.path(shell + ".calls.stdin"), "rb") as stdin:
                self.assertEqual(stdin.read(), b"the script")
            again = self.claim(shell, jobid="43")
            self.assertEqual((again.returncode, again.stdout), (0, b"42\n"))
            self.assertEqual(self.calls(shell), 1)

    def test_a_refused_submit_releases_the_claim(self):
        for shell in SHELLS:
            done = self.claim(shell, jobid="fail")
            self.assertEqual(done.returncode, 1)
            self.assertIn(b"sbatch: error: no", done.stderr)
            self.assertEqual(self.claim(shell).stdout, b"42\n")
            self.assertEqual(self.calls(shell), 2)

    def test_a_claim_being_submitted_is_waited_for_then_busy(self):
        for shell in SHELLS:
            self.write(f"{shell}/.jarvice/n.claim", b"")  # claimed, no job id yet
            done = self.claim(shell, patience=0)
            self.assertEqual(done.returncode, 75)
            self.assertIn(b"in progress", done.stderr)
            self.assertEqual(self.calls(shell), 0)

    def test_a_claim_left_by_a_crash_is_taken_over(self):
        for shell in SHELLS:
            claim = self.write(f"{shell}/.jarvice/n.claim", b"", age=200)
            done = self.claim(shell)
            self.assertEqual((done.returncode, done.stdout), (0, b"42\n"), done.stderr)
            self.assertEqual(self.calls(shell), 1)
            self.assertEqual(sorted(os.listdir(self.path(shell, ".jarvice"))), ["n.claim"])
            with open(claim, "rb") as taken:
                self.assertEqual(taken.read(), b"42\n")

    def test_many_at_once_submit_once(self):
        for shell in SHELLS:
            directory = self.path(shell, ".jarvice")
            os.makedirs(directory)
            runs = [subprocess.Popen(
                [shell, "-c", CLAIM_SUBMIT, shell, directory, directory + "/n.claim", "120",
                 "20", *FAKE_SBATCH, self.path(shell + ".calls"), str(n)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) for n in range(20)]
            answers = {run.communicate(timeout=60)[0] for run in runs}
            self.assertEqual(len(answers), 1, answers)
            self.assertEqual(self.calls(shell), 1)

    def test_collected_releases_the_claim_of_that_job_only(self):
        for shell in SHELLS:
            self.claim(shell)
            claim = self.path(shell, ".jarvice", "n.claim")
            base = self.path(shell, ".jarvice", "n.")
            run(shell, COLLECTED, base + "41", claim, "41", cwd=self.dir)
            self.assertTrue(os.path.exists(claim))
            run(shell, COLLECTED, base + "42", claim, "42", cwd=self.dir)
            self.assertFalse(os.path.exists(claim))
            self.assertEqual(self.claim(shell, jobid="43").stdout, b"43\n")

    def test_fails_when_the_directory_cannot_be_made(self):
        self.write("file")
        for shell in SHELLS:
            directory = self.path("file", "sub")
            done = run(shell, CLAIM_SUBMIT, directory, directory + "/n.claim", "1", "1",
                       "true", cwd=self.dir)
            self.assertEqual(done.returncode, 70)


class TailProgramTests(ProgramCase):
    def test_last_lines_capped_in_bytes(self):
        self.write("-x y", b"".join(b"line %d\n" % n for n in range(1, 101)))
        for shell in SHELLS:
            done = run(shell, TAIL, "2", "-x y", "1000", cwd=self.dir)
            self.assertEqual((done.returncode, done.stdout), (0, b"line 99\nline 100\n"))
            done = run(shell, TAIL, "2", "-x y", "5", cwd=self.dir)
            self.assertEqual(done.stdout, b" 100\n")

    def test_no_file_is_exit_1(self):
        os.mkdir(self.path("dir"))
        for shell in SHELLS:
            for missing in ("nothing", "dir"):
                done = run(shell, TAIL, "10", missing, "100", cwd=self.dir)
                self.assertEqual((done.returncode, done.stdout), (1, b""))


class CollectAndPruneProgramTests(ProgramCase):
    def job(self, shell: str, jobid: str, collected_age: float | None) -> list[str]:
        """The files of job ``jobid`` named n, collected that long ago (None: not yet)."""
        base = f"{shell}/.jarvice/n.{jobid}"
        paths = [self.write(base + suffix) for suffix in (".out", ".end", ".cancelled")]
        if collected_age is not None:
            paths.append(self.write(base + ".collected", b"", age=collected_age))
        return paths

    def test_collected_marks_once(self):
        for shell in SHELLS:
            base = self.path(shell, ".jarvice", "n.7")
            claim = self.path(shell, ".jarvice", "n.claim")
            marker = self.write(f"{shell}/.jarvice/n.7.collected", b"", age=DAY)
            then = os.stat(marker).st_mtime
            self.assertEqual(run(shell, COLLECTED, base, claim, "7", cwd=self.dir).returncode, 0)
            self.assertEqual(os.stat(marker).st_mtime, then)
            os.remove(marker)
            self.assertEqual(run(shell, COLLECTED, base, claim, "7", cwd=self.dir).returncode, 0)
            self.assertTrue(os.path.exists(marker))

    def test_prunes_jobs_collected_before_the_retention_only(self):
        for shell in SHELLS:
            old = self.job(shell, "7", 3 * DAY)
            recent = self.job(shell, "8", DAY)
            never = self.job(shell, "9", None)
            other_name = self.write(f"{shell}/.jarvice/n.out")  # the old layout: not ours
            done = run(shell, PRUNE, self.path(shell, ".jarvice"), str(2 * DAY // 60), "100",
                       cwd=self.dir)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual([os.path.exists(path) for path in old], [False] * 4)
            self.assertEqual([os.path.exists(path) for path in recent + never + [other_name]],
                             [True] * 8)

    def test_bounded_work_per_run(self):
        for shell in SHELLS:
            jobs = [self.job(shell, str(jobid), 3 * DAY) for jobid in range(5)]
            directory = self.path(shell, ".jarvice")
            run(shell, PRUNE, directory, "1", "2", cwd=self.dir)
            self.assertEqual(sum(not os.path.exists(paths[0]) for paths in jobs), 2)
            run(shell, PRUNE, directory, "1", "100", cwd=self.dir)
            self.assertEqual(os.listdir(directory), [])

    def test_no_directory_is_nothing_to_do(self):
        for shell in SHELLS:
            done = run(shell, PRUNE, self.path("none"), "1", "100", cwd=self.dir)
            self.assertEqual(done.returncode, 0, done.stderr)


class ListProgramTests(ProgramCase):
    def setUp(self):
        super().setUp()
        self.write("root/proj/notes with\ttab.txt", b"0123456789ab")
        os.makedirs(self.path("root", "proj", "results"))
        os.symlink(self.path("outside"), self.path("root", "proj", "escape"))
        os.makedirs(self.path("outside"))

    def listing(self, shell: str, root: str, path: str):
        return run(shell, LIST_DIRECTORY, root, path, cwd=self.dir)

    def test_lists_below_the_root(self):
        for shell in SHELLS:
            for root in (self.path("root"), self.path("root") + "/"):
                done = self.listing(shell, root, "proj")
                self.assertEqual(done.returncode, 0, done.stderr)
                entries = parse_listing(done.stdout, "/proj")
                self.assertEqual([(entry.path, entry.is_dir) for entry in entries],
                                 [("proj/escape", False), ("proj/notes with\ttab.txt", False),
                                  ("proj/results", True)])
                self.assertEqual(entries[1].size, 12)

    def test_the_root_itself(self):
        for shell in SHELLS:
            done = self.listing(shell, "/", self.path("root").lstrip("/"))
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(parse_listing(done.stdout, "/")[0].path, "proj")

    def test_refusals(self):
        for shell in SHELLS:
            self.assertEqual(self.listing(shell, self.path("nope"), ".").returncode, 3)
            self.assertEqual(self.listing(shell, self.path("root"), "missing").returncode, 4)
            self.assertEqual(self.listing(shell, self.path("root"),
                                          "proj/notes with\ttab.txt").returncode, 4)
            self.assertEqual(self.listing(shell, self.path("root"), "proj/escape").returncode, 5)
            self.assertEqual(self.listing(shell, self.path("root"), "..").returncode, 5)


class JobFilesOnThisHostTests(TestCase):
    """``JobFiles`` over a real ``LocalRemote``: every method against real files."""

    def setUp(self):
        self.scratch = os.path.realpath(self.mktemp())
        os.makedirs(self.scratch)
        commands = LoggedRemote(LocalRemote(reactor, 10, 1 << 20), Clock())
        self.files = JobFiles(commands, self.scratch, listing_root=self.scratch)
        self.ref = JobRef("job-1", 1, "7")
        self.paths = self.files.paths(self.ref)

    async def test_a_jobs_files_from_start_to_prune(self):
        self.assertFalse(await self.files.exist(self.ref))
        self.assertIsNone(await self.files.tail(self.ref, 10))
        self.assertIsNone(await self.files.end_record(self.ref))
        self.assertFalse(await self.files.cancelled(self.ref))
        setup = self.files.setup(self.ref.name)
        done = subprocess.run(["sh", "-c", setup.program, "sh", *setup.args, "echo", "7"],
                              check=False, capture_output=True)
        self.assertEqual((done.returncode, done.stdout), (0, b"7\n"))
        with open(self.paths.output, "w") as output:
            output.write("one\ntwo\nthree\n")
        with open(self.paths.end_record, "w") as record:
            record.write("JOBID=7\nSTATE=FAILED\nEXIT_CODE=1\nSTART=100\nEND=130\n")
        await self.files.mark_cancelled(self.ref)
        self.assertTrue(await self.files.exist(self.ref))
        self.assertEqual(await self.files.tail(self.ref, 2), "two\nthree\n")
        self.assertEqual(await self.files.end_record(self.ref),
                         EndRecord("7", "FAILED", 1, 100, 130))
        self.assertTrue(await self.files.cancelled(self.ref))
        # Another job of the same name sees none of it.
        self.assertFalse(await self.files.exist(JobRef("job-1", 2, "8")))
        self.assertTrue(os.path.isfile(self.paths.directory + "/job-1.claim"))
        await self.files.collected(self.ref)
        self.assertFalse(os.path.exists(self.paths.directory + "/job-1.claim"))
        await self.files.prune()
        self.assertEqual(await self.files.tail(self.ref, 2), "two\nthree\n")
        then = time.time() - 2 * 3600
        os.utime(self.paths.base + ".collected", (then, then))
        self.files.retention = 3600
        await self.files.prune()
        self.assertFalse(await self.files.exist(self.ref))
        self.assertEqual(os.listdir(self.paths.directory), [])

    async def test_listing(self):
        os.makedirs(os.path.join(self.scratch, "a", "b"))
        self.assertEqual([entry.path for entry in await self.files.listing("/a")], ["a/b"])
        with self.assertRaises(ListingRefused) as missing:
            await self.files.listing("/nope")
        self.assertTrue(missing.exception.missing)
        with self.assertRaises(ListingRefused) as outside:
            await self.files.listing("/../..")
        self.assertFalse(outside.exception.missing)
        with self.assertRaises(ListingRefused):
            await JobFiles(None, self.scratch).listing("/")
