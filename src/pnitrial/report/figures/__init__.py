"""Figures: one public style module (style) and one module per figure family."""

__all__ = ["associations", "diagnostics", "mediation", "panel", "sensitivity", "style", "trial"]
