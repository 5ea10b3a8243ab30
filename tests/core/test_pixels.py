"""core.pixels and core.frame_index in-process: frames as stored and decoded, the budget, the decode slots, the
choice of decoder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydicom.uid import JPEGBaseline8Bit, JPEGLosslessSV1, JPEGLSLossless, RLELossless

from pacsbox.core import errors, frame_index, pixels
from tests.support import pixel_samples

SAMPLES = {sample.name: sample for sample in pixel_samples.samples()}


@pytest.mark.parametrize("name", [name for name in SAMPLES if name != "seg-1bit"])
def test_frames_read_from_the_file_equal_the_parsed_ones(tmp_path, name):
    path = tmp_path / "instance.dcm"
    path.write_bytes(SAMPLES[name].data)
    dataset = pixel_samples.read(SAMPLES[name].data)
    for index in range(pixels.frame_count(dataset)):
        layout = frame_index.read_layout(path)
        if "Deflated" in name:
            assert layout is None, "deflated files are parsed whole"
        else:
            assert layout is not None and layout.syntax == pixels.transfer_syntax(dataset)
            assert layout.read(path, index) == pixels.raw_frame(dataset, index)


def test_frames_out_of_range_and_short_pixel_data(tmp_path):
    dataset = pixel_samples.read(SAMPLES["mr-multiframe"].data)
    with pytest.raises(errors.InexistentItem):
        pixels.raw_frame(dataset, 8)
    path = tmp_path / "huge.dcm"
    path.write_bytes(pixel_samples.huge_frame())
    with pytest.raises(errors.BadFormat, match="holds 8 bytes"):
        frame_index.read_layout(path)
    with pytest.raises(pixels.PixelTooLarge):
        pixels.decode_frame(pixel_samples.read(pixel_samples.huge_frame()), 0)


def test_decoded_frames_are_in_rgb_with_the_palette_looked_up():
    rgb = pixels.decode_frame(pixel_samples.read(SAMPLES["ybr-jpeg"].data), 1)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    palette = pixels.decode_frame(pixel_samples.read(SAMPLES["palette"].data), 0)
    indexes = pixels.decode_frame(pixel_samples.read(SAMPLES["palette"].data), 0, palette=False)
    assert (palette[..., 0] == indexes.astype(np.uint16) * 257).all()


def test_every_syntax_keeps_its_codec_and_gdcm_decodes_only_jpeg_lossless():
    assert pixels.decoding_plugin(str(JPEGBaseline8Bit)) == "pillow"
    assert pixels.decoding_plugin(str(JPEGLSLossless)) == "pyjpegls"
    assert pixels.decoding_plugin(str(RLELossless)) != "gdcm"
    assert pixels.decoding_plugin(str(JPEGLosslessSV1)) == "gdcm"


def test_decode_slots_bound_the_work_and_are_reentrant():
    inside, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def work():
        with pixels.decode_slot(), pixels.decode_slot():  # re-entered: still one slot
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            release.wait(5)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    threading.Timer(0.3, release.set).start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == pixels.CONCURRENT_DECODES


def test_a_broken_stream_is_bad_format_not_a_crash():
    with pytest.raises(errors.BadFormat, match="Cannot decode frame 0"):
        pixels.decode_frame(pixel_samples.read(pixel_samples.corrupt_jpeg()), 0)


@pytest.mark.parametrize("has_bot,fragments_per_frame", [(True, 1), (False, 1), (True, 3)])
def test_encapsulated_layouts_follow_the_offset_table_or_the_fragments(tmp_path, has_bot, fragments_per_frame):
    from pydicom.encaps import encapsulate, get_frame

    dataset = pixel_samples.read(SAMPLES["ybr-jpeg"].data)
    frames = [get_frame(dataset.PixelData, index, number_of_frames=2) for index in range(2)]
    dataset.PixelData = encapsulate(frames, fragments_per_frame=fragments_per_frame, has_bot=has_bot)
    path = tmp_path / "frames.dcm"
    path.write_bytes(pixel_samples.encode(dataset))
    layout = frame_index.read_layout(path)
    if not has_bot and fragments_per_frame > 1:
        assert layout is None
        return
    assert layout is not None and [layout.read(path, index) for index in range(2)] == frames
    with pytest.raises(errors.InexistentItem):
        layout.read(path, 2)
