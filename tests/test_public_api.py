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


def test_the_readme_notebook_example_calls_only_public_names_with_their_real_signatures() -> None:
    """Each call in the README's notebook block names a public object and binds to its signature."""
    import ast
    import inspect
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"## From a notebook.*?```python\n(.*?)```", readme, re.S)
    assert block is not None
    calls = [node for node in ast.walk(ast.parse(block.group(1))) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
             and node.func.value.id == "tracker"]
    assert len(calls) >= 12
    for call in calls:
        name = call.func.attr  # type: ignore[attr-defined]
        assert name in tracker.__all__, name
        signature = inspect.signature(getattr(tracker, name))
        signature.bind(*[None] * len(call.args), **{k.arg: None for k in call.keywords if k.arg})


def test_the_library_never_imports_the_cli() -> None:
    """`tracker/` is the library: no Click, no `runners` (the CLI is thin over it, never the reverse)."""
    import ast
    from pathlib import Path

    offenders = []
    for path in (Path(__file__).resolve().parent.parent / "tracker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("click", "runners")]
    assert offenders == []
