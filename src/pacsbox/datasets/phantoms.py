"""Numerical phantoms sampled on the images' real geometry, so pixel data agrees with the DICOM plane tags.

A phantom is a list of ellipsoids in patient coordinates (LPS, millimetres, PS3.3 C.7.6.2.1.1); later ones paint
over earlier ones. Each image samples the tissue labels at its own pixel positions, then a contrast table turns
labels into values, and seeded noise makes the images look acquired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Tissue labels
AIR, FAT, BONE, CSF, GREY, WHITE, LESION, MUSCLE, LIVER, KIDNEY, SPLEEN, BLOOD, LUNG, SOFT = range(14)


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A numpy generator seeded from the seed and ``parts``: each series draws its own noise."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class Ellipsoid:
    """An axis-aligned ellipsoid: centre and semi-axes in millimetres (x = left, y = posterior, z = head)."""

    centre: tuple[float, float, float]
    axes: tuple[float, float, float]
    label: int


#: A head: scalp, skull, CSF, cortex, white matter, ventricles, deep grey nuclei and a small lesion.
HEAD = (
    Ellipsoid((0, 0, 0), (76, 96, 92), FAT),
    Ellipsoid((0, 0, 0), (71, 91, 87), BONE),
    Ellipsoid((0, 0, 0), (66, 86, 82), CSF),
    Ellipsoid((0, 0, 2), (63, 83, 77), GREY),
    Ellipsoid((0, 2, 6), (52, 70, 60), WHITE),
    Ellipsoid((-11, -4, 12), (6, 24, 12), CSF),
    Ellipsoid((11, -4, 12), (6, 24, 12), CSF),
    Ellipsoid((-19, 6, -2), (8, 12, 9), GREY),
    Ellipsoid((19, 6, -2), (8, 12, 9), GREY),
    Ellipsoid((28, -30, 30), (6, 7, 6), LESION),
)

#: An abdomen: body wall, muscle, lung bases, liver (patient's right: negative x), spleen, kidneys, spine, aorta,
#: a lesion.
ABDOMEN = (
    Ellipsoid((0, 0, 0), (170, 120, 400), FAT),
    Ellipsoid((0, 0, 0), (155, 105, 400), MUSCLE),
    Ellipsoid((0, -5, 0), (140, 90, 400), SOFT),
    Ellipsoid((0, -10, 200), (130, 85, 70), LUNG),
    Ellipsoid((-60, -10, 60), (75, 70, 90), LIVER),
    Ellipsoid((75, 20, 70), (30, 40, 50), SPLEEN),
    Ellipsoid((-55, 50, -10), (25, 28, 55), KIDNEY),
    Ellipsoid((55, 50, -5), (25, 28, 55), KIDNEY),
    Ellipsoid((0, 60, 0), (18, 18, 400), BONE),
    Ellipsoid((-10, 30, 0), (11, 11, 400), BLOOD),
    Ellipsoid((-35, -30, 80), (12, 12, 12), LESION),
)


@dataclass(frozen=True)
class Stack:
    """A stack of parallel image planes centred on ``centre``: the geometry of one series (or volume)."""

    rows: int
    columns: int
    spacing: tuple[float, float]  # PixelSpacing: between rows, between columns
    slices: int
    slice_spacing: float
    orientation: tuple[float, ...]
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def row_direction(self) -> np.ndarray:
        return np.array(self.orientation[:3], dtype=float)

    @property
    def column_direction(self) -> np.ndarray:
        return np.array(self.orientation[3:], dtype=float)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_direction, self.column_direction)

    def position(self, index: int) -> np.ndarray:
        """Image Position (Patient) of slice ``index``: the centre of its first pixel."""
        offset = ((self.columns - 1) / 2 * self.spacing[1] * self.row_direction
                  + (self.rows - 1) / 2 * self.spacing[0] * self.column_direction)
        along = (index - (self.slices - 1) / 2) * self.slice_spacing * self.normal
        return np.array(self.centre, dtype=float) - offset + along

    def location(self, index: int) -> float:
        """Slice Location: the position along the normal."""
        return float(np.dot(self.position(index), self.normal))

    def points(self, index: int) -> np.ndarray:
        """The patient coordinates of every pixel of slice ``index``, shape (rows, columns, 3)."""
        rows = np.arange(self.rows, dtype=float)[:, None, None] * self.spacing[0] * self.column_direction
        columns = np.arange(self.columns, dtype=float)[None, :, None] * self.spacing[1] * self.row_direction
        return self.position(index) + rows + columns


def labels(points: np.ndarray, phantom: Sequence[Ellipsoid]) -> np.ndarray:
    """The tissue label at each point (any leading shape, last axis x/y/z)."""
    result = np.zeros(points.shape[:-1], dtype=np.uint8)
    axes = [np.ascontiguousarray(points[..., i], dtype=np.float32) for i in range(3)]
    low, high = [float(a.min()) for a in axes], [float(a.max()) for a in axes]
    total, term = np.empty_like(axes[0]), np.empty_like(axes[0])
    for shape in phantom:
        # an ellipsoid whose bounding box misses every point is skipped: most miss most slices
        if any(high[i] < shape.centre[i] - shape.axes[i] or low[i] > shape.centre[i] + shape.axes[i]
               for i in range(3)):
            continue
        total.fill(0.0)
        for i in range(3):  # in place, in float32: this loop is where a full-size series spends its time
            np.subtract(axes[i], np.float32(shape.centre[i]), out=term)
            term *= np.float32(1.0 / shape.axes[i])
            term *= term
            total += term
        result[total <= 1.0] = shape.label
    return result


def image(points: np.ndarray, phantom: Sequence[Ellipsoid], contrast: Mapping[int, float],
          rng: np.random.Generator, noise: float, low: float, high: float) -> np.ndarray:
    """Values of one image: the contrast of each label, plus Gaussian noise, clipped to ``[low, high]``."""
    tissue = labels(points, phantom)
    table = np.zeros(max(max(contrast), int(tissue.max())) + 1, dtype=np.float32)
    for label, value in contrast.items():
        table[label] = value
    values = rng.standard_normal(tissue.shape, dtype=np.float32)
    values *= np.float32(noise)
    values += table[tissue]
    return np.clip(np.rint(values), low, high)


def mask(points: np.ndarray, phantom: Sequence[Ellipsoid], label: int) -> np.ndarray:
    """Where ``label`` is, as booleans."""
    return labels(points, phantom) == label
