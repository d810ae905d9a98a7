"""The notebook's front door: every public name resolves, lazily, to the library's own object."""

from __future__ import annotations

import subprocess
import sys

import tracker
from tracker.analysis.compare import compare
from tracker.ingest.importer import import_tree


def test_every_public_name_resolves() -> None:
    for name in tracker.__all__:
        assert getattr(tracker, name) is not None, name
    assert tracker.import_tree is import_tree
    assert tracker.compare_campaigns is compare


def test_import_tracker_loads_no_heavy_module() -> None:
    """`import tracker` must stay cheap: the CLI's fast commands pay for nothing they do not use."""
    code = "import sys, tracker; print(sorted(m for m in ('pandas', 'mlflow', 'sqlalchemy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
