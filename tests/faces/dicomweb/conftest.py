"""Fixtures of the DICOMweb face tests: a pacsbox server and the real Orthanc with its DICOMweb plugin, both
holding the standard corpus, and a real ``dicomweb-client`` on pacsbox."""

from __future__ import annotations

import json

import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.support.orthanc_ref import ReferenceOrthanc, have_dicomweb_plugin
from tests.support.pacsbox_proc import RunningPacsbox

PLUGIN_MISSING = ("needs the real Orthanc and its DICOMweb plugin: run `bash scripts/install-test-deps.sh` "
                  "(installs Debian's orthanc, orthanc-dicomweb and dcmtk)")


def client_for(url: str, auth: tuple[str, str] | None) -> DICOMwebClient:
    """A dicomweb-client on a server's DICOMweb root, authenticated through its requests session."""
    session = requests.Session()
    session.auth = auth
    return DICOMwebClient(url=url, session=session)


@pytest.fixture(scope="session")
def loaded_pacsbox(corpus):
    """A pacsbox server holding the standard corpus (stored through the Orthanc face); tests only read it."""
    with RunningPacsbox() as server:
        session = server.session()
        for _, data in corpus:
            session.post(server.url + "/instances", data=data).raise_for_status()
        yield server


@pytest.fixture(scope="module")
def dicomweb_reference(corpus):
    """The real Orthanc with the DICOMweb plugin, holding the standard corpus."""
    if not have_dicomweb_plugin():
        pytest.skip(PLUGIN_MISSING)
    with ReferenceOrthanc(dicomweb=True, graceful_stop=False) as reference:
        for _, data in corpus:
            reference.upload(data)
        yield reference


@pytest.fixture(scope="session")
def client(loaded_pacsbox) -> DICOMwebClient:
    return client_for(loaded_pacsbox.url + "/dicom-web", loaded_pacsbox.auth)


def sorted_answers(answers: list[dict], base_url: str) -> list[dict]:
    """QIDO answers in a fixed order (PS3.18 leaves it open), the server's own URL replaced by BASE."""
    answers = json.loads(json.dumps(answers).replace(base_url, "BASE"))
    return sorted(answers, key=lambda answer: json.dumps(answer.get("00081190"), sort_keys=True))
