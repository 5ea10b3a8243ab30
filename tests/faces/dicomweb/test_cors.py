"""DicomWeb.Cors: off by default; preflights answered before authentication; Allow-Origin only for allowed
origins, on every answer of the face (401s included)."""

from __future__ import annotations

import pytest
import requests

from pacsbox.core.config import config_from_mapping
from pacsbox.faces.dicomweb.app import DicomWebSettings
from tests.support.pacsbox_proc import RunningPacsbox

VIEWER = "http://viewer.example:3000"
PREFLIGHT = {"Origin": VIEWER, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization, accept"}


@pytest.fixture(scope="module")
def cors_server():
    with RunningPacsbox({"DicomWeb": {"Cors": {"AllowedOrigins": [VIEWER + "/"], "MaxAge": 120}}}) as server:
        yield server


def test_off_by_default(loaded_pacsbox):
    studies = loaded_pacsbox.url + "/dicom-web/studies"
    answer = loaded_pacsbox.session().get(studies, headers={"Origin": VIEWER})
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    preflight = requests.options(studies, headers=PREFLIGHT)
    assert preflight.status_code in (401, 405) and "Access-Control-Allow-Origin" not in preflight.headers


def test_preflight_needs_no_credentials(cors_server):
    preflight = requests.options(cors_server.url + "/dicom-web/studies", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == VIEWER
    assert {"GET", "POST"} <= set(preflight.headers["Access-Control-Allow-Methods"].replace(" ", "").split(","))
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert preflight.headers["Access-Control-Max-Age"] == "120"


def test_real_answers_carry_the_origin_for_allowed_origins_only(cors_server):
    studies = cors_server.url + "/dicom-web/studies"
    session = cors_server.session()
    allowed = session.get(studies, headers={"Origin": VIEWER})
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == VIEWER
    assert "Content-Location" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Content-Type" in allowed.headers["Access-Control-Expose-Headers"]
    # a 401 carries it too, so the viewer can tell the user to log in
    refused = requests.get(studies, headers={"Origin": VIEWER})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == VIEWER
    other = session.get(studies, headers={"Origin": "http://evil.example"})
    assert other.status_code == 200 and not [name for name in other.headers if name.lower().startswith("access-")]
    bad_preflight = requests.options(studies, headers={**PREFLIGHT, "Origin": "http://evil.example"})
    assert bad_preflight.status_code == 400 and "Access-Control-Allow-Origin" not in bad_preflight.headers
    # the Orthanc face is not concerned
    assert "Access-Control-Allow-Origin" not in session.get(cors_server.url + "/system",
                                                            headers={"Origin": VIEWER}).headers


def test_any_origin_with_credentials_echoes_the_origin():
    with RunningPacsbox({"DicomWeb": {"Cors": {"AllowedOrigins": "*", "AllowCredentials": True}}}) as server:
        answer = server.session().get(server.url + "/dicom-web/studies", headers={"Origin": VIEWER})
        assert answer.headers["Access-Control-Allow-Origin"] == VIEWER  # never "*" with credentials
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        preflight = requests.options(server.url + "/dicom-web/studies", headers=PREFLIGHT)
        assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == VIEWER


@pytest.mark.parametrize("section", [["*"], {"AllowedOrigins": 3}, {"AllowedOrigins": [""]},
                                     {"AllowedOrigins": "*", "AllowCredentials": "yes"},
                                     {"AllowedOrigins": "*", "MaxAge": -1}])
def test_bad_sections_are_refused(section):
    with pytest.raises(ValueError, match=r"DicomWeb\.Cors"):
        DicomWebSettings.from_config(config_from_mapping({"DicomWeb": {"Cors": section}}))
