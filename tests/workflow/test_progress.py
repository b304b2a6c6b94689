"""Long rules say how far they are: a log line every few seconds, a bar on a terminal."""

from __future__ import annotations

import io
import logging

from pnitrial.progress import Progress, track


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_logs_done_elapsed_and_time_left(caplog):
    ticks = iter([0.0, 2.0, 6.0, 8.0, 12.0, 13.0])
    with caplog.at_level(logging.INFO, logger="pnitrial"):
        p = Progress(5, "permutation tests", every=5.0, stream=io.StringIO(), clock=lambda: next(ticks))
        lines = [p.advance() for _ in range(5)]
    assert lines == [
        None,
        "permutation tests: 2/5 outcomes done, 6 s elapsed, about 9 s left",
        None,  # 2 s after the last line
        "permutation tests: 4/5 outcomes done, 12 s elapsed, about 3 s left",
        "permutation tests: 5/5 outcomes done in 13 s",  # the last unit is always logged
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "permutation tests: 2/5 outcomes done, 6 s elapsed, about 9 s left"
    assert messages[-1] == "permutation tests: 5/5 outcomes done in 13 s"
    assert all("left" in m or "done in" in m for m in messages)


def test_progress_draws_a_bar_only_on_a_terminal():
    terminal, file = _Terminal(), io.StringIO()
    for stream in (terminal, file):
        p = Progress(2, "figures", "figures", stream=stream)
        p.advance()
        p.advance()
    assert file.getvalue() == ""
    drawn = terminal.getvalue()
    assert "\rfigures [###############...............] 1/2" in drawn
    assert drawn.rstrip().endswith("s") and "[##############################] 2/2" in drawn and drawn.endswith("\n")


def test_track_yields_every_item_and_logs_the_end(caplog):
    with caplog.at_level(logging.INFO, logger="pnitrial"):
        assert list(track(range(3), 3, "fits")) == [0, 1, 2]
    assert caplog.records[-1].getMessage().startswith("fits: 3/3 outcomes done in ")
