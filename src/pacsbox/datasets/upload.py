"""Uploading a data set to a running server through one of its faces, as the matching real clients would.

- ``xnat-import``: XNAT's import service with ``Direct-Archive=true`` (what xnat4tests does), one zip per session;
  non-DICOM sessions are created object by object and their files PUT into the resource (xnat4tests' "direct").
- ``xnat-prearchive``: the import service into the prearchive (``dest=/prearchive/projects/P``).
- ``orthanc-rest``: ``POST /instances``, one file per request, as Orthanc's own upload tools do.
- ``c-store``: a DICOM C-STORE SCU (pynetdicom), every file over one association.

Data sets that carry XNAT labels (dummydicom, user-training, simple-dir) pass project/subject/session to the import
service, as xnat4tests does; the others let the import service read them from the DICOM (Patient Comments). The
project is created first when it does not exist, as xnat4tests does: XNAT imports only into existing projects.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from .http import HttpClient, HttpError, path
from .model import METHODS, DataFile, Dataset, Session
from .registry import get

Progress = Callable[[int, int], None]


class Server(Protocol):
    """What an upload needs to know of a server (a running pacsbox, or any Orthanc/XNAT/DICOM peer)."""

    url: str
    auth: tuple[str, str] | None
    aet: str
    dicom_port: int


class UploadError(RuntimeError):
    """The server refused part of the upload; the message says what, and what it answered."""


@dataclass
class UploadSummary:
    """What an upload did: the files and bytes sent, how long it took, and what the server made of them.

    ``created`` holds XNAT session paths (``/data/archive/projects/P/subjects/S/experiments/E`` or
    ``/data/prearchive/projects/P/TS/NAME``), Orthanc study IDs, or Study Instance UIDs for C-STORE;
    ``skipped`` the XNAT sessions that already existed (as xnat4tests, an existing session is left alone).
    ``seconds`` is the whole call, generation (``generate_seconds``) included.
    """

    dataset: str
    method: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    generate_seconds: float = 0.0
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        size = f"{self.bytes / 1e6:.1f} MB" if self.bytes >= 1e6 else f"{self.bytes / 1e3:.1f} kB"
        line = (f"{self.dataset} via {self.method}: {self.files} files, {size} in {self.seconds:.2f} s"
                f" (generated in {self.generate_seconds:.2f} s)")
        if self.created:
            more = f" and {len(self.created) - 1} more" if len(self.created) > 1 else ""
            line += f"; created {self.created[0]}{more}"
        if self.skipped:
            line += f"; skipped {len(self.skipped)} existing session(s): {', '.join(self.skipped[:3])}"
        return line


class _Uploader:
    """One method's upload: ``send`` each session, then ``close``."""

    def __init__(self, server: Server, dataset: Dataset, summary: UploadSummary, tick: Callable[[int], None]):
        self.server, self.dataset, self.summary, self.tick = server, dataset, summary, tick

    def send(self, session: Session) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Xnat(_Uploader):
    """The import service (archive or prearchive), and direct object-by-object uploads of non-DICOM sessions."""

    def __init__(self, *args: Any, archive: bool) -> None:
        super().__init__(*args)
        self.archive = archive
        self.http = HttpClient(self.server.url, self.server.auth)
        self.projects: set[str] = set()

    def close(self) -> None:
        self.http.close()

    def _ensure_project(self, project: str) -> None:
        if project in self.projects:
            return
        if self.http.status(path("data", "projects", project), {"format": "json"}) == 404:
            self.http.request("PUT", path("data", "archive", "projects", project))
        self.projects.add(project)

    def _exists(self, session: Session) -> bool:
        return self.http.status(path("data", "projects", session.project, "subjects", session.subject,
                                     "experiments", session.label), {"format": "json"}) == 200

    def send(self, session: Session) -> None:
        self._ensure_project(session.project)
        if self.archive and self._exists(session):
            self.summary.skipped.append(f"{session.project}/{session.subject}/{session.label}")
            self.tick(len(session.files))
            return
        if session.is_dicom:
            self._import(session)
        else:
            self._direct(session)

    def _import(self, session: Session) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # pixel data barely deflates
            for item in session.files:
                archive.writestr(zipfile.ZipInfo(item.path, (1980, 1, 1, 0, 0, 0)), item.data)
        query = {"import-handler": "DICOM-zip", "overwrite": "none"}
        if self.archive:
            query.update({"dest": "/archive", "Direct-Archive": "true"})
        else:
            query["dest"] = f"/prearchive/projects/{session.project}"
        if self.dataset.explicit_labels:
            query.update({"project": session.project, "subject": session.subject, "session": session.label})
        try:
            answer = self.http.request("POST", "/data/services/import", query=query, body=buffer.getvalue(),
                                       content_type="application/zip")
        except HttpError as error:
            raise UploadError(f"XNAT's import service refused session {session.label}: {error}") from None
        self.summary.created += [line for line in answer.decode().splitlines() if line.strip()]
        self.tick(len(session.files))

    def _direct(self, session: Session) -> None:
        """Project, subject, MR session, scan, resource, then each file, as xnatpy's objects make them."""
        subject = path("data", "archive", "projects", session.project, "subjects", session.subject)
        subject_id = self.http.request("PUT", subject, query={"xsiType": "xnat:subjectData"}).decode().strip()
        experiment = subject + path("experiments", session.label)
        experiment_id = self.http.request("PUT", experiment,
                                          query={"xsiType": "xnat:mrSessionData"}).decode().strip()
        scan = experiment + path("scans", session.scan)
        self.http.request("PUT", scan, query={"xsiType": "xnat:mrScanData", "xnat:mrScanData/type": session.scan_type})
        resource = scan + path("resources", session.resource)
        self.http.request("PUT", resource)
        for item in session.files:
            target = resource + "/files" + path(*session.resource_path(item).split("/"))
            self.http.request("PUT", target, query={"inbody": "true"}, body=item.data)
            self.tick(1)
        self.summary.created.append(f"/data/archive/projects/{session.project}/subjects/{subject_id or session.subject}"
                                    f"/experiments/{experiment_id or session.label}")


class _OrthancRest(_Uploader):
    """``POST /instances``, one file per request over one connection."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.http = HttpClient(self.server.url, self.server.auth)

    def close(self) -> None:
        self.http.close()

    def send(self, session: Session) -> None:
        import json

        for item in session.files:
            try:
                answer = json.loads(self.http.request("POST", "/instances", body=item.data,
                                                      content_type="application/dicom"))
            except HttpError as error:
                raise UploadError(f"POST /instances refused {item.path}: {error}") from None
            study = answer.get("ParentStudy", "")
            if study and study not in self.summary.created:
                self.summary.created.append(study)
            self.tick(1)


class _CStore(_Uploader):
    """A C-STORE SCU: one association proposing each (SOP class, transfer syntax) pair the files use."""

    def __init__(self, *args: Any, sessions: list[Session]) -> None:
        super().__init__(*args)
        from pydicom import dcmread

        self.assoc = None
        self.pairs: set[tuple[str, str]] = set()
        for session in sessions:
            for item in session.files:
                meta = dcmread(io.BytesIO(item.data), stop_before_pixels=True, specific_tags=["SOPClassUID"])
                self.pairs.add((str(meta.file_meta.MediaStorageSOPClassUID), str(meta.file_meta.TransferSyntaxUID)))
        if len(self.pairs) > 128:  # PS3.8 9.3.2.2: at most 128 presentation contexts per association
            raise UploadError(f"{len(self.pairs)} SOP class/transfer syntax pairs need more than one association")

    def _associate(self) -> Any:
        from ..faces.dimse.network import NoDelayAE  # (pynetdicom loads with it)

        ae = NoDelayAE(ae_title="PACSBOX_DATA")
        for sop_class, syntax in sorted(self.pairs):
            ae.add_requested_context(sop_class, syntax)
        # a lifecycle Instance says where its DICOM port listens; otherwise it is the HTTP host
        host = getattr(self.server, "dicom_host", None) or urlsplit(self.server.url).hostname or "127.0.0.1"
        assoc = ae.associate(host, int(self.server.dicom_port), ae_title=self.server.aet)
        if not assoc.is_established:
            raise UploadError(f"No DICOM association with {self.server.aet} at {host}:{self.server.dicom_port}"
                              " (rejected, aborted or nothing listening): check the AET and the DICOM port")
        return assoc

    def send(self, session: Session) -> None:
        from ..faces.dimse.network import held_reactor

        if self.assoc is None:
            self.assoc = self._associate()
        with held_reactor(self.assoc):  # one association, many C-STOREs: pynetdicom's race (see held_reactor)
            for item in session.files:
                self._store(item)

    def _store(self, item: DataFile) -> None:
        from pydicom import dcmread

        ds = dcmread(io.BytesIO(item.data))
        status = self.assoc.send_c_store(ds)
        code = getattr(status, "Status", None)
        if code is None:
            state = "aborted" if self.assoc.is_aborted else "released" if self.assoc.is_released else "timed out"
            raise UploadError(f"C-STORE of {item.path} got no answer: the association {state}")
        if code not in (0x0000, 0xB000, 0xB006, 0xB007):  # success or warning (PS3.4 B.2.3)
            raise UploadError(f"C-STORE of {item.path} failed with status 0x{code:04X}")
        if ds.StudyInstanceUID not in self.summary.created:
            self.summary.created.append(str(ds.StudyInstanceUID))
        self.tick(1)

    def close(self) -> None:
        if self.assoc is not None:
            self.assoc.release()
            self.assoc = None


def add_data(name: str, server: Server, *, method: str = "xnat-import", seed: int = 0, size: str = "small",
             progress: Progress | None = None, generated: Progress | None = None, **options: Any) -> UploadSummary:
    """Generate data set ``name`` and upload it to ``server`` through the face ``method`` names.

    ``server`` has ``url`` (the HTTP base URL; the XNAT face is under ``url + "/data"``), ``auth`` (``(user,
    password)`` or None), ``aet`` and ``dicom_port`` (the DICOM host is ``url``'s). ``progress(done, total)`` is
    called as files are sent, ``generated(files, 0)`` as each session is generated (before any is sent).
    Raises ``ValueError`` for an unknown method or a data set the method cannot carry,
    :class:`UploadError` when the server refuses something.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    dataset = get(name)
    if not dataset.dicom and method != "xnat-import":
        raise ValueError(f"Data set {name!r} holds no DICOM: only XNAT can take it, with method 'xnat-import'"
                         f" (it creates the sessions and uploads the files into their resources), not {method!r}")
    started = time.perf_counter()
    sessions = []
    for session in dataset.build(dataset.resolve(seed, size, **options)):
        sessions.append(session)
        if generated is not None:
            generated(sum(len(item.files) for item in sessions), 0)
    generated_at = time.perf_counter()
    total = sum(len(session.files) for session in sessions)
    summary = UploadSummary(name, method, total, sum(len(f.data) for s in sessions for f in s.files),
                            generate_seconds=generated_at - started)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    arguments = (server, dataset, summary, tick)
    uploader: _Uploader
    if method in ("xnat-import", "xnat-prearchive"):
        uploader = _Xnat(*arguments, archive=method == "xnat-import")
    elif method == "orthanc-rest":
        uploader = _OrthancRest(*arguments)
    else:
        uploader = _CStore(*arguments, sessions=sessions)
    try:
        for session in sessions:
            uploader.send(session)
    except HttpError as error:
        raise UploadError(f"Uploading {name!r} through {method}: {error}") from None
    except OSError as error:  # refused, reset, unreachable: say where we tried to go
        raise UploadError(f"Uploading {name!r} through {method}: cannot reach {server.url}: {error}") from None
    finally:
        uploader.close()
    summary.seconds = time.perf_counter() - started
    return summary
