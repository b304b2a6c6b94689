"""Inference kept apart from fitting: Wald tests, Kenward-Roger, Satterthwaite (single and batched), multiplicity."""

__all__ = ["contrasts", "kenward_roger", "multiplicity", "satterthwaite", "wald"]
