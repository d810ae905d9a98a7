"""Debian's headless Chromium for the browser tests: found, or a visible skip (a failure on CI)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_ENV = "TRACK_REQUIRE_BROWSER"


def chromium() -> str:
    """The Chromium binary; without one, skip with the reason, or fail where CI requires the browser."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    reason = "Chromium is not installed: `make test` installs it as root (.ci/install-browser, apt-get chromium)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)
