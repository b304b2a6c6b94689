"""Models: designs built from validated names, the exact (RE)ML engines (single, batched,
censored), the fallback optimiser and least squares."""

__all__ = ["batch", "censored", "design", "engine", "fallback", "linalg", "numderiv", "ols"]
