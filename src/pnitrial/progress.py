"""Progress of long loops: a line in the rule's log every few seconds, and a bar on a terminal.

A rule that refits many outcomes, permutations or participants says how far it is and about how
long is left, so a user watching a cluster job's log (or a terminal) knows it is not stuck. The
log lines carry elapsed times: logs are not hashed outputs, and nothing here enters a table.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

log = logging.getLogger("pnitrial")
T = TypeVar("T")


class Progress:
    """Counts units of a loop; logs ``label: k/n units done, s elapsed, about s left`` every `every` seconds.

    Parameters
    ----------
    total : int
        Units in the loop.
    label : str
        What is being done (the log line's prefix).
    unit : str, optional
        What a unit is (outcomes, permutations, participants).
    every : float, optional
        Seconds between log lines; the last unit is always logged.
    stream : file, optional
        Where the bar goes (standard error by default); drawn only when it is a terminal.
    clock : callable, optional
        Seconds, monotonic (for tests).
    bar : bool, optional
        Draw the bar (on a terminal); off for a loop nested in one that draws its own.

    Examples
    --------
    >>> ticks = iter([0.0, 1.0, 7.0, 9.0])
    >>> p = Progress(3, "diagnostics", every=5.0, clock=lambda: next(ticks))
    >>> [p.advance() for _ in range(3)]
    [None, 'diagnostics: 2/3 outcomes done, 7 s elapsed, about 4 s left', 'diagnostics: 3/3 outcomes done in 9 s']
    """

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "outcomes",
        every: float = 5.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar: bool = True,
    ):
        self.total, self.label, self.unit, self.every = int(total), label, unit, every
        self.clock = clock
        self.stream = sys.stderr if stream is None else stream
        self.start = self.last = clock()
        self.done = 0
        self.bar = bar and _is_terminal(self.stream)

    def advance(self, n: int = 1) -> str | None:
        """Count `n` more units; return (and log) the progress line when one is due."""
        self.done += n
        now = self.clock()
        elapsed = now - self.start
        if self.bar:
            self._draw(elapsed)
        finished = self.done >= self.total
        if not finished and now - self.last < self.every:
            return None
        self.last = now
        if finished:
            line = f"{self.label}: {self.done}/{self.total} {self.unit} done in {elapsed:.0f} s"
        else:
            left = elapsed / self.done * (self.total - self.done)
            line = (
                f"{self.label}: {self.done}/{self.total} {self.unit} done, {elapsed:.0f} s elapsed, "
                f"about {left:.0f} s left"
            )
        log.info(line)
        return line

    def _draw(self, elapsed: float) -> None:
        width = 30
        filled = int(width * min(self.done / max(self.total, 1), 1.0))
        end = "\n" if self.done >= self.total else ""
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:.0f} s{end}"
        )
        self.stream.flush()


def track(items: Iterable[T], total: int, label: str, unit: str = "outcomes", every: float = 5.0) -> Iterator[T]:
    """Yield `items`, counting each one done when the loop asks for the next (see `Progress`).

    Examples
    --------
    >>> [k for k in track(["il6", "bdi"], 2, "figures")]
    ['il6', 'bdi']
    """
    progress = Progress(total, label, unit, every)
    for item in items:
        yield item
        progress.advance()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
