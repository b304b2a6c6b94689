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
    """The SHA-256 digest of a file, read in blocks of 1 MiB.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        The hexadecimal digest, as ``sha256sum`` prints it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "a.txt").write_bytes(b"abc")
    ...     digest = sha256(Path(tmp) / "a.txt")
    >>> digest
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(files: list[str], root: str | Path, out: str | Path) -> None:
    r"""Write sha256sum-compatible lines, sorted by path relative to root (`cd root && sha256sum -c`).

    Parameters
    ----------
    files : list of str
        The files, each under `root`.
    root : str or Path
        The directory the manifest's names are relative to.
    out : str or Path
        The manifest to write.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "tables").mkdir()
    ...     _ = (Path(tmp) / "tables" / "fits.csv").write_text("outcome\n")
    ...     _ = (Path(tmp) / "summary.html").write_text("<p></p>\n")
    ...     files = [str(Path(tmp) / "summary.html"), str(Path(tmp) / "tables" / "fits.csv")]
    ...     write_manifest(files, tmp, Path(tmp) / "MANIFEST.sha256")
    ...     manifest = read_manifest(Path(tmp) / "MANIFEST.sha256")
    >>> list(manifest)
    ['summary.html', 'tables/fits.csv']
    """
    root = Path(root)
    names = sorted((Path(f).relative_to(root).as_posix(), f) for f in files)
    Path(out).write_text("".join(f"{sha256(f)}  {name}\n" for name, f in names))


def read_manifest(path: str | Path) -> dict[str, str]:
    r"""The digests of a manifest written by `write_manifest` (or ``sha256sum``), by file name.

    Parameters
    ----------
    path : str or Path
        The manifest.

    Returns
    -------
    dict of str to str
        Digest of every file named in it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "MANIFEST.sha256").write_text("0a1b  tables/fits.csv\n\n2c3d  summary.html\n")
    ...     manifest = read_manifest(Path(tmp) / "MANIFEST.sha256")
    >>> manifest
    {'tables/fits.csv': '0a1b', 'summary.html': '2c3d'}
    """
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split("  ", 1)
            out[name] = digest
    return out


def compare_manifests(actual: str | Path, expected: str | Path) -> list[str]:
    r"""Human-readable differences between two manifests; empty when the results are the expected bytes.

    Parameters
    ----------
    actual, expected : str or Path
        The manifest of a run and the expected one.

    Returns
    -------
    list of str
        Files that differ, are missing, or were not expected, each in one line.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "actual").write_text("0a1b  tables/fits.csv\n2c3d  summary.html\n")
    ...     _ = (Path(tmp) / "expected").write_text("0a1b  tables/fits.csv\n9999  summary.html\n4e5f  x.csv\n")
    ...     diffs = compare_manifests(Path(tmp) / "actual", Path(tmp) / "expected")
    >>> diffs
    ['differs: summary.html', 'missing (expected but not produced): x.csv']
    """
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
    r"""Everything needed to say how results/ was made (not part of the manifest: it names the machine).

    Parameters
    ----------
    config : dict
        The run's configuration.
    inputs : dict of str to str
        The input files by name; each is hashed.
    workflow_dir : str or Path
        The workflow's directory, for its git commit.

    Returns
    -------
    dict
        Python version, platform, the versions of ``PACKAGES``, the config, the inputs with their
        digests, the seed, and the git commit (None outside a git work tree).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "trial.csv").write_text("id\n")
    ...     info = provenance({"seed": 7}, {"table": str(Path(tmp) / "trial.csv")}, tmp)
    >>> sorted(info)
    ['config', 'git_commit', 'inputs', 'machine', 'packages', 'platform', 'python', 'seeds']
    >>> info["seeds"], info["inputs"]["table"]["sha256"][:12]
    ({'seed': 7}, '984a644ec3b5')
    """
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
    """Write `provenance` as JSON (sorted keys, two-space indent).

    Parameters
    ----------
    config, inputs, workflow_dir
        As for `provenance`.
    out : str or Path
        The JSON file to write.

    Examples
    --------
    >>> import json, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_provenance({"seed": 7}, {}, tmp, Path(tmp) / "provenance.json")
    ...     info = json.loads((Path(tmp) / "provenance.json").read_text())
    >>> info["config"], info["inputs"]
    ({'seed': 7}, {})
    """
    Path(out).write_text(json.dumps(provenance(config, inputs, workflow_dir), indent=2, sort_keys=True) + "\n")
