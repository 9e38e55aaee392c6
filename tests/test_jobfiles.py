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
    FORGET,
    LIST_DIRECTORY,
    PREPARE,
    TAIL,
    EndRecord,
    JobFiles,
    JobPaths,
    ListingRefused,
    job_paths,
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
        self.assertEqual(job_paths("/scratch", "n"), JobPaths(
            "/scratch/.jarvice", "/scratch/.jarvice/n.out", "/scratch/.jarvice/n.end",
            "/scratch/.jarvice/n.cancelled"))
        self.assertEqual(job_paths("/scratch/", "n").output, "/scratch/.jarvice/n.out")
        self.assertEqual(job_paths("", "n").output, ".jarvice/n.out")

    def test_setup_before_a_submit(self):
        files = JobFiles(None, "/scratch")
        setup = files.setup("n")
        self.assertEqual(setup.program, PREPARE)
        self.assertEqual(setup.args, ("/scratch/.jarvice", "/scratch/.jarvice/n.end",
                                      "/scratch/.jarvice/n.cancelled"))
        self.assertEqual(JobFiles(None, "").setup("n").args[0], ".jarvice")


class EndRecordTests(SynchronousTestCase):
    def test_parse(self):
        record = parse_end_record(
            "STATE=COMPLETED\nEXIT_CODE=0\nSTEP_EXIT_CODE=0\nSTART=100\nEND=160\n")
        self.assertEqual(record, EndRecord("COMPLETED", 0, 100, 160))
        self.assertEqual(record.seconds, 60)

    def test_cancelled(self):
        record = parse_end_record("STATE=CANCELLED\nEXIT_CODE=143\nSTART=5\nEND=4\n")
        self.assertEqual((record.state, record.exit_code, record.seconds),
                         ("CANCELLED", 143, 0))

    def test_incomplete_or_garbled(self):
        for text in ("", "STATE=COMPLETED\nEXIT_CODE=0\nSTART=1\n",
                     "STATE=COMPLETED\nEXIT_CODE=x\nSTART=1\nEND=2\n",
                     "STATE=RUNNING\nEXIT_CODE=0\nSTART=1\nEND=2\n", "garbage"):
            self.assertIsNone(parse_end_record(text))


class ListingParseTests(SynchronousTestCase):
    def test_records(self):
        data = (b"1732533000.1234567890\t4096\td\tresults\0"
                b"1732533001.5000000000\t12\tf\tnotes with\ttab.txt\0")
        self.assertEqual(parse_listing(data, "/proj/x"), [
            DirEntry("proj/x/notes with\ttab.txt", False, 1732533001, 12),
            DirEntry("proj/x/results", True, 1732533000, 4096)])
        self.assertEqual(parse_listing(b"", "/"), [])


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


class PrepareProgramTests(ProgramCase):
    def test_makes_the_directory_and_drops_the_last_runs_record_and_marker(self):
        for shell in SHELLS:
            paths = job_paths(self.path(shell), "n")
            self.write(paths.end_record.removeprefix(self.dir + "/"))
            self.write(paths.cancel_marker.removeprefix(self.dir + "/"))
            self.write(paths.output.removeprefix(self.dir + "/"), b"last run\n")
            done = run(shell, PREPARE + ' && shift 3 && exec "$@"', paths.directory,
                       paths.end_record, paths.cancel_marker, "echo", "then sbatch", cwd=self.dir)
            self.assertEqual((done.returncode, done.stdout), (0, b"then sbatch\n"))
            self.assertEqual(sorted(os.listdir(paths.directory)), ["n.out"])
            fresh = job_paths(self.path(shell, "new"), "m")
            done = run(shell, PREPARE, fresh.directory, fresh.end_record, fresh.cancel_marker,
                       cwd=self.dir)
            self.assertEqual(done.returncode, 0)
            self.assertTrue(os.path.isdir(fresh.directory))

    def test_fails_when_the_directory_cannot_be_made(self):
        self.write("file")
        for shell in SHELLS:
            done = run(shell, PREPARE, self.path("file", "sub"), "a", "b", cwd=self.dir)
            self.assertNotEqual(done.returncode, 0)


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


class ForgetProgramTests(ProgramCase):
    def test_removes_the_output_keeps_recent_records_prunes_old_ones(self):
        for shell in SHELLS:
            here = job_paths(self.path(shell), "n")
            output = self.write(f"{shell}/.jarvice/n.out")
            kept = [self.write(f"{shell}/.jarvice/n.end"),
                    self.write(f"{shell}/.jarvice/n.cancelled"),
                    self.write(f"{shell}/.jarvice/other.out", age=30 * DAY),
                    self.write(f"{shell}/.jarvice/recent.end", age=7 * DAY - 3600)]
            # find -mtime +7: at least 8 whole days old.
            old = [self.write(f"{shell}/.jarvice/old.end", age=8 * DAY + 3600),
                   self.write(f"{shell}/.jarvice/old.cancelled", age=30 * DAY)]
            done = run(shell, FORGET, here.directory, here.output, here.cancel_marker,
                       cwd=self.dir)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertFalse(os.path.exists(output))
            self.assertEqual([os.path.exists(path) for path in kept], [True] * 4)
            self.assertEqual([os.path.exists(path) for path in old], [False] * 2)


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

    async def test_a_jobs_files_from_start_to_forget(self):
        self.assertFalse(await self.files.exist(self.ref))
        self.assertIsNone(await self.files.tail(self.ref, 10))
        self.assertIsNone(await self.files.end_record(self.ref))
        self.assertFalse(await self.files.cancelled(self.ref))
        setup = self.files.setup(self.ref.name)
        done = subprocess.run(["sh", "-c", setup.program, "sh", *setup.args], check=False)
        self.assertEqual(done.returncode, 0)
        with open(self.paths.output, "w") as output:
            output.write("one\ntwo\nthree\n")
        with open(self.paths.end_record, "w") as record:
            record.write("STATE=FAILED\nEXIT_CODE=1\nSTART=100\nEND=130\n")
        await self.files.mark_cancelled(self.ref)
        self.assertTrue(await self.files.exist(self.ref))
        self.assertEqual(await self.files.tail(self.ref, 2), "two\nthree\n")
        self.assertEqual(await self.files.end_record(self.ref), EndRecord("FAILED", 1, 100, 130))
        self.assertTrue(await self.files.cancelled(self.ref))
        await self.files.forget(self.ref)
        self.assertIsNone(await self.files.tail(self.ref, 2))
        self.assertEqual(await self.files.end_record(self.ref), EndRecord("FAILED", 1, 100, 130))
        self.assertTrue(await self.files.cancelled(self.ref))

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
