"""Data: the codebook, validation of the trial and panel tables, the pseudonymised long frame, the simulator."""

__all__ = ["codebook", "longframe", "panel", "simulate", "table", "validate"]
