"""Byte-identical results on every processor: the numeric output policy, verify, and two code paths."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import HASWELL, ROOT, X86, audited_run, digest, run
from hypothesis import given, settings
from hypothesis import strategies as st
from reproducibility import unsafe

from pnitrial.report.precision import round_at, round_frame, round_records, rounding_step
from pnitrial.report.tables import write_csv
from pnitrial.report.verification import compare_tables, main, verify_results, write_snapshot

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


def test_six_significant_digits_of_the_value_or_its_scale():
    assert round_at(0.123456789) == 0.123457
    assert round_at(123456.789) == 123457.0
    assert round_at(9.9999996) == 10.0
    assert round_at(1.23456789e-9) == 1.23457e-09
    # noise around zero vanishes at the scale of the row's SE; a real small effect keeps its digits
    assert round_at(3.1e-14, scale=0.25) == 0.0
    assert round_at(-0.0123456789, scale=0.25) == -0.012346
    assert round_at(-1e-20, scale=1.0) == 0.0 and math.copysign(1, round_at(-1e-20, scale=1.0)) == 1
    assert math.isnan(round_at(math.nan))


@settings(max_examples=300, deadline=None)
@given(x=finite, scale=st.one_of(st.none(), st.floats(min_value=1e-12, max_value=1e6)))
def test_rounding_is_idempotent_and_within_half_a_step(x, scale):
    r = round_at(x, scale)
    assert round_at(r, scale) == r
    assert abs(r - x) <= 0.5 * rounding_step(x, scale) * (1 + 1e-9) + 1e-300


@settings(max_examples=100, deadline=None)
@given(
    est=st.lists(finite, min_size=1, max_size=6),
    se=st.floats(min_value=1e-6, max_value=1e3),
    p=st.floats(min_value=0, max_value=1),
)
def test_rounding_a_rounded_table_changes_nothing(est, se, p):
    df = pd.DataFrame(
        {
            "outcome": ["a"] * len(est),
            "estimate": est,
            "se": se,
            "ci_low": [e - 1.96 * se for e in est],
            "p": p,
            "var_residual": se,
            "var_participant": [abs(e) * 1e-9 for e in est],
            "cooks_distance": [abs(e) for e in est],
        }
    )
    once = round_frame(df)
    pd.testing.assert_frame_equal(round_frame(once), once)


def test_rules_by_column():
    df = pd.DataFrame(
        {
            "outcome": ["a", "a", "b"],
            "estimate": [1e-14, 0.123456789, 5.0],
            "se": [0.2, 0.2, 0.00123456789],
            "statistic": [1e-13, 12.3456789, -0.5],
            "var_participant": [1e-18, 0.5, 2.0],
            "var_residual": [3.0, 3.0, 3.0],
            "p": [0.999999999, 1e-12, 0.5],
            "gradient_max": [1e-13, 2e-14, 3e-15],
        }
    )
    out = round_frame(df)
    assert "gradient_max" not in out  # noise never reaches a written table
    assert out["estimate"].tolist() == [0.0, 0.123457, 5.0]
    assert out["se"].tolist() == [0.2, 0.2, 0.00123457]
    assert out["statistic"].tolist() == [0.0, 12.3457, -0.5]
    assert out["var_participant"].tolist() == [0.0, 0.5, 2.0]  # a boundary variance is 0, not noise
    assert out["p"].tolist() == [1.0, 1e-12, 0.5]


def test_records_and_coefficients_are_rounded_and_noise_dropped():
    rows = [{"estimate": 1.23456789, "se": 0.5, "gradient_max": 1e-13, "coefficients": {"a": 10.123456, "b": 1e-15}}]
    out = round_records(rows)
    assert out == [{"estimate": 1.23457, "se": 0.5, "coefficients": {"a": 10.1235, "b": 0.0}}]


def test_csv_written_with_short_decimals(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"estimate": [32.02, 0.1 + 0.2], "se": [0.1, 0.1], "n": [3, 4]}), path)
    assert path.read_text() == "estimate,se,n\n32.02,0.1,3\n0.3,0.1,4\n"


def _results_copy(completed: Path, tmp_path: Path) -> tuple[Path, Path]:
    results = tmp_path / "results"
    shutil.copytree(completed / "results", results, ignore=shutil.ignore_patterns("logs", "benchmarks"))
    return results, completed / "expected"


def _edit_cell(path: Path, row: int, column: str, value) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = str(value)
    df.to_csv(path, index=False, lineterminator="\n")


def _remanifest(results: Path) -> None:
    from pnitrial.report.provenance import read_manifest, write_manifest

    names = list(read_manifest(results / "MANIFEST.sha256"))
    write_manifest([str(results / n) for n in names], results, results / "MANIFEST.sha256")


@pytest.mark.slow
def test_verify_explains_cells_noise_and_changes(completed, tmp_path):
    results, expected = _results_copy(completed, tmp_path)
    assert verify_results(results, expected) == []
    effects = results / "tables" / "effects.csv"
    se = float(pd.read_csv(effects)["se"].iloc[0])
    _edit_cell(effects, 0, "se", round_at(se + rounding_step(se)))  # one unit in the last digit
    _edit_cell(effects, 1, "fit_status", "not converged")
    _remanifest(results)
    report = verify_results(results, expected)
    text = "\n".join(report)
    assert "differs: tables/effects.csv (2 cell(s))" in text
    assert f"row 1, column 'se': {round_at(se + rounding_step(se))!r} (expected {se!r})" in text
    assert "last-digit difference (noise)" in text
    assert "row 2, column 'fit_status': 'not converged' (expected 'ok')" in text and "change in results" in text


@pytest.mark.slow
def test_tolerance_mode_accepts_last_digits_and_figures_of_agreeing_tables(completed, tmp_path):
    results, expected = _results_copy(completed, tmp_path)
    effects = results / "tables" / "effects.csv"
    est = float(pd.read_csv(effects)["estimate"].iloc[0])
    se = float(pd.read_csv(effects)["se"].iloc[0])
    _edit_cell(effects, 0, "estimate", round_at(est + rounding_step(est, se), se))
    (results / "figures" / "forest.png").write_bytes(b"drawn by another BLAS")
    _remanifest(results)
    assert verify_results(results, expected, "tolerance") == []
    bytes_report = verify_results(results, expected, "bytes")
    assert any("figures/forest.png" in r and "its input tables/effects.csv differs" in r for r in bytes_report)
    # a real change fails in either mode
    _edit_cell(effects, 0, "estimate", round_at(est * 1.01 + 0.01, se))
    _remanifest(results)
    report = verify_results(results, expected, "tolerance")
    assert any("column 'estimate'" in r and "change in results" in r for r in report)
    assert any(r.startswith("differs: figures/forest.png (its input tables/effects.csv differs") for r in report)


@pytest.mark.slow
def test_figure_whose_tables_agree_is_said_to_differ_in_its_drawing(completed, tmp_path):
    results, expected = _results_copy(completed, tmp_path)
    (results / "figures" / "forest.png").write_bytes(b"other pixels")
    _remanifest(results)
    (report,) = verify_results(results, expected)
    assert report.startswith("differs: figures/forest.png (its input tables (tables/effects.csv) are identical")


def test_compare_tables_structure(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,2\n")
    b.write_text("x,z\n1,2\n")
    assert compare_tables(a, b) == ["columns differ: ['x', 'y'] (expected ['x', 'z'])"]
    b.write_text("x,y\n1,2\n3,4\n")
    assert compare_tables(a, b) == ["1 rows (expected 2)"]


@pytest.mark.slow
def test_snapshot_and_compare_command(completed, tmp_path, capsys):
    snap = tmp_path / "expected"
    write_snapshot(completed / "results", snap)
    assert (snap / "MANIFEST.sha256").read_bytes() == (completed / "results" / "MANIFEST.sha256").read_bytes()
    assert sorted(p.name for p in (snap / "tables").iterdir()) == sorted(
        p.name for p in (completed / "results" / "tables").glob("*.csv")
    )
    assert main(["compare", str(completed / "results"), str(snap)]) == 0
    assert capsys.readouterr().out.strip() == "verified"


def test_committed_expectation_tables_match_its_manifest():
    """The committed tables/ of every expectation are the files its manifest hashes."""
    from pnitrial.report.provenance import read_manifest, sha256

    root = ROOT
    for where in (root / "tests" / "expected", root / ".test" / "expected", root / ".test" / "expected" / "panel"):
        manifest = read_manifest(where / "MANIFEST.sha256")
        tables = sorted((where / "tables").glob("*.csv"))
        assert tables, where
        for t in tables:
            assert manifest[f"tables/{t.name}"] == sha256(t), t


@pytest.fixture(scope="session")
def haswell_run(tmp_path_factory) -> Path:
    """The .test configuration on the other code path: AVX2 OpenBLAS kernels, numpy without AVX-512."""
    if not X86:
        pytest.skip("the Haswell kernels exist on x86-64 only")
    return audited_run(tmp_path_factory.mktemp("haswell"), env=HASWELL)


@pytest.mark.slow
def test_both_code_paths_verify_against_the_committed_expectation(completed, haswell_run):
    assert digest(haswell_run / "results") == digest(completed / "results")
    for work in (completed, haswell_run):
        res = run(work, "--cores", "1", "verify", env=HASWELL if work is haswell_run else None)
        assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_no_written_value_sits_near_a_rounding_boundary(completed, haswell_run):
    """Every number's distance from its rounding boundary is over 100 times the cross-kernel noise."""
    bad, every = unsafe(completed / "audit", haswell_run / "audit", safety=100.0)
    assert len(every) > 1000
    assert not bad, "\n".join(str(c) for c in bad[:20])


@pytest.mark.slow
def test_panel_verifies_on_the_other_code_path(panel_run, tmp_path):
    if not X86:
        pytest.skip("the Haswell kernels exist on x86-64 only")
    work = audited_run(tmp_path, "--configfile", str(tmp_path / "config" / "panel.yaml"), env=HASWELL)
    assert digest(work / "results") == digest(panel_run / "results")
    res = run(work, "--configfile", str(work / "config" / "panel.yaml"), "--cores", "1", "verify", env=HASWELL)
    assert res.returncode == 0, res.stderr[-3000:]
    bad, every = unsafe(panel_run / "audit", work / "audit", safety=100.0)
    assert len(every) > 10000 and not bad, "\n".join(str(c) for c in bad[:20])


@pytest.mark.slow
def test_command_line_validate_simulate_and_compare(tmp_path, completed):
    import subprocess
    import sys

    from conftest import SMALL

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pnitrial", *args], capture_output=True, text=True)

    ok = cli("validate", str(SMALL / "dataset.yaml"))
    assert ok.returncode == 0 and "valid (3 outcomes" in ok.stdout
    bad = tmp_path / "bad"
    shutil.copytree(SMALL, bad)
    table = bad / "trial.csv"
    table.write_text(table.read_text().replace("waitlist", "wait list", 1))
    refused = cli("validate", str(bad / "dataset.yaml"))
    assert refused.returncode == 1 and "trial.csv" in refused.stderr and "column 'arm'" in refused.stderr
    made = cli("simulate", str(tmp_path / "sim"), "--seed", "3")
    assert made.returncode == 0 and (tmp_path / "sim" / "trial.csv").exists()
    same = cli("compare", str(completed / "results"), str(completed / "expected"))
    assert same.returncode == 0 and same.stdout.strip() == "verified"
    assert cli().returncode == 2
