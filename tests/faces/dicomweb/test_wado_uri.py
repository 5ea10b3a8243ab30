"""WADO-URI at /wado: the stored file, and the first frame rendered, compared with the Orthanc DICOMweb plugin.
(dicomweb-client speaks only the RESTful services, so these requests are plain ``requests``.)"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support.dicomgen import uid

from .test_wado import MF

CT = (uid("study", "PBX-001", "ct"), uid("series", "PBX-001", "ct", 1), uid("instance", "PBX-001", "ct", 1, 3))


def _wado(server_url: str, session, query: str):
    # the query is sent as written: the plugin does not percent-decode "image%2Fpng"
    return session.get(f"{server_url}/wado?{query}")


def _query(uids, content_type: str | None = "application/dicom") -> str:
    study, series, instance = uids
    query = f"requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={instance}"
    return query + (f"&contentType={content_type}" if content_type else "")


def test_the_stored_file(loaded_pacsbox, corpus):
    answer = _wado(loaded_pacsbox.url, loaded_pacsbox.session(), _query(MF))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/dicom"
    assert answer.content == dict(corpus)["multiframe/1.dcm"]
    only_object = _wado(loaded_pacsbox.url, loaded_pacsbox.session(), f"requestType=WADO&objectUID={MF[2]}"
                        "&contentType=application/dicom")
    assert only_object.content == answer.content


def test_rendered_first_frame(loaded_pacsbox, corpus):
    png = _wado(loaded_pacsbox.url, loaded_pacsbox.session(), _query(MF, "image/png"))
    assert png.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(png.content)))
    assert image.shape == (8, 8)
    jpeg = _wado(loaded_pacsbox.url, loaded_pacsbox.session(), _query(MF, None))
    assert jpeg.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    # WindowCenter 2048 / WindowWidth 4096: 0..4096 maps to 0..255
    pixels = pydicom.dcmread(io.BytesIO(dict(corpus)["multiframe/1.dcm"])).pixel_array[0]
    assert (image == np.floor(pixels.astype(float) * 255 / 4096).astype(np.uint8)).all()


@pytest.mark.parametrize("query,status", [
    ("requestType=WADO&objectUID=1.2.3&contentType=application/dicom", 404),
    (f"requestType=WADO&studyUID=1.2&seriesUID={MF[1]}&objectUID={MF[2]}&contentType=application/dicom", 404),
    (f"requestType=FOO&objectUID={MF[2]}", 404), (f"objectUID={MF[2]}", 404), ("requestType=WADO", 404),
    (f"requestType=WADO&objectUID={MF[2]}&contentType=text/html", 400),
])
def test_errors_as_the_plugin(loaded_pacsbox, dicomweb_reference, query, status):
    ours = _wado(loaded_pacsbox.url, loaded_pacsbox.session(), query)
    theirs = _wado(dicomweb_reference.url, dicomweb_reference.session, query)
    assert ours.status_code == theirs.status_code == status
    assert ours.json()["Message"] == theirs.json()["Message"]


@pytest.mark.parametrize("uids", [MF, CT], ids=["multiframe", "ct"])
def test_same_files_and_pixels_as_the_plugin(loaded_pacsbox, dicomweb_reference, uids):
    def both(content_type):
        return (_wado(loaded_pacsbox.url, loaded_pacsbox.session(), _query(uids, content_type)),
                _wado(dicomweb_reference.url, dicomweb_reference.session, _query(uids, content_type)))

    ours, theirs = both("application/dicom")
    assert ours.content == theirs.content and ours.headers["content-type"] == theirs.headers["content-type"]
    ours, theirs = both("image/png")
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
    ours_pixels, theirs_pixels = (np.asarray(Image.open(io.BytesIO(a.content))) for a in (ours, theirs))
    assert (ours_pixels == theirs_pixels).all()
    ours, theirs = both("image/jpeg")  # lossy: the two encoders may differ by a few levels
    difference = np.abs(np.asarray(Image.open(io.BytesIO(ours.content))).astype(int)
                        - np.asarray(Image.open(io.BytesIO(theirs.content))).astype(int))
    assert difference.max() <= 8
