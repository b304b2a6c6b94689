"""Errors raised for bad input."""

from __future__ import annotations


class ValidationError(ValueError):
    """Input that cannot be analysed; each problem names file, column, rows and expectation."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"input validation failed with {n} problem{'s' if n != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))
