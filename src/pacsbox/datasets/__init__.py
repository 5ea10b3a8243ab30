"""Sample DICOM data generated locally (nothing is downloaded): seeded, deterministic synthetic studies."""

from __future__ import annotations

from .ct import ct_study

__all__ = ["ct_study"]
