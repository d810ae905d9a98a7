"""Helpers for the MLflow tests: a rerun tree, a real `mlflow server` process, run lookups."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import FIXTURES

ORIGINAL_TREE = FIXTURES / "isobench-small-a"
COMMIT = "2265d0bf976f7deb6f28d60cf2cd1be069039a9d"  # sglang: tool_output_missing in the original evaluation
_SOURCE_RUN = ORIGINAL_TREE / "state/runs/sglang/trae/gpt-5-2025-08-07/2025-12-01_09-12-44/sglang_002_2265d0bf"
EXPERIMENT = "iso-bench/trae/gpt-5"


def rerun_tree(root: Path) -> Path:
    """A one-run rerun tree: the failed commit now succeeds (patch, clean stderr, status success)."""
    run = root / "state/runs/sglang/trae/gpt-5-2025-08-07/2026-01-10_10-00-00/sglang_002_2265d0bf"
    shutil.copytree(_SOURCE_RUN, run)
    for path in run.iterdir():
        path.chmod(0o644)
    journal = json.loads((run / "journal.json").read_text())
    journal["status"] = "success"
    journal["trae"]["returncode"] = 0
    journal["run_metadata"]["run_timestamp"] = "2026-01-10_10-00-00"
    (run / "journal.json").write_text(json.dumps(journal))
    (run / "trae_stderr.txt").write_text("")
    (run / "trajectory.json").unlink()
    (run / "model_patch.diff").write_text(
        "diff --git a/python/sglang/x.py b/python/sglang/x.py\n--- a/python/sglang/x.py\n+++ b/python/sglang/x.py\n"
        "@@ -1 +1 @@\n-slow = 1\n+fast = 1\n")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[Any], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def start_mlflow_server(backend_uri: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """A real `mlflow server` on loopback, proxying artifacts; returns once /health answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts), "--serve-artifacts",
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
    except Exception:
        stop(process)
        raise RuntimeError(f"mlflow server did not start: {log.read_text()[-2000:]}") from None
    return process


def stop(process: subprocess.Popen[Any]) -> None:
    """Kill the server and its workers (its own process group, started by the test)."""
    import os
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def runs_by_stream(uri: str) -> dict[str, Any]:
    """Every run of the experiment keyed by stream id; fails on a duplicate stream id."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    found: dict[str, Any] = {}
    for run in runs:
        stream = run.data.tags["track.stream_id"]
        assert stream not in found, f"duplicate run for {stream}"
        found[stream] = run
    return found
