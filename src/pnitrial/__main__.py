"""Command line: python -m pnitrial {validate,simulate,snapshot,compare} ...

- ``validate CODEBOOK``: check the codebook and its tables (trial and panel) without running the
  workflow; prints every problem, exit status 0 when valid and 1 when not.
- ``simulate OUTDIR``: write the seeded stand-in trial (and optionally a panel) with its true effects.
- ``snapshot RESULTS EXPECTED`` / ``compare RESULTS EXPECTED``: write or check a reproducibility
  expectation (see README: Reproducibility).
"""

from __future__ import annotations

import argparse
import sys


def validate(argv: list[str]) -> int:
    """Check a codebook and its tables without running the workflow (``python -m pnitrial validate``).

    Every problem is printed to stderr; on success one line names the codebook, its outcomes
    and panel, and the participants per group.

    Parameters
    ----------
    argv : list of str
        The arguments after ``validate``: ``CODEBOOK [--lod-method M] [--min-per-arm N]``.

    Returns
    -------
    int
        Exit status: 0 when the codebook and its tables are valid, 1 when not.

    Examples
    --------
    >>> import contextlib, tempfile
    >>> from pnitrial.data.simulate import write_demo
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
    ...     paths = write_demo(".", seed=1)
    ...     status = validate(["dataset.yaml"])
    dataset.yaml: valid (16 outcomes; participants {'intervention': 25, 'control': 25, 'healthy': 15})
    >>> status
    0
    >>> validate(["no-such-codebook.yaml"])  # the problem goes to stderr
    1
    """
    from pnitrial.data.codebook import load_codebook
    from pnitrial.data.ice import read_ice
    from pnitrial.data.longframe import LOD_METHODS, build_long_frame
    from pnitrial.data.panel import build_panel_frame
    from pnitrial.data.table import read_table
    from pnitrial.errors import ValidationError

    ap = argparse.ArgumentParser(prog="python -m pnitrial validate", description="Check a codebook and its tables.")
    ap.add_argument("codebook", help="the dataset codebook (YAML); its tables are read relative to it")
    ap.add_argument("--lod-method", choices=LOD_METHODS, default="censored", help="as config lod.method")
    ap.add_argument("--min-per-arm", type=int, default=3, help="as config validation.min_per_arm (default 3)")
    a = ap.parse_args(argv)
    try:
        cb = load_codebook(a.codebook)
        frame, meta = build_long_frame(cb, lod_method=a.lod_method, min_per_arm=a.min_per_arm)
        if cb.panel is not None:
            build_panel_frame(cb, min_per_arm=a.min_per_arm)
        if cb.ice is not None:
            read_ice(cb, read_table(cb.table))
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 1
    n = meta.participants
    panel = f", a panel of {cb.panel.table.name}" if cb.panel is not None else ""
    print(f"{a.codebook}: valid ({len(cb.outcomes)} outcomes{panel}; participants {n})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run a command of ``python -m pnitrial``: validate, simulate, snapshot or compare.

    Parameters
    ----------
    argv : list of str, optional
        The command and its arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when validation or comparison finds differences, 2 (with
        the usage on stderr) for a missing or unknown command.

    Examples
    --------
    >>> main([])  # no command: the usage goes to stderr
    2
    >>> main(["validate", "no-such-codebook.yaml"])
    1
    """
    argv = sys.argv[1:] if argv is None else argv
    commands = ("validate", "simulate", "snapshot", "compare")
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "validate":
        return validate(rest)
    if command == "simulate":
        from pnitrial.data.simulate import main as simulate

        simulate(rest)
        return 0
    from pnitrial.report.verification import main as verification

    return verification([command, *rest])


if __name__ == "__main__":
    sys.exit(main())
