"""``?format=xml`` through pyxnat: its ``get()`` and ``xpath()`` read projects, subjects, sessions and scans as
XNAT's XML documents (attributes, custom variables, scan parameters), and its listings read the columns it needs."""

from __future__ import annotations

from xml.etree import ElementTree as etree

import pytest
from pyxnat import Interface

NS = {"xnat": "http://nrg.wustl.edu/xnat", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}


def _make_tree(connection, project_id: str) -> None:
    """A project with one subject, one MR session and one scan (3, T1w), with fields at each level."""
    project = connection.classes.ProjectData(parent=connection, id=project_id, name="Xml project")
    project.fields["arm"] = "a & <b>"
    subject = connection.classes.SubjectData(parent=project, label="x_subject")
    subject.demographics.gender = "female"
    session = connection.classes.MrSessionData(parent=subject, label="x_session", date="2024-01-02")
    scan = connection.classes.MrScanData(parent=session, id="3", type="T1w", series_description="t1 mprage")
    scan.parameters.tr = 2300.0
    scan.fields["seq"] = "mprage"
    session.fields["visit"] = "baseline"


@pytest.fixture(scope="module")
def interface(xnat_server, connection):
    _make_tree(connection, "XML")  # only read by the tests, which share it
    connection_ = Interface(server=xnat_server.url, user="admin", password="admin")
    yield connection_
    connection_.disconnect()


def test_project_xml(interface):
    project = interface.select.project("XML")
    root = etree.fromstring(project.get())
    assert root.tag == "{http://nrg.wustl.edu/xnat}Project"
    assert root.get("ID") == "XML"
    assert project.xpath("//xnat:name/text()") == ["Xml project"]
    assert project.xpath("//xnat:fields/xnat:field[@name='arm']/text()") == ["a & <b>"]


def test_subject_and_session_xml(interface):
    subject = interface.select.project("XML").subject("x_subject")
    root = etree.fromstring(subject.get())
    assert root.get("label") == "x_subject" and root.get("project") == "XML"
    assert subject.xpath("//xnat:demographics/xnat:gender/text()") == ["female"]
    demographics = root.find("xnat:demographics", NS)
    assert demographics.get(f"{{{NS['xsi']}}}type") == "xnat:demographicData"
    session = subject.experiment("x_session")
    root = etree.fromstring(session.get())
    assert root.tag == "{http://nrg.wustl.edu/xnat}MRSession"
    assert session.xpath("//xnat:date/text()") == ["2024-01-02"]
    assert session.xpath("//xnat:fields/xnat:field[@name='visit']/text()") == ["baseline"]
    scans = root.findall("xnat:scans/xnat:scan", NS)
    assert [(s.get("ID"), s.get("type"), s.get(f"{{{NS['xsi']}}}type")) for s in scans] == [
        ("3", "T1w", "xnat:mrScanData")]


def test_scan_xml_and_parameters(interface):
    scan = interface.select.project("XML").subject("x_subject").experiment("x_session").scan("3")
    assert scan.xpath("//xnat:series_description/text()") == ["t1 mprage"]
    assert scan.xpath("//xnat:parameters/xnat:tr/text()") == ["2300.0"]
    assert scan.xpath("//xnat:parameters/xnat:addParam[@name='seq']/text()") == ["mprage"]


def test_listing_columns_pyxnat_reads(interface):
    experiments = interface.select.project("XML").experiments().get()
    assert len(experiments) == 1
    subject_ids = interface.array.experiments(project_id="XML", experiment_type="xnat:mrSessionData",
                                              columns=["subject_ID", "label"]).data
    assert [row["label"] for row in subject_ids] == ["x_session"]
    assert subject_ids[0]["subject_ID"].startswith("Xnat4Tests_S")


def test_array_scans_gives_one_row_per_scan(interface, connection):
    _make_tree(connection, "XMLARRAY")  # its own: the scan it adds would show in the other tests' scan lists
    connection.clearcache()
    session = connection.projects["XMLARRAY"].experiments["x_session"]
    connection.classes.MrScanData(parent=session, id="4", type="dwi")
    rows = interface.array.mrscans(project_id="XMLARRAY", columns=["xnat:mrScanData/type"]).data
    assert sorted((row["xnat:mrscandata/id"], row["xnat:mrscandata/type"]) for row in rows) == [
        ("3", "T1w"), ("4", "dwi")]
    assert {row["ID"] for row in rows} == {session.id}
