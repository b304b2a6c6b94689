"""Errors raised for bad input."""

from __future__ import annotations


class ValidationError(ValueError):
    """Input that cannot be analysed; each problem names file, column, rows and expectation.

    Every check of a codebook or table collects its problems, and one ValidationError reports them
    all at once, so a user fixes the input in one pass rather than one error per run.

    Parameters
    ----------
    problems : list of str
        One message per problem.

    Attributes
    ----------
    problems : list of str
        The messages, in the order given; the exception's text lists them under a count.

    Examples
    --------
    >>> err = ValidationError(["trial.csv: column 'arm', row 3 (file line 4): expected one of ['A', 'B']"])
    >>> print(err)
    input validation failed with 1 problem:
      - trial.csv: column 'arm', row 3 (file line 4): expected one of ['A', 'B']
    >>> isinstance(err, ValueError), len(err.problems)
    (True, 1)
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"input validation failed with {n} problem{'s' if n != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))
