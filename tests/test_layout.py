"""The package's layout rules, read from the source itself: the core never imports a face, analysis never
imports widgets or the CLI, every function fits on a screen, and method names are spelled in one place."""

import ast
import re
from pathlib import Path

import pytest

from dasm.methods import REGISTRY, method_names

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dasm"
FACES = ("dasm.analysis", "dasm.widgets", "dasm.cli")
MAX_LINES = 80


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = _module(path).split(".") if path.name == "__init__.py" else _module(path).split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _core() -> list[Path]:
    """Every module of the package that is not a face (discovered, not listed)."""
    return [p for p in PACKAGE.rglob("*.py") if not _module(p).startswith(FACES) and p.name != "__main__.py"]


def test_the_core_is_discovered_and_never_imports_a_face():
    core = _core()
    assert {"dasm.config", "dasm.runs", "dasm.methods", "dasm.sequential"} <= {_module(p) for p in core}
    for path in core:
        bad = {m for m in _imports(path) if m.startswith(FACES)}
        assert not bad, f"core module {_module(path)} imports {bad}"


def test_analysis_never_imports_widgets_or_the_cli():
    for path in (PACKAGE / "analysis").rglob("*.py"):
        bad = {m for m in _imports(path) if m.startswith(("dasm.widgets", "dasm.cli"))}
        assert not bad, f"{_module(path)} imports {bad}"


def test_the_import_reader_resolves_relative_imports(tmp_path):
    assert "dasm.runs.run_grid" in _imports(PACKAGE / "analysis" / "figures.py") or \
        "dasm.runs" in _imports(PACKAGE / "analysis" / "figures.py")
    assert "dasm.config.resolve" in _imports(PACKAGE / "runs.py")


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: _module(p))
def test_no_function_is_longer_than_a_screen(path):
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in _functions(path)
            if f.end_lineno - f.lineno + 1 > MAX_LINES]
    assert not long, f"{_module(path)}: {', '.join(long)} over {MAX_LINES} lines"


def test_dasm_method_names_are_spelled_in_the_registry_only():
    """No literal tuple, list or set of DASM's methods (two or more names, all of the sequential family) outside
    dasm/methods.py: which methods are DASM's is asked of the registry (a selection of methods to run, which
    mixes families, is not such a spelling)."""
    sequential = set(method_names("sequential"))
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        if path.name == "methods.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                literal = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if len(literal) == len(node.elts) >= 2 and set(literal) <= sequential:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {literal}")
    assert not offenders, "DASM method names spelled outside the registry:\n" + "\n".join(offenders)


def test_the_registry_knows_every_family_and_protocol():
    assert set(method_names("coreset")) == {"random", "herding", "kcenter"}
    assert method_names(segments=True) == ("dasm", "dasm-nodifficulty")
    assert {m.protocol for m in REGISTRY.values()} == {"dc", "idc"}
    assert re.fullmatch(r"[a-z-]+", "".join(REGISTRY))
