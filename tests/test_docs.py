"""The documentation users get: it points only at files they have, names every option
and module, and its quick start runs as written against a real ``twistd dssr``."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from dssr import settings
from dssr.tap import Options
from tests.integration.sshd import free_port

CHECKOUT = Path(__file__).parents[1]
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
# Pointers to files and trackers users do not have (written split, so this file is no hit).
UNREACHABLE = re.compile("PROTOCOL" r"\.md|DESIGN" r"\.md|\.\./" "shared|issue" r" [0-9]")


def text(relative: str) -> str:
    return (CHECKOUT / relative).read_text(encoding="utf-8")


def literal_blocks(rst: str) -> list[str]:
    """The indented blocks after each ``::`` line, dedented."""
    blocks = []
    for found in re.finditer(r"::\n\n((?:[ ]{4}.*\n|\n)+)", rst):
        blocks.append("\n".join(line[4:] for line in found.group(1).splitlines()).strip())
    return blocks


class ReferenceTests(SynchronousTestCase):
    def test_no_pointer_to_what_users_do_not_have(self):
        tracked = subprocess.run(["git", "ls-files"], cwd=CHECKOUT, capture_output=True,
                                 text=True, check=True).stdout.split()
        hits = [name for name in tracked
                if not name.startswith("tests/cluster/")  # the rig: not ours to edit here
                and name.endswith((".py", ".rst", ".md", ".sh", ".yaml", ".example",
                                   ".service", "Containerfile", ".toml", ".ini", ".cfg"))
                and UNREACHABLE.search((CHECKOUT / name).read_text(errors="replace"))]
        self.assertEqual(hits, [])


class ReadmeTests(SynchronousTestCase):
    def test_every_option_is_listed(self):
        readme = text("README.rst")
        for name, *_ in Options.optParameters:
            self.assertRegex(readme, rf"\n``--{name} [A-Z]+``\n", name)

    def test_the_yaml_example_is_mentioned(self):
        self.assertIn("deploy/dssr.yaml.example", text("README.rst"))

    def test_the_unit_and_the_env_file_agree_and_point_nowhere_else(self):
        unit, env = text("deploy/dssr.service"), text("deploy/dssr.env.example")
        modes = {re.search(r"install -m (\d+) .*deploy/dssr.env.example", doc)
                 .group(1) for doc in (unit, env)}
        self.assertEqual(modes, {"600"})
        self.assertNotIn("jarvice-slurm-scheduler-dssr", unit)


class QuickStartTests(SynchronousTestCase):
    """The quick start's commands, run as written against ``twistd -n dssr``."""

    alone = "times its requests against the dummy's 5 s queue time"

    def setUp(self):
        self.port = free_port()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "dssr", "--listen",
             f"tcp:{self.port}:interface=127.0.0.1"], cwd=directory,
            env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop)
        deadline = time.monotonic() + 30
        while "status" not in self.curl("/live") and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)

    def shell(self, script: str) -> str:
        script = script.replace("localhost:5000", f"localhost:{self.port}")
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=60, check=False).stdout

    def curl(self, path: str, *extra: str) -> str:
        return self.shell(f"curl -s {' '.join(extra)} localhost:5000{path}")

    def test_the_commands_answer_as_shown(self):
        blocks = literal_blocks(text("README.rst"))
        commands = next(block for block in blocks if block.startswith("S=$(printf"))
        answers = next(block for block in blocks if block.startswith('["1",""]'))
        submitted = time.monotonic()
        got = [json.loads(line) for line in self.shell(commands).splitlines()]
        shown = [json.loads(line.split("#")[0]) for line in answers.splitlines()
                 if line.split("#")[0].strip()]
        self.assertEqual(got, shown)
        # "Five seconds later /running lists the job": the dummy's queue time.
        self.assertIn("Five seconds later ``/running`` lists the job", text("README.rst"))
        self.assertEqual(settings.default("dummy_queued_time"), 5.0)
        time.sleep(max(0.0, submitted + 5.5 - time.monotonic()))
        self.assertEqual(json.loads(self.curl("/running")), [["try-1", "1"]])

    def test_a_script_whose_base64_holds_a_plus_submits(self):
        commands = next(block for block in literal_blocks(text("README.rst"))
                        if block.startswith("S=$(printf"))
        # "true >~" encodes to ...ZSA+fgp7...: a "+" a plain -d would make a space.
        commands = commands.replace("JARVICE_CMD=true", "JARVICE_CMD=true >~")
        first = self.shell(commands.splitlines()[0] + "; echo $S")
        self.assertIn("+", first)
        self.assertEqual(json.loads(self.shell(commands).splitlines()[0]), ["1", ""])

    def test_a_rebound_host_name_is_refused(self):
        answer = self.curl("/running", "-H", "'Host: rebind.attacker.example'")
        self.assertEqual(json.loads(answer)["field"], "Host")


class ArchitectureTests(SynchronousTestCase):
    def test_every_module_is_named(self):
        doc = text("docs/architecture.rst")
        paragraphs = doc.split("\n\n")
        missing = []
        for path in sorted((CHECKOUT / "dssr").rglob("*.py")):
            relative = path.relative_to(CHECKOUT).as_posix()
            package = relative.rpartition("/")[0] + "/"
            listed = any(f"``{package}``:" in paragraph and f"``{path.name}``" in paragraph
                         for paragraph in paragraphs)
            if relative not in doc and not listed:
                missing.append(relative)
        self.assertEqual(missing, [])

    def test_who_reads_settings_is_true(self):
        doc = text("docs/architecture.rst")
        readers = {path.relative_to(CHECKOUT).as_posix()
                   for path in (CHECKOUT / "dssr").rglob("*.py")
                   if re.search(r"^from dssr(\.settings| import .*\bsettings\b)",
                                path.read_text(), re.MULTILINE)}
        section = doc.split("Who reads settings\n")[1].split("Every module\n")[0]
        for reader in readers:
            named = reader if not reader.startswith("dssr/checks/") else "dssr/checks/"
            self.assertIn(named, section, reader)
