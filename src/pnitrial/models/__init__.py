"""Models: designs built from validated names, the random-intercept criterion and its one optimiser
core, the exact (RE)ML fits (single, batched, censored), the fallback optimiser and least squares."""

__all__ = [
    "batch",
    "censored",
    "design",
    "engine",
    "fallback",
    "intercept",
    "linalg",
    "numderiv",
    "ols",
    "optimise",
]
