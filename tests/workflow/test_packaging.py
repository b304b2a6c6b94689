"""Dependency pins agree everywhere; every config key is documented; linters are clean."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml
from conftest import ROOT

CONDA_NAMES = {"matplotlib-base": "matplotlib"}


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.lower().split("==") for d in deps)


def _conda_pins(path) -> dict[str, str]:
    pins = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(dep, str) and re.fullmatch(r"[A-Za-z0-9_.-]+=[0-9][^=]*", dep):
            name, version = dep.split("=")
            if name != "python":
                pins[CONDA_NAMES.get(name, name).lower()] = version
    return pins


def test_environment_yml_pins_equal_pyproject():
    assert _conda_pins(ROOT / "environment.yml") == _pyproject_pins()


def test_rule_environment_pins_agree():
    rule_env = _conda_pins(ROOT / "workflow" / "envs" / "pnitrial.yaml")
    pins = _pyproject_pins()
    assert rule_env == {k: v for k, v in pins.items() if k != "snakemake"}


def _keys(schema: dict, prefix: str = "") -> list[str]:
    out = []
    for key, sub in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        assert "description" in sub or "properties" in sub, f"{name} lacks a description"
        assert "default" in sub, f"{name} lacks a default"
        out.append(name)
        out += _keys(sub, f"{name}.")
    return out


def test_every_config_key_has_default_description_and_documentation():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    readme = (ROOT / "config" / "README.md").read_text()
    for key in _keys(schema):
        assert f"`{key}`" in readme, f"config/README.md does not explain {key}"
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    flat = {
        f"{k}.{s}" if isinstance(v, dict) else k
        for k, v in config.items()
        for s in (v if isinstance(v, dict) else [None])
    }
    assert {k.removesuffix(".None") for k in flat} <= set(_keys(schema))


def test_ruff_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


def test_snakefmt_clean():
    # the interpreter running the tests, so a virtualenv that is not on PATH still finds its snakefmt
    res = subprocess.run([sys.executable, "-m", "snakefmt", "--check", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def test_snakemake_lint_clean():
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]


def test_snakemake_lint_clean_with_a_panel():
    """The panel rules are included only when the codebook declares a panel: lint them too."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(ROOT / ".test")]
    cmd += ["--configfile", str(ROOT / ".test" / "config" / "panel.yaml"), "--lint"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "good condition" in res.stdout + res.stderr


def test_every_job_declares_memory_from_its_inputs_and_a_runtime():
    """Every job of the plan asks for mem_mb and runtime; heavy analyses are not local rules."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = [j for j in re.split(r"\n(?=rule \w+:)", res.stdout)[1:] if not j.startswith("rule all:")]
    assert len(jobs) > 15
    for job in jobs:
        resources = next(line for line in job.splitlines() if line.strip().startswith("resources:"))
        # from its inputs' size: known once they exist (<TBD> in a dry run from an empty results/)
        assert re.search(r"mem_mb=(\d+|<TBD>)", resources) and re.search(r"runtime=\d+", resources), job[:300]
        if job.startswith("rule validate_data:"):  # its inputs are the user's files
            assert int(re.search(r"mem_mb=(\d+)", resources).group(1)) >= 500
    local = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:    \w+,\n)+)", path.read_text(), flags=re.M):
            local |= set(re.findall(r"\w+", block))
    assert "forest_figure" in local and "panel_tables" in local
    heavy = {"validate_data", "fit_outcome", "fit_outcomes", "sensitivity", "diagnostics", "mediation"}
    assert not heavy & local  # submitted to a cluster
