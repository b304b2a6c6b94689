"""Provenance of a run and the manifest that proves its results are the same bytes."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "pnitrial",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "pingouin",
    "matplotlib",
    "fonttools",
    "pillow",
    "pyyaml",
    "jsonschema",
    "snakemake",
)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(files: list[str], root: str | Path, out: str | Path) -> None:
    """sha256sum-compatible lines, sorted by path relative to root (`cd root && sha256sum -c`)."""
    root = Path(root)
    names = sorted((Path(f).relative_to(root).as_posix(), f) for f in files)
    Path(out).write_text("".join(f"{sha256(f)}  {name}\n" for name, f in names))


def read_manifest(path: str | Path) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split("  ", 1)
            out[name] = digest
    return out


def compare_manifests(actual: str | Path, expected: str | Path) -> list[str]:
    """Human-readable differences; empty when the results are the expected bytes."""
    a, e = read_manifest(actual), read_manifest(expected)
    diffs = [f"differs: {k}" for k in sorted(a.keys() & e.keys()) if a[k] != e[k]]
    diffs += [f"missing (expected but not produced): {k}" for k in sorted(e.keys() - a.keys())]
    diffs += [f"unexpected (produced but not in the expected manifest): {k}" for k in sorted(a.keys() - e.keys())]
    return diffs


def _git_commit(where: Path) -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def provenance(config: dict, inputs: dict[str, str], workflow_dir: str | Path) -> dict:
    """Everything needed to say how results/ was made (not part of the manifest: it names the machine)."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
        "config": config,
        "inputs": {name: {"path": str(p), "sha256": sha256(p)} for name, p in sorted(inputs.items())},
        "seeds": {"seed": config.get("seed")},
        "git_commit": _git_commit(Path(workflow_dir)),
    }


def write_provenance(config: dict, inputs: dict[str, str], workflow_dir: str | Path, out: str | Path) -> None:
    Path(out).write_text(json.dumps(provenance(config, inputs, workflow_dir), indent=2, sort_keys=True) + "\n")
