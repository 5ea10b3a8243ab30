"""pyxnat's saved searches against pacsbox: save, list, read the results and the document back, delete; a
malformed document is a 400 that replaces nothing."""

from __future__ import annotations

import pytest
from pyxnat import Interface


@pytest.fixture(scope="module")
def interface(xnat_server, connection):
    project = connection.classes.ProjectData(parent=connection, id="SAVED", name="Saved")
    for label in ("s_one", "s_two"):
        connection.classes.SubjectData(parent=project, label=label)
    connected = Interface(server=xnat_server.url, user="admin", password="admin")
    yield connected
    connected.disconnect()


def test_save_list_run_and_delete(interface):
    search = interface.manage.search
    search.save("subjects_of_saved", "xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/PROJECT"],
                [("xnat:subjectData/PROJECT", "=", "SAVED"), "AND"], description="the SAVED project's subjects")
    assert "subjects_of_saved" in search.saved()
    results = search.get("subjects_of_saved")
    assert sorted(results.get("subject_label")) == ["s_one", "s_two"]
    assert b"xdat:bundle" in search.get("subjects_of_saved", out_format="xml")
    search.delete("subjects_of_saved")
    assert "subjects_of_saved" not in search.saved()


def test_malformed_document_is_refused(interface, http, xnat_server):
    url = xnat_server.url + "/data/search/saved/broken"
    response = http.put(url, data=b"<xdat:bundle unclosed", headers={"Content-Type": "text/xml"})
    assert response.status_code == 400 and not response.text.startswith("<")
    assert http.get(url).status_code == 404
    assert http.get(xnat_server.url + "/data/search/saved/nothing/results").status_code == 404
