"""The simulated reference cases are what their generator writes (.ci/run re-exports BtheB from HSAUR3)."""

from __future__ import annotations

import importlib.util

from conftest import ROOT

CASES = ROOT / "tests" / "reference" / "cases"


def test_simulated_cases_regenerate_byte_identical(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_cases", ROOT / "tests" / "reference" / "make_cases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "HERE", tmp_path)
    mod.unbalanced3()
    mod.singular()
    mod.slopes()
    for case in ("unbalanced3", "singular", "slopes"):
        for f in (CASES / case).iterdir():
            assert (tmp_path / case / f.name).read_bytes() == f.read_bytes(), f"{case}/{f.name}"
