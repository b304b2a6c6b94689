"""Figures: one public style module (style) and one module per figure family."""
