"""Image routes (issue 18) compared with the real Orthanc 1.10.1: decoded arrays (numpy, image-uint16, raw frames),
preview and rendered images after decoding, MATLAB text, and the failures (frames out of range, broken streams,
huge headers and sizes, unknown Accept), for every transfer syntax and photometric interpretation of the sample data.

Lossless data must match exactly. Lossy (JPEG baseline) frames are decoded by Pillow's libjpeg-turbo in pacsbox and
by DCMTK's IJG libjpeg in Orthanc: their IDCTs and chroma upsampling differ by a few levels, within
``LOSSY_TOLERANCE``. Orthanc 1.10.1 cannot decode JPEG 2000: there the reference is Orthanc's decoding of the same
pixels stored uncompressed (``Sample.reference``).
"""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pytest
import requests
from PIL import Image

from tests.support import pixel_samples
from tests.support.orthanc_ref import SKIP_REASON, ReferenceOrthanc, have_orthanc
from tests.support.pacsbox_proc import RunningPacsbox

pytestmark = pytest.mark.skipif(not have_orthanc(), reason=SKIP_REASON)

#: largest difference of a decoded JPEG baseline sample (grey or YBR) between Pillow and DCMTK's libjpeg
LOSSY_TOLERANCE = 4
SAMPLES = {sample.name: sample for sample in pixel_samples.samples()}
LOSSLESS = [name for name, sample in SAMPLES.items() if not sample.lossy]
GREY = [name for name in SAMPLES if name not in ("rgb", "palette", "ybr-jpeg")]
J2K = "compressed-JPEG2000Lossless"


class Pair:
    """pacsbox and the real Orthanc holding the same instances; ``ids`` per sample: (pacsbox's ID, the ID whose
    decoding Orthanc is compared with)."""

    def __init__(self, ours: RunningPacsbox, theirs: ReferenceOrthanc) -> None:
        self.ours, self.theirs = ours, theirs
        self.ours_session, self.theirs_session = ours.session(), theirs.session
        self.ids: dict[str, tuple[str, str]] = {}

    def store(self, name: str, data: bytes, reference: bytes | None = None) -> None:
        ours = self.ours_session.post(self.ours.url + "/instances", data=data)
        ours.raise_for_status()
        theirs = self.theirs.upload(data)
        assert theirs["ID"] == ours.json()["ID"]
        self.ids[name] = (ours.json()["ID"], self.theirs.upload(reference)["ID"] if reference else theirs["ID"])

    def get(self, path: str, *, same_file: bool = False, **kwargs) -> tuple[requests.Response, requests.Response]:
        """GET ``path`` ({name} replaced by the IDs) from both; ``same_file`` asks Orthanc about the stored file
        itself, never its uncompressed twin."""
        ours_path, theirs_path = path, path
        for name, (ours_id, theirs_id) in self.ids.items():
            ours_path = ours_path.replace("{" + name + "}", ours_id)
            theirs_path = theirs_path.replace("{" + name + "}", ours_id if same_file else theirs_id)
        return (self.ours_session.get(self.ours.url + ours_path, timeout=60, **kwargs),
                self.theirs_session.get(self.theirs.url + theirs_path, timeout=60, **kwargs))


@pytest.fixture(scope="module")
def pair():
    with RunningPacsbox() as ours, ReferenceOrthanc(graceful_stop=False) as theirs:
        servers = Pair(ours, theirs)
        for name, sample in SAMPLES.items():
            servers.store(name, sample.data, sample.reference)
        servers.store("corrupt", pixel_samples.corrupt_jpeg())
        servers.store("huge", pixel_samples.huge_frame())
        servers.store("sr", pixel_samples.structured_report())
        for number, data in enumerate(pixel_samples.series_of("ct-study", SAMPLES["ct"].data)):
            servers.store(f"ct-slice-{number}", data)
        yield servers


def _image(answer: requests.Response) -> np.ndarray:
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return np.array(Image.open(io.BytesIO(answer.content)))


def _npy(answer: requests.Response) -> np.ndarray:
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return np.load(io.BytesIO(answer.content))


def _tolerance(name: str) -> int:
    return LOSSY_TOLERANCE if SAMPLES[name].lossy else 0


def _close(ours: np.ndarray, theirs: np.ndarray, tolerance: int) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    difference = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    assert difference.max(initial=0) <= tolerance, f"differs by up to {difference.max()}"


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("query", ["rescale=false", "", "compress=true"])
def test_numpy_arrays(pair, name, query):
    """/numpy decodes every frame as Orthanc does (shape, type, values); rescaled greyscale in float32."""
    ours, theirs = pair.get(f"/instances/{{{name}}}/numpy?{query}")
    if "compress" in query:
        ours_arrays, theirs_arrays = np.load(io.BytesIO(ours.content)), np.load(io.BytesIO(theirs.content))
        assert list(ours_arrays.keys()) == list(theirs_arrays.keys()) == ["arr_0"]
        _close(ours_arrays["arr_0"], theirs_arrays["arr_0"], _tolerance(name))
        return
    _close(_npy(ours), _npy(theirs), _tolerance(name))
    if not SAMPLES[name].lossy and name != J2K:
        assert ours.content == theirs.content, "the same .npy bytes, header included"


@pytest.mark.parametrize("name", LOSSLESS)
def test_numpy_of_one_frame(pair, name):
    ours, theirs = pair.get(f"/instances/{{{name}}}/frames/0/numpy?rescale=0")
    _close(_npy(ours), _npy(theirs), 0)


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("route", ["image-uint8", "image-uint16", "image-int16"])
def test_truncated_images(pair, name, route):
    """/image-uint8, -uint16, -int16: greyscale saturated to the type (PNG); colour is refused with an empty 415."""
    ours, theirs = pair.get(f"/instances/{{{name}}}/{route}")
    assert ours.status_code == theirs.status_code
    if theirs.status_code == 415:
        assert ours.content == theirs.content == b""
        return
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
    _close(_image(ours), _image(theirs), _tolerance(name))


@pytest.mark.parametrize("name", list(SAMPLES))
def test_raw_frames(pair, name):
    """frames/0/raw: the frame as stored (bitstream or bytes), Orthanc's content type; raw.gz the same, gzipped."""
    ours, theirs = pair.get(f"/instances/{{{name}}}/frames/0/raw", same_file=True)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    assert ours.content == theirs.content
    ours_gz, theirs_gz = pair.get(f"/instances/{{{name}}}/frames/0/raw.gz", same_file=True)
    assert ours_gz.headers["content-type"] == theirs_gz.headers["content-type"] == "application/gzip"
    assert gzip.decompress(ours_gz.content) == gzip.decompress(theirs_gz.content) == theirs.content


def test_raw_frames_of_a_multiframe(pair):
    for frame in (1, 7):
        ours, theirs = pair.get(f"/instances/{{mr-multiframe}}/frames/{frame}/raw")
        assert ours.content == theirs.content and len(ours.content) == 64 * 64 * 2


@pytest.mark.parametrize("name", list(SAMPLES))
def test_preview(pair, name):
    """/preview: greyscale stretched from minimum to maximum (MONOCHROME1 inverted), colour as it is."""
    ours, theirs = pair.get(f"/instances/{{{name}}}/preview")
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
    _close(_image(ours), _image(theirs), 2 * _tolerance(name))  # stretching can double a decoding difference


@pytest.mark.parametrize("name", ["ct", "monochrome1", "pet-signed", "compressed-JPEGLSLossless", "seg-1bit",
                                  "compressed-JPEGBaseline8Bit", "rgb", "mr-multiframe"])
@pytest.mark.parametrize("query", ["", "window-center=100&window-width=300", "window-width=0", "window-center=1e3",
                                   "width=32", "height=100", "width=100&height=16", "width=20&smooth=1",
                                   "width=0"])
def test_rendered(pair, name, query):
    """/rendered: rescale and the data set's window (or the request's), MONOCHROME1 inverted, then resized."""
    ours, theirs = pair.get(f"/instances/{{{name}}}/rendered?{query}")
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "image/png"
    _close(_image(ours), _image(theirs), 2 * _tolerance(name))


@pytest.mark.parametrize("path", ["/instances/{mr-multiframe}/frames/5/preview",
                                  "/instances/{ybr-jpeg}/frames/1/preview",
                                  "/instances/{mr-multiframe}/frames/3/rendered?width=16",
                                  "/instances/{mr-multiframe}/frames/2/image-uint16"])
def test_other_frames(pair, path):
    ours, theirs = pair.get(path)
    _close(_image(ours), _image(theirs), LOSSY_TOLERANCE if "ybr" in path else 0)


@pytest.mark.parametrize("accept,media_type", [
    ("image/jpeg", "image/jpeg"), ("image/x-portable-arbitrarymap", "image/x-portable-arbitrarymap"),
    ("image/*", "image/png"), ("image/webp, image/jpeg;q=0.5, image/png;q=0.4", "image/jpeg"),
    ("image/png;q=0.5, image/jpeg;q=0.5", "image/png"), ("text/html, image/*;q=0.1", "image/png"),
    ("image/jpeg; charset=x", "image/jpeg"),
])
def test_accept(pair, accept, media_type):
    """Orthanc's content negotiation: most specific first, then quality, then the first listed."""
    for name in ("ct", "rgb"):
        ours, theirs = pair.get(f"/instances/{{{name}}}/preview?quality=95", headers={"Accept": accept})
        assert ours.headers["content-type"] == theirs.headers["content-type"] == media_type
        if media_type == "image/x-portable-arbitrarymap":
            assert ours.content == theirs.content, "the same PAM bytes"
        else:
            _close(_image(ours), _image(theirs), LOSSY_TOLERANCE if media_type == "image/jpeg" else 0)


def test_matlab(pair):
    for path in ("/instances/{ct}/matlab", "/instances/{rgb}/matlab", "/instances/{pet-signed}/matlab",
                 "/instances/{mr-multiframe}/frames/6/matlab", "/instances/{palette}/matlab",
                 "/instances/{seg-1bit}/frames/3/matlab", "/instances/{" + J2K + "}/matlab"):
        ours, theirs = pair.get(path)
        assert ours.status_code == theirs.status_code == 200
        assert ours.headers["content-type"] == theirs.headers["content-type"]
        assert ours.text == theirs.text, path


def test_frame_listing(pair):
    for path in ("/instances/{ct}/frames/0", "/instances/{ct}/frames/12", "/instances/nope/frames/x"):
        ours, theirs = pair.get(path)
        assert ours.status_code == theirs.status_code == 200 and ours.json() == theirs.json()


def test_series_numpy(pair):
    """/series/{id}/numpy stacks the slices in Orthanc's order (a CT series stored backwards, a multi-frame one, a
    lone slice), rescaled or not."""
    depths = {}
    for name in ("ct", "mr-multiframe", "pet-signed"):
        series = pair.ours_session.get(f"{pair.ours.url}/instances/{pair.ids[name][0]}/series").json()["ID"]
        for query in ("rescale=0", "compress=0"):
            ours, theirs = pair.get(f"/series/{series}/numpy?{query}")
            assert ours.status_code == theirs.status_code == 200
            assert ours.content == theirs.content, (name, query)
        depths[name] = _npy(ours).shape[0]
    assert depths == {"ct": len(pixel_samples.series_of("ct-study", SAMPLES["ct"].data)), "mr-multiframe": 8,
                      "pet-signed": 1}


def test_concurrent_images_keep_the_server_serving(pair):
    """Many image requests at once are served in turn (two decodes at a time) while other routes keep answering."""
    from concurrent.futures import ThreadPoolExecutor

    ours_id = pair.ids["mr-multiframe"][0]
    paths = [f"/instances/{ours_id}/frames/{frame % 8}/{route}" for frame in range(24)
             for route in ("preview", "rendered?width=128", "numpy", "raw")]

    def fetch(path: str) -> int:
        with requests.Session() as session:
            session.auth = pair.ours.auth
            return session.get(pair.ours.url + path, timeout=60).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = pool.submit(lambda: list(ThreadPoolExecutor(12).map(fetch, paths)))
        assert pair.ours_session.get(pair.ours.url + "/system", timeout=10).status_code == 200
        assert set(statuses.result(timeout=120)) == {200}


def _same_failure(ours: requests.Response, theirs: requests.Response) -> None:
    assert ours.status_code == theirs.status_code, (ours.status_code, theirs.status_code, ours.text[:300])
    if not theirs.content:
        assert ours.content == b""
        return
    mine, reference = ours.json(), theirs.json()
    for key in ("HttpError", "HttpStatus", "Message", "Method", "OrthancError", "OrthancStatus", "Uri"):
        assert mine[key] == reference[key], key
    if reference.get("Details", "").startswith("Expected"):  # Orthanc's own argument messages
        assert mine["Details"] == reference["Details"]


FAILURES = [
    # frames that are not there or not numbers
    "/instances/{ct}/frames/1/preview", "/instances/{ct}/frames/99/rendered", "/instances/{ct}/frames/-1/preview",
    "/instances/{ct}/frames/abc/image-uint16", "/instances/{ct}/frames/99/raw", "/instances/{ct}/frames/abc/raw",
    "/instances/{ct}/frames/99/numpy", "/instances/{ct}/frames/abc/numpy", "/instances/{ct}/frames/99/matlab",
    "/instances/{ct}/frames/abc/matlab", "/instances/{ct}/frames/4294967296/raw",
    "/instances/nope/preview", "/instances/nope/numpy", "/instances/nope/frames/0/raw", "/instances/nope/matlab",
    "/series/nope/numpy",
    # arguments
    "/instances/{ct}/preview?quality=0", "/instances/{ct}/preview?quality=abc", "/instances/{ct}/rendered?width=abc",
    "/instances/{ct}/rendered?width=-5", "/instances/{ct}/rendered?width=32.5", "/instances/{ct}/rendered?smooth=yes",
    "/instances/{ct}/rendered?window-center=abc", "/instances/{ct}/rendered?width=99999999999",
    "/instances/{ct}/rendered?window-width=1e400", "/instances/{ct}/rendered?window-center=%C2%B2",
    "/instances/{ct}/frames/%C2%B2/preview", "/instances/{ct}/frames/%C2%B2/raw",
    "/instances/{ct}/preview?quality=5000",
    "/instances/{ct}/numpy?compress=True", "/instances/{ct}/numpy?rescale=yes",
    # colour where greyscale is needed, broken and huge pixel data
    "/instances/{rgb}/image-uint8", "/instances/{palette}/image-int16", "/instances/{corrupt}/preview",
    "/instances/{corrupt}/rendered", "/instances/{corrupt}/numpy", "/instances/{corrupt}/matlab",
    "/instances/{huge}/preview", "/instances/{huge}/frames/2/rendered", "/instances/{huge}/numpy",
    "/instances/{huge}/matlab", "/instances/{huge}/frames/0/raw",
    # no pixel data at all (Orthanc: "not implemented", 500)
    "/instances/{sr}/preview", "/instances/{sr}/rendered", "/instances/{sr}/numpy", "/instances/{sr}/matlab",
    "/instances/{sr}/frames/0/raw", "/instances/{sr}/frames/0/numpy",
]


@pytest.mark.parametrize("path", FAILURES)
def test_failures_like_orthanc(pair, path):
    _same_failure(*pair.get(path))


@pytest.mark.parametrize("accept", ["text/html", "IMAGE/JPEG", "", "garbage;;;"])
def test_unknown_accept_is_an_empty_404(pair, accept):
    _same_failure(*pair.get("/instances/{ct}/preview", headers={"Accept": accept}))


def test_huge_sizes_are_refused_not_attempted(pair):
    """The real Orthanc dies of ``width=1000000`` (it allocates a terabyte): pacsbox refuses the size as an argument
    out of range (an empty 404, Orthanc's answer to a width it cannot read) and keeps serving."""
    session, url = pair.ours_session, pair.ours.url
    ct = pair.ids["ct"][0]
    for query in ("width=1000000", "height=1000000", "width=30000&height=30000"):
        answer = session.get(f"{url}/instances/{ct}/rendered?{query}", timeout=30)
        assert answer.status_code == 404 and answer.content == b"", query
    assert session.get(f"{url}/instances/{ct}/rendered?width=2048", timeout=30).status_code == 200
    assert session.get(f"{url}/instances/{ct}/preview", timeout=30).status_code == 200


def test_compressed_numpy_is_a_zip(pair):
    ours, _ = pair.get("/instances/{ct}/numpy?compress=1")
    with zipfile.ZipFile(io.BytesIO(ours.content)) as archive:
        assert archive.namelist() == ["arr_0"]
        assert archive.infolist()[0].compress_type == zipfile.ZIP_DEFLATED


def test_a_lying_frame_count_is_refused_before_anything_is_sized(pair):
    """A one-frame instance announcing a billion frames: the real Orthanc grows past 9 GB on its frames/5/raw (so it
    is not asked here); pacsbox refuses what would need them at once and still serves the one real frame."""
    session, url = pair.ours_session, pair.ours.url
    instance = session.post(f"{url}/instances", data=pixel_samples.lying_frames(), timeout=30).json()["ID"]
    series = session.get(f"{url}/instances/{instance}/series", timeout=30).json()["ID"]
    for path in (f"/instances/{instance}/numpy", f"/instances/{instance}/frames/5/raw", f"/series/{series}/numpy"):
        answer = session.get(url + path, timeout=30)
        assert answer.status_code == 400 and answer.json()["Message"] == "Bad file format", path
    assert session.get(f"{url}/instances/{instance}/frames/5/preview", timeout=30).status_code == 415
    assert session.get(f"{url}/instances/{instance}/frames/0/raw", timeout=30).content.startswith(b"\xff\xd8")
    assert _image(session.get(f"{url}/instances/{instance}/preview", timeout=30)).shape == (64, 64)
