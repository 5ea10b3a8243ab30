"""Fixtures shared by the suites: the test corpus, a real pacsbox server, the real Orthanc as a reference."""

from __future__ import annotations

import compileall
import signal
from pathlib import Path

import pytest

from tests.support.dicomgen import standard_corpus
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import LENT_TEMPLATE_VARIABLE, TEMPLATE_HOME_VARIABLE, RunningPacsbox


def pytest_configure(config: pytest.Config) -> None:
    """Once a run (in the controller, before xdist's workers start): write the bytecode of pacsbox's modules, as
    installing the package does. The suite starts over a hundred fresh interpreters (CLI commands, cold servers,
    the warm-start templates, inner pytest runs); under ``PYTHONDONTWRITEBYTECODE`` (set in some CI images) an
    editable install never caches its bytecode, and every one of those starts would compile pacsbox's 150-odd
    modules again. The suite's own modules likewise (see ``_write_test_bytecode``).

    Also, in every process of the run: SIGINT at its default. A run started in the background by a shell without job
    control (``command &`` in a script, as some CI runners start it) has SIGINT ignored, and every process it starts
    inherits that, so the tests that interrupt a pytest run, a starter or a caller with Ctrl-C would wait out their
    deadlines instead; a signal that is handled goes back to its default in a started program."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not hasattr(config, "workerinput"):
        import pacsbox

        compileall.compile_dir(Path(pacsbox.__file__).parent, quiet=1)
        _write_test_bytecode(config)
        _start_server_template(config)


def _start_server_template(config: pytest.Config) -> None:
    """One warm-start template for the run (pacsbox's own, in a folder of its own), started now while the
    workers start and collect, so that ``RunningPacsbox`` forks its servers from it instead of spawning each in a
    new interpreter (see tests/support/pacsbox_proc.py). The workers find it through their environment, which they
    inherit from here; it is stopped when the run ends (or, should this process die first, when its folder is
    gone or after ``PACSBOX_TEMPLATE_IDLE`` seconds without a request)."""
    import contextlib
    import os
    import shutil
    import tempfile

    from pacsbox.lifecycle import warm

    if TEMPLATE_HOME_VARIABLE in os.environ or not warm.enabled():  # an outer run's, or no warm start here
        return
    home = Path(tempfile.mkdtemp(prefix="pacsbox-test-template-"))
    os.environ[TEMPLATE_HOME_VARIABLE] = str(home)
    # lent to every $PACSBOX_HOME the tests make too (one template a run instead of one a home); the tests of
    # templates themselves, and of orphans by command line (tests/plugin), take it back (LENT_TEMPLATE_VARIABLE)
    os.environ[LENT_TEMPLATE_VARIABLE] = str(home)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PACSBOX_TEMPLATE_IDLE": "300"}
    with contextlib.suppress(OSError):  # if it cannot start now, the first server tries again, or is spawned
        warm.start_template(warm.template_folder(home), environment)

    def stop() -> None:
        warm.stop_template(home)
        shutil.rmtree(home, ignore_errors=True)
        os.environ.pop(TEMPLATE_HOME_VARIABLE, None)
        os.environ.pop(LENT_TEMPLATE_VARIABLE, None)

    config.add_cleanup(stop)


def _write_test_bytecode(config: pytest.Config) -> None:
    """Every xdist worker collects the whole suite, and so imports all of its 200-odd test modules: pytest rewrites
    each one's asserts (parse, rewrite, compile: most of a worker's collection time) and keeps the result in its
    cache beside the module, but never under ``PYTHONDONTWRITEBYTECODE``, so each worker of each run paid it again.
    Written here once, before the workers start, in two processes (the machine's cores are idle meanwhile); the
    workers then read it. The helper modules (tests/support, ...) get their plain bytecode; the plugins' modules,
    which pytest rewrites too, their rewritten one (``_plugin_modules``). pytest's rewriting functions are internal:
    should they change, this does nothing and the workers rewrite as before."""
    import os

    tests = Path(__file__).parent
    modules = sorted(path for path in tests.rglob("*.py") if "__pycache__" not in path.parts)
    helpers = [path for path in modules if not path.name.startswith("test_") and path.name != "conftest.py"]
    for path in helpers:
        compileall.compile_file(path, quiet=2)
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        cached_name = rewrite.PYC_TAIL
    except (ImportError, AttributeError, KeyError):  # another pytest, or --assert=plain: nothing to prepare
        return

    def write(paths: list[Path]) -> None:
        for path in paths:
            try:
                folder = rewrite.get_cache_dir(path)
                cached = folder / (path.name[:-3] + cached_name)
                if rewrite._read_pyc(path, cached, state.trace) is None and rewrite.try_makedirs(folder):
                    source, code = rewrite._rewrite_test(path, config)
                    rewrite._write_pyc(state, code, source, cached)
            except Exception:  # a module that does not compile fails at its collection, as before
                continue

    tested = [path for path in modules if path not in helpers] + _plugin_modules(state)
    child = os.fork() if (os.cpu_count() or 1) > 1 and hasattr(os, "fork") else None
    if child == 0:  # the second process: every other module
        try:
            write(tested[1::2])
        finally:
            os._exit(0)
    write(tested[0::2] if child else tested)
    if child:
        os.waitpid(child, 0)


def _plugin_modules(state: object) -> list[Path]:
    """The source files of the packages pytest rewrites besides the tests: those of every installed plugin's
    distribution (pacsbox's own, hypothesis, anyio, xdist...), whose modules are rewritten as each process imports
    them, each worker and each inner pytest run again under ``PYTHONDONTWRITEBYTECODE`` (~2 s a process)."""
    import importlib.util

    files: list[Path] = []
    for name in sorted(getattr(getattr(state, "hook", None), "_must_rewrite", ())):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or (spec.origin and Path(spec.origin).is_relative_to(Path(__file__).parent)):
            continue  # not importable as named, or one of the suite's own modules (done above)
        for location in spec.submodule_search_locations or ():
            files += sorted(path for path in Path(location).rglob("*.py") if "__pycache__" not in path.parts)
        if not spec.submodule_search_locations and spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return files


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the warm-start templates the tests' own ``$PACSBOX_HOME`` folders got (pacsbox starts one with a home's
    first server; a test stops its servers, not always its template): they would otherwise idle on for
    ``PACSBOX_TEMPLATE_IDLE`` seconds (15 minutes) after the run. Each xdist worker looks in its own temporary
    folders; the run's own template is stopped by the controller (``_start_server_template``)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or factory._basetemp is None:  # no test asked for a temporary folder
        return
    from pacsbox.lifecycle.warm import stop_template

    for record in Path(factory.getbasetemp()).rglob("template/template.json"):
        stop_template(record.parent.parent)


# The files that take longest (wall time on a loaded 2-core machine, the mean of two full runs' ``--durations=0``),
# longest first. xdist's ``--dist loadfile`` hands files to workers in collection order, so a long file collected
# last would run alone at the end while the other workers idle: these are collected first, everything else keeps
# its order after them. Only the order changes; a file missing from the list (renamed, new) simply runs in its
# usual place.
LONG_FILES = (
    "tests/faces/orthanc/test_modification_differential.py",
    "tests/reliability/test_crash_safety.py",
    "tests/test_readme.py",
    "tests/plugin/test_xprocess_dropin.py",
    "tests/reliability/test_http_connections.py",
    "tests/plugin/test_isolation.py",
    "tests/test_benchmarks.py",
    "tests/faces/orthanc/test_queries.py",
    "tests/reliability/test_security_defaults.py",
    "tests/reliability/test_hostile_dicom.py",
    "tests/reliability/test_dimse_connection_limits.py",
    "tests/faces/orthanc/test_differential.py",
    "tests/reliability/test_hostile_http.py",
    "tests/reliability/test_archive_limits.py",
    "tests/plugin/test_fixtures.py",
    "tests/reliability/test_switch_crash.py",
    "tests/lifecycle/test_warm_start.py",
    "tests/lifecycle/test_orthanc_engine.py",
    "tests/lifecycle/test_new_user.py",
    "tests/faults/test_interfaces.py",
    "tests/faces/orthanc/test_modalities.py",
    "tests/fuzz/test_ingest_properties.py",
    "tests/faces/orthanc/test_concurrency.py",
    "tests/reliability/test_concurrency_soak.py",
    "tests/faces/orthanc/test_tools_info.py",
    "tests/faces/dimse/test_worklist_reference.py",
    "tests/faces/orthanc/test_jobs_load.py",
    "tests/lifecycle/test_cli.py",
    "tests/reliability/test_dimse_memory_limits.py",
    "tests/datasets/test_upload.py",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the known-long files first (see ``LONG_FILES``); a stable sort, so every xdist worker gets the same
    order and each file keeps its tests' order (or pytest-randomly's, which shuffles before this runs)."""
    rank = {path: position for position, path in enumerate(LONG_FILES)}
    root = config.rootpath

    def position(item: pytest.Item) -> int:
        try:
            relative = item.path.relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(relative, len(rank))

    items.sort(key=position)


@pytest.fixture(scope="module")
def quiet_pydicom():
    """pydicom logs each invalid value it reads: thousands of lines around a failure of a test feeding it hostile
    files, none of them the failure (``pytestmark = pytest.mark.usefixtures("quiet_pydicom")``)."""
    import logging

    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def faults(server):
    """The fault rules of the module's ``server`` (a ``FaultsClient``), empty before and after the test."""
    from pacsbox.faults.client import FaultsClient, http_caller

    client = FaultsClient(http_caller(server.url, server.auth))
    client.clear()
    yield client
    client.clear()


@pytest.fixture(scope="session")
def corpus() -> list[tuple[str, bytes]]:
    """The deterministic pydicom-generated files every suite uses."""
    return standard_corpus()


@pytest.fixture(scope="module")
def spawned_pacsbox():
    """One pacsbox server per test module (empty at the start of the module)."""
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as server:
        yield server


@pytest.fixture
def fresh_pacsbox():
    """A pacsbox server of its own for one test."""
    with RunningPacsbox({"UserMetadata": {"Sample": 1024}}) as server:
        yield server


@pytest.fixture(scope="module")
def reference_orthanc():
    """The real Orthanc (Debian), started on its own ports; skipped with install advice when missing."""
    if not have_orthanc():
        pytest.skip(SKIP_REASON)
    with ReferenceOrthanc(extra_config={"UserMetadata": {"Sample": 1024}}, graceful_stop=False) as server:
        yield server
