"""Report: the numeric output policy, tidy tables, renderers, Table 1, provenance, verification, and figures/."""
