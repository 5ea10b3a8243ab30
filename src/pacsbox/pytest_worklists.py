"""The ``pacsbox_worklist`` fixture of the pytest plugin: modality worklist items a test creates on the server's
worklist SCP, removed after the test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .lifecycle import Instance


@pytest.fixture
def pacsbox_worklist(pacsbox_server: Instance) -> Iterator[Callable[..., str]]:
    """A factory of worklist items: ``pacsbox_worklist({"PatientName": "Doe^John", "PatientID": "P1",
    "ScheduledProcedureStepSequence": [{"Modality": "CT", "ScheduledStationAETitle": "CT1"}]})`` returns the new
    item's ID; the item is served at once by the server's Modality Worklist C-FIND SCP (``dicom_address``), and
    removed after the test. Takes Orthanc's simplified JSON (keywords or ``gggg,eeee``, sequences as lists of
    objects), DICOM JSON, or the bytes of a ``.wl`` file; ``item_id=`` names the item."""
    requests = pytest.importorskip("requests", reason="the pacsbox_worklist fixture needs requests: "
                                                      "pip install requests")
    session = requests.Session()
    session.auth = pacsbox_server.auth
    base = pacsbox_server.url.rstrip("/") + "/pacsbox/worklists"
    created: list[str] = []

    def create(item: dict[str, Any] | bytes, item_id: str | None = None) -> str:
        data = item if isinstance(item, bytes) else json.dumps(item).encode()
        answer = session.post(base, data=data, params={"id": item_id} if item_id else None, timeout=30)
        if answer.status_code == 404:
            pytest.fail("pacsbox_worklist needs a pacsbox server (the real Orthanc engine has no "
                        "/pacsbox/worklists)", pytrace=False)
        if answer.status_code >= 400:
            raise ValueError(f"the worklist item was refused: HTTP {answer.status_code} {answer.text[:500]}")
        created.append(answer.json()["ID"])
        return created[-1]

    try:
        yield create
    finally:
        for item_id in created:
            session.delete(f"{base}/{item_id}", timeout=30)
        session.close()
