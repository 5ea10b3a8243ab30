"""QIDO-RS through the real dicomweb-client, and the same searches compared with the Orthanc DICOMweb plugin."""

from __future__ import annotations

import pytest
import requests

from tests.support.dicomgen import uid

from .conftest import sorted_answers

JOHN_CT_STUDY = uid("study", "PBX-001", "ct")
JOHN_MR_STUDY = uid("study", "PBX-001", "mr")
JOHN_MR_SERIES_2 = uid("series", "PBX-001", "mr", 2)


def _values(answers: list[dict], tag: str) -> list:
    return sorted(answer[tag]["Value"][0] for answer in answers if "Value" in answer.get(tag, {}))


def test_search_levels_with_the_client(client):
    assert len(client.search_for_studies()) == 9
    assert len(client.search_for_series()) == 11
    assert len(client.search_for_instances()) == 22
    assert len(client.search_for_series(study_instance_uid=JOHN_MR_STUDY)) == 3
    assert len(client.search_for_instances(study_instance_uid=JOHN_MR_STUDY)) == 8
    found = client.search_for_instances(study_instance_uid=JOHN_MR_STUDY, series_instance_uid=JOHN_MR_SERIES_2)
    assert len(found) == 2
    assert {answer["0020000E"]["Value"][0] for answer in found} == {JOHN_MR_SERIES_2}


def test_matching_by_keyword_or_tag_wildcards_ranges_and_lists(client):
    assert _values(client.search_for_studies(search_filters={"PatientName": "doe*"}), "0020000D") == sorted(
        [JOHN_CT_STUDY, JOHN_MR_STUDY])
    assert len(client.search_for_studies(search_filters={"00100020": "PBX-002"})) == 2
    assert len(client.search_for_studies(search_filters={"StudyDate": "20230101-20230601"})) > 0
    both = client.search_for_studies(search_filters={"StudyInstanceUID": [JOHN_CT_STUDY, JOHN_MR_STUDY]})
    assert _values(both, "0020000D") == sorted([JOHN_CT_STUDY, JOHN_MR_STUDY])
    assert len(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"})) == 3
    assert client.search_for_series(search_filters={"Modality": "XA"}) == []
    assert len(client.search_for_studies(search_filters={"PatientName": "doe*"}, fuzzymatching=True)) == 2


def test_includefield_limit_and_offset(client):
    answers = client.search_for_series(search_filters={"PatientID": "PBX-001"}, fields=["ProtocolName", "00180015"])
    assert all(answer["00181030"]["Value"][0].endswith("protocol " + str(answer["00200011"]["Value"][0]))
               for answer in answers)
    assert {answer["00180015"]["Value"][0] for answer in answers} == {"CHEST", "HEAD"}
    pages = [client.search_for_instances(limit=5, offset=offset) for offset in range(0, 25, 5)]
    assert [len(page) for page in pages] == [5, 5, 5, 5, 2]
    seen = [answer["00080018"]["Value"][0] for page in pages for answer in page]
    assert len(set(seen)) == 22


def test_answer_shape(client, loaded_pacsbox):
    (study,) = client.search_for_studies(search_filters={"StudyInstanceUID": JOHN_MR_STUDY})
    assert study["00201206"] == {"vr": "IS", "Value": [3]}
    assert study["00201208"] == {"vr": "IS", "Value": [8]}
    assert study["00080061"] == {"vr": "CS", "Value": ["MR"]}
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    # RetrieveURL follows the Host header the client sent (dicomweb-client sends the host without the port)
    assert study["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{JOHN_MR_STUDY}")
    url = f"{loaded_pacsbox.url}/dicom-web/studies?StudyInstanceUID={JOHN_MR_STUDY}"
    (study,) = loaded_pacsbox.session().get(url).json()
    assert study["00081190"]["Value"] == [f"{loaded_pacsbox.url}/dicom-web/studies/{JOHN_MR_STUDY}"]


def test_bad_search_parameters(loaded_pacsbox):
    session = loaded_pacsbox.session()
    answer = session.get(loaded_pacsbox.url + "/dicom-web/studies?limit=x")
    assert answer.status_code == 400 and answer.json()["Message"] == "Bad file format"
    for odd in ["limit=%C2%B2", "offset=%C2%B2"]:  # a digit to str.isdigit, not to int
        answer = session.get(loaded_pacsbox.url + f"/dicom-web/studies?{odd}")
        assert answer.status_code == 400 and answer.json()["Message"] == "Bad file format"
    huge = session.get(loaded_pacsbox.url + "/dicom-web/studies?limit=" + "9" * 5000 + "&offset=" + "9" * 5000)
    assert huge.status_code == 200 and huge.json() == []
    answer = session.get(loaded_pacsbox.url + "/dicom-web/series?StudyDate=2023*")
    assert answer.status_code == 400 and answer.json()["Message"] == "Parameter out of range"
    assert session.get(loaded_pacsbox.url + "/dicom-web/studies/1.2.3/series").json() == []
    unauthenticated = requests.get(loaded_pacsbox.url + "/dicom-web/studies")
    assert unauthenticated.status_code == 401 and unauthenticated.content == b""
    assert requests.get(loaded_pacsbox.url + "/dicom-web/studies", auth=("admin", "wrong")).status_code == 401


SEARCHES = [
    "studies", "series", "instances",
    f"studies/{JOHN_MR_STUDY}/series", f"studies/{JOHN_MR_STUDY}/instances",
    f"studies/{JOHN_MR_STUDY}/series/{JOHN_MR_SERIES_2}/instances",
    "series?includefield=ProtocolName,00200060,PatientAge,StudyDescription",
    "studies?PatientName=doe*", "studies?PatientName=SMITH*", "series?Modality=ct",
    "studies?StudyDate=20230101-20230601", "studies?StudyDate=-20230601", "studies?StudyDate=20230601-",
    f"studies?StudyInstanceUID={JOHN_CT_STUDY},{JOHN_MR_STUDY}", "studies?ModalitiesInStudy=CT",
    "studies?0010,0020=PBX-00?", "studies?00100020=PBX-001&includefield=PatientAge",
    "instances?SliceThickness=2.5", "studies?PatientAge=045Y", "studies?Foo=1&includefield=Bar",
    "instances?PatientID=PBX-MF&includefield=PositionReferenceIndicator,ImagePositionPatient,FrameTime,"
    "FrameIncrementPointer,PixelSpacing,OperatorsName,00091001",
    "studies?includefield=all", "studies/1.2.3/series", "studies?limit=x", "series?StudyDate=2023*",
]


@pytest.mark.parametrize("search", SEARCHES)
def test_same_answers_as_the_plugin(search, loaded_pacsbox, dicomweb_reference):
    ours = loaded_pacsbox.session().get(f"{loaded_pacsbox.url}/dicom-web/{search}")
    theirs = dicomweb_reference.session.get(f"{dicomweb_reference.url}/dicom-web/{search}")
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    if theirs.status_code != 200:
        assert ours.json()["Message"] == theirs.json()["Message"]
        return
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/dicom+json"
    assert sorted_answers(ours.json(), loaded_pacsbox.url) == sorted_answers(theirs.json(), dicomweb_reference.url)


def test_paging_covers_the_same_answers_as_the_plugin(loaded_pacsbox, dicomweb_reference):
    """Both servers page through the same set (each in its own order, which PS3.18 leaves open)."""
    def pages(server_url, session):
        return [answer for offset in range(0, 12, 4)
                for answer in session.get(f"{server_url}/dicom-web/series?limit=4&offset={offset}").json()]

    ours = pages(loaded_pacsbox.url, loaded_pacsbox.session())
    theirs = pages(dicomweb_reference.url, dicomweb_reference.session)
    assert sorted_answers(ours, loaded_pacsbox.url) == sorted_answers(theirs, dicomweb_reference.url)
