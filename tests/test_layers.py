"""The layers of docs/architecture.rst, held: who may import what, and module sizes."""

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PACKAGE = Path(__file__).parents[1] / "dssr"
LARGEST = 400  # lines


def modules() -> dict[str, Path]:
    """Every module of the dssr package by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """The modules ``path`` imports (absolute names; ``from a import b`` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def reaching(name: str, banned: tuple[str, ...]) -> set[str]:
    """The imports of module ``name`` that are, or are inside, one of ``banned``."""
    return {imported for imported in imports(modules()[name])
            if any(imported == ban or imported.startswith(ban + ".") for ban in banned)}


TRANSPORTS = ("dssr.remote.conch", "dssr.remote.link", "dssr.remote.ssh", "dssr.remote.local")


class LayerTests(SynchronousTestCase):
    def test_the_connectors_build_no_transport_and_read_no_settings(self):
        for name in ("dssr.connectors.slurm", "dssr.connectors.verdict", "dssr.slurm.cli",
                     "dssr.jobfiles"):
            self.assertEqual(reaching(name, (*TRANSPORTS, "dssr.settings", "dssr.compose")),
                             set(), name)

    def test_checks_reach_the_transport_through_the_composition_root(self):
        for name in modules():
            if name.startswith("dssr.checks") or name == "dssr.check":
                self.assertEqual(reaching(name, TRANSPORTS), set(), name)

    def test_only_the_composition_root_builds_transports(self):
        concrete = ("dssr.remote.ssh", "dssr.remote.local", "dssr.remote.conch")
        builders = {name for name in modules() if reaching(name, concrete)}
        self.assertEqual(builders - {name for name in builders if name.startswith("dssr.remote")},
                         {"dssr.compose"})

    def test_shared_values_pull_in_nothing(self):
        for name in ("dssr.samples", "dssr.jobs", "dssr.errors"):
            self.assertEqual({imported for imported in imports(modules()[name])
                              if imported.startswith("dssr")}, set(), name)
        for name in modules():
            if name.startswith("dssr.remote"):
                self.assertEqual(reaching(name, ("dssr.metrics", "prometheus_client")), set(),
                                 name)
        self.assertEqual(reaching("dssr.slurm.commands", ("dssr.validate", "dssr.api")), set())

    def test_modules_are_small(self):
        sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
        self.assertEqual({name: size for name, size in sizes.items() if size > LARGEST}, {})
