"""The pytest plugin: one pacsbox server per project, shared by xdist workers and reused across runs.

Fixtures: ``pacsbox_server`` (the running :class:`~pacsbox.lifecycle.Instance`), ``pacsbox_clean`` (the same,
emptied before the test), ``orthanc_client`` (a ``requests`` session on the Orthanc REST API), ``xnat_session``
(an xnatpy session), ``dicomweb_client`` (a dicomweb-client on the DICOMweb face) and ``dicom_address`` (host,
port, AET). Options are declared once in ``OPTIONS``, each as a
command-line flag and, where it makes sense, an ini key; they resolve into one frozen :class:`PluginSettings`.

Under pytest-xdist there are two modes, chosen explicitly: one server shared by every worker (the default: right
for suites that read, or write data no other test counts), where ``pacsbox_clean`` refuses to empty what other
workers are using; or ``--pacsbox-per-worker`` (ini ``pacsbox_per_worker = true``): one server per worker, named
``<name>-gw0``, ``<name>-gw1``, ..., so each worker may reset its own, all kept or stopped together.

pytest loads this module in every run of every project that installed pacsbox, so it imports nothing heavy at
load time: the lifecycle manager (psutil, filelock) is imported only when a fixture or option needs it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    import requests
    import xnat.session
    from dicomweb_client.api import DICOMwebClient

    from .lifecycle import Instance

ENGINES = ("builtin", "orthanc")
LOG_LINES = 40
LOG_SECTION = "pacsbox server log"
_FIXTURES = frozenset({"pacsbox_server", "pacsbox_clean", "orthanc_client", "xnat_session", "dicomweb_client",
                       "dicom_address"})
INSTALL_HINT = "pip install 'pacsbox[pytest]' (the fixtures' clients: requests, xnat, dicomweb-client)"
DICOMWEB_ROOT = "/dicom-web"  # the DicomWeb.Root default, of pacsbox and of the Orthanc plugin


# -- options ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag (``--pacsbox-<field with dashes>``), its ini key if it has one
    (``pacsbox_<field>``), its default."""

    field: str
    help: str
    default: Any = None
    ini: bool = True
    kind: str = "string"  # "string", "float", "bool" (a flag), "choice" (one of ENGINES)
    negative: tuple[str, str] | None = None  # a second flag (and its help) setting a bool to False
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The ini key, and the attribute of ``config.option``."""
        return f"pacsbox_{self.field}"

    @property
    def flag(self) -> str:
        return "--pacsbox-" + self.field.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("config", "Orthanc-style JSON configuration of the server (comments allowed); an ini value "
           "is relative to the rootdir, a command-line value to the current directory.", metavar="PATH"),
    Option("engine", "builtin (pacsbox, the default) or orthanc (the installed real Orthanc).", "builtin",
           kind="choice"),
    Option("name", "Instance name under $PACSBOX_HOME (default: pytest-<rootdir name>-<hash>, so two "
           "projects never share one).", metavar="NAME"),
    Option("startup_timeout", "Seconds to wait for the server to answer (default 60).", 60.0,
           kind="float", metavar="SECONDS"),
    Option("keep", "Keep the server running after the run, for the next run to reuse (the default).", True,
           kind="bool", negative=("stop", "Stop the server at the end of the run (ini: pacsbox_keep = false).")),
    Option("fresh", "Stop the server and empty its data before the run.", False, ini=False, kind="bool"),
    Option("per_worker", "Under pytest-xdist, one server per worker (<name>-gw0, -gw1, ...) instead of one shared "
           "by all: each worker may empty its own with pacsbox_clean.", False, kind="bool"),
    Option("show", "List the pacsbox instances (as `pacsbox ls`) and exit without running tests.", False,
           ini=False, kind="bool"),
    Option("kill", "Stop this project's pacsbox instance and exit without running tests.", False,
           ini=False, kind="bool"),
)


@dataclass(frozen=True)
class PluginSettings:
    """The resolved options: the command line wins over the ini file, which wins over the defaults."""

    name: str
    config: Path | None
    engine: str
    startup_timeout: float
    keep: bool
    fresh: bool
    per_worker: bool
    show: bool
    kill: bool


_SETTINGS = pytest.StashKey[PluginSettings]()
_INSTANCE = pytest.StashKey["Instance"]()  # set once a fixture of this process has the server
_USED_BY_WORKERS = pytest.StashKey[dict]()  # the controller learns from xdist workers that they used it
_LOG_START = pytest.StashKey[tuple]()  # (log file, its size when the test began)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Register every option of ``OPTIONS``: a flag, and an ini key unless it only makes sense for one run;
    and the pytest-xprocess drop-in (``pacsbox.xprocess``) unless pytest-xprocess itself is in use."""
    from . import xprocess

    xprocess.register(pluginmanager)
    group = parser.getgroup("pacsbox", "pacsbox test servers")
    for option in OPTIONS:
        if option.kind == "bool":
            group.addoption(option.flag, action="store_true", dest=option.dest, default=None,
                            help=option.help)
            if option.negative:
                flag, text = option.negative
                group.addoption(f"--pacsbox-{flag}", action="store_false", dest=option.dest, default=None,
                                help=text)
        else:
            group.addoption(option.flag, dest=option.dest, default=None, help=option.help,
                            choices=ENGINES if option.kind == "choice" else None, metavar=option.metavar,
                            type=float if option.kind == "float" else str)
        if option.ini:
            parser.addini(option.dest, option.help, type="bool" if option.kind == "bool" else "string",
                          default=option.default if option.kind == "bool" else "")


def plugin_settings(config: pytest.Config) -> PluginSettings:
    """The plugin's settings for this run (resolved once, then kept in the config's stash)."""
    if _SETTINGS not in config.stash:
        config.stash[_SETTINGS] = _resolve(config)
    return config.stash[_SETTINGS]


def _resolve(config: pytest.Config) -> PluginSettings:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = config.getoption(option.dest)
        from_ini = value is None and option.ini and config.getini(option.dest) not in ("", None)
        if from_ini:
            value = _parse_ini(option, config.getini(option.dest))
        values[option.field] = option.default if value is None else value
    if values["config"] is not None:
        # an ini path is the project's, relative to its rootdir; a command-line one is the user's, relative to cwd
        base = config.rootpath if config.getoption("pacsbox_config") is None else config.invocation_params.dir
        path = (base / values["config"]).resolve()
        if not path.is_file():
            raise pytest.UsageError(f"pacsbox: the configuration file {path} (--pacsbox-config / pacsbox_config) "
                                    "does not exist")
        values["config"] = path
    values["name"] = values["name"] or default_name(config.rootpath)
    return PluginSettings(**values)


def _parse_ini(option: Option, raw: Any) -> Any:
    if option.kind == "bool":
        return bool(raw)
    text = str(raw).strip()
    if option.kind == "choice" and text not in ENGINES:
        raise pytest.UsageError(f"pacsbox: ini {option.dest} = {text!r}: choose one of {', '.join(ENGINES)}")
    if option.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise pytest.UsageError(f"pacsbox: ini {option.dest} = {text!r} is not a number of seconds") from None
    return text


def default_name(rootdir: Path) -> str:
    """``pytest-<rootdir name>-<hash of its path>``: readable in `pacsbox ls`, distinct per project."""
    digest = hashlib.sha256(str(rootdir.resolve()).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", rootdir.name)[:24].strip("-.") or "root"
    return f"pytest-{slug}-{digest}"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")  # an xdist worker; the controller and plain runs have none


def _worker_count(config: pytest.Config) -> int:
    """How many xdist workers run this session (1 without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput.get("workercount", 1)) if workerinput else 1


def instance_name(config: pytest.Config) -> str:
    """This process's server: the project's, or with ``--pacsbox-per-worker`` the worker's own."""
    chosen = plugin_settings(config)
    workerinput = getattr(config, "workerinput", None)
    if chosen.per_worker and workerinput:
        return f"{chosen.name}-{workerinput['workerid']}"
    return chosen.name


def _all_names(name: str) -> list[str]:
    """The project's instance and its per-worker ones (``<name>-gw<N>``) that exist under $PACSBOX_HOME."""
    from .lifecycle.home import instance_names

    worker = re.compile(re.escape(name) + r"-gw\d+")
    return [found for found in instance_names() if found == name or worker.fullmatch(found)]


# -- run-level hooks ----------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--pacsbox-show`` and ``--pacsbox-kill`` act and end the run before any test is collected."""
    if not (config.getoption("pacsbox_show") or config.getoption("pacsbox_kill")):
        return None
    chosen = plugin_settings(config)
    from .lifecycle import list_instances, stop

    try:
        if chosen.kill:
            names = _all_names(chosen.name) or [chosen.name]
            for name in names:  # the shared server and the per-worker ones alike
                stopped = stop(name)
                print(f"pacsbox: {'stopped' if stopped else 'no running'} instance {name!r}")
        if chosen.show:
            from .cli_lifecycle import _table

            rows = list_instances()
            if rows:
                _table(rows)
            else:
                print("pacsbox: no instances")
            print(f"pacsbox: this project's instance is {chosen.name!r}")
    except ValueError as error:  # an invalid instance name
        raise pytest.UsageError(f"pacsbox: {error}") from None
    return int(pytest.ExitCode.OK)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the options (bad ones fail here, before any test runs) and apply ``--pacsbox-fresh``."""
    chosen = plugin_settings(config)
    if chosen.fresh and not _is_worker(config):
        # Done once, by the controller (or the only process): workers then start the server anew under the
        # ensure lock, so `--pacsbox-fresh -n 4` still starts exactly one.
        import shutil

        from .lifecycle import InstancePaths, stop

        for name in {chosen.name, *_all_names(chosen.name)}:
            stop(name)
            shutil.rmtree(InstancePaths.of(name).default_data_dir, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server when it is not to be kept: after every test, xdist's worker shutdown and a Ctrl-C
    alike; never in a worker, whose siblings may still use it."""
    if _SETTINGS in config.stash and not plugin_settings(config).keep and not _is_worker(config):
        from .lifecycle import stop

        for name in _all_names(plugin_settings(config).name):  # per-worker servers are stopped together
            stop(name)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist: a worker reports through ``workeroutput`` that it used the server."""
    used = getattr(node, "workeroutput", {}).get("pacsbox")
    if used:
        node.config.stash.setdefault(_USED_BY_WORKERS, {})[used["name"]] = used


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line saying that the server keeps running (and how to stop it), or that it will be stopped."""
    instance = config.stash.get(_INSTANCE, None)
    used = config.stash.get(_USED_BY_WORKERS, None) or (
        {instance.name: {"name": instance.name, "pid": instance.pid, "url": instance.url}} if instance else None)
    if not used or _is_worker(config) or config.get_verbosity() < 0:
        return
    chosen = plugin_settings(config)
    for name, record in sorted(used.items()):
        if chosen.keep:
            terminalreporter.write_line(
                f"pacsbox: instance {name!r} (pid {record['pid']}, {record['url']}) keeps running for the next "
                f"run; `pytest --pacsbox-kill` or `pacsbox stop {name}` stops it")
        else:
            terminalreporter.write_line(f"pacsbox: instance {name!r} (pid {record['pid']}) is stopped at the end "
                                        "of the run")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note where the server's log ends as a test that uses it begins (the server may not have started yet)."""
    if not _FIXTURES & set(getattr(item, "fixturenames", ())):
        return
    from .lifecycle import InstancePaths

    try:
        log = InstancePaths.of(instance_name(item.config)).log_file
    except ValueError:  # an invalid name: the fixture says so
        return
    item.stash[_LOG_START] = (log, log.stat().st_size if log.exists() else 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test that used the server gets the server's log lines written during that test."""
    report = yield
    start = item.stash.get(_LOG_START, None)
    if report.failed and start is not None:
        log, offset = start
        lines = _written_since(log, offset)
        if lines:
            shown = lines[-LOG_LINES:]
            cut = f", the last {len(shown)} of {len(lines)}" if len(shown) < len(lines) else ""
            shared = " (a server shared by xdist workers also logs their requests)" if _worker_count(item.config) > 1 \
                and not plugin_settings(item.config).per_worker else ""
            report.sections.append((LOG_SECTION, f"{log} (lines written during this test{cut}){shared}\n"
                                    + "\n".join(shown)))
    return report


def _written_since(log: Path, offset: int) -> list[str]:
    """The log's lines from byte ``offset`` (from the start when it rotated meanwhile)."""
    try:
        with open(log, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(offset if offset <= size else 0)
            return handle.read(4 * 1024 * 1024).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


# -- fixtures -----------------------------------------------------------------------------------------------
from .faults.fixtures import pacsbox_events, pacsbox_faults  # noqa: E402, F401 (fault rules and the event log)


class DicomAddress(NamedTuple):
    """Where DICOM clients reach the server: ``AE(...).associate(host, port, ae_title=aet)``."""

    host: str
    port: int
    aet: str


@pytest.fixture(scope="session")
def pacsbox_server(request: pytest.FixtureRequest) -> Instance:
    """The project's pacsbox server: the running one if its configuration matches, else started detached.

    It outlives the run (unless ``--pacsbox-stop``), so the next run reuses it in milliseconds; xdist workers
    share one. Data persist between tests and runs: use ``pacsbox_clean`` for an empty archive.
    """
    from .lifecycle import InstanceError, ensure

    config = request.config
    chosen = plugin_settings(config)
    name = instance_name(config)
    # one server per worker: free ports each, whatever HttpPort/DicomPort the configuration file names
    ports = {"http_port": 0, "dicom_port": 0} if name != chosen.name else {}
    instance, failure = None, ""
    try:
        instance = ensure(name, chosen.config, engine=chosen.engine, startup_timeout=chosen.startup_timeout, **ports)
    except InstanceError as error:  # says what failed, with the log tail
        failure = str(error)
    except (OSError, ValueError) as error:  # the real Orthanc is missing, an invalid name
        failure = f"pacsbox could not start instance {name!r}: {error}"
    if instance is None:  # failed outside the except clause: the message once, no chained traceback
        pytest.fail(failure, pytrace=False)
    config.stash[_INSTANCE] = instance
    if _is_worker(config):
        config.workeroutput["pacsbox"] = {  # type: ignore[attr-defined]
            "name": instance.name, "pid": instance.pid, "url": instance.url}
    return instance


@pytest.fixture
def pacsbox_clean(pacsbox_server: Instance, request: pytest.FixtureRequest) -> Instance:
    """The server, emptied (index, files, change log) before the test.

    Under xdist with one shared server, emptying it would pull data from under the tests of other workers, so
    the fixture refuses (the test errors, saying so); run with ``--pacsbox-per-worker`` for one server per worker.
    """
    workers = _worker_count(request.config)
    if workers > 1 and not plugin_settings(request.config).per_worker:
        pytest.fail(f"pacsbox_clean would empty the server {pacsbox_server.name!r} that {workers} xdist workers "
                    "share, under the tests of the others: run with --pacsbox-per-worker (ini: pacsbox_per_worker "
                    "= true) for one server per worker, or without -n", pytrace=False)
    pacsbox_server.reset()
    return pacsbox_server


@pytest.fixture
def orthanc_client(pacsbox_server: Instance) -> Iterator[requests.Session]:
    """A ``requests.Session`` on the Orthanc REST API, authenticated; relative URLs start at the server:
    ``orthanc_client.get("/patients").json()``."""
    session = _orthanc_client_class()(pacsbox_server.url, pacsbox_server.auth)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def xnat_session(pacsbox_server: Instance) -> Iterator[xnat.session.XNATSession]:
    """An xnatpy session on the XNAT REST API, logged in; disconnected after the test."""
    xnat = _client("xnat", "the xnat_session fixture needs xnatpy")
    user, password = pacsbox_server.auth
    session = xnat.connect(pacsbox_server.xnat_url, user=user, password=password, loglevel="WARNING")
    try:
        yield session
    finally:
        session.disconnect()


@pytest.fixture
def dicomweb_client(pacsbox_server: Instance) -> Iterator[DICOMwebClient]:
    """A ``dicomweb_client.api.DICOMwebClient`` on the server's DICOMweb root (``<url>/dicom-web``), authenticated
    through its ``requests`` session: ``dicomweb_client.search_for_studies()``."""
    DICOMwebClient = _client("dicomweb_client.api", "the dicomweb_client fixture needs dicomweb-client").DICOMwebClient
    requests = _client("requests", "the dicomweb_client fixture needs requests")

    session = requests.Session()
    session.auth = pacsbox_server.auth
    try:
        yield DICOMwebClient(url=pacsbox_server.url.rstrip("/") + DICOMWEB_ROOT, session=session)
    finally:
        session.close()


@pytest.fixture(scope="session")
def dicom_address(pacsbox_server: Instance) -> DicomAddress:
    """Host, port and AE title of the server's DICOM services."""
    return DicomAddress(pacsbox_server.dicom_host, pacsbox_server.dicom_port, pacsbox_server.aet)


from .pytest_worklists import pacsbox_worklist  # noqa: E402, F401 (a fixture of this plugin)


def _client(module: str, need: str) -> Any:
    """The client module a fixture hands out; missing, the test errors with the install line (asked for by
    name, a missing client is a mistake of the test set-up, not a reason to skip)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pass  # failed outside the except clause: the message alone, no chained traceback
    pytest.fail(f"{need}: {INSTALL_HINT}", pytrace=False)


@functools.cache
def _orthanc_client_class() -> type:
    # built on first use: requests is a test extra, not a dependency of pacsbox
    requests = _client("requests", "the orthanc_client fixture needs requests")

    class OrthancClient(requests.Session):
        """A ``requests.Session`` whose relative URLs are resolved against the server's base URL."""

        def __init__(self, base_url: str, auth: tuple[str, str]) -> None:
            super().__init__()
            self.base_url = base_url.rstrip("/")
            self.auth = auth

        def url(self, path: str) -> str:
            """The absolute URL of ``path`` (absolute URLs are left alone)."""
            return path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
            return super().request(method, self.url(url), *args, **kwargs)

    return OrthancClient
