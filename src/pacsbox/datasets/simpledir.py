"""xnat4tests' ``simple-dir``: no DICOM, a directory of text files in a scan resource of two sessions.

As xnat4tests 0.4.1 uploads it: project SIMPLE_DIR, subjects subject01 and subject02, MR sessions subject01_1 and
subject02_1, each with scan 1 of type ``a-directory`` whose resource ``DIRECTORY`` holds ``a-dir/file1.txt`` to
``a-dir/file3.txt`` containing ``A dummy file - N``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .model import DataFile, Options, Session

PROJECT = "SIMPLE_DIR"


def simple_dir(options: Options) -> Iterator[Session]:
    """The ``simple-dir`` data set (the seed and the size change nothing: its content is fixed)."""
    for subject in ("subject01", "subject02"):
        label = f"{subject}_1"
        files = tuple(DataFile(f"{label}/a-dir/file{n}.txt", f"A dummy file - {n}\n".encode()) for n in (1, 2, 3))
        yield Session(files, PROJECT, subject, label, scan="1", scan_type="a-directory", resource="DIRECTORY",
                      root=label)
