"""The package's layers: each imports only the ones below it.

pprof/ (the data) is at the bottom; collect/ and report/ stand on it side by
side; export/ on report/; live/ and ci/ on those; jupyter and cli/ on top. The
C core (_core) and _version are below everything. Read from the sources, so a
new upward import fails here before anyone meets its import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cprof

PACKAGE = Path(cprof.__file__).parent
BASE = {"_core", "_version"}
# What each part may import at module level, besides BASE and itself.
BELOW: dict[str, set[str]] = {
    "pprof": set(),
    "collect": {"pprof"},
    "report": {"pprof"},
    "export": {"pprof", "report"},
    "live": {"pprof", "collect", "report", "export"},
    "ci": {"pprof", "collect", "report", "export"},
    "jupyter": {"pprof", "collect", "report", "export"},
    "cli": {"pprof", "collect", "report", "export", "live", "ci"},
}
# The only upward imports, made when called: Profile's report and export
# methods (p.top(), p.flamegraph(), its notebook display) are the public face
# of the layers above the data, and import them when used.
FACADE = ("pprof/profile.py", "Profile", {"report", "export"})


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def part(relative: str) -> str:
    """The part a dotted name inside cprof belongs to ("pprof", "cli", ...)."""
    return relative.split(".")[0]


def imports(path: Path) -> list[tuple[str, list[str], ast.AST]]:
    """(importing part, imported cprof parts, the statement's enclosing
    function or class, or the module) for every relative import."""
    rel = path.relative_to(PACKAGE)
    here = list(rel.with_suffix("").parts)
    if here[-1] == "__init__":
        here = here[:-1]
    else:
        here = here[:-1] if len(here) > 1 else []
    tree = ast.parse(path.read_text())
    found = []

    def visit(node: ast.AST, owner: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and child.level:
                base = here[:len(here) - (child.level - 1)] if child.level > 1 else here
                target = [*base, *(child.module.split(".") if child.module else [])]
                names = ([target[0]] if target else
                         [a.name for a in child.names])  # "from .. import _core"
                found.append((str(rel), names, owner))
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                continue  # annotations only
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.ClassDef)) and owner is tree else owner
            visit(child, inner)
    visit(tree, tree)
    return [(f, n, o if o is not tree else tree) for f, n, o in found]


def test_every_module_imports_only_the_layers_below_it() -> None:
    wrong = []
    for path in modules():
        rel = str(path.relative_to(PACKAGE))
        me = part(rel.removesuffix(".py").replace("/", "."))
        if me in ("__init__", "__main__") or me in BASE:
            continue  # the public API, lazy, may name anything; BASE imports nothing of ours
        allowed = BELOW[me] | BASE | {me}
        for _, targets, owner in imports(path):
            for target in targets:
                if target in allowed:
                    continue
                if (rel, getattr(owner, "name", None)) == FACADE[:2] and target in FACADE[2]:
                    continue
                wrong.append(f"{rel} imports {target}"
                             + (f" (in {owner.name})" if hasattr(owner, "name") else ""))
    assert not wrong, "imports above their layer:\n" + "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check above can fail: an import of report/ in pprof/ is one."""
    bad = tmp_path / "pprof" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("from ..report.top import top\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        with pytest.raises(AssertionError, match="pprof/bad.py imports report"):
            test_every_module_imports_only_the_layers_below_it()
    finally:
        PACKAGE = saved


@pytest.mark.parametrize("name", sorted(BELOW))
def test_each_part_says_what_lives_there(name: str) -> None:
    init = PACKAGE / name / "__init__.py"
    where = init if init.exists() else PACKAGE / f"{name}.py"
    doc = ast.get_docstring(ast.parse(where.read_text()))
    assert doc and len(doc.splitlines()) >= 3, f"{where} has no docstring saying what it holds"
