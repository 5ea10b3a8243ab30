"""The named data sets, and generating one into a directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .model import Dataset, Session

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("dummydicom", "xnat4tests' MR session: T1w MPRAGE, field map, diffusion (Siemens Skyra)",
            "mr:dummydicom", explicit_labels=True),
    Dataset("ct-study", "A contrast CT abdomen: topogram, 5 mm soft-tissue and 2 mm sharp series",
            "ct:ct_study_dataset"),
    Dataset("pet-ct", "FDG PET-CT: attenuation CT, PET with and without attenuation correction",
            "petct:pet_ct"),
    Dataset("multiframe", "One Enhanced MR Image holding a whole axial T2 stack", "enhanced:multiframe"),
    Dataset("sr-seg", "A liver CT series, its segmentation (SEG) and a measurement report (SR)", "srseg:sr_seg"),
    Dataset("compressed", "One series per transfer syntax: JPEG baseline, RLE, JPEG-LS, JPEG 2000, deflate",
            "compressed:compressed", extra="compression"),
    Dataset("simple-dir", "xnat4tests' non-DICOM files: a directory in a scan resource of two sessions",
            "simpledir:simple_dir", explicit_labels=True, dicom=False),
    Dataset("user-training", "xnat4tests' TRAINING project: 4 subjects, 8 MR sessions (T1w, field map)",
            "mr:user_training", explicit_labels=True),
    Dataset("worklist", "Modality worklist items (.wl files): CT, MR, US, DX steps, accents, Greek, nested codes",
            "worklist:worklist", dicom=False),
    Dataset("many", "patients x studies x series x instances small CT images, for scale tests", "many:many",
            options={"patients": 2, "studies": 1, "series": 2, "instances": 3}),
)}


def names() -> list[str]:
    """The names of the data sets, in the registry's order."""
    return list(DATASETS)


def get(name: str) -> Dataset:
    """The data set called ``name``; ``KeyError`` with the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"No data set {name!r}; known: {', '.join(DATASETS)}") from None


def sessions(name: str, *, seed: int = 0, size: str = "small", **options: Any) -> Iterator[Session]:
    """The sessions of a data set, generated lazily in memory; same arguments, same bytes."""
    dataset = get(name)
    return dataset.build(dataset.resolve(seed, size, **options))


def generate(name: str, directory: str | Path, *, seed: int = 0, size: str = "small", **options: Any) -> list[Path]:
    """Write the files of data set ``name`` under ``directory`` and return their paths, in generation order.

    DICOM files are Part 10 ``.dcm`` files, one folder per session and series; ``simple-dir`` writes text files.
    Same seed (and options), same bytes. ``size`` is ``"small"`` (the default, quick) or ``"full"``.
    """
    root = Path(directory)
    written = []
    for session in sessions(name, seed=seed, size=size, **options):
        for item in session.files:
            path = root / item.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.data)
            written.append(path)
    return written
