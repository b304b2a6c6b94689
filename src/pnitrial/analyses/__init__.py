"""Analyses of the plan: estimands, panels, sensitivity, diagnostics, permutation, mediation,
associations, effect sizes, patients vs healthy at baseline."""
