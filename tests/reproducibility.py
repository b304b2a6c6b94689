"""Cross-kernel noise against rounding boundaries, from two audited runs (PNITRIAL_AUDIT_DIR).

Each audited run stores the unrounded values that every table, model file and figure array of
results/ was rounded from. Two runs of the same plan on two code paths (OpenBLAS kernels, numpy
SIMD dispatch) differ only by floating-point noise; a written value is safe when its distance
from the nearest rounding boundary is many times that noise.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pnitrial.report.precision import cell_scales, rounding_step

# noise never measured below this (relative to the cell's scale): another processor may show some
NOISE_FLOOR = 1e-15


@dataclass
class Cell:
    table: str
    column: str
    row: int
    value: float
    other: float
    margin: float  # distance from the nearest rounding boundary
    noise: float  # |value - other|, at least NOISE_FLOOR of the cell's scale in a column that differs at all

    def __str__(self) -> str:
        return (
            f"{self.table} [{self.column}, row {self.row}]: {self.value!r} vs {self.other!r}; "
            f"{self.margin:.3g} from a rounding boundary, noise {self.noise:.3g} "
            f"(ratio {self.margin / self.noise:.3g})"
        )


def load(audit: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for p in sorted(Path(audit).glob("*.pkl")):
        with open(p, "rb") as fh:
            out[p.stem] = pickle.load(fh)
    return out


def cells(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> list[Cell]:
    """Every float cell of every audited table, with its noise between the runs and its margin."""
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    out = []
    for name in sorted(a):
        da, db = a[name], b[name]
        assert da.shape == db.shape and list(da.columns) == list(db.columns), name
        for col, scales in cell_scales(da).items():
            va = pd.to_numeric(da[col], errors="coerce").to_numpy(dtype=float)
            vb = pd.to_numeric(db[col], errors="coerce").to_numpy(dtype=float)
            assert (np.isfinite(va) == np.isfinite(vb)).all(), (name, col)
            ok = np.isfinite(va)
            # a column computed from rounded numbers by exact IEEE arithmetic (BH-adjusted p from
            # written p) is the same everywhere; one that differs anywhere may differ in every cell
            noisy = bool((va[ok] != vb[ok]).any())
            for i in np.flatnonzero(ok):
                x, s = float(va[i]), float(scales[i])
                step = rounding_step(x, s)
                frac = x / step - math.floor(x / step)
                size = max(abs(x), s if math.isfinite(s) else 0.0)
                noise = max(abs(x - float(vb[i])), NOISE_FLOOR * size if noisy else 0.0)
                out.append(Cell(name, col, int(i), x, float(vb[i]), abs(frac - 0.5) * step, noise))
    return out


def unsafe(a: Path, b: Path, safety: float = 100.0) -> tuple[list[Cell], list[Cell]]:
    """(cells closer to a rounding boundary than `safety` times their noise, all cells)."""
    every = cells(load(a), load(b))
    return [c for c in every if c.margin <= safety * c.noise and c.noise > 0], every
