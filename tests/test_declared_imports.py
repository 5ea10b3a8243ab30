"""Every third-party package that src/, tests/ and benchmarks/ import is declared in pyproject.toml.

A new user installs exactly what pyproject.toml declares, in a fresh virtual environment; a package that only the
developer's machine has (installed by hand, or pulled in by another package) breaks the README's test command for
them at collection.  This test catches that class of break on the developer's machine, before CI.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).resolve().parent.parent
SCANNED_TREES = ("src", "tests", "benchmarks")
PROJECT_NAME = "pacsbox"


def canonical(distribution: str) -> str:
    """PEP 503 normalised name: ``Pillow`` is ``pillow``, ``pylibjpeg_openjpeg`` is ``pylibjpeg-openjpeg``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def requirement_name(requirement: str) -> str:
    """The distribution named by a PEP 508 requirement string (``"pydicom>=3.0"`` -> ``"pydicom"``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"unreadable requirement in pyproject.toml: {requirement!r}"
    return canonical(match.group(1))


def declared_distributions(pyproject: dict) -> set[str]:
    """Every distribution named in ``dependencies`` or any optional-dependency group (self-references left out)."""
    project = pyproject["project"]
    requirements = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        requirements.extend(group)
    names = {requirement_name(requirement) for requirement in requirements}
    names.discard(canonical(project["name"]))
    return names


def top_level_imports(source: str, filename: str) -> set[str]:
    """Top-level module names of every absolute import in ``source``, wherever it sits (functions, try blocks)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def local_module_names(tree: Path) -> set[str]:
    """Names importable from the project itself: packages and modules at the top of a tree, and the trees."""
    names = {tree.name}
    for child in tree.iterdir():
        if child.suffix == ".py":
            names.add(child.stem)
        elif child.is_dir() and (child / "__init__.py").exists():
            names.add(child.name)
    # benchmarks/ puts its own folders (bench/) on sys.path
    names.update(child.name for child in tree.iterdir() if child.is_dir())
    return names


@cache
def import_name_to_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def undeclared_imports(root: Path, declared: set[str]) -> list[str]:
    """One line per (file, import) whose package is neither standard library, local, nor declared."""
    local = {PROJECT_NAME}
    for tree_name in SCANNED_TREES:
        if (root / tree_name).is_dir():
            local |= local_module_names(root / tree_name)
    local |= local_module_names(root / "src")
    providers = import_name_to_distributions()
    problems = []
    for tree_name in SCANNED_TREES:
        for path in sorted((root / tree_name).rglob("*.py")):
            for name in sorted(top_level_imports(path.read_text(encoding="utf-8"), str(path))):
                if name in sys.stdlib_module_names or name in local or name == "__future__":
                    continue
                distributions = {canonical(d) for d in providers.get(name, [])}
                # a declared package not installed in this environment is still declared (same name as its import)
                if distributions & declared or (not distributions and canonical(name) in declared):
                    continue
                where = path.relative_to(root)
                if distributions:
                    problems.append(
                        f"{where}: imports {name!r} (from {', '.join(sorted(distributions))}), "
                        f"which pyproject.toml does not declare"
                    )
                else:
                    problems.append(
                        f"{where}: imports {name!r}, which is not standard library, not part of pacsbox, not "
                        f"declared, and not installed here (so no distribution can be matched to it)"
                    )
    return problems


def test_every_third_party_import_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    problems = undeclared_imports(ROOT, declared_distributions(pyproject))
    assert not problems, (
        "Declare these in pyproject.toml (`dependencies`, an extra, or the `test` extra): a new virtual environment "
        "installs nothing else.\n" + "\n".join(problems)
    )


def test_an_undeclared_import_is_reported(tmp_path: Path) -> None:
    """The check itself can fail: a tree importing an undeclared package is reported with its file."""
    (tmp_path / "src" / PROJECT_NAME).mkdir(parents=True)
    (tmp_path / "src" / PROJECT_NAME / "__init__.py").write_text("import pydicom\nfrom pacsbox import x\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import os\nfrom tests.support import y\ndef f():\n    import pytest\n    import hypothesis.strategies\n"
        "    import surely_not_a_real_package_name\n"
    )
    problems = undeclared_imports(tmp_path, {"pydicom"})
    text = "\n".join(problems)
    assert "tests/test_x.py: imports 'pytest'" in text
    assert "'surely_not_a_real_package_name'" in text
    assert "pydicom" not in text and "'os'" not in text and "'tests'" not in text and "'pacsbox'" not in text
    assert len(problems) == 3


def test_requirement_names_are_normalised() -> None:
    assert requirement_name("pylibjpeg_openjpeg>=2.3") == "pylibjpeg-openjpeg"
    assert requirement_name("uvloop>=0.19; sys_platform != 'win32'") == "uvloop"
    assert requirement_name("Pillow") == "pillow"
    project = {"name": "pacsbox", "dependencies": ["a>=1"], "optional-dependencies": {"t": ["pacsbox[x]", "B_c"]}}
    assert declared_distributions({"project": project}) == {"a", "b-c"}
