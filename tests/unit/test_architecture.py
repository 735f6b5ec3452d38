"""The layering rules of docs/architecture.md, checked on the source (ast, nothing imported).

- Production code (everything under ``components/vertex_loadtest`` outside ``rehearsal/``) never
  imports the rehearsal or the tests, at module level or inside a function.
- No module under ``components/`` is longer than 500 lines.
"""

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
PACKAGE = COMPONENTS / "vertex_loadtest"
MAX_LINES = 500
FORBIDDEN = ("vertex_loadtest.rehearsal", "tests")


def module_name(path: Path, root: Path = COMPONENTS) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = COMPONENTS) -> set[str]:
    """Every module (or module attribute) ``path`` imports, made absolute, wherever the statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(path: Path, root: Path = COMPONENTS) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path, root)
        for prefix in FORBIDDEN
        if name == prefix or name.startswith(prefix + ".")
    )


PRODUCTION = sorted(
    path for path in PACKAGE.rglob("*.py") if "rehearsal" not in path.relative_to(PACKAGE).parts
)
ALL_MODULES = sorted(COMPONENTS.rglob("*.py"))


@pytest.mark.parametrize("path", PRODUCTION, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_production_code_imports_neither_the_rehearsal_nor_the_tests(path: Path) -> None:
    assert forbidden_imports(path) == []


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda path: str(path.relative_to(COMPONENTS)))
def test_no_module_exceeds_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(COMPONENTS)} has {lines} lines: split it by job"


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: a forbidden import is found at module level, inside a function, and relative."""
    package = tmp_path / "vertex_loadtest" / "latency_gate"
    package.mkdir(parents=True)
    probe = package / "probe.py"
    probe.write_text(
        "import json\n"
        "from vertex_loadtest.rehearsal import demo\n"
        "def f():\n"
        "    import tests.gate_stats\n"
        "    from ..rehearsal.ports import free_port\n",
        encoding="utf-8",
    )
    assert forbidden_imports(probe, root=tmp_path) == [
        "tests.gate_stats",
        "vertex_loadtest.rehearsal",
        "vertex_loadtest.rehearsal.demo",
        "vertex_loadtest.rehearsal.ports",
        "vertex_loadtest.rehearsal.ports.free_port",
    ]
