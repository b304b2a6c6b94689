"""Inference kept apart from fitting: Wald tests, Kenward-Roger, Satterthwaite (single and batched), multiplicity."""
