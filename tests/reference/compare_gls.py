"""CI's check of the committed mmrm values without mmrm: nlme::gls (corSymm + varIdent, REML) is the
unstructured MMRM, so its coefficients and model-based SEs (tests/reference/gls_rederive.R) must
equal the committed mmrm ones (tests/reference/expected/mmrm/<case>.csv, structure us).

Usage: python tests/reference/compare_gls.py <gls.csv> <case>
Exit 1 listing the differences: estimates beyond 1e-6 of their SE, SEs beyond 1e-5 relative.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main(gls_csv: Path, case: str) -> int:
    committed = Path(__file__).parent / "expected" / "mmrm" / f"{case}.csv"
    ref = pd.read_csv(committed, keep_default_na=False)
    # model-based SEs: mmrm's Satterthwaite rows use the unadjusted covariance, as gls does
    ref = ref[(ref["structure"] == "us") & (ref["method"] == "Satterthwaite")]
    ref = ref.set_index(["outcome", "estimand", "quantity", "name"])["value"].astype(float)
    gls = pd.read_csv(gls_csv, keep_default_na=False)
    failures = []
    for r in gls.itertuples():
        mine = ref[(r.outcome, r.estimand, r.quantity, r.name)]
        se = ref[(r.outcome, r.estimand, "se", r.name)]
        bound = 1e-6 * se if r.quantity == "estimate" else 1e-5 * abs(mine)
        if abs(float(r.value) - mine) > bound:
            failures.append(f"{r.outcome} {r.name} {r.quantity}: mmrm {mine!r}, gls {r.value!r}")
    print(f"{case}: {len(gls) - len(failures)}/{len(gls)} gls values equal the committed mmrm ones")
    for f in failures:
        print("DIFF", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
