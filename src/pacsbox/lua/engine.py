"""The Lua engine of one server: two Lua states, the callbacks Orthanc 1.10.1 calls, and where it calls them.

As in Orthanc 1.10.1 (measured against it):

* The **main state** loads the LuaScripts files (in order: a later definition replaces an earlier one) and runs
  ``POST /tools/execute-script``, ``Initialize`` (once the server is up), ``Finalize`` (at stop), ``OnHeartBeat``
  (every LuaHeartBeatPeriod seconds), ``OnStoredInstance``, ``OnStablePatient/Study/Series`` and
  ``OnJobSubmitted/Success/Failure`` (the jobs engine's events).
* The **filter state** loads the same files and nothing else: ``ReceivedInstanceFilter``,
  ``IncomingHttpRequestFilter``, ``IncomingFindRequestFilter`` and ``OutgoingFindRequestFilter`` run there, so a
  filter defined through execute-script is never called.
* Callbacks of the main state run on a thread of their own, one at a time, after the archive committed the change
  (the archive's after-commit events, ``core.events``); filters run on the thread that asks, before storing.
* Each state runs one script at a time (a lock per state) within the limits of ``state.Limits``.
* A script's error is logged with its line; a callback's error never reaches the archive; a filter's error fails
  the upload that asked (Orthanc answers it with the Lua error).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from ..core.archive import Archive
from ..core.config import Config
from ..core.dicom import ENCODINGS, ParsedInstance
from ..core.dicom_json import render_tags
from ..core.errors import ArchiveError, ScriptError
from ..core.events import (
    ArchiveClosing,
    InstanceStored,
    JobFailure,
    JobSubmitted,
    JobSuccess,
    Origin,
    ResourceStable,
)
from ..core.ids import Level
from .bridge import RestApi
from .functions import define_functions
from .state import Limits, LuaState

if TYPE_CHECKING:  # pydicom loads on first use, not with the server (cold start)
    from pydicom.dataset import Dataset

log = logging.getLogger("pacsbox.lua")

_JOB_CALLBACKS = {JobSubmitted: "OnJobSubmitted", JobSuccess: "OnJobSuccess", JobFailure: "OnJobFailure"}
_STABLE_CALLBACKS = {Level.PATIENT: "OnStablePatient", Level.STUDY: "OnStableStudy", Level.SERIES: "OnStableSeries"}


class PendingJobs:
    """Operations a callback asked for (Delete, SendToModality, SendToPeer), run once it returns."""

    def __init__(self) -> None:
        self._local = threading.local()

    def active(self) -> bool:
        return getattr(self._local, "operations", None) is not None

    def add(self, operation: dict[str, Any]) -> None:
        self._local.operations.append(operation)

    def begin(self) -> None:
        self._local.operations = []

    def take(self) -> list[dict[str, Any]]:
        operations, self._local.operations = self._local.operations or [], None
        return operations


def lua_origin(origin: Origin) -> dict[str, str]:
    """The ``origin`` table of ReceivedInstanceFilter and OnStoredInstance, with Orthanc's keys."""
    table = {"RequestOrigin": origin.kind}
    if origin.kind == "DicomProtocol":
        table.update(CalledAet=origin.called_aet, RemoteAet=origin.remote_aet, RemoteIp=origin.remote_ip)
    elif origin.kind == "RestApi":
        table.update(RemoteIp=origin.remote_ip, Username=origin.http_username)
    return table


class LuaEngine:
    """Lua scripting for one archive; ``start`` once the REST application is bound, ``close`` at stop."""

    def __init__(self, archive: Archive, config: Config) -> None:
        self.archive = archive
        self.config = config
        self.limits = Limits(seconds=float(config.LuaMaximumExecutionTime),
                             output_bytes=config.LuaMaximumOutputSize, memory_bytes=config.LuaMaximumMemory,
                             system_calls=config.LuaSystemCallsAllowed, file_writes=config.LuaFileWritesAllowed)
        self.rest = RestApi(timeout=self.limits.seconds)
        self.jobs = PendingJobs()
        # The states (and lupa) exist only for a server that runs Lua: made here for LuaScripts, whose definitions
        # must be in place before anything is received; else the main state is made by the first script run
        # (execute-script), and the filter state never is (only LuaScripts can define a filter).
        self._states_lock = threading.Lock()
        self._main: LuaState | None = None
        self.filters: LuaState | None = None
        if config.LuaScripts:
            self._main, self.filters = self._new_state("main"), self._new_state("filters")
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False
        for path in config.LuaScripts:
            self._load(Path(path))
        self._filters_http = self._filter_defined("IncomingHttpRequestFilter")

    def _new_state(self, name: str) -> LuaState:
        state = LuaState(name, self.limits)
        define_functions(state, self.config, self.rest, self.jobs)
        return state

    @property
    def main(self) -> LuaState:
        """The main state: made on first use when no LuaScripts made it at start."""
        if self._main is None:
            with self._states_lock:
                if self._main is None:
                    self._main = self._new_state("main")
        return self._main

    def _filter_defined(self, name: str) -> bool:
        return self.filters is not None and self.filters.has_function(name)

    def _callback_defined(self, name: str) -> bool:
        """Whether the main state defines a callback; none can be before a state exists (no Lua ran yet)."""
        return self._main is not None and self._main.has_function(name)

    def _load(self, path: Path) -> None:
        try:
            source = path.read_bytes()
        except OSError as error:
            raise ValueError(f"LuaScripts: cannot read {path}: {error.strerror}") from None
        for state in (self.main, self.filters):
            try:
                state.execute(source)
            except ScriptError as error:
                raise ValueError(f"LuaScripts: {path}: {error.details}") from None

    # -- life ---------------------------------------------------------------------------------------------
    def bind_rest_api(self, app: ASGIApp) -> None:
        """The application RestApiGet/Post/Put/Delete reach (the Orthanc face, before authentication)."""
        self.rest.app = app

    def start(self) -> None:
        """Subscribe to the archive, start the callback thread, run Initialize, start the heartbeat."""
        events = self.archive.events
        if self._filter_defined("ReceivedInstanceFilter"):
            self._unsubscribe.append(events.add_store_filter(self._accepts))
        if self._filter_defined("IncomingFindRequestFilter"):
            self._unsubscribe.append(events.add_find_filter(self._filter_find))
        if self._filter_defined("OutgoingFindRequestFilter"):
            self._unsubscribe.append(events.add_outgoing_find_filter(self._filter_outgoing_find))
        if self._filter_defined("IncomingWorklistRequestFilter"):
            self._unsubscribe.append(events.add_worklist_filter(self._filter_worklist))
        self._unsubscribe.append(events.subscribe(ArchiveClosing, lambda event: self.close()))
        if not (self.config.LuaScripts or self.config.ExecuteLuaEnabled):
            return  # no callback can ever be defined: no thread to run them, no heartbeat to call
        self._unsubscribe += [events.subscribe(InstanceStored, self._on_stored),
                              events.subscribe(ResourceStable, self._on_stable)]
        self._unsubscribe += [events.subscribe(event, self._on_job) for event in _JOB_CALLBACKS]
        worker = threading.Thread(target=self._work, name="pacsbox-lua", daemon=True)
        worker.start()
        self._threads.append(worker)
        self._run_callback("Initialize")
        if self.config.LuaHeartBeatPeriod > 0:
            beat = threading.Thread(target=self._beat, name="pacsbox-lua-heartbeat", daemon=True)
            beat.start()
            self._threads.append(beat)

    def close(self) -> None:
        """Run the queued callbacks, then Finalize; stop the threads. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._stop.set()
        self._tasks.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self.limits.seconds + 5)
        self._run_callback("Finalize")

    # -- execute-script -----------------------------------------------------------------------------------
    def execute(self, code: bytes) -> str:
        """Run a script in the main state; what it printed. ScriptError when it fails."""
        return self.main.execute(code, capture=True)

    # -- filters ------------------------------------------------------------------------------------------
    def _accepts(self, parsed: ParsedInstance, origin: Origin) -> bool:
        tags = render_tags(parsed.dataset, "simplify")
        info = {"HasPixelData": 0x7FE00010 in parsed.dataset, "TransferSyntaxUID": parsed.transfer_syntax_uid}
        result = self.filters.call("ReceivedInstanceFilter", tags, lua_origin(origin), info)
        return _is_true(result)

    def _filter_find(self, identifier: Dataset, origin: Origin) -> Dataset:
        """IncomingFindRequestFilter(query, origin): the query as Orthanc gives it (``{"0010,0020": "*"}``, every
        element but sequences) and the table it returns as the new query (elements it dropped are dropped)."""
        query = find_query_json(identifier)
        modalities = self.archive.modalities.by_aet(origin.remote_aet)
        table = {"CalledAet": origin.called_aet, "RemoteAet": origin.remote_aet, "RemoteIp": origin.remote_ip,
                 "Manufacturer": modalities[0].manufacturer if modalities else "Generic"}
        result = self.filters.call("IncomingFindRequestFilter", query, table)
        returned = self.filters.convert.to_python(result, keep_strings=True) if result is not None else {}
        if not isinstance(returned, dict):
            raise ScriptError("IncomingFindRequestFilter must return a table of tags")
        return find_query_dataset(identifier, returned)

    def _filter_worklist(self, identifier: Dataset, origin: Origin) -> Dataset:
        """IncomingWorklistRequestFilter(query, origin): the query in Orthanc's short JSON (``{"0010,0020": "*",
        "0040,0100": [{...}]}``, sequences included) and the origin as IncomingFindRequestFilter gets it; the table
        it returns is the new query (built as /tools/create-dicom builds tags)."""
        from pydicom.dataset import Dataset

        from ..core.worklists import item_from_json

        encoding = self.archive.settings.default_encoding
        query = render_tags(identifier, "short", encoding)
        modalities = self.archive.modalities.by_aet(origin.remote_aet)
        table = {"CalledAet": origin.called_aet, "RemoteAet": origin.remote_aet, "RemoteIp": origin.remote_ip,
                 "Manufacturer": modalities[0].manufacturer if modalities else "Generic"}
        result = self.filters.call("IncomingWorklistRequestFilter", query, table)
        returned = self.filters.convert.to_python(result, keep_strings=True) if result is not None else {}
        if not isinstance(returned, dict):
            raise ScriptError("IncomingWorklistRequestFilter must return a table of tags")
        if not returned:
            return Dataset()
        charset = identifier.get("SpecificCharacterSet") or ENCODINGS.get(encoding, "ISO_IR 100")
        return item_from_json(returned, default_charset=charset if isinstance(charset, str) else charset[0])

    def _filter_outgoing_find(self, query: dict[int, str], aet: str) -> dict[int, str]:
        """OutgoingFindRequestFilter(query, aet): the query as the client gave it (``{"0010,0020": "X"}``), the
        modality's AET; the table it returns is the query sent."""
        table = {f"{tag >> 16:04x},{tag & 0xFFFF:04x}": text for tag, text in query.items()}
        result = self.filters.call("OutgoingFindRequestFilter", table, aet)
        returned = self.filters.convert.to_python(result, keep_strings=True) if result is not None else {}
        if not isinstance(returned, dict):
            raise ScriptError("OutgoingFindRequestFilter must return a table of tags")
        return {_tag_of(key, "OutgoingFindRequestFilter"): "" if value is None else str(value)
                for key, value in returned.items()}

    @property
    def filters_http(self) -> bool:
        """Whether the LuaScripts define IncomingHttpRequestFilter (read once: the filter state runs nothing else)."""
        return self._filters_http

    def http_allowed(self, method: str, uri: str, ip: str, username: str, headers: Mapping[str, str]) -> bool:
        """IncomingHttpRequestFilter: False refuses the request (403). ScriptError when the filter fails."""
        result = self.filters.call("IncomingHttpRequestFilter", method, uri, ip, username, dict(headers))
        return _is_true(result)

    # -- callbacks ----------------------------------------------------------------------------------------
    # Listeners only queue: lupa locks a runtime for every access, so asking the main state anything from the
    # archive's threads would wait for whatever script runs there (which may itself wait for the archive).
    def _on_stored(self, event: InstanceStored) -> None:
        self._queue(lambda: self._stored_instance(event))

    def _stored_instance(self, event: InstanceStored) -> None:
        if not self._callback_defined("OnStoredInstance"):
            return
        try:
            tags = render_tags(self.archive.instance_dataset(event.instance_id), "simplify")
            metadata = self.archive.metadata(Level.INSTANCE, event.instance_id)
        except ArchiveError:
            return  # deleted since it was stored: Orthanc skips it too
        self._run_callback("OnStoredInstance", event.instance_id, tags, metadata, lua_origin(event.origin))

    def _on_stable(self, event: ResourceStable) -> None:
        name = _STABLE_CALLBACKS.get(event.level)
        if name is not None:
            self._queue(lambda: self._stable(name, event))

    def _stable(self, name: str, event: ResourceStable) -> None:
        if not self._callback_defined(name):
            return
        try:
            row = self.archive.resource(event.level, event.public_id)
            metadata = self.archive.metadata(event.level, event.public_id)
        except ArchiveError:
            return
        self._run_callback(name, event.public_id, dict(row.main_tags), metadata)

    def _on_job(self, event: JobSubmitted | JobSuccess | JobFailure) -> None:
        """OnJobSubmitted, OnJobSuccess, OnJobFailure with the job's ID, as Orthanc calls them."""
        name = _JOB_CALLBACKS[type(event)]
        self._queue(lambda: self._job_callback(name, event.job_id))

    def _job_callback(self, name: str, job_id: str) -> None:
        if self._callback_defined(name):
            self._run_callback(name, job_id)

    def _queue(self, task: Callable[[], None]) -> None:
        try:
            self._tasks.put_nowait(task)
        except queue.Full:
            log.error("Lua: too many callbacks waiting; one was dropped")

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                task()
            except Exception:  # a callback never stops the thread that runs the next ones
                log.exception("Lua callback failed")

    def _beat(self) -> None:
        while not self._stop.wait(self.config.LuaHeartBeatPeriod):
            self._queue(lambda: self._run_callback("OnHeartBeat"))

    def _run_callback(self, name: str, *args: Any) -> None:
        """Call a main-state callback, then run the jobs it asked for; errors are logged with their line."""
        if self._main is None:  # no Lua ran yet: nothing is defined
            return
        self.jobs.begin()
        try:
            self.main.call(name, *args)
        except ScriptError as error:
            log.error("Lua error in %s: %s", name, error.details)
            self.jobs.take()  # a failed callback submits no job, as in Orthanc
            return
        for operation in self.jobs.take():
            self._run_job(operation)

    def _run_job(self, operation: dict[str, Any]) -> None:
        kind, resource = operation["operation"], operation["resource"]
        try:
            if kind == "delete":
                level = self.archive.level_of(resource)
                self.archive.delete(level, resource)
                return
            if kind == "store":
                body: dict[str, Any] = {"Resources": [resource], "Synchronous": True}
                if operation.get("local_aet"):
                    body["LocalAet"] = operation["local_aet"]
                answer = self.rest.call("POST", f"/modalities/{operation['modality']}/store", json.dumps(body).encode())
            else:
                answer = self.rest.call("POST", f"/peers/{operation['peer']}/store",
                                        json.dumps({"Resources": [resource], "Synchronous": True}).encode())
            if not answer.ok:
                log.error("Lua job %s of %s failed: HTTP %d %s", kind, resource, answer.status, answer.body[:500])
        except ArchiveError as error:
            log.error("Lua job %s of %s failed: %s", kind, resource, error.details or error)


def find_query_json(identifier: Dataset) -> dict[str, str]:
    """A C-FIND identifier as Orthanc hands it to Lua: ``gggg,eeee`` to text, sequences left out."""
    query = {}
    for element in identifier:
        if element.VR != "SQ":
            value = element.value
            if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                text = "\\".join(str(v) for v in value)
            else:
                text = "" if value is None else str(value)
            query[f"{element.tag.group:04x},{element.tag.element:04x}"] = text
    return query


def find_query_dataset(identifier: Dataset, query: Mapping[str, Any]) -> Dataset:
    """The identifier rewritten to ``query``: its sequences kept, other elements as the table says."""
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset

    rewritten = Dataset()
    for element in identifier:
        if element.VR == "SQ":
            rewritten.add(element)
    for key, value in query.items():
        tag = _tag_of(key, "IncomingFindRequestFilter")
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = identifier[tag].VR if tag in identifier else "LO"
        text = "" if value is None else str(value)
        rewritten.add_new(tag, vr, text.split("\\") if "\\" in text else text)
    return rewritten


def _tag_of(key: Any, callback: str) -> int:
    text = str(key).replace(",", "")
    if len(text) != 8:
        raise ScriptError(f"{callback} returned a bad tag: {key!r}")
    try:
        return int(text, 16)
    except ValueError:
        raise ScriptError(f"{callback} returned a bad tag: {key!r}") from None


def _is_true(value: Any) -> bool:
    """Lua truth (only nil and false are false); Orthanc's filters expect a boolean."""
    return value is not None and value is not False
