"""``many``: N patients x studies x series x instances of small CT images, for benchmarks and scale tests.

Every study is a session of project MANY (labels in Patient Comments); UIDs, dates and noise differ per patient
and study, so each instance is distinct. ``size="full"`` makes 256x256 images instead of 32x32.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import builder as b
from . import ct
from . import phantoms as ph
from .model import DataFile, Options, Session

PROJECT = "MANY"
DEFAULTS = {"patients": 2, "studies": 1, "series": 2, "instances": 3}
_RECONSTRUCTIONS = ("Abdomen  5.0  B30f", "Abdomen  2.0  B70f", "Abdomen  3.0  Br40 cor", "Abdomen  1.0  Br36")


def many(options: Options) -> Iterator[Session]:
    """The ``many`` data set, session by session (memory stays bounded whatever the counts)."""
    counts = {**DEFAULTS, **options.extra}
    size = options.pick(32, 256)
    for p in range(1, counts["patients"] + 1):
        subject = f"MANY{p:04d}"
        for s in range(1, counts["studies"] + 1):
            label = f"{subject}_CT{s:02d}"
            namespace = ("many", p, s)
            patient = b.Patient(subject, f"Many^Patient{p:04d}", f"19{40 + p % 60:02d}0{1 + p % 9}15",
                                "FM"[p % 2], weight=55.0 + p % 40, size=1.55 + (p % 40) / 100,
                                comments=b.labels_comment(PROJECT, subject, label))
            date = b.at("20200101", "000000", (p * 7 + s * 40) * 86400)[0]
            study = b.Study(patient, b.uid(options.seed, *namespace, "study"), date, f"{8 + s % 10:02d}3000",
                            "CT ABDOMEN", f"M{p:04d}{s:03d}")
            files: list[DataFile] = []
            for n in range(1, counts["series"] + 1):
                stack = ph.Stack(size, size, (360 / size, 360 / size), counts["instances"],
                                 max(2.0, 200 / counts["instances"]), b.AXIAL, centre=(0.0, 10.0, 40.0))
                spec = ct.CtSeries(n, _RECONSTRUCTIONS[(n - 1) % len(_RECONSTRUCTIONS)], "B30f", stack, 12.0,
                                   60.0 + n * 30)
                files += ct.series_files(study, spec, options, label, namespace)
            yield Session(tuple(files), PROJECT, subject, label)
