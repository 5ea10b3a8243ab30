"""Every route of the Orthanc face, with plain ``requests`` against a real spawned server.

Expected values are derived independently of the server: IDs are SHA-1 of the DICOM identifiers (as the Orthanc
Book defines them), tags and sizes come from the uploaded bytes read with pydicom, and shapes and values that
the Orthanc Book does not spell out are those the real Orthanc 1.10.1 answers to the same requests.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset

from tests.support.compare import orthanc_id
from tests.support.dicomgen import uid, zip_of
from tests.support.pacsbox_proc import RunningPacsbox

TIMESTAMP = re.compile(r"^\d{8}T\d{6}$")  # Orthanc's ISO date-times, e.g. 20230907T101301
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
LEVELS = ("patients", "studies", "series", "instances")


# -- expected values, computed without the server -------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One corpus file with its dataset and its four expected Orthanc IDs."""

    name: str
    data: bytes
    ds: Dataset

    @property
    def patient(self) -> str:
        return orthanc_id(str(self.ds.PatientID))

    @property
    def study(self) -> str:
        return orthanc_id(str(self.ds.PatientID), self.ds.StudyInstanceUID)

    @property
    def series(self) -> str:
        return orthanc_id(str(self.ds.PatientID), self.ds.StudyInstanceUID, self.ds.SeriesInstanceUID)

    @property
    def instance(self) -> str:
        return orthanc_id(str(self.ds.PatientID), self.ds.StudyInstanceUID, self.ds.SeriesInstanceUID,
                          self.ds.SOPInstanceUID)

    def id_at(self, level: str) -> str:
        return {"patients": self.patient, "studies": self.study, "series": self.series,
                "instances": self.instance}[level]


def tag_key(tag, sep: str = ",") -> str:
    return f"{tag.group:04x}{sep}{tag.element:04x}"


def assert_error(response: requests.Response, status: int, orthanc_status: int, message: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["HttpStatus"] == status
    assert body["OrthancStatus"] == orthanc_status, body
    assert body["Message"] == message, body
    assert body["OrthancError"] == message, body
    assert body["Method"] == response.request.method
    assert body["Uri"] == response.request.path_url.split("?")[0]
    return body


# -- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def items(corpus) -> dict[str, Item]:
    return {name: Item(name, data, pydicom.dcmread(io.BytesIO(data), force=True)) for name, data in corpus}


@pytest.fixture(scope="module")
def server(spawned_pacsbox):
    return spawned_pacsbox


@pytest.fixture(scope="module")
def http(server) -> requests.Session:
    session = server.session()
    yield session
    session.close()


@pytest.fixture(scope="module")
def url(server) -> str:
    return server.url


@pytest.fixture(scope="module")
def uploads(http, url, items) -> dict[str, dict]:
    """The whole corpus, uploaded once to the module's server (tests using it do not change the archive)."""
    answers = {}
    for name, item in items.items():
        response = http.post(url + "/instances", data=item.data)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()
    return answers


def ids_at(items: dict[str, Item], level: str, keep: Callable[[Item], bool] = lambda item: True) -> set[str]:
    return {item.id_at(level) for item in items.values() if keep(item)}


# -- /system and /statistics -----------------------------------------------------------------------------------

def test_system_reports_orthanc_1_10_1(http, url):
    response = http.get(url + "/system")
    assert response.status_code == 200
    body = response.json()
    assert body["Version"] == "1.10.1"
    assert body["ApiVersion"] == 16
    assert body["DatabaseVersion"] == 6
    assert body["HttpPort"] == int(url.rsplit(":", 1)[1])
    assert body["PluginsEnabled"] is True  # Debian's Orthanc says so even without plugins
    assert body["StorageAreaPlugin"] is None
    assert body["DatabaseBackendPlugin"] is None
    assert isinstance(body["Name"], str) and body["Name"]
    assert isinstance(body["DicomAet"], str) and body["DicomAet"]
    assert isinstance(body["DicomPort"], int)


def test_statistics_count_the_corpus(http, url, items, uploads):
    body = http.get(url + "/statistics").json()
    total = sum(len(item.data) for item in items.values())
    assert body == {
        "CountPatients": 7, "CountStudies": 9, "CountSeries": 11, "CountInstances": 22,
        "TotalDiskSize": str(total), "TotalDiskSizeMB": total // (1024 * 1024),
        "TotalUncompressedSize": str(total), "TotalUncompressedSizeMB": total // (1024 * 1024),
    }


# -- POST /instances -------------------------------------------------------------------------------------------

def test_upload_answers_the_four_ids(items, uploads):
    for name, item in items.items():
        assert uploads[name] == {
            "ID": item.instance, "ParentPatient": item.patient, "ParentStudy": item.study,
            "ParentSeries": item.series, "Path": f"/instances/{item.instance}", "Status": "Success",
        }, name


def test_reupload_answers_already_stored(http, url, items, uploads):
    before = http.get(url + "/statistics").json()
    item = items["ct/1.dcm"]
    response = http.post(url + "/instances", data=item.data)
    assert response.status_code == 200
    assert response.json() == {**uploads["ct/1.dcm"], "Status": "AlreadyStored"}
    assert http.get(url + "/statistics").json() == before


def test_upload_zip_answers_a_list(fresh_pacsbox, items):
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    names = ["mr/s1/1.dcm", "ct/2.dcm", "p2/a/1.dcm"]
    archive = zip_of([(f"folder/{n.replace('/', '_')}", items[n].data) for n in names])
    response = http.post(url + "/instances", data=archive)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["ID"] for a in answers] == [items[n].instance for n in names]
    for name, answer in zip(names, answers, strict=True):
        item = items[name]
        assert answer == {"ID": item.instance, "ParentPatient": item.patient, "ParentStudy": item.study,
                          "ParentSeries": item.series, "Path": f"/instances/{item.instance}", "Status": "Success"}
    assert sorted(http.get(url + "/instances").json()) == sorted(items[n].instance for n in names)
    again = http.post(url + "/instances", data=archive).json()
    assert [a["Status"] for a in again] == ["AlreadyStored"] * 3
    for name in names:  # the stored files are the zip members, byte for byte
        assert http.get(f"{url}/instances/{items[name].instance}/file").content == items[name].data


# -- lists -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_list_holds_every_id(http, url, items, uploads, level):
    listed = http.get(f"{url}/{level}").json()
    assert len(listed) == len(set(listed))
    assert set(listed) == ids_at(items, level)


@pytest.mark.parametrize("level", LEVELS)
def test_list_expand_gives_the_objects(http, url, items, uploads, level):
    expanded = http.get(f"{url}/{level}?expand").json()
    assert {obj["ID"] for obj in expanded} == ids_at(items, level)
    for obj in expanded:
        assert obj == http.get(f"{url}/{level}/{obj['ID']}").json()


@pytest.mark.parametrize("level", LEVELS)
def test_list_since_limit_pages_through_the_list(http, url, uploads, level):
    full = http.get(f"{url}/{level}").json()
    assert http.get(f"{url}/{level}?since=0&limit=3").json() == full[:3]
    assert http.get(f"{url}/{level}?since=2&limit=2").json() == full[2:4]
    pages = []
    for since in range(0, len(full) + 4, 4):
        pages += http.get(f"{url}/{level}", params={"since": since, "limit": 4}).json()
    assert pages == full
    assert http.get(f"{url}/{level}?since={len(full)}&limit=5").json() == []
    expanded = http.get(f"{url}/{level}?expand&since=1&limit=2").json()
    assert [obj["ID"] for obj in expanded] == full[1:3]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("given,missing", [("since=0", "limit"), ("limit=2", "since")])
def test_list_needs_since_and_limit_together(http, url, level, given, missing):
    response = http.get(f"{url}/{level}?{given}")
    body = assert_error(response, 400, 8, "Bad request")
    assert f'Missing "{missing}" argument' in body["Details"]


# -- one resource ----------------------------------------------------------------------------------------------

def test_get_instance(http, url, items, uploads):
    item = items["ct/1.dcm"]
    body = http.get(f"{url}/instances/{item.instance}").json()
    assert set(body) == {"FileSize", "FileUuid", "ID", "IndexInSeries", "MainDicomTags", "ParentSeries", "Type"}
    assert body["ID"] == item.instance
    assert body["Type"] == "Instance"
    assert body["ParentSeries"] == item.series
    assert body["FileSize"] == len(item.data)
    assert body["IndexInSeries"] == 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body["FileUuid"])
    assert body["MainDicomTags"] == {
        "AcquisitionNumber": "1",
        "ImageComments": "synthetic image 1",
        "ImageOrientationPatient": "1.0\\0.0\\0.0\\0.0\\1.0\\0.0",
        "ImagePositionPatient": "-120.0\\-120.0\\-100.0",
        "InstanceCreationDate": item.ds.InstanceCreationDate,
        "InstanceCreationTime": item.ds.InstanceCreationTime,
        "InstanceNumber": "1",
        "SOPInstanceUID": item.ds.SOPInstanceUID,
    }


def test_get_instance_index_in_series_follows_instance_number(http, url, items, uploads):
    for number in range(1, 6):
        item = items[f"ct/{number}.dcm"]
        assert http.get(f"{url}/instances/{item.instance}").json()["IndexInSeries"] == number


def test_get_series(http, url, items, uploads):
    item = items["ct/1.dcm"]
    body = http.get(f"{url}/series/{item.series}").json()
    assert set(body) == {"ExpectedNumberOfInstances", "ID", "Instances", "IsStable", "LastUpdate",
                         "MainDicomTags", "ParentStudy", "Status", "Type"}
    assert body["ID"] == item.series
    assert body["Type"] == "Series"
    assert body["ParentStudy"] == item.study
    assert sorted(body["Instances"]) == sorted(items[f"ct/{n}.dcm"].instance for n in range(1, 6))
    assert body["ExpectedNumberOfInstances"] is None
    assert body["Status"] == "Unknown"
    assert body["IsStable"] is False  # StableAge is 60 s
    assert TIMESTAMP.match(body["LastUpdate"])
    ds = item.ds
    assert body["MainDicomTags"] == {
        "BodyPartExamined": "CHEST", "ImageOrientationPatient": "1.0\\0.0\\0.0\\0.0\\1.0\\0.0",
        "Manufacturer": "PACSBOX Imaging", "Modality": "CT", "OperatorsName": "Operator^Otto",
        "ProtocolName": "CT protocol 1", "SeriesDate": ds.SeriesDate, "SeriesDescription": "CT series 1",
        "SeriesInstanceUID": ds.SeriesInstanceUID, "SeriesNumber": "1", "SeriesTime": ds.SeriesTime,
        "StationName": "CTSTATION1",
    }


def test_get_study(http, url, items, uploads):
    item = items["mr/s1/1.dcm"]
    body = http.get(f"{url}/studies/{item.study}").json()
    assert set(body) == {"ID", "IsStable", "LastUpdate", "MainDicomTags", "ParentPatient",
                         "PatientMainDicomTags", "Series", "Type"}
    assert body["Type"] == "Study"
    assert body["ParentPatient"] == item.patient
    assert sorted(body["Series"]) == sorted({items[f"mr/s{n}/1.dcm"].series for n in (1, 2, 3)})
    ds = item.ds
    assert body["MainDicomTags"] == {
        "AccessionNumber": ds.AccessionNumber, "InstitutionName": "Pacsbox General Hospital",
        "ReferringPhysicianName": "Referrer^Rita", "RequestedProcedureDescription": "MR examination",
        "StudyDate": ds.StudyDate, "StudyDescription": ds.StudyDescription, "StudyID": ds.StudyID,
        "StudyInstanceUID": ds.StudyInstanceUID, "StudyTime": ds.StudyTime,
    }
    assert body["PatientMainDicomTags"] == {
        "PatientBirthDate": ds.PatientBirthDate, "PatientID": "PBX-001", "PatientName": "Doe^John",
        "PatientSex": ds.PatientSex,
    }


def test_get_patient(http, url, items, uploads):
    item = items["ct/1.dcm"]
    body = http.get(f"{url}/patients/{item.patient}").json()
    assert set(body) == {"ID", "IsStable", "LastUpdate", "MainDicomTags", "Studies", "Type"}
    assert body["Type"] == "Patient"
    assert sorted(body["Studies"]) == sorted({item.study, items["mr/s1/1.dcm"].study})
    assert body["MainDicomTags"] == {"PatientBirthDate": item.ds.PatientBirthDate, "PatientID": "PBX-001",
                                     "PatientName": "Doe^John", "PatientSex": item.ds.PatientSex}


def test_get_resource_with_non_ascii_names(http, url, items, uploads):
    latin, utf8 = items["charset/latin1.dcm"], items["charset/utf8.dcm"]
    assert http.get(f"{url}/patients/{latin.patient}").json()["MainDicomTags"]["PatientName"] == "Müller^Jürgen"
    assert http.get(f"{url}/studies/{latin.study}").json()["MainDicomTags"]["StudyDescription"] == "Thorax café"
    assert http.get(f"{url}/patients/{utf8.patient}").json()["MainDicomTags"]["PatientName"] == \
        "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert http.get(f"{url}/studies/{utf8.study}").json()["MainDicomTags"]["StudyDescription"] == "頭部 MRI"


# -- children and parents --------------------------------------------------------------------------------------

CHILD_ROUTES = [("patients", "studies"), ("patients", "series"), ("patients", "instances"),
                ("studies", "series"), ("studies", "instances"), ("series", "instances")]
PARENT_ROUTES = [("studies", "patient", "patients"), ("series", "study", "studies"),
                 ("series", "patient", "patients"), ("instances", "series", "series"),
                 ("instances", "study", "studies"), ("instances", "patient", "patients")]


@pytest.mark.parametrize("level,child", CHILD_ROUTES)
def test_child_route_gives_expanded_objects(http, url, items, uploads, level, child):
    anchor = items["mr/s2/1.dcm"]
    parent_id = anchor.id_at(level)
    response = http.get(f"{url}/{level}/{parent_id}/{child}")
    assert response.status_code == 200
    objects = response.json()
    expected = ids_at(items, child, lambda item: item.id_at(level) == parent_id)
    assert len(objects) == len(expected)
    assert {obj["ID"] for obj in objects} == expected
    for obj in objects:
        assert obj == http.get(f"{url}/{child}/{obj['ID']}").json()


@pytest.mark.parametrize("level,route,parent_level", PARENT_ROUTES)
def test_parent_route_gives_one_object(http, url, items, uploads, level, route, parent_level):
    item = items["mr/s3/2.dcm"]
    response = http.get(f"{url}/{level}/{item.id_at(level)}/{route}")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    assert body["ID"] == item.id_at(parent_level)
    assert body == http.get(f"{url}/{parent_level}/{item.id_at(parent_level)}").json()


# -- instance content ------------------------------------------------------------------------------------------

def test_file_is_the_uploaded_bytes(http, url, items, uploads):
    for name, item in items.items():
        response = http.get(f"{url}/instances/{item.instance}/file")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/dicom"
        assert response.content == item.data, name


def test_tags_full_form(http, url, items, uploads):
    item = items["ct/1.dcm"]
    response = http.get(f"{url}/instances/{item.instance}/tags")
    assert response.status_code == 200, response.text
    tags = response.json()
    assert set(tags) == {tag_key(element.tag) for element in item.ds}
    assert tags["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "Doe^John"}
    assert tags["0008,0018"] == {"Name": "SOPInstanceUID", "Type": "String", "Value": item.ds.SOPInstanceUID}
    assert tags["0028,0010"] == {"Name": "Rows", "Type": "String", "Value": "8"}
    assert tags["0008,0008"] == {"Name": "ImageType", "Type": "String", "Value": "ORIGINAL\\PRIMARY\\AXIAL"}
    assert tags["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}


def test_tags_full_form_of_sequences_and_private_tags(http, url, items, uploads):
    item = items["seq/1.dcm"]
    response = http.get(f"{url}/instances/{item.instance}/tags")
    assert response.status_code == 200, response.text
    tags = response.json()
    assert set(tags) == {tag_key(element.tag) for element in item.ds}

    def code(value, scheme, meaning):
        return {"0008,0100": {"Name": "CodeValue", "Type": "String", "Value": value},
                "0008,0102": {"Name": "CodingSchemeDesignator", "Type": "String", "Value": scheme},
                "0008,0104": {"Name": "CodeMeaning", "Type": "String", "Value": meaning}}

    inner = {**code("24627-2", "LN", "CT Chest"),
             "0008,0105": {"Name": "MappingResource", "Type": "String", "Value": "DCMR"},
             "0008,010f": {"Name": "ContextIdentifier", "Type": "String", "Value": "7151"}}
    assert tags["0008,1032"] == {"Name": "ProcedureCodeSequence", "Type": "Sequence", "Value": [
        {**code("CTCHEST", "L", "CT Chest"),
         "0008,0121": {"Name": "EquivalentCodeSequence", "Type": "Sequence", "Value": [inner]}}]}
    assert tags["0008,1110"] == {"Name": "ReferencedStudySequence", "Type": "Sequence", "Value": []}
    assert tags["0040,0275"]["Value"][1] == {}
    assert tags["0009,0010"] == {"Name": "PrivateCreator", "Type": "String", "Value": "PACSBOX TEST"}
    assert tags["0009,1001"] == {"Name": "Unknown Tag & Data", "PrivateCreator": "PACSBOX TEST",
                                 "Type": "String", "Value": "private text"}


def test_tags_simplify_equals_simplified_tags(http, url, items, uploads):
    item = items["seq/1.dcm"]
    simplified = http.get(f"{url}/instances/{item.instance}/simplified-tags")
    assert simplified.status_code == 200, simplified.text
    body = simplified.json()
    assert http.get(f"{url}/instances/{item.instance}/tags?simplify").json() == body
    public = [element for element in item.ds if not element.tag.is_private]
    private_names = {"Unknown Tag & Data", "PrivateCreator"}
    assert {name for name in body if name not in private_names} == {element.keyword for element in public}
    assert body["PatientName"] == "Sequence^Sam"
    assert body["Rows"] == "8"
    assert body["PixelData"] is None
    assert body["ReferencedStudySequence"] == []
    assert body["ProcedureCodeSequence"] == [{
        "CodeMeaning": "CT Chest", "CodeValue": "CTCHEST", "CodingSchemeDesignator": "L",
        "EquivalentCodeSequence": [{"CodeMeaning": "CT Chest", "CodeValue": "24627-2",
                                    "CodingSchemeDesignator": "LN", "ContextIdentifier": "7151",
                                    "MappingResource": "DCMR"}]}]
    assert body["RequestAttributesSequence"][1] == {}


def test_simplified_tags_decode_character_sets(http, url, items, uploads):
    latin = http.get(f"{url}/instances/{items['charset/latin1.dcm'].instance}/simplified-tags").json()
    assert latin["PatientName"] == "Müller^Jürgen"
    assert latin["InstitutionName"] == "Hôpital Général"
    utf8 = http.get(f"{url}/instances/{items['charset/utf8.dcm'].instance}/simplified-tags").json()
    assert utf8["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert utf8["SeriesDescription"] == "Σειρά 1 αξονική"


def test_tags_short_form(http, url, items, uploads):
    item = items["seq/1.dcm"]
    response = http.get(f"{url}/instances/{item.instance}/tags?short")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {tag_key(element.tag) for element in item.ds}
    assert body["0010,0010"] == "Sequence^Sam"
    assert body["0020,0013"] == "1"
    assert body["7fe0,0010"] is None
    assert body["0008,1140"] == [
        {"0008,1150": CT_IMAGE_STORAGE, "0008,1155": ref.ReferencedSOPInstanceUID}
        for ref in item.ds.ReferencedImageSequence]


@pytest.mark.parametrize("form", ["", "?short", "?simplify"])
def test_header(http, url, items, uploads, form):
    item = items["ct/1.dcm"]
    meta = pydicom.dcmread(io.BytesIO(item.data)).file_meta
    response = http.get(f"{url}/instances/{item.instance}/header{form}")
    assert response.status_code == 200, response.text
    values = {
        (0x0002, 0x0000, "FileMetaInformationGroupLength"): str(meta.FileMetaInformationGroupLength),
        (0x0002, 0x0002, "MediaStorageSOPClassUID"): CT_IMAGE_STORAGE,
        (0x0002, 0x0003, "MediaStorageSOPInstanceUID"): item.ds.SOPInstanceUID,
        (0x0002, 0x0010, "TransferSyntaxUID"): EXPLICIT_LE,
        (0x0002, 0x0012, "ImplementationClassUID"): meta.ImplementationClassUID,
        (0x0002, 0x0013, "ImplementationVersionName"): "PACSBOX_TESTGEN",
    }
    if form == "?short":
        expected = {f"{g:04x},{e:04x}": v for (g, e, _), v in values.items()}
    elif form == "?simplify":
        expected = {name: v for (_, _, name), v in values.items()}
    else:
        expected = {f"{g:04x},{e:04x}": {"Name": name, "Type": "String", "Value": v}
                    for (g, e, name), v in values.items()}
    assert response.json() == expected


def test_header_of_a_file_without_meta_is_empty(http, url, items, uploads):
    response = http.get(f"{url}/instances/{items['nometa/1.dcm'].instance}/header")
    assert response.status_code == 200, response.text
    assert response.json() == {}


def test_content_lists_the_top_level_tags(http, url, items, uploads):
    item = items["seq/1.dcm"]
    response = http.get(f"{url}/instances/{item.instance}/content")
    assert response.status_code == 200, response.text
    assert response.json() == sorted(tag_key(element.tag, "-") for element in item.ds)


def test_content_walks_values_and_sequences(http, url, items, uploads):
    item = items["seq/1.dcm"]
    base = f"{url}/instances/{item.instance}/content"
    leaf = http.get(f"{base}/0010-0010")
    assert leaf.status_code == 200, leaf.text
    assert leaf.headers["Content-Type"] == "application/octet-stream"
    assert leaf.content == b"Sequence^Sam"
    assert http.get(f"{base}/0008-1140").json() == ["0", "1"]
    assert http.get(f"{base}/0008-1140/0").json() == ["0008-1150", "0008-1155"]
    second = item.ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID
    assert http.get(f"{base}/0008-1140/1/0008-1155").content.rstrip(b"\x00") == second.encode()
    assert http.get(f"{base}/0008-1032/0/0008-0121/0/0008-0100").content.rstrip(b" ") == b"24627-2"
    assert http.get(f"{base}/0008-1110").json() == []  # an empty sequence
    assert http.get(f"{base}/0040-0275/1").json() == []  # an empty item
    assert http.get(f"{base}/0009-1001").content == b"private text"


@pytest.mark.parametrize("path", ["9999-9999", "0008-1140/5", "0010-0010/0", "0008-1140/0/0010-0010"])
def test_content_of_a_missing_path_is_404(http, url, items, uploads, path):
    response = http.get(f"{url}/instances/{items['seq/1.dcm'].instance}/content/{path}")
    assert response.status_code == 404, response.text


def test_frames(http, url, items, uploads):
    assert http.get(f"{url}/instances/{items['multiframe/1.dcm'].instance}/frames").json() == [0, 1, 2]
    assert http.get(f"{url}/instances/{items['ct/1.dcm'].instance}/frames").json() == [0]


# -- shared tags and per-resource statistics -------------------------------------------------------------------

def _shared(datasets: list[Dataset]) -> set[str]:
    first, rest = datasets[0], datasets[1:]
    return {tag_key(element.tag) for element in first
            if element.VR != "SQ" and element.tag != 0x7FE00010
            and all(element.tag in other and other[element.tag].value == element.value for other in rest)}


def test_shared_tags_of_a_series(http, url, items, uploads):
    series = [items[f"ct/{n}.dcm"] for n in range(1, 6)]
    base = f"{url}/series/{series[0].series}/shared-tags"
    short = http.get(base + "?short")
    assert short.status_code == 200, short.text
    body = short.json()
    assert set(body) == _shared([item.ds for item in series])
    assert "0008,0018" not in body and "0020,0013" not in body  # they differ between instances
    assert body["0020,000e"] == series[0].ds.SeriesInstanceUID
    simplified = http.get(base + "?simplify").json()
    assert simplified["PatientName"] == "Doe^John"
    assert simplified["Modality"] == "CT"
    assert "SOPInstanceUID" not in simplified
    full = http.get(base).json()
    assert full["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "Doe^John"}


def test_shared_tags_of_a_patient_and_a_study(http, url, items, uploads):
    mine = [item for item in items.values() if item.patient == items["ct/1.dcm"].patient]
    body = http.get(f"{url}/patients/{mine[0].patient}/shared-tags?short").json()
    assert set(body) == _shared([item.ds for item in mine])
    assert "0008,0060" not in body  # CT and MR
    study = [item for item in mine if item.study == items["mr/s1/1.dcm"].study]
    body = http.get(f"{url}/studies/{study[0].study}/shared-tags?short").json()
    assert set(body) == _shared([item.ds for item in study])
    assert body["0008,0060"] == "MR"


@pytest.mark.parametrize("level", LEVELS)
def test_resource_statistics(http, url, items, uploads, level):
    anchor = items["mr/s1/2.dcm"]
    public_id = anchor.id_at(level)
    below = [item for item in items.values() if item.id_at(level) == public_id]
    size = str(sum(len(item.data) for item in below))
    expected = {}
    for prefix in ("DicomDiskSize", "DicomUncompressedSize", "DiskSize", "UncompressedSize"):
        expected[prefix] = size
        expected[prefix + "MB"] = 0
    order = LEVELS.index(level)
    for key, child in (("CountStudies", "studies"), ("CountSeries", "series"), ("CountInstances", "instances")):
        if LEVELS.index(child) > order:
            expected[key] = len({item.id_at(child) for item in below})
    assert http.get(f"{url}/{level}/{public_id}/statistics").json() == expected


# -- archives --------------------------------------------------------------------------------------------------

def _members(response: requests.Response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _assert_holds(members: dict[str, bytes], expected: list[Item]) -> None:
    assert len(members) == len(expected)
    assert sorted(members.values()) == sorted(item.data for item in expected)
    assert all(name.endswith(".dcm") for name in members)


@pytest.mark.parametrize("level", ["patients", "studies", "series"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_resource_archive(http, url, items, uploads, level, method):
    anchor = items["mr/s2/1.dcm"]
    public_id = anchor.id_at(level)
    kwargs = {"json": {}} if method == "POST" else {}
    response = http.request(method, f"{url}/{level}/{public_id}/archive", **kwargs)
    _assert_holds(_members(response), [item for item in items.values() if item.id_at(level) == public_id])
    assert f'filename="{public_id}.zip"' in response.headers["Content-Disposition"]


def test_archive_folder_names_follow_orthanc(http, url, items, uploads):
    study = items["mr/s1/1.dcm"].study
    names = set(_members(http.get(f"{url}/studies/{study}/archive")))
    accession, description = items["mr/s1/1.dcm"].ds.AccessionNumber, items["mr/s1/1.dcm"].ds.StudyDescription
    folder = f"PBX001 Doe John/{accession} {description}"
    assert names == {f"{folder}/MR MR series {series}/MR{n:06d}.dcm"
                     for series, count in ((1, 3), (2, 2), (3, 3)) for n in range(count)}


@pytest.mark.parametrize("wrap", [False, True], ids=["list", "Resources"])
def test_create_archive(http, url, items, uploads, wrap):
    series, instance, patient = items["ct/1.dcm"].series, items["mr/s3/1.dcm"].instance, items["p2/a/1.dcm"].patient
    ids = [series, instance, patient]
    response = http.post(url + "/tools/create-archive", json={"Resources": ids} if wrap else ids)
    expected = [item for item in items.values()
                if item.series == series or item.instance == instance or item.patient == patient]
    assert len(expected) == 5 + 1 + 4
    _assert_holds(_members(response), expected)


# -- /changes and /exports -------------------------------------------------------------------------------------

def test_changes(fresh_pacsbox, items):
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    assert http.get(url + "/changes").json() == {"Changes": [], "Done": True, "Last": 0}
    assert http.get(url + "/changes?last").json() == {"Changes": [], "Done": True, "Last": 0}
    first, second = items["ct/1.dcm"], items["ct/2.dcm"]
    http.post(url + "/instances", data=first.data).raise_for_status()
    body = http.get(url + "/changes").json()
    assert body["Done"] is True and body["Last"] == 4
    assert len(body["Changes"]) == 4
    expected = [("NewInstance", "Instance", first.instance, "instances"),
                ("NewSeries", "Series", first.series, "series"),
                ("NewStudy", "Study", first.study, "studies"),
                ("NewPatient", "Patient", first.patient, "patients")]
    pairs = zip(body["Changes"], expected, strict=True)
    for seq, (change, (kind, level, public_id, plural)) in enumerate(pairs, start=1):
        assert set(change) == {"ChangeType", "Date", "ID", "Path", "ResourceType", "Seq"}
        assert (change["ChangeType"], change["ResourceType"], change["ID"], change["Seq"]) == \
            (kind, level, public_id, seq)
        assert change["Path"] == f"/{plural}/{public_id}"
        assert TIMESTAMP.match(change["Date"])

    http.post(url + "/instances", data=second.data).raise_for_status()  # same series: one change only
    body = http.get(url + "/changes?since=4&limit=10").json()
    assert [(c["ChangeType"], c["ID"], c["Seq"]) for c in body["Changes"]] == [("NewInstance", second.instance, 5)]
    assert body["Done"] is True and body["Last"] == 5

    page = http.get(url + "/changes?since=1&limit=2").json()
    assert [c["Seq"] for c in page["Changes"]] == [2, 3]
    assert page["Done"] is False and page["Last"] == 3
    page = http.get(url + "/changes?since=3&limit=2").json()
    assert [c["Seq"] for c in page["Changes"]] == [4, 5]
    assert page["Done"] is True and page["Last"] == 5
    assert http.get(url + "/changes?since=5&limit=2").json() == {"Changes": [], "Done": True, "Last": 5}

    last = http.get(url + "/changes?last").json()
    assert [(c["ChangeType"], c["ID"], c["Seq"]) for c in last["Changes"]] == [("NewInstance", second.instance, 5)]
    assert last["Last"] == 5

    response = http.delete(url + "/changes")
    assert response.status_code == 200
    assert http.get(url + "/changes").json() == {"Changes": [], "Done": True, "Last": 5}
    http.post(url + "/instances", data=items["ct/3.dcm"].data).raise_for_status()
    assert [c["Seq"] for c in http.get(url + "/changes").json()["Changes"]] == [6]


def test_changes_last_after_deleting_the_newest_resource(fresh_pacsbox, items):
    """Orthanc drops the changes of deleted resources; ?last then gives the newest remaining change."""
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    http.post(url + "/instances", data=items["ct/1.dcm"].data).raise_for_status()
    http.post(url + "/instances", data=items["p2/a/1.dcm"].data).raise_for_status()
    http.delete(f"{url}/patients/{items['p2/a/1.dcm'].patient}").raise_for_status()
    body = http.get(url + "/changes").json()
    assert [c["Seq"] for c in body["Changes"]] == [1, 2, 3, 4]
    assert body["Last"] == 4
    last = http.get(url + "/changes?last").json()
    assert [c["Seq"] for c in last["Changes"]] == [4]
    assert last["Last"] == 4


def test_exports(http, url):
    empty = {"Done": True, "Exports": [], "Last": 0}
    assert http.get(url + "/exports").json() == empty
    assert http.delete(url + "/exports").status_code == 200
    assert http.get(url + "/exports").json() == empty


# -- /tools/find -----------------------------------------------------------------------------------------------

def _text(item: Item, keyword: str) -> str:
    return str(item.ds.get(keyword, ""))


FIND_CASES = [
    ("Patient", {}, False, lambda i: True),
    ("Patient", {"PatientID": "PBX-002"}, False, lambda i: _text(i, "PatientID") == "PBX-002"),
    ("Patient", {"PatientName": "doe^john"}, False, lambda i: _text(i, "PatientID") == "PBX-001"),
    ("Patient", {"PatientName": "doe^john"}, True, lambda i: False),
    ("Patient", {"PatientName": "Doe^John"}, True, lambda i: _text(i, "PatientID") == "PBX-001"),
    ("Patient", {"PatientID": "PBX-00*"}, False, lambda i: _text(i, "PatientID").startswith("PBX-00")),
    ("Patient", {"PatientID": "PBX-00?"}, False, lambda i: _text(i, "PatientID") in ("PBX-001", "PBX-002")),
    ("Patient", {"PatientID": "PBX-??"}, False, lambda i: _text(i, "PatientID") == "PBX-MF"),
    ("Patient", {"PatientID": "PBX-001\\PBX-MF"}, False, lambda i: _text(i, "PatientID") in ("PBX-001", "PBX-MF")),
    ("Patient", {"0010,0020": "PBX-002"}, False, lambda i: _text(i, "PatientID") == "PBX-002"),
    ("Patient", {"PatientName": "Müller*"}, False, lambda i: _text(i, "PatientID") == "PBX-LATIN1"),
    ("Study", {"PatientID": "PBX-001"}, False, lambda i: _text(i, "PatientID") == "PBX-001"),
    ("Study", {"StudyDate": "20230101-20230630"}, False, lambda i: "20230101" <= _text(i, "StudyDate") <= "20230630"),
    ("Study", {"StudyDate": "20230701-"}, False, lambda i: _text(i, "StudyDate") >= "20230701"),
    ("Study", {"StudyDate": "-20230630"}, False, lambda i: _text(i, "StudyDate") <= "20230630"),
    ("Study", {"StudyDescription": "*STUDY*"}, False, lambda i: "study" in _text(i, "StudyDescription").lower()),
    ("Study", {"StudyDescription": "*STUDY*"}, True, lambda i: False),
    ("Study", {"StudyInstanceUID": uid("study", "PBX-001", "ct")}, False,
     lambda i: i.ds.StudyInstanceUID == uid("study", "PBX-001", "ct")),
    ("Study", {"ModalitiesInStudy": "MR"}, False, lambda i: _text(i, "Modality") == "MR"),
    ("Study", {"ModalitiesInStudy": "CT\\OT"}, False, lambda i: _text(i, "Modality") in ("CT", "OT")),
    ("Study", {"StudyDate": "20230101-20230630", "ModalitiesInStudy": "CT"}, False,
     lambda i: "20230101" <= _text(i, "StudyDate") <= "20230630" and _text(i, "Modality") == "CT"),
    ("Series", {"Modality": "MR"}, False, lambda i: _text(i, "Modality") == "MR"),
    ("Series", {"SeriesDescription": "MR series ?"}, False,
     lambda i: re.fullmatch("MR series .", _text(i, "SeriesDescription")) is not None),
    ("Series", {"SliceThickness": "5"}, False, lambda i: _text(i, "SliceThickness") == "5"),
    ("Instance", {"SliceThickness": "5"}, False, lambda i: _text(i, "SliceThickness") == "5"),
    ("Instance", {"InstanceNumber": "2"}, False, lambda i: _text(i, "InstanceNumber") == "2"),
    ("Instance", {"PatientID": "PBX-001", "SeriesNumber": "2"}, False,
     lambda i: _text(i, "PatientID") == "PBX-001" and _text(i, "SeriesNumber") == "2"),
]
_LEVEL_PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}


@pytest.mark.parametrize("level,query,case_sensitive,keep", FIND_CASES,
                         ids=[f"{c[0]}-{c[1]}-{'cs' if c[2] else 'ci'}" for c in FIND_CASES])
def test_find(http, url, items, uploads, level, query, case_sensitive, keep):
    body = {"Level": level, "Query": query}
    if case_sensitive:
        body["CaseSensitive"] = True
    response = http.post(url + "/tools/find", json=body)
    assert response.status_code == 200, response.text
    found = response.json()
    assert len(found) == len(set(found))
    expected = ids_at(items, _LEVEL_PLURAL[level], keep)
    assert set(found) == expected


def test_find_counts_are_not_trivial(items):
    """Guards the table above: the expected sets must be neither empty nor everything, except where meant."""
    sizes = {repr(case[:3]): len(ids_at(items, _LEVEL_PLURAL[case[0]], case[3])) for case in FIND_CASES}
    assert sizes[repr(("Instance", {"SliceThickness": "5"}, False))] == 12
    assert sizes[repr(("Series", {"SliceThickness": "5"}, False))] == 6
    assert sizes[repr(("Study", {"ModalitiesInStudy": "MR"}, False))] == 3
    assert sizes[repr(("Study", {"StudyDate": "20230101-20230630"}, False))] == 5
    assert sizes[repr(("Patient", {"PatientID": "PBX-??"}, False))] == 1


def test_find_expand(http, url, items, uploads):
    response = http.post(url + "/tools/find", json={"Level": "Series", "Query": {"Modality": "MR"}, "Expand": True})
    objects = response.json()
    assert {obj["ID"] for obj in objects} == ids_at(items, "series", lambda i: _text(i, "Modality") == "MR")
    for obj in objects:
        assert obj == http.get(f"{url}/series/{obj['ID']}").json()


def test_find_limit_and_since(http, url, items, uploads):
    query = {"Level": "Instance", "Query": {"PatientID": "PBX-001"}}
    everything = http.post(url + "/tools/find", json=query).json()
    assert set(everything) == ids_at(items, "instances", lambda i: _text(i, "PatientID") == "PBX-001")
    assert len(everything) == 13
    first = http.post(url + "/tools/find", json={**query, "Limit": 3}).json()
    assert first == everything[:3]
    second = http.post(url + "/tools/find", json={**query, "Limit": 3, "Since": 3}).json()
    assert second == everything[3:6]
    assert http.post(url + "/tools/find", json={**query, "Since": 10}).json() == everything[10:]
    pages = []
    for since in range(0, 15, 5):
        pages += http.post(url + "/tools/find", json={**query, "Limit": 5, "Since": since}).json()
    assert pages == everything


def test_find_limit_and_since_on_tags_read_from_files(http, url, items, uploads):
    query = {"Level": "Instance", "Query": {"SliceThickness": "5"}}
    everything = http.post(url + "/tools/find", json=query).json()
    assert len(everything) == 12
    assert http.post(url + "/tools/find", json={**query, "Limit": 4, "Since": 4}).json() == everything[4:8]


# -- /tools/lookup ---------------------------------------------------------------------------------------------

def test_lookup(http, url, items, uploads):
    item = items["mr/s2/2.dcm"]
    cases = [("PBX-001", "Patient", "patients", item.patient),
             (item.ds.StudyInstanceUID, "Study", "studies", item.study),
             (item.ds.SeriesInstanceUID, "Series", "series", item.series),
             (item.ds.SOPInstanceUID, "Instance", "instances", item.instance)]
    for value, kind, plural, public_id in cases:
        response = http.post(url + "/tools/lookup", data=value)
        assert response.status_code == 200, response.text
        assert response.json() == [{"ID": public_id, "Path": f"/{plural}/{public_id}", "Type": kind}], value
    assert http.post(url + "/tools/lookup", data="no-such-identifier").json() == []
    # Orthanc looks up the four identifiers only: an AccessionNumber finds nothing
    assert http.post(url + "/tools/lookup", data=item.ds.AccessionNumber).json() == []


# -- metadata --------------------------------------------------------------------------------------------------

def test_instance_builtin_metadata(http, url, items, uploads):
    for name, syntax in (("ct/1.dcm", EXPLICIT_LE), ("p2/b/1.dcm", IMPLICIT_LE)):
        item = items[name]
        base = f"{url}/instances/{item.instance}/metadata"
        listed = http.get(base).json()
        for key in ("IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax", "SopClassUid",
                    "RemoteIP", "HttpUsername"):
            assert key in listed, (name, key)
        values = http.get(base + "?expand").json()
        assert set(values) == set(listed)
        assert values["Origin"] == "RestApi"
        assert values["TransferSyntax"] == syntax
        assert values["SopClassUid"] == item.ds.SOPClassUID
        assert values["IndexInSeries"] == "1"
        assert values["RemoteIP"] == "127.0.0.1"
        assert values["RemoteAET"] == ""
        assert values["HttpUsername"] == "admin"
        assert TIMESTAMP.match(values["ReceptionDate"])
        for key, value in values.items():
            single = http.get(f"{base}/{key}")
            assert single.status_code == 200
            assert single.text == value, key


def test_instance_metadata_lists_pixel_data_offset(http, url, items, uploads):
    """Orthanc 1.10 records where the pixel data element starts (files with a meta header)."""
    item = items["ct/1.dcm"]
    listed = http.get(f"{url}/instances/{item.instance}/metadata").json()
    assert listed == ["IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax", "SopClassUid",
                      "RemoteIP", "HttpUsername", "PixelDataOffset"]
    offset = item.data.rfind(b"\xe0\x7f\x10\x00")  # the (7FE0,0010) tag, little endian
    assert http.get(f"{url}/instances/{item.instance}/metadata/PixelDataOffset").text == str(offset)


@pytest.mark.parametrize("level,keys", [("patients", {"LastUpdate"}), ("studies", {"LastUpdate"}),
                                        ("series", {"LastUpdate", "RemoteAET"})])
def test_parent_level_metadata(http, url, items, uploads, level, keys):
    public_id = items["ct/1.dcm"].id_at(level)
    values = http.get(f"{url}/{level}/{public_id}/metadata?expand").json()
    assert set(values) == keys
    assert values["LastUpdate"] == http.get(f"{url}/{level}/{public_id}").json()["LastUpdate"]
    assert http.get(f"{url}/{level}/{public_id}/metadata/LastUpdate").text == values["LastUpdate"]


def test_user_metadata(fresh_pacsbox, items):
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    item = items["ct/1.dcm"]
    http.post(url + "/instances", data=item.data).raise_for_status()
    base = f"{url}/instances/{item.instance}/metadata"
    response = http.put(base + "/Sample", data=b"hello world")
    assert response.status_code == 200, response.text
    assert http.get(base + "/Sample").text == "hello world"
    assert "Sample" in http.get(base).json()
    assert http.get(base + "?expand").json()["Sample"] == "hello world"
    last = http.get(url + "/changes?last").json()["Changes"]
    assert [(c["ChangeType"], c["ID"], c["ResourceType"], c["Path"], c["Seq"]) for c in last] == \
        [("UpdatedMetadata", item.instance, "Instance", f"/instances/{item.instance}", 5)]

    assert http.put(base + "/Sample", data=b"second").status_code == 200
    assert http.get(base + "/Sample").text == "second"

    assert http.delete(base + "/Sample").status_code == 200
    assert_error(http.get(base + "/Sample"), 404, 7, "Accessing an inexistent item")
    assert "Sample" not in http.get(base).json()
    last = http.get(url + "/changes?last").json()["Changes"]
    assert [(c["ChangeType"], c["ID"], c["Seq"]) for c in last] == [("UpdatedMetadata", item.instance, 7)]

    study = f"{url}/studies/{item.study}/metadata"
    assert http.put(study + "/Sample", data=b"on a study").status_code == 200
    assert http.get(study + "?expand").json() == {
        "LastUpdate": http.get(f"{url}/studies/{item.study}").json()["LastUpdate"], "Sample": "on a study"}


def test_put_builtin_metadata_is_forbidden(http, url, items, uploads):
    item = items["ct/1.dcm"]
    for name in ("Origin", "ReceptionDate", "IndexInSeries"):
        response = http.put(f"{url}/instances/{item.instance}/metadata/{name}", data=b"x")
        assert response.status_code == 403, (name, response.text)
    assert http.get(f"{url}/instances/{item.instance}/metadata/Origin").text == "RestApi"


def test_put_undeclared_metadata_is_404(http, url, items, uploads):
    item = items["ct/1.dcm"]
    response = http.put(f"{url}/instances/{item.instance}/metadata/Undeclared", data=b"x")
    assert_error(response, 404, 7, "Accessing an inexistent item")


# -- protection ------------------------------------------------------------------------------------------------

def test_protected(http, url, items, uploads):
    base = f"{url}/patients/{items['p2/a/1.dcm'].patient}/protected"
    try:
        assert http.get(base).text == "0"
        assert http.put(base, data=b"1").status_code == 200
        assert http.get(base).text == "1"
        assert http.put(base, data=b"0").status_code == 200
        assert http.get(base).text == "0"
        assert http.get(f"{url}/patients/{items['ct/1.dcm'].patient}/protected").text == "0"
    finally:
        http.put(base, data=b"0")


def test_protected_accepts_true_and_false(http, url, items, uploads):
    """Orthanc parses the body as a Boolean: 0/1 and true/false."""
    base = f"{url}/patients/{items['p2/b/1.dcm'].patient}/protected"
    try:
        assert http.put(base, data=b"true").status_code == 200
        assert http.get(base).text == "1"
        assert http.put(base, data=b"false").status_code == 200
        assert http.get(base).text == "0"
    finally:
        http.put(base, data=b"0")


# -- authentication --------------------------------------------------------------------------------------------

def test_no_credentials_is_401(url):
    response = requests.get(url + "/system")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    body = response.json()
    assert set(body) >= {"HttpError", "HttpStatus", "Message", "Method", "OrthancError", "OrthancStatus", "Uri"}
    assert body["HttpStatus"] == 401
    assert body["HttpError"] == "Unauthorized"
    assert body["Method"] == "GET"
    assert body["Uri"] == "/system"


def test_wrong_password_is_401(url):
    response = requests.get(url + "/patients", auth=("admin", "not-the-password"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(url + "/patients", auth=("nobody", "admin")).status_code == 401


def test_health_needs_no_credentials(url):
    response = requests.get(url + "/pacsbox/health")
    assert response.status_code == 200


def test_authentication_can_be_disabled(items):
    with RunningPacsbox({"AuthenticationEnabled": False}) as server:
        assert requests.get(server.url + "/system").json()["Version"] == "1.10.1"
        response = requests.post(server.url + "/instances", data=items["ct/1.dcm"].data)
        assert response.status_code == 200
        assert requests.get(server.url + "/instances").json() == [items["ct/1.dcm"].instance]
        metadata = requests.get(f"{server.url}/instances/{items['ct/1.dcm'].instance}/metadata?expand").json()
        assert metadata["HttpUsername"] == ""


# -- deletion --------------------------------------------------------------------------------------------------

def _stored_files(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in directory.rglob("*") if path.is_file()]


def test_delete_cascades_to_empty_parents(fresh_pacsbox, items):
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    ct1, ct2, mr = items["ct/1.dcm"], items["ct/2.dcm"], items["mr/s1/1.dcm"]
    for item in (ct1, ct2, mr):
        http.post(url + "/instances", data=item.data).raise_for_status()

    response = http.delete(f"{url}/instances/{ct2.instance}")
    assert response.status_code == 200
    assert response.json() == {"RemainingAncestor": {"ID": ct1.series, "Path": f"/series/{ct1.series}",
                                                     "Type": "Series"}}
    assert http.get(f"{url}/instances/{ct2.instance}").status_code == 404
    assert http.get(f"{url}/instances/{ct2.instance}/file").status_code == 404
    assert http.get(f"{url}/series/{ct1.series}").json()["Instances"] == [ct1.instance]

    # the last instance of the CT study: series and study go, the patient keeps its MR study
    response = http.delete(f"{url}/instances/{ct1.instance}")
    assert response.json() == {"RemainingAncestor": {"ID": ct1.patient, "Path": f"/patients/{ct1.patient}",
                                                     "Type": "Patient"}}
    assert http.get(f"{url}/series/{ct1.series}").status_code == 404
    assert http.get(f"{url}/studies/{ct1.study}").status_code == 404
    assert http.get(f"{url}/patients/{ct1.patient}").json()["Studies"] == [mr.study]
    size = len(mr.data)
    stats = http.get(url + "/statistics").json()
    assert stats == {"CountPatients": 1, "CountStudies": 1, "CountSeries": 1, "CountInstances": 1,
                     "TotalDiskSize": str(size), "TotalDiskSizeMB": 0,
                     "TotalUncompressedSize": str(size), "TotalUncompressedSizeMB": 0}

    response = http.delete(f"{url}/instances/{mr.instance}")
    assert response.json() == {"RemainingAncestor": None}
    for level in LEVELS:
        assert http.get(f"{url}/{level}").json() == []
    assert http.get(url + "/statistics").json() == {
        "CountPatients": 0, "CountStudies": 0, "CountSeries": 0, "CountInstances": 0,
        "TotalDiskSize": "0", "TotalDiskSizeMB": 0, "TotalUncompressedSize": "0", "TotalUncompressedSizeMB": 0}
    leftovers = _stored_files(fresh_pacsbox.data_dir)
    for item in (ct1, ct2, mr):
        assert item.data not in leftovers


def test_delete_at_every_level(fresh_pacsbox, items):
    http, url = fresh_pacsbox.session(), fresh_pacsbox.url
    mine = [item for name, item in items.items() if name.startswith(("ct/", "mr/"))]
    for item in mine:
        http.post(url + "/instances", data=item.data).raise_for_status()
    s1, s2 = items["mr/s1/1.dcm"], items["mr/s2/1.dcm"]

    response = http.delete(f"{url}/series/{s1.series}")
    assert response.json() == {"RemainingAncestor": {"ID": s1.study, "Path": f"/studies/{s1.study}",
                                                     "Type": "Study"}}
    remaining = [item for item in mine if item.series != s1.series]
    assert sorted(http.get(url + "/instances").json()) == sorted(item.instance for item in remaining)

    response = http.delete(f"{url}/studies/{s2.study}")
    assert response.json() == {"RemainingAncestor": {"ID": s2.patient, "Path": f"/patients/{s2.patient}",
                                                     "Type": "Patient"}}
    remaining = [item for item in remaining if item.study != s2.study]
    assert len(remaining) == 5
    stats = http.get(url + "/statistics").json()
    assert (stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 1, 5)
    assert stats["TotalDiskSize"] == str(sum(len(item.data) for item in remaining))

    response = http.delete(f"{url}/patients/{s2.patient}")
    assert response.json() == {"RemainingAncestor": None}
    assert http.get(url + "/statistics").json()["TotalDiskSize"] == "0"
    leftovers = _stored_files(fresh_pacsbox.data_dir)
    assert not any(item.data in leftovers for item in mine)
