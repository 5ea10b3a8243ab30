"""Every code block of the README runs as written, so the README cannot drift from the code (issue 22).

- ```` ```sh ```` blocks run in bash (``-e``, ``pipefail``) in a scratch folder with a scratch ``$PACSBOX_HOME``; a
  ``pip`` on the PATH checks that what it is asked to install names extras pyproject.toml declares, and installs
  nothing (the suite runs where pacsbox and its extras are installed already).
- ```` ```python ```` blocks run as scripts with the suite's Python, in the same kind of scratch folder; with
  ``<!-- readme-test: pytest -->`` before them they are a test file run by ``pytest`` (a block starting
  ``# conftest.py`` is a conftest, and a generated test asks for each fixture it defines).
- ```` ```text ```` blocks are synopses and sample output: each ``pacsbox COMMAND ... --option`` they show must be
  a real command with that option.
- ``<!-- readme-test: needs orthanc -->`` (or ``dcmtk``) skips the block, saying how to install it, when Debian's
  tool is missing (CI installs them); ``<!-- readme-test: skip: REASON -->`` skips a block that must not run here
  (the test suite's own command).

Indented code blocks are refused: every block says its language, so none escapes these checks. Every server a
block starts is stopped afterwards, and none may be left running.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
LANGUAGES = ("sh", "python", "text")
TOOLS = {  # what a `needs` directive may name: how to tell it is there, and how to install it
    "orthanc": (("/usr/sbin/Orthanc", "Orthanc"), "bash scripts/install-test-deps.sh (Debian's orthanc package)"),
    "dcmtk": (("/usr/bin/storescu", "storescu"), "bash scripts/install-test-deps.sh (Debian's dcmtk package)"),
}


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directive: str  # "" when the block has none

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language}"


def readme_blocks(text: str) -> tuple[list[Block], list[int]]:
    """The fenced blocks of ``text``, and the line numbers of indented code blocks (which are not allowed)."""
    blocks: list[Block] = []
    indented: list[int] = []
    lines = text.splitlines()
    index = 0
    previous = ""  # the last non-blank line outside a block
    while index < len(lines):
        line = lines[index]
        opening = FENCE.match(line)
        if opening:
            start = index
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            directive = DIRECTIVE.fullmatch(previous.strip())
            blocks.append(Block(start + 1, opening.group(1), "\n".join(body) + "\n",
                                directive.group(1) if directive else ""))
            previous = ""
        elif line.startswith("    ") and index > 0 and not lines[index - 1].strip():
            indented.append(index + 1)
        elif line.strip():
            previous = line
        index += 1
    return blocks, indented


BLOCKS, INDENTED = readme_blocks(README.read_text(encoding="utf-8"))


def test_every_block_is_fenced_with_a_known_language() -> None:
    assert not INDENTED, f"README lines {INDENTED}: indented code blocks; fence them with ```sh, ```python or ```text"
    strays = [(block.line, block.language) for block in BLOCKS if block.language not in LANGUAGES]
    assert not strays, f"README blocks with a language this test does not run: {strays}; use one of {LANGUAGES}"
    for block in BLOCKS:
        directive = block.directive
        if directive.startswith("skip"):
            assert directive.partition(":")[2].strip(), f"line {block.line}: `skip: REASON` must give its reason"
        elif directive.startswith("needs"):
            assert directive.split()[1:] and all(tool in TOOLS for tool in directive.split()[1:]), directive
        else:
            assert directive in ("", "pytest"), f"line {block.line}: unknown directive {directive!r}"


# -- scratch environment ------------------------------------------------------------------------------------
PIP_SHIM = '''#!{python}
"""pip for the README test: checks that each requirement names extras pyproject.toml declares; installs
nothing (pacsbox and its extras are installed in this environment already)."""
import re, sys
arguments = sys.argv[1:]
if not arguments or arguments[0] != "install":
    sys.exit(f"readme test: pip {{' '.join(arguments)}}: only `pip install` of pacsbox is expected")
# the extras' names: the keys of [project.optional-dependencies] (no tomllib before Python 3.11)
section = open({pyproject!r}).read().split("[project.optional-dependencies]", 1)[1].split("\\n[", 1)[0]
declared = set(re.findall(r"(?m)^([A-Za-z0-9_-]+)\\s*=\\s*\\[", section))
for requirement in arguments[1:]:
    if requirement.startswith("-") and requirement != "-e":
        continue
    match = re.fullmatch(r"(\\.|pacsbox)(?:\\[([^\\]]*)\\])?", requirement)
    if requirement != "-e" and match is None:
        sys.exit(f"readme test: pip install {{requirement}}: not this project")
    extras = {{e.strip() for e in (match.group(2) or "").split(",") if e.strip()}} if match else set()
    if extras - declared:
        sys.exit(f"readme test: pip install {{requirement}}: no extra {{sorted(extras - declared)}} in pyproject.toml")
print("readme test: pip install skipped (already installed)")
'''


@pytest.fixture
def scratch(tmp_path: Path):
    """A working folder, a ``$PACSBOX_HOME`` and an environment for one block; every instance started under that
    home is stopped afterwards, and none may still run."""
    from pacsbox.lifecycle import list_instances, stop
    from pacsbox.lifecycle.warm import stop_template
    from tests.plugin.helpers import gone

    home = tmp_path / "pacsbox-home"
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "pip").write_text(PIP_SHIM.format(python=sys.executable, pyproject=str(ROOT / "pyproject.toml")))
    (shims / "pip").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PACSBOX_HOME": str(home),
           "PATH": os.pathsep.join([str(shims), bin_dir, os.environ.get("PATH", "")])}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    yield work, env
    pids = []
    for name, instance, _ in list_instances(home):
        if instance is not None:
            pids.append(instance.pid)
        stop(name, grace=5, home=home)
    stop_template(home)  # the warm-start template a block's first start brought up, as `pacsbox stop --all` would
    assert all(gone(pid) for pid in pids), "a server started by a README block is still running"


def _needs(block: Block) -> None:
    for tool in block.directive.split()[1:]:
        candidates, hint = TOOLS[tool]
        if not any(shutil.which(candidate) for candidate in candidates):
            pytest.skip(f"README line {block.line} needs {tool}: {hint}")


def _run(command: list[str], work: Path, env: dict[str, str], block: Block) -> None:
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"README block at line {block.line} failed with status {result.returncode}:\n"
                                    f"{block.text}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")


RUNNABLE = [block for block in BLOCKS if block.language in ("sh", "python")]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_block_runs_as_written(block: Block, scratch) -> None:
    work, env = scratch
    if block.directive.startswith("skip"):
        pytest.skip(f"README line {block.line}: {block.directive.partition(':')[2].strip()}")
    if block.directive.startswith("needs"):
        _needs(block)
    if block.language == "sh":
        _run(["bash", "-e", "-o", "pipefail", "-c", block.text], work, env, block)
    elif block.directive == "pytest":
        files = _pytest_files(block)
        for name, text in files.items():
            (work / name).write_text(text)
        _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], work, env, block)
    else:
        (work / "example.py").write_text(block.text)
        _run([sys.executable, "example.py"], work, env, block)


def _pytest_files(block: Block) -> dict[str, str]:
    """A test file, or a conftest and a test asking for every fixture the conftest defines."""
    (first, _, _) = block.text.partition("\n")
    if first.strip() != "# conftest.py":
        return {"test_readme_block.py": block.text, "pytest.ini": "[pytest]\n"}
    fixtures = [node.name for node in ast.walk(ast.parse(block.text)) if isinstance(node, ast.FunctionDef)
                and any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)]
    assert fixtures, f"README line {block.line}: a conftest block defines no fixture"
    test = textwrap.dedent(f"""
        def test_every_fixture(request):
            for name in {fixtures!r}:
                assert request.getfixturevalue(name) is not None
        """)
    return {"conftest.py": block.text, "test_readme_conftest.py": test, "pytest.ini": "[pytest]\n"}


# -- synopses ----------------------------------------------------------------------------------------------
def _command_options(group) -> dict[str, set[str]]:
    """Every command and subcommand of a click group, with its options (and the group's own for "")."""
    import click

    commands: dict[str, set[str]] = {"": {opt for param in group.params for opt in (*param.opts,
                                                                                    *param.secondary_opts)}}

    def walk(parent: click.Group, prefix: str) -> None:
        for name, command in parent.commands.items():
            options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            commands[prefix + name] = options | {"--help", "-h"}
            if isinstance(command, click.Group):
                walk(command, prefix + name + " ")

    walk(group, "")
    return commands


def _programs() -> dict[str, dict[str, set[str]]]:
    from pacsbox.cli import main
    from pacsbox.xnat4tests.cli import main as xnat4tests_main

    return {"pacsbox": _command_options(main), "xnat4tests": _command_options(xnat4tests_main)}


SYNOPSES = [block for block in BLOCKS if block.language == "text"]


@pytest.mark.parametrize("block", SYNOPSES, ids=[block.id for block in SYNOPSES])
def test_synopsis_names_real_commands_and_options(block: Block) -> None:
    programs = _programs()
    from pacsbox.pytest_plugin import OPTIONS

    plugin_flags = {option.flag for option in OPTIONS} | {
        f"--pacsbox-{option.negative[0]}" for option in OPTIONS if option.negative}
    for line in block.text.replace("\\\n", " ").splitlines():
        code = line.split("#", 1)[0]
        for flag in re.findall(r"--pacsbox-[a-z-]+", code):  # pytest's options of the plugin
            assert flag in plugin_flags, f"README line {block.line}: the pytest plugin has no option {flag}"
        for program, commands in programs.items():
            for segment in re.split(rf"\b{program}\s+", code)[1:]:
                words = [word for word in segment.split() if not word.startswith(("[", "-"))
                         and not (word.isupper() or "|" in word)]
                group_options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", segment.split(words[0])[0])) \
                    if words else set()
                assert group_options <= commands[""] | {"--help", "-h"}, (block.line, group_options)
                if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
                    continue  # sample output ("pacsbox ready: ...")
                name = f"{words[0]} {words[1]}" if len(words) > 1 and f"{words[0]} {words[1]}" in commands \
                    else words[0]
                assert name in commands, f"README line {block.line}: `{program} {name}` is not a command"
                rest = segment.split(name.split()[-1], 1)[1].split(" -- ")[0]
                for index, part in enumerate(rest.split("|")):  # `a [--x] | b [--y]`: alternatives
                    head = part.split()[0] if index and part.split() else None
                    target = head if head in commands else name
                    unknown = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", part)) - commands[target]
                    assert not unknown, f"README line {block.line}: `{program} {target}` has no {sorted(unknown)}"


@pytest.mark.parametrize("text", ["pacsbox start [--no-such-option]", "pacsbox nosuch NAME",
                                  "xnat4tests [--config FILE] start [--nope]", "pytest --pacsbox-nope"])
def test_a_wrong_synopsis_is_caught(text: str) -> None:
    with pytest.raises(AssertionError):
        test_synopsis_names_real_commands_and_options(Block(1, "text", text + "\n", ""))


@pytest.mark.parametrize(("arguments", "status"), [("install .", 0), ("install -e .[test]", 0),
                                                   ("install pacsbox[pytest,compression]", 0),
                                                   ("install pacsbox[nope]", 1), ("install requests", 1)])
def test_the_pip_stand_in_accepts_only_declared_extras(tmp_path: Path, arguments: str, status: int) -> None:
    shim = tmp_path / "pip"
    shim.write_text(PIP_SHIM.format(python=sys.executable, pyproject=str(ROOT / "pyproject.toml")))
    shim.chmod(0o755)
    assert subprocess.run([str(shim), *arguments.split()], capture_output=True).returncode == status
