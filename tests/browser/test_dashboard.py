"""The dashboard in a real browser: `npm --prefix web run test:browser` (Node's test runner,
playwright-core driving Debian's headless Chromium) against a local stack started here, as
`make run` starts it, serving web/dist at /app.

Covers signing in and out, creating and completing a task with the keyboard, a change from
another browser session arriving live, a task's detail, a workflow run's graph reaching
succeeded, the board at phone width, an API token made, shown once, copied and revoked on the
Tokens screen, and a project hook with its delivery log (web/tests/browser/dashboard.test.mjs). With
TASKBEAT_SCREENSHOTS=DIR (`make screenshots`) it also saves the main screens there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.testing import REPO_ROOT, StackProcess, running_stack

WEB = REPO_ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _require_built() -> None:
    missing = [
        str(path.relative_to(REPO_ROOT))
        for path in (WEB / "dist" / "index.html", WEB / "node_modules" / "playwright-core")
        if not path.exists()
    ]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make web` (make test does) first")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make chromium` (apt-get install chromium) first")
    if shutil.which("npm") is None:
        pytest.fail("npm is not on PATH")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    _require_built()
    with running_stack(tmp_path_factory.mktemp("browser-stack")) as running:
        yield running


@pytest.mark.timeout(240)
def test_the_dashboard_in_headless_chromium(stack: StackProcess) -> None:
    base = stack.api.removesuffix("/api/v1")
    env = {
        **os.environ,
        "TASKBEAT_APP_URL": f"{base}/app/",
        "TASKBEAT_API_URL": stack.api,
        "CHROMIUM_PATH": CHROMIUM,
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        ["npm", "--prefix", str(WEB), "run", "--silent", "test:browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{output}\n--- stack log ---\n{stack.output()[-4000:]}"
    assert "# fail 0" in output, output
