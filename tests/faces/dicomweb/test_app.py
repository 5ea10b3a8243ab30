"""The face's mounting and the DicomWeb configuration section (Enable, Root, EnableWado, WadoRoot), unknown routes,
wrong methods and hostile parameters."""

from __future__ import annotations

import pytest
import requests

from pacsbox.core.config import config_from_mapping
from tests.support.pacsbox_proc import RunningPacsbox


def test_custom_roots_and_disabled_wado():
    config = {"DicomWeb": {"Root": "/dw/", "EnableWado": False}}
    with RunningPacsbox(config) as server:
        session = server.session()
        assert session.get(server.url + "/dw/studies").json() == []
        assert session.get(server.url + "/dicom-web/studies").status_code == 404  # the Orthanc face's unknown URI
        assert session.get(server.url + "/wado?requestType=WADO&objectUID=1.2").json()["Message"] == (
            "Unknown resource")
        assert session.get(server.url + "/system").status_code == 200


def test_disabled_face():
    with RunningPacsbox({"DicomWeb": {"Enable": False}}) as server:
        answer = server.session().get(server.url + "/dicom-web/studies")
        assert answer.status_code == 404 and answer.json()["Uri"] == "/dicom-web/studies"


def test_bad_section_is_refused():
    with pytest.raises(ValueError, match="DicomWeb: expected an object"):
        config_from_mapping({"DicomWeb": ["Enable"]})


def test_unknown_routes_wrong_methods_and_hostile_parameters(loaded_pacsbox):
    session = loaded_pacsbox.session()
    base = loaded_pacsbox.url + "/dicom-web"
    unknown = session.get(base + "/patients")
    assert unknown.status_code == 404 and unknown.json()["Message"] == "Unknown resource"
    wrong = session.delete(base + "/studies")
    assert wrong.status_code == 405 and set(wrong.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert session.get(base + "/studies?limit=" + "9" * 40).status_code == 200
    assert session.get(base + "/studies?" + "&".join(f"includefield={n:08X}" for n in range(1000))).status_code == 200
    # a target past HttpMaximumUrlLength (32 KiB) is refused before routing
    assert session.get(base + "/studies?" + "&".join(f"includefield={n:08X}" for n in range(2000))).status_code == 414
    # a wildcard past MaximumFindPatternLength is refused before the index sees it, as /tools/find and C-FIND
    too_costly = session.get(base + "/studies?PatientName=" + "*" * 5000)
    assert too_costly.status_code == 400 and "MaximumFindPatternLength" in too_costly.json().get("Details", "")
    assert session.get(base + "/studies?PatientName=" + "*" * 1000).status_code == 200
    assert session.get(base + "/studies?StudyDate=2023-2022-").status_code in (200, 400)
    frames = session.get(base + "/studies/1/series/2/instances/3/frames/" + ",".join(["1"] * 1000))
    assert frames.status_code == 404
    accept = session.get(base + "/studies/1.2", headers={"Accept": "multipart/related; " * 500})
    assert accept.status_code in (404, 406)
    assert requests.get(base + "/studies", auth=("admin", "admin")).status_code == 200  # still serving
