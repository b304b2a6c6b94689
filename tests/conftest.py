from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
SMALL = ROOT / ".test" / "data"


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
