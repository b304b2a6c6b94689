"""Report: the numeric output policy, tidy tables, renderers, Table 1, provenance, verification, and figures/."""

__all__ = ["precision", "provenance", "render", "summary", "table1", "tables", "verification"]
