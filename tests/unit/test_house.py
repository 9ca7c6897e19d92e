"""The shape of the package, read from its source with ast (nothing imported or run):

- no import cycle between modules (imports inside functions included);
- no two packages importing each other, around any circle;
- the core (analysis/, index/, search/, ops/, storage/, ingest/) never imports Ray, not
  even through another raysearch module;
- serve/ and elastic/ call no actor themselves (.remote) and reach into no other
  package's private names; the search flow lives in search/coordinator.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "raysearch"
CORE = ("analysis", "index", "search", "ops", "storage", "ingest")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(MODULES)
            out |= subs if len(subs) == len(node.names) else subs | {base}
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}
GRAPH = {name: {t for t in imps if t in MODULES and t != name} for name, imps in IMPORTS.items()}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle(no_ray):
    cycles = sorted(m for m in GRAPH if m in _reach(GRAPH, m) and not MODULES[m].name == "__init__.py")
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_no_two_packages_import_each_other(no_ray):
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(_package(module), set()).update(_package(t) for t in targets if _package(t) != _package(module))
    circles = sorted({tuple(sorted((a, b))) for a in packages for b in _reach(packages, a)
                      if a != b and a in _reach(packages, b)})
    assert not circles, f"packages in a circle: {circles}"


def test_the_core_never_imports_ray(no_ray):
    importers = {m for m, imps in IMPORTS.items() if any(i == "ray" or i.startswith("ray.") for i in imps)}
    for module in GRAPH:
        if re.match(rf"raysearch\.({'|'.join(CORE)})(\.|$)", module):
            reached = ({module} | _reach(GRAPH, module)) & importers
            assert not reached, f"{module} imports Ray through {sorted(reached)}"


def test_the_http_layers_call_no_actor_and_reach_into_nothing_private(no_ray):
    for module, path in MODULES.items():
        if not re.match(r"raysearch\.(serve|elastic)(\.|$)", module):
            continue
        source = path.read_text(encoding="utf-8")
        assert ".remote(" not in source, f"{module} calls an actor itself"
        private = re.findall(r"\b(?:svc|service|self\.service|_svc\(\))\._[a-z]\w*", source)
        assert not private, f"{module} reaches into private names: {private}"


def test_the_search_flow_lives_in_the_coordinator(no_ray):
    assert "raysearch.search.coordinator" in MODULES
    for module in ("raysearch.serve.app", "raysearch.elastic.routes", "raysearch.incluster"):
        assert "raysearch.search.executor" not in GRAPH[module] and "raysearch.search.plan" not in GRAPH[module]


def test_an_idle_index_worker_loads_no_indexing_libraries():
    """An IndexWorker's module imports what its class needs and no more: numpy, pymongo and
    the rest load at a worker's first batch (most of the twelve never get one on a small
    machine, and each eager import cost ~41 MB of RSS per process). Read from the source:
    module-level imports only."""
    path = MODULES["raysearch.actors.index_worker"]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:  # module level, outside `if TYPE_CHECKING:`
        if isinstance(node, ast.Import):
            top |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module or "")
    # raysearch.actors.traffic imports only `collections` (a counter of calls and bytes)
    assert top <= {"__future__", "os", "typing", "ray", "raysearch.actors", "raysearch.actors.traffic"}, top
