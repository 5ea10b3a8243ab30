"""DICOM media (zip with DICOMDIR) against the real Orthanc 1.10.1: the same files byte for byte, the same directory
records (file IDs aside: pydicom names them), and a DICOMDIR that dcmtk reads."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import warnings
import zipfile

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from tests.faces.orthanc.test_attachments import Pair
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

_LAYOUT = (0x00041400, 0x00041410, 0x00041420, 0x00041500)  # offsets, in-use flag, file ID: layout, not content


@pytest.fixture(scope="module")
def pair(corpus):
    with ReferenceOrthanc(graceful_stop=False) as reference, RunningPacsbox() as ours:
        both = Pair(ours, reference)
        for _, data in corpus:
            mine, theirs = both.call("POST", "/instances", data=data)
            assert mine.status_code == theirs.status_code == 200
        yield both


def _ids(pair: Pair, level: str) -> list[str]:
    """The resources of a level, but those of PBX-NOMETA (stored without a file header: no media for them)."""
    session, url = pair.reference_session, pair.reference.url
    patients = session.get(f"{url}/patients?expand").json()
    nometa = next(row["ID"] for row in patients if row["MainDicomTags"]["PatientID"] == "PBX-NOMETA")
    left_out = {nometa} | {row["ID"] for other in ("studies", "series", "instances")
                           for row in session.get(f"{url}/patients/{nometa}/{other}").json()}
    return [public_id for public_id in session.get(f"{url}/{level}").json() if public_id not in left_out]


def _records(dicomdir: bytes) -> list[tuple]:
    """Every directory record as (type, its elements but the layout ones), sorted."""
    dataset = dcmread(io.BytesIO(dicomdir))
    assert dataset.FileSetID == "ORTHANC_MEDIA"
    records = []
    for record in dataset.DirectoryRecordSequence:
        values = tuple((int(element.tag), str(element.value)) for element in record if int(element.tag) not in _LAYOUT)
        records.append((record.DirectoryRecordType, values))
    return sorted(records)


def _paths(dicomdir: bytes, folder) -> set[tuple[str, ...]]:
    """(PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of every instance the DICOMDIR holds."""
    (folder / "DICOMDIR").write_bytes(dicomdir)
    with warnings.catch_warnings():  # (the DICOMDIR alone: pydicom warns that the files are not beside it)
        warnings.simplefilter("ignore")
        return {(str(i.PatientID), str(i.StudyInstanceUID), str(i.SeriesInstanceUID), str(i.SOPInstanceUID))
                for i in FileSet(folder / "DICOMDIR")}


def _compare(pair: Pair, method: str, path: str, tmp_path, **kwargs) -> zipfile.ZipFile:
    ours, reference = pair.call(method, path, **kwargs)
    assert ours.status_code == reference.status_code == 200, (path, ours.text)
    assert ours.headers["content-type"] == reference.headers["content-type"] == "application/zip"
    assert ours.headers["content-disposition"] == reference.headers["content-disposition"]
    mine, theirs = zipfile.ZipFile(io.BytesIO(ours.content)), zipfile.ZipFile(io.BytesIO(reference.content))

    def files(archive: zipfile.ZipFile) -> list[str]:
        return sorted(hashlib.md5(archive.read(name)).hexdigest() for name in archive.namelist() if name != "DICOMDIR")

    assert files(mine) == files(theirs), path  # the stored files, byte for byte
    assert mine.namelist()[-1] == theirs.namelist()[-1] == "DICOMDIR"
    assert _records(mine.read("DICOMDIR")) == _records(theirs.read("DICOMDIR")), path
    (tmp_path / "ours").mkdir(exist_ok=True)
    (tmp_path / "theirs").mkdir(exist_ok=True)
    assert _paths(mine.read("DICOMDIR"), tmp_path / "ours") == _paths(theirs.read("DICOMDIR"), tmp_path / "theirs")
    _dcmtk_reads(mine, tmp_path / "extracted")
    return mine


def _dcmtk_reads(media: zipfile.ZipFile, folder) -> None:
    """dcmdump reads the DICOMDIR and every file it references without complaint; dcmftest finds each a DICOM file."""
    if not shutil.which("dcmdump"):
        return
    shutil.rmtree(folder, ignore_errors=True)
    media.extractall(folder)
    dump = subprocess.run(["dcmdump", "-q", str(folder / "DICOMDIR")], capture_output=True, text=True, errors="replace")
    assert dump.returncode == 0 and "E:" not in dump.stderr, dump.stderr
    dicom_files = [str(folder / name) for name in media.namelist()]
    every = subprocess.run(["dcmdump", "-q", *dicom_files], capture_output=True, text=True, errors="replace")
    assert every.returncode == 0 and "E:" not in every.stderr, every.stderr
    if shutil.which("dcmftest"):
        tested = subprocess.run(["dcmftest", *dicom_files], capture_output=True, text=True)
        lines = [line for line in tested.stdout.splitlines() if line.strip()]
        assert len(lines) == len(dicom_files) and all(line.startswith("yes:") for line in lines), lines


def test_media_of_each_study(pair, tmp_path):
    for study in _ids(pair, "studies"):
        _compare(pair, "GET", f"/studies/{study}/media", tmp_path)


def test_media_of_a_file_without_header(pair):
    """A file stored without its PS3.10 header cannot go on media: Orthanc fails after its 200 (an empty body),
    pacsbox says so before answering (400, Orthanc's "Bad file format")."""
    studies = pair.reference_session.get(f"{pair.reference.url}/studies?expand").json()
    study = next(row["ID"] for row in studies if row["PatientMainDicomTags"]["PatientID"] == "PBX-NOMETA")
    ours, reference = pair.call("GET", f"/studies/{study}/media")
    assert reference.status_code == 200 and reference.content == b""
    assert ours.status_code == 400 and ours.json()["OrthancStatus"] == 15
    assert "header" in ours.json()["Details"]


def test_media_of_patients_and_series(pair, tmp_path):
    for patient in _ids(pair, "patients")[:3]:
        _compare(pair, "GET", f"/patients/{patient}/media?extended", tmp_path)
    for series in _ids(pair, "series")[:3]:
        _compare(pair, "POST", f"/series/{series}/media", tmp_path, json={"Extended": True})
        _compare(pair, "POST", f"/series/{series}/media", tmp_path, json={"Synchronous": True})


def test_create_media(pair, tmp_path):
    mixed = [_ids(pair, "patients")[0], _ids(pair, "series")[-1], _ids(pair, "instances")[-1]]
    whole = _compare(pair, "POST", "/tools/create-media", tmp_path, json=mixed)
    assert len(whole.namelist()) > 3
    _compare(pair, "POST", "/tools/create-media-extended", tmp_path, json={"Resources": mixed})
    _compare(pair, "POST", "/tools/create-media", tmp_path, json={"Resources": _ids(pair, "studies")})


def test_bad_media_requests(pair):
    instance = _ids(pair, "instances")[0]
    for method, path, body in (("POST", "/tools/create-media", ["nosuchresource"]),
                               ("GET", "/studies/nosuchstudy/media", None)):
        ours, reference = pair.call(method, path, json=body)
        assert ours.status_code == reference.status_code == 404
        assert ours.json()["OrthancStatus"] == reference.json()["OrthancStatus"] == 17
    ours, reference = pair.call("GET", f"/instances/{instance}/media")
    assert ours.status_code == reference.status_code == 404
    ours, reference = pair.call("POST", "/tools/create-media", data=b"{not json")
    assert ours.status_code == reference.status_code == 400
    ours, reference = pair.call("POST", "/tools/create-media", json={"Resources": [instance], "Synchronous": 1})
    assert ours.status_code == reference.status_code == 400
    assert ours.json() == reference.json()  # "Boolean value expected in field: Synchronous"
    assert pair.ours_session.get(f"{pair.ours.url}/instances/{instance}").status_code == 200


def test_asynchronous_media_is_a_job(pair):
    series = _ids(pair, "series")[0]
    for path, body in (("/tools/create-media-extended", {"Resources": [series], "Asynchronous": True}),
                       (f"/series/{series}/media", {"Synchronous": False}),
                       ("/tools/create-media", {"Resources": [series], "Asynchronous": True, "Priority": 3})):
        ours, reference = pair.call("POST", path, json=body)
        assert ours.status_code == reference.status_code == 200
        assert sorted(ours.json()) == sorted(reference.json()) == ["ID", "Path"]
        assert ours.json()["Path"] == f"/jobs/{ours.json()['ID']}"


def test_synchronous_media_is_a_job_listed_as_orthanc_lists_it(pair):
    """Orthanc runs a synchronous media request as a Media job too: the zip is the answer, and /jobs lists the job
    (its Content as the asynchronous one's); a Priority that is not an integer is Orthanc's "Bad file format"."""
    series = _ids(pair, "series")[0]
    listed = []
    for session, url in ((pair.ours_session, pair.ours.url), (pair.reference_session, pair.reference.url)):
        before = set(session.get(f"{url}/jobs").json())
        answer = session.post(f"{url}/series/{series}/media", json={"Synchronous": True, "Priority": 5})
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"
        new = [session.get(f"{url}/jobs/{job_id}").json() for job_id in set(session.get(f"{url}/jobs").json())
               - before]
        listed.append([(job["Type"], job["State"], job["Priority"], sorted(job["Content"]),
                        job["Content"]["InstancesCount"]) for job in new])
    assert listed[0] == listed[1] and listed[0][0][:3] == ("Media", "Success", 5)
    ours, reference = pair.call("POST", f"/series/{series}/media", json={"Priority": "high"})
    assert ours.status_code == reference.status_code == 400
    assert ours.json() == reference.json()
