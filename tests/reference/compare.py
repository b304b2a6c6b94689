"""Compare freshly generated R reference CSVs with the committed ones.

Usage: python tests/reference/compare.py <fresh_dir> [committed_dir]
Exit 1 listing the differences when R no longer reproduces a committed value (rel 1e-9).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def main(fresh: Path, committed: Path) -> int:
    failures = []
    for ref in sorted(committed.glob("*.csv")):
        new = fresh / ref.name
        if not new.exists():
            failures.append(f"{ref.name}: not regenerated")
            continue
        a = pd.read_csv(ref, keep_default_na=False)
        b = pd.read_csv(new, keep_default_na=False)
        keys = [c for c in a.columns if c != "value"]
        if len(a) != len(b) or not a[keys].equals(b[keys]):
            failures.append(f"{ref.name}: rows differ")
            continue
        x = pd.to_numeric(a["value"], errors="coerce").to_numpy()
        y = pd.to_numeric(b["value"], errors="coerce").to_numpy()
        same = (np.isnan(x) & np.isnan(y)) | (x == y) | (np.abs(x - y) <= 1e-9 * np.abs(x))
        for i in np.flatnonzero(~same)[:10]:
            failures.append(f"{ref.name}: {a.iloc[i][keys].to_dict()} committed {x[i]!r}, R now {y[i]!r}")
        print(f"{ref.name}: {int(same.sum())}/{len(same)} values reproduced")
    for f in failures:
        print("DIFF", f)
    return 1 if failures else 0


if __name__ == "__main__":
    here = Path(__file__).parent
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else here / "expected"))
