"""Analyses of the plan: estimands, panels, the rows they write (one builder), sensitivity,
diagnostics, permutation, mediation, associations, effect sizes, patients vs healthy at baseline."""

__all__ = [
    "associations",
    "baseline",
    "diagnostics",
    "effect_sizes",
    "estimands",
    "mediation",
    "mixed",
    "panel",
    "permutation",
    "rows",
    "sensitivity",
]
