from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
SMALL = ROOT / ".test" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
EXCLUDED = ("logs", "benchmarks")
# The other code path of issue 13: OpenBLAS's AVX2 (Haswell) kernels and numpy without its AVX-512 loops.
HASWELL = {"OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
X86 = platform.machine() in ("x86_64", "AMD64")


def run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Snakemake on the repository's Snakefile in workdir (extra environment variables in env)."""
    full = dict(os.environ, PYTHONHASHSEED="0", **(env or {}))
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, env=full, timeout=900
    )


def digest(results: Path) -> dict[str, str]:
    out = {}
    for p in sorted(results.rglob("*")):
        rel = p.relative_to(results)
        if p.is_file() and rel.parts[0] not in EXCLUDED:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def copy_test_config(dst: Path) -> Path:
    """A writable copy of the .test configuration (config, data, panel, expectations)."""
    shutil.copytree(ROOT / ".test", dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("results", ".snakemake"))
    return dst


def audited_run(work: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    """A full run of the .test configuration whose unrounded numbers are kept in work/audit."""
    copy_test_config(work)
    res = run(work, *args, "--cores", "2", env={"PNITRIAL_AUDIT_DIR": str(work / "audit"), **(env or {})})
    assert res.returncode == 0, res.stderr[-3000:]
    return work


@pytest.fixture(scope="session")
def completed(tmp_path_factory) -> Path:
    """The .test configuration run natively (this machine's own kernels)."""
    return audited_run(tmp_path_factory.mktemp("run1"))


@pytest.fixture(scope="session")
def panel_run(tmp_path_factory) -> Path:
    """The .test panel configuration run natively."""
    work = tmp_path_factory.mktemp("panel")
    return audited_run(work, "--configfile", str(work / "config" / "panel.yaml"))


@pytest.fixture
def small_trial(tmp_path: Path) -> Path:
    """A writable copy of the small .test trial; returns its codebook path."""
    dst = tmp_path / "trial"
    shutil.copytree(SMALL, dst)
    return dst / "dataset.yaml"


def edit_codebook(path: Path, **changes) -> None:
    raw = yaml.safe_load(path.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def compile_latex(tables: list[Path], workdir: Path) -> subprocess.CompletedProcess:
    """Compile LaTeX tables with pdflatex inside a minimal document (booktabs, longtable).

    pdflatex is required in CI (`.ci/run` installs Debian's texlive-latex-recommended); elsewhere a
    machine without it skips the test.
    """
    exe = shutil.which("pdflatex")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed (Debian: texlive-latex-recommended)")
        pytest.skip("pdflatex is not installed")
    body = "\n".join(r"\input{" + p.resolve().as_posix() + "}" for p in tables)
    doc = workdir / "tables.tex"
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{longtable}\n"
        "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n" + body + "\n\\end{document}\n"
    )
    cmd = [exe, "-interaction=nonstopmode", "-halt-on-error", doc.name]
    first = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if first.returncode:
        return first
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)  # longtable settles its widths
