"""Every data set generates valid, deterministic DICOM Part 10 files: pydicom round trips, dcmtk reads them
without a complaint, pixel data decodes, and the hierarchy and labels are what the data set promises."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter

import pytest
from pydicom import dcmread

from pacsbox import datasets
from pacsbox.datasets import mr
from pacsbox.datasets.model import MissingExtra, Options
from tests.support import dcmtk

DICOM_SETS = [name for name in datasets.names() if datasets.DATASETS[name].dicom]


@pytest.fixture(scope="module")
def generated():
    """Every data set at the default size, in memory, generated once for the module."""
    return {name: list(datasets.sessions(name)) for name in datasets.names()}


def _files(sessions):
    return [item for session in sessions for item in session.files]


@pytest.mark.parametrize("name", DICOM_SETS)
def test_every_file_round_trips_through_pydicom_and_decodes(generated, name):
    for item in _files(generated[name]):
        ds = dcmread(io.BytesIO(item.data))
        assert item.path.endswith(".dcm")
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        again = dcmread(io.BytesIO(buffer.getvalue()))
        assert again == ds, item.path
        if ds.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.1.99":  # deflate output may differ, values do not
            assert buffer.getvalue() == item.data, item.path
        if "PixelData" in ds:
            pixels = ds.pixel_array
            assert pixels.std() > 0, f"{item.path}: flat pixel data"


@pytest.mark.parametrize("name", DICOM_SETS)
def test_dcmdump_reads_every_file_without_error_or_warning(generated, name, tmp_path):
    if dcmtk.tool("dcmdump") is None:
        pytest.skip(dcmtk.SKIP_REASON)
    paths = []
    for item in _files(generated[name]):
        path = tmp_path / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)
        paths.append(path)
    result = dcmtk.run("dcmdump", "-q", *paths)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(("E:", "W:"))]
    assert result.returncode == 0 and not complaints, complaints[:5] or result.stderr[-2000:]


def test_dcmtk_decodes_the_compressed_pixel_data(generated, tmp_path):
    """A second implementation decodes what our encoders wrote (dcmtk has no JPEG 2000 decoder)."""
    if dcmtk.tool("dcmdjpeg") is None:
        pytest.skip(dcmtk.SKIP_REASON)
    decoders = {"1.2.840.10008.1.2.4.50": "dcmdjpeg", "1.2.840.10008.1.2.5": "dcmdrle",
                "1.2.840.10008.1.2.4.80": "dcmdjpls"}
    done = Counter()
    for item in _files(generated["compressed"]):
        syntax = dcmread(io.BytesIO(item.data), stop_before_pixels=True).file_meta.TransferSyntaxUID
        if syntax in decoders:
            source = tmp_path / "in.dcm"
            source.write_bytes(item.data)
            result = dcmtk.run(decoders[syntax], source, tmp_path / "out.dcm")
            assert result.returncode == 0, result.stderr
            done[syntax] += 1
    assert set(done) == set(decoders)


def test_compressed_uses_one_transfer_syntax_per_series(generated):
    syntaxes = {}
    for item in _files(generated["compressed"]):
        ds = dcmread(io.BytesIO(item.data), stop_before_pixels=True)
        syntaxes.setdefault(ds.SeriesDescription, set()).add(str(ds.file_meta.TransferSyntaxUID))
    assert syntaxes == {
        "Key images (JPEG)": {"1.2.840.10008.1.2.4.50"}, "RLE Lossless": {"1.2.840.10008.1.2.5"},
        "JPEG-LS Lossless": {"1.2.840.10008.1.2.4.80"}, "JPEG 2000 Lossless": {"1.2.840.10008.1.2.4.90"},
        "Deflated Explicit VR LE": {"1.2.840.10008.1.2.1.99"},
    }


def test_a_missing_encoder_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jpeg_ls", None)  # as if pyjpegls were not installed
    with pytest.raises(MissingExtra, match=r"missing: pyjpegls\): pip install 'pacsbox\[compression\]'"):
        list(datasets.sessions("compressed"))


@pytest.mark.parametrize("name", datasets.names())
def test_same_seed_same_bytes_and_another_seed_other_uids(generated, name, tmp_path):
    first = datasets.generate(name, tmp_path / "a")
    again = datasets.generate(name, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in again]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, again, strict=True))
    assert [a.read_bytes() for a in first] == [item.data for item in _files(generated[name])]
    if datasets.DATASETS[name].dicom:
        def uids(sessions):
            found = set()
            for item in _files(sessions):
                ds = dcmread(io.BytesIO(item.data), stop_before_pixels=True)
                found |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
            return found
        assert not uids(generated[name]) & uids(datasets.sessions(name, seed=7))


def test_each_session_is_one_study_labelled_in_patient_comments(generated):
    for name in DICOM_SETS:
        for session in generated[name]:
            heads = [dcmread(io.BytesIO(item.data), stop_before_pixels=True) for item in session.files]
            assert len({ds.StudyInstanceUID for ds in heads}) == 1
            assert len({ds.PatientID for ds in heads}) == 1
            assert {ds.PatientComments for ds in heads} == {
                f"Project:{session.project} Subject:{session.subject} Session:{session.label}"}
            series = {}
            for ds in heads:  # a series' number and description are the same in all its instances
                series.setdefault(ds.SeriesInstanceUID, set()).add((ds.SeriesNumber, ds.SeriesDescription))
            assert all(len(values) == 1 for values in series.values())
            numbers = [ds.InstanceNumber for ds in heads]
            assert len(set(zip([ds.SeriesInstanceUID for ds in heads], numbers, strict=True))) == len(heads)


def test_dummydicom_is_shaped_like_xnat4tests(generated):
    (session,) = generated["dummydicom"]
    assert (session.project, session.subject, session.label) == (
        "dummydicomproject", "dummydicomsubject", "dummydicomsession")
    heads = [dcmread(io.BytesIO(item.data), stop_before_pixels=True) for item in session.files]
    assert Counter((ds.SeriesNumber, ds.SeriesDescription) for ds in heads) == {
        (2, "t1_mprage_sag_p2_iso_1"): 8, (13, "R-L MRtrix 60 directions interleaved B0 ep2d_diff_p2"): 12,
        (6, "gre_field_mapping 3mm"): 8}
    assert {(ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions) for ds in heads} == {
        ("SIEMENS", "Skyra", "syngo MR D13C")}
    assert sum(len(item.data) for item in session.files) < 300_000
    dwi = [ds for ds in heads if ds.SeriesNumber == 13]
    assert sorted({int(ds.DiffusionBValue) for ds in dwi}) == [0, 3000]
    assert all(ds[0x0019, 0x100C].value in ("0", "3000") for ds in dwi)  # Siemens' private B_value


def test_full_size_series_match_xnat4tests_counts():
    full = Options(size="full")
    t1w, fmap, dwi = mr._t1w(full), mr._fmap(full), mr._dwi(full)
    assert (t1w.stack.rows, t1w.stack.columns, t1w.stack.slices) == (256, 240, 192)
    assert len(mr._images(t1w, "t1w", True)) == 192
    assert len(mr._images(fmap, "fmap", True)) == 120
    images = mr._images(dwi, "dwi", True)
    assert len(images) == 67 * 60 == 4020
    assert sum(1 for image in images if image.diffusion[1] is None) == 7 * 60  # seven interleaved b=0 volumes


def test_images_agree_with_their_geometry(generated):
    """The phantom is sampled where the plane tags say the pixels are: a slice through the head's centre
    has more tissue than one at the edge of the stack."""
    heads = [dcmread(io.BytesIO(item.data)) for item in _files(generated["dummydicom"])[:8]]
    tissue = [(abs(float(ds.SliceLocation)), (ds.pixel_array > 100).mean()) for ds in heads]
    tissue.sort()
    assert tissue[0][1] > tissue[-1][1]


def test_user_training_labels(generated):
    sessions = generated["user-training"]
    assert [s.label for s in sessions] == ["CONT01_MR01", "CONT02_MR01", "CONT01_MR02", "CONT02_MR02",
                                           "TEST01_MR01", "TEST01_MR02", "TEST02_MR01", "TEST02_MR02"]
    assert {s.project for s in sessions} == {"TRAINING"}
    assert sorted({s.subject for s in sessions}) == ["CONT01", "CONT02", "TEST01", "TEST02"]


def test_simple_dir_files(tmp_path):
    paths = datasets.generate("simple-dir", tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in paths) == [
        f"subject0{s}_1/a-dir/file{n}.txt" for s in (1, 2) for n in (1, 2, 3)]
    assert (tmp_path / "subject02_1/a-dir/file3.txt").read_text() == "A dummy file - 3\n"


def test_many_counts_and_options():
    sessions = list(datasets.sessions("many", patients=3, studies=2, series=2, instances=2))
    assert len(sessions) == 6 and sum(len(s.files) for s in sessions) == 24
    assert len({s.subject for s in sessions}) == 3
    with pytest.raises(ValueError, match="has no option patient"):
        datasets.generate("many", "/nonexistent", patient=3)
    with pytest.raises(ValueError, match="at least 1"):
        list(datasets.sessions("many", instances=0))
    with pytest.raises(ValueError, match="size must be one of small, full"):
        list(datasets.sessions("dummydicom", size="huge"))
    with pytest.raises(KeyError, match="No data set 'nope'"):
        datasets.generate("nope", "/nonexistent")


def test_sample_series_for_serve_keeps_its_shape():
    files = list(datasets.ct_study())
    heads = [dcmread(io.BytesIO(data), stop_before_pixels=True) for _, data in files]
    assert len(files) == 8 and len({ds.SeriesInstanceUID for ds in heads}) == 1


def test_importing_the_package_stays_cheap():
    code = "import sys, pacsbox.datasets; print(sorted({'numpy', 'pydicom', 'pynetdicom'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
