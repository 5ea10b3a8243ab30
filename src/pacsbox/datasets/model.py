"""What a data set is made of: files grouped by XNAT session, and the description of each named data set."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

SIZES = ("small", "full")
#: How add_data can upload: XNAT import service (archive, prearchive), Orthanc REST, DICOM C-STORE.
METHODS = ("xnat-import", "xnat-prearchive", "orthanc-rest", "c-store")


class MissingExtra(ImportError):
    """A data set needs a package of one of pacsbox's extras (the message says which ``pip install`` to run)."""


@dataclass(frozen=True)
class DataFile:
    """One generated file: its path relative to the data set's directory (POSIX separators) and its bytes."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Session:
    """The files of one XNAT session: a DICOM study, or (``resource`` set) non-DICOM files of a scan resource.

    The labels are where XNAT files the session; DICOM data sets also carry them in Patient Comments
    (``Project:P Subject:S Session:E``), which is where XNAT's import service and DICOM receiver look.
    """

    files: tuple[DataFile, ...]
    project: str
    subject: str
    label: str
    #: Non-DICOM sessions: scan ID, scan type and resource label the files go to, and the prefix of the files'
    #: paths that is not part of their path inside the resource.
    scan: str = ""
    scan_type: str = ""
    resource: str = ""
    root: str = ""

    @property
    def is_dicom(self) -> bool:
        return not self.resource

    def resource_path(self, item: DataFile) -> str:
        """The path of a non-DICOM file inside its resource."""
        return item.path[len(self.root):].lstrip("/") if self.root else item.path


@dataclass(frozen=True)
class Options:
    """What a generator is asked for: the seed, the size (``small`` or ``full``) and its own options."""

    seed: int = 0
    size: str = "small"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.size == "full"

    def pick(self, small: Any, full: Any) -> Any:
        """``small`` or ``full`` according to the size asked for."""
        return full if self.full else small


@dataclass(frozen=True)
class Dataset:
    """A named, seeded, deterministic data set.

    ``generator`` is ``"module:function"`` inside :mod:`pacsbox.datasets`, imported on first use so that
    listing data sets does not import numpy or the encoders.
    """

    name: str
    description: str
    generator: str
    #: XNAT labels are passed to the import service (as xnat4tests does); otherwise XNAT's own rules read them.
    explicit_labels: bool = False
    dicom: bool = True
    #: The data set's own options and their defaults (``many``: patients, studies, series, instances).
    options: Mapping[str, int] = field(default_factory=dict)
    #: The extra whose packages the generator needs ("" when the main dependencies do).
    extra: str = ""

    def build(self, options: Options) -> Iterator[Session]:
        """The sessions of the data set, lazily, in a fixed order."""
        module_name, function_name = self.generator.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        builder: Callable[[Options], Iterator[Session]] = getattr(module, function_name)
        return builder(options)

    def resolve(self, seed: int = 0, size: str = "small", **options: Any) -> Options:
        """Check the size and the options against what this data set accepts; fill in the defaults."""
        if size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"Data set {self.name!r} has no option {', '.join(unknown)} (its options: {accepted})")
        values = dict(self.options)
        for key, value in options.items():
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"Option {key} of {self.name!r} must be a whole number, not {value!r}") from None
            if number < 1:
                raise ValueError(f"Option {key} of {self.name!r} must be at least 1, not {number}")
            values[key] = number
        return Options(seed=int(seed), size=size, extra=values)
