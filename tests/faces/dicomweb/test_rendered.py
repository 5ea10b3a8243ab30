"""WADO-RS rendered and thumbnail resources: through the real dicomweb-client, compared with the Orthanc DICOMweb
plugin 1.7 (status, media type, image size, pixels: PNG exactly, JPEG within a few levels), and hostile parameters."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support.dicomgen import make_dataset, to_bytes, uid
from tests.support.pacsbox_proc import RunningPacsbox

from .test_qido import JOHN_MR_SERIES_2, JOHN_MR_STUDY
from .test_wado import MF, MF_PATH
from .test_wado_uri import CT

CT_PATH = "studies/{}/series/{}/instances/{}".format(*CT)


def _image(answer) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(answer.content))).astype(int)


def _get(server_url: str, session, path: str, accept: str | None):
    return session.get(f"{server_url}/dicom-web/{path}", headers={"Accept": accept} if accept else {})


def _stretched(pixels: np.ndarray) -> np.ndarray:
    """The plugin's WADO-RS rendering without a window: minimum..maximum to 0..255, rounded."""
    low, high = pixels.min(), pixels.max()
    return np.floor((pixels.astype(float) - low) * 255 / (high - low) + 0.5).astype(int)


def test_rendered_with_the_client(client, corpus):
    frames = pydicom.dcmread(io.BytesIO(dict(corpus)["multiframe/1.dcm"])).pixel_array
    png = client.retrieve_instance_rendered(*MF, media_types=("image/png",))
    assert (np.asarray(Image.open(io.BytesIO(png))) == _stretched(frames[0])).all()
    second = client.retrieve_instance_frames_rendered(*MF, frame_numbers=[2], media_types=("image/png",))
    assert (np.asarray(Image.open(io.BytesIO(second))) == _stretched(frames[1])).all()
    jpeg = client.retrieve_instance_rendered(*MF, params={"viewport": "4,4", "quality": "95"})
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (4, 4)
    series = client.retrieve_series_rendered(JOHN_MR_STUDY, JOHN_MR_SERIES_2, media_types=("image/png",))
    assert Image.open(io.BytesIO(series)).format == "PNG"


SAME_AS_THE_PLUGIN = [
    f"{MF_PATH}/rendered", f"{MF_PATH}/frames/2/rendered", f"{MF_PATH}/frames/3/rendered", f"{CT_PATH}/rendered",
    f"studies/{JOHN_MR_STUDY}/series/{JOHN_MR_SERIES_2}/rendered", f"studies/{JOHN_MR_STUDY}/rendered",
    f"{MF_PATH}/rendered?viewport=4,4", f"{MF_PATH}/rendered?viewport=16,8", f"{MF_PATH}/rendered?viewport=,4",
    f"{CT_PATH}/rendered?viewport=128,64", f"{MF_PATH}/rendered?viewport=4,4,2,2,4,4",
    f"{MF_PATH}/rendered?window=1000,500,linear", f"{CT_PATH}/rendered?window=40,400,linear",
    f"{MF_PATH}/rendered?window=1000,500,sigmoid", f"{MF_PATH}/rendered?window=100,0,linear",
]


@pytest.mark.parametrize("path", SAME_AS_THE_PLUGIN)
def test_same_png_as_the_plugin(loaded_pacsbox, dicomweb_reference, path):
    ours = _get(loaded_pacsbox.url, loaded_pacsbox.session(), path, "image/png")
    theirs = _get(dicomweb_reference.url, dicomweb_reference.session, path, "image/png")
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
    ours_image, theirs_image = _image(ours), _image(theirs)
    assert ours_image.shape == theirs_image.shape and (ours_image == theirs_image).all()


def test_same_instance_of_a_study_or_series_as_the_plugin(loaded_pacsbox, dicomweb_reference):
    """With a fixed window the instances of John's MR study differ (stretched, they look alike): the plugin shows
    the instance with the smallest Orthanc ID."""
    series = [answer["0020000E"]["Value"][0] for answer in dicomweb_reference.session.get(
        f"{dicomweb_reference.url}/dicom-web/studies/{JOHN_MR_STUDY}/series").json()]
    shown = set()
    for path in [f"studies/{JOHN_MR_STUDY}"] + [f"studies/{JOHN_MR_STUDY}/series/{one}" for one in series]:
        path += "/rendered?window=2048,4096,linear"
        ours = _get(loaded_pacsbox.url, loaded_pacsbox.session(), path, "image/png")
        theirs = _get(dicomweb_reference.url, dicomweb_reference.session, path, "image/png")
        assert (_image(ours) == _image(theirs)).all(), path
        shown.add(ours.content)
    assert len(series) == 3 and len(shown) == 3  # the series show three different instances


@pytest.mark.parametrize("path,accept", [(f"{MF_PATH}/rendered", None), (f"{MF_PATH}/rendered", "*/*"),
                                         (f"{CT_PATH}/rendered?quality=10", "image/jpeg")])
def test_same_jpeg_as_the_plugin(loaded_pacsbox, dicomweb_reference, path, accept):
    ours = _get(loaded_pacsbox.url, loaded_pacsbox.session(), path, accept)
    theirs = _get(dicomweb_reference.url, dicomweb_reference.session, path, accept)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/jpeg"
    difference = np.abs(_image(ours) - _image(theirs))  # lossy: two encoders may differ by a few levels
    assert difference.max() <= 8


@pytest.mark.parametrize("path", [
    f"{MF_PATH}/frames/1,2/rendered", f"{MF_PATH}/frames/4/rendered", f"{MF_PATH}/frames/0/rendered",
    f"{MF_PATH}/frames/x/rendered", f"{MF_PATH}/frames/%C2%B2/rendered", f"{MF_PATH}/rendered?viewport=x",
    f"{MF_PATH}/rendered?viewport=4,4,0,0",
    f"{MF_PATH}/rendered?window=100,200", f"{MF_PATH}/rendered?window=x,y,linear",
    f"{MF_PATH}/rendered?window=100,200,foo", f"{MF_PATH}/rendered?quality=0", f"{MF_PATH}/rendered?quality=101",
    f"{MF_PATH}/rendered?quality=x", f"studies/{MF[0]}/series/{MF[1]}/instances/1.2.3/rendered",
    f"studies/{MF[0]}/series/1.2.3/rendered", "studies/1.2.3/rendered",
])
def test_same_errors_as_the_plugin(loaded_pacsbox, dicomweb_reference, path):
    ours = _get(loaded_pacsbox.url, loaded_pacsbox.session(), path, None)
    theirs = _get(dicomweb_reference.url, dicomweb_reference.session, path, None)
    assert ours.status_code == theirs.status_code and ours.status_code in (400, 404)
    assert ours.json()["Message"] == theirs.json()["Message"]
    if "Details" in theirs.json():
        assert ours.json()["Details"] == theirs.json()["Details"]


@pytest.mark.parametrize("query", [
    "viewport=0,0", "viewport=70000,4", "viewport=4096,4097", "viewport=-1,4", "viewport=4,4,0,0,9,8",
    "viewport=4,4,nan,0,2,2", "viewport=4,4,0,0,-2,2", "viewport=4,4,1e308,0,2,2", "window=nan,1,linear",
    "window=1e309,1,linear", "quality=99999999999999999999", "viewport=" + "9" * 5000 + ",4",
    "viewport=%C2%B2,4", "quality=%C2%B2", "quality=" + "9" * 5000,
])
def test_hostile_parameters_are_400(loaded_pacsbox, query):
    """The plugin 1.7 dies on the first two (its process ends); pacsbox refuses a side above 4096."""
    answer = _get(loaded_pacsbox.url, loaded_pacsbox.session(), f"{MF_PATH}/rendered?{query}", None)
    assert answer.status_code == 400 and answer.json()["Message"] == "Parameter out of range", answer.text


def test_hostile_values_that_still_render(loaded_pacsbox):
    """Extreme but well-formed windows render (clipped), as the plugin renders them."""
    session = loaded_pacsbox.session()
    for query in ["window=1e300,1e-300,sigmoid", "window=-1e300,0,linear-exact", "window=0,-5,linear",
                  "viewport=4096,1", "frames=1"]:
        answer = _get(loaded_pacsbox.url, session, f"{MF_PATH}/rendered?{query}", "image/png")
        assert answer.status_code == 200, (query, answer.text)


@pytest.mark.parametrize("accept", ["image/gif", "application/json", "text/html", 'multipart/related; type="image/png"',
                                    "image/png;q=0"])
def test_unsupported_accept_is_406(loaded_pacsbox, accept):
    """PS3.18 8.7.5 (the plugin answers 400)."""
    answer = _get(loaded_pacsbox.url, loaded_pacsbox.session(), f"{MF_PATH}/rendered", accept)
    assert answer.status_code == 406 and answer.json()["HttpStatus"] == 406


@pytest.mark.parametrize("accept,media_type", [("image/png, image/jpeg", "image/png"), ("image/*", "image/jpeg"),
                                               ("image/gif, image/png;q=0.5", "image/png")])
def test_accept_lists_are_negotiated(loaded_pacsbox, accept, media_type):
    """PS3.18 8.7.4 (the plugin takes only one exact type: it answers 400 to these)."""
    answer = _get(loaded_pacsbox.url, loaded_pacsbox.session(), f"{MF_PATH}/rendered", accept)
    assert answer.status_code == 200 and answer.headers["content-type"] == media_type
    assert Image.open(io.BytesIO(answer.content)).format == media_type.split("/")[1].upper()


def test_thumbnail_follows_ps3_18(loaded_pacsbox, corpus):
    """The plugin 1.7 serves no thumbnail (404 Unknown resource); pacsbox serves PS3.18 10.4.1.1.4's."""
    session = loaded_pacsbox.session()
    frames = pydicom.dcmread(io.BytesIO(dict(corpus)["multiframe/1.dcm"])).pixel_array
    for path in [f"{MF_PATH}/thumbnail", f"{MF_PATH}/frames/1/thumbnail", f"studies/{MF[0]}/series/{MF[1]}/thumbnail",
                 f"studies/{MF[0]}/thumbnail"]:
        answer = _get(loaded_pacsbox.url, session, path, "image/png")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", path
        assert (_image(answer) == _stretched(frames[0])).all()  # smaller than 128 pixels: as it is
    sized = _get(loaded_pacsbox.url, session, f"{MF_PATH}/frames/3/thumbnail?viewport=4,4", None)
    assert sized.headers["content-type"] == "image/jpeg" and _image(sized).shape == (4, 4)
    assert _get(loaded_pacsbox.url, session, f"{MF_PATH}/thumbnail?viewport=0,4", None).status_code == 400


def _odd(kind: str, extra: dict):
    return make_dataset(patient_id="PBX-RENDER", patient_name="Render^Odd", study_uid=uid("study", "render"),
                        series_uid=uid("series", "render", kind), sop_uid=uid("instance", "render", kind),
                        modality="OT", rows=6, cols=10, extra=extra)


def _odd_images() -> dict:
    """Colour, signed with a rescale, MONOCHROME1: what the corpus lacks (6 x 10, not square)."""
    colour = np.random.default_rng(7).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    signed = np.arange(60, dtype=np.int16).reshape(6, 10) * 97 - 3000
    return {
        "rgb": _odd("rgb", {"PhotometricInterpretation": "RGB", "SamplesPerPixel": 3, "PlanarConfiguration": 0,
                            "BitsAllocated": 8, "BitsStored": 8, "HighBit": 7, "PixelData": colour.tobytes(),
                            "WindowCenter": None, "WindowWidth": None}),
        "signed": _odd("signed", {"PixelRepresentation": 1, "BitsStored": 16, "HighBit": 15,
                                  "PixelData": signed.tobytes(), "RescaleSlope": "2", "RescaleIntercept": "-100"}),
        "monochrome1": _odd("monochrome1", {"PhotometricInterpretation": "MONOCHROME1",
                                            "PixelData": (np.arange(60, dtype=np.uint16) * 60).tobytes()}),
    }


@pytest.fixture(scope="module")
def odd_pair(dicomweb_reference):
    """A pacsbox of its own and the module's plugin, both holding the odd images."""
    images = _odd_images()
    with RunningPacsbox() as server:
        for dataset in images.values():
            data = to_bytes(dataset)
            server.session().post(server.url + "/instances", data=data).raise_for_status()
            dicomweb_reference.upload(data)
        yield server, images


@pytest.mark.parametrize("kind", ["rgb", "signed", "monochrome1"])
@pytest.mark.parametrize("query", ["", "?viewport=5,3", "?viewport=20,20", "?window=0,2000,linear"])
def test_same_png_of_other_images_as_the_plugin(odd_pair, dicomweb_reference, kind, query):
    server, images = odd_pair
    dataset = images[kind]
    path = (f"studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/instances/"
            f"{dataset.SOPInstanceUID}/rendered{query}")
    ours = _get(server.url, server.session(), path, "image/png")
    theirs = _get(dicomweb_reference.url, dicomweb_reference.session, path, "image/png")
    assert ours.status_code == theirs.status_code == 200
    ours_image, theirs_image = _image(ours), _image(theirs)
    assert ours_image.shape == theirs_image.shape and (ours_image == theirs_image).all()
