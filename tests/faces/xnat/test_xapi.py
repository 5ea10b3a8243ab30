"""XAPI routes clients probe, through the real clients: the site configuration (read and set, administrators
only), plugins, the container service of an XNAT without Docker (empty, well-formed), scanners and scan types,
and pyxnat's prearchive reset and delete (form bodies)."""

from __future__ import annotations

import pytest
from pyxnat import Interface
from xnat.exceptions import XNATResponseError

from tests.support.dicomgen import zip_of

from .conftest import SITE_ID
from .helpers import mr_session


def test_site_config_read_and_set(connection, http, xnat_server):
    config = connection.get_json("/xapi/siteConfig")
    assert config["siteId"] == SITE_ID and config["initialized"] is True
    assert connection.get("/xapi/siteConfig/siteId").text == SITE_ID
    connection.post("/xapi/siteConfig", json={"siteUrl": "http://127.0.0.1", "enableProjectAppletScript": True})
    connection.put("/xapi/siteConfig/adminEmail", data="someone@example.org")
    config = connection.get_json("/xapi/siteConfig")
    assert (config["siteUrl"], config["enableProjectAppletScript"], config["adminEmail"]) == (
        "http://127.0.0.1", True, "someone@example.org")
    assert connection.get_json("/xapi/siteConfig/siteUrl") == "http://127.0.0.1"
    with pytest.raises(XNATResponseError, match="404"):
        connection.get("/xapi/siteConfig/noSuchKey")
    for body in (b"{not json", b"[1, 2]", b"[" * 100 + b"]" * 100):
        response = http.post(xnat_server.url + "/xapi/siteConfig", data=body,
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body[:10], response.text)
    assert connection.get_json("/xapi/siteConfig")["siteUrl"] == "http://127.0.0.1"  # unchanged


def test_plugins_and_container_service_are_empty(connection):
    assert connection.plugins.data == {}
    for route in ("/xapi/commands", "/xapi/commands/available", "/xapi/wrappers", "/xapi/containers",
                  "/xapi/docker/images"):
        assert connection.get_json(route) == [], route
    with pytest.raises(XNATResponseError, match="404"):
        connection.get("/xapi/docker/server")


def test_scanners_and_scan_types(connection):
    project = connection.classes.ProjectData(parent=connection, id="XAPI", name="Xapi")
    subject = connection.classes.SubjectData(parent=project, label="x_subject")
    session = connection.classes.MrSessionData(parent=subject, label="x_session", scanner="SKYRA1")
    connection.classes.MrScanData(parent=session, id="1", type="T1w")
    connection.classes.MrScanData(parent=session, id="2", type="dwi")
    connection.clearcache()
    assert "SKYRA1" in connection.scanners
    assert {"T1w", "dwi"} <= {row["type"] for row in connection.scan_types}


def test_pyxnat_prearchive_reset_and_delete(connection, xnat_server, http):
    connection.put("/data/archive/projects/XAPI")
    response = http.post(xnat_server.url + "/data/services/import", params={"project": "XAPI", "dest": "/prearchive"},
                         data=zip_of(mr_session("xapi-pre", series=1, per_series=2)))
    assert response.status_code == 200
    uri = response.text.strip()
    triple = uri.split("/")[-3:]
    interface = Interface(server=xnat_server.url, user="admin", password="admin")
    try:
        interface.manage.prearchive.reset(triple)
        assert interface.manage.prearchive.status(triple) == "READY"
        interface.manage.prearchive.delete(uri)
        assert triple not in interface.manage.prearchive.get()
    finally:
        interface.disconnect()
    assert http.get(xnat_server.url + uri, params={"format": "json"}).status_code == 404
    bad = http.post(xnat_server.url + "/data/services/prearchive/delete", data={"src": "/data/prearchive/x"})
    assert bad.status_code == 400


def test_reset_forgets_the_face_state(connection, http, xnat_server):
    connection.post("/xapi/siteConfig", json={"siteUrl": "http://changed"})
    bundle = (b'<xdat:bundle xmlns:xdat="http://nrg.wustl.edu/security" ID="@x" brief-description="kept">'
              b"<xdat:root_element_name>xnat:subjectData</xdat:root_element_name></xdat:bundle>")
    assert http.put(xnat_server.url + "/data/search/saved/kept", data=bundle).status_code == 200
    assert http.post(xnat_server.url + "/pacsbox/reset").status_code == 200
    assert connection.get_json("/xapi/siteConfig")["siteUrl"] == ""
    assert connection.get_json("/data/search/saved")["ResultSet"]["Result"] == []
