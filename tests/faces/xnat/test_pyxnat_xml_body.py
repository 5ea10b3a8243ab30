"""Objects described by an XML body (pyxnat's ``create(xml=...)``, ``PUT <uri>?inbody=true``): fields, custom
variables and demographics are read from it; a malformed or hostile document is a 400 and creates nothing."""

from __future__ import annotations

import pytest
from pyxnat import Interface

# no encoding declaration: pyxnat reads the file as text, which lxml parses only without one
SUBJECT_XML = b"""<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  label="from_xml" group="control">
  <xnat:demographics xsi:type="xnat:demographicData"><xnat:gender>female</xnat:gender><xnat:yob>1980</xnat:yob>
  </xnat:demographics>
  <xnat:fields><xnat:field name="cohort">A</xnat:field></xnat:fields>
</xnat:Subject>"""

SESSION_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" label="mr_from_xml">
  <xnat:date>2024-05-06</xnat:date><xnat:scanner manufacturer="SIEMENS">SKYRA1</xnat:scanner>
</xnat:MRSession>"""


@pytest.fixture(scope="module")
def project(connection):
    """The project every test of the module writes into, made here rather than by the first test that runs."""
    connection.put("/data/archive/projects/XMLBODY")
    return "XMLBODY"


@pytest.fixture(scope="module")
def interface(xnat_server, project):
    connected = Interface(server=xnat_server.url, user="admin", password="admin")
    yield connected
    connected.disconnect()


def test_pyxnat_create_from_xml(interface, connection, tmp_path):
    path = tmp_path / "subject.xml"
    path.write_bytes(SUBJECT_XML)
    subject = interface.select.project("XMLBODY").subject("from_xml")
    subject.create(xml=str(path))
    connection.clearcache()
    created = connection.projects["XMLBODY"].subjects["from_xml"]
    assert (created.group, created.demographics.gender, created.demographics.yob) == ("control", "female", 1980)
    assert created.fields["cohort"] == "A"


def test_session_type_from_the_document(connection, http, xnat_server, project):
    subject_url = xnat_server.url + "/data/projects/XMLBODY/subjects/for_session_xml"
    assert http.put(subject_url).status_code in (200, 201)  # its own subject, not test_pyxnat_create_from_xml's
    url = subject_url + "/experiments/mr_from_xml"
    response = http.put(url, params={"inbody": "true"}, data=SESSION_XML, headers={"Content-Type": "text/xml"})
    assert response.status_code in (200, 201), response.text
    connection.clearcache()
    session = connection.projects["XMLBODY"].experiments["mr_from_xml"]
    assert session.__xsi_type__ == "xnat:mrSessionData"
    assert (str(session.date), session.scanner.manufacturer) == ("2024-05-06", "SIEMENS")


@pytest.mark.parametrize("body", [b"<xnat:Subject unclosed", b"<a>" * 100 + b"</a>" * 100,
                                  b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                                  b"<x>&xxe;</x>"])
def test_malformed_documents_create_nothing(http, xnat_server, project, body):
    url = xnat_server.url + "/data/projects/XMLBODY/subjects/broken_xml"
    response = http.put(url, params={"inbody": "true"}, data=body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 400, response.text
    assert "root:" not in response.text
    assert http.get(url, params={"format": "json"}).status_code == 404
