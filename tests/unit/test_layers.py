"""Import directions you can see from the folder names: engine/ imports no interface (api/, cli/)
and no loader; loaders/ import no interface; nothing imports in a circle (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "loaders", "api", "cli", "bench")
# what each package may import from the project (besides itself)
ALLOWED = {
    "engine": set(),
    "loaders": {"engine"},
    "api": {"engine", "loaders"},
    "cli": {"engine", "loaders", "api"},
    "bench": {"engine", "loaders", "api"},
}


def module_graph() -> dict[str, set[str]]:
    files = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = f
    graph: dict[str, set[str]] = {m: set() for m in files}
    for m, f in files.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            graph[m] |= {n for n in names if n in files and n != m}
    return graph


def test_import_directions() -> None:
    graph = module_graph()
    offences = [
        f"{m} imports {d}"
        for m, deps in graph.items()
        for d in deps
        if d.split(".")[0] != m.split(".")[0] and d.split(".")[0] not in ALLOWED[m.split(".")[0]]
    ]
    print(f"\nimport-direction offences: {len(offences)} over {len(graph)} modules")
    assert offences == []


def test_no_import_cycles() -> None:
    graph = module_graph()

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for d in graph[stack.pop()]:
                if d not in seen:
                    seen.add(d)
                    stack.append(d)
        return seen

    cycles = sorted({tuple(sorted((m, d))) for m in graph for d in graph[m] if m in reach(d)})
    assert cycles == []


# what writes an audit entry (engine.access.audit): only the use cases in engine/ call these
AUDIT_WRITES = {"record", "append_chained", "make_entry"}


def test_interfaces_record_no_audit_entry_themselves() -> None:
    """The routers, the console and the CLI parse, call a use case and render; the use cases
    (engine.usecases.reads, engine.usecases.writes) record the audit entries. An interface that
    recorded its own could forget one: `tubetrace load` did, although every write is audited."""
    calls = []
    for pkg in ("api", "cli"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in AUDIT_WRITES:
                    calls.append(f"{f.relative_to(ROOT)}:{node.lineno} {ast.unparse(func)}")
    assert calls == []
