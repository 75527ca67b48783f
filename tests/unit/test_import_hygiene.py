"""No module of ours opens a connection or reads the environment at import time.

Tests, the local stack and Lambda's init phase all import everything first; configuration and
connections happen on first use. Checked in a fresh interpreter: third-party packages are
imported first (they may read their own settings), then the environment and sockets are
replaced by tripwires, then our modules are imported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("app", "chalicelib", "local")

PROBE = textwrap.dedent(
    """
    import importlib, os, pkgutil, socket, sys

    ours = {ours!r}

    def our_module_names():
        names = ["app"]
        for package in ours[1:]:
            module = importlib.import_module(package)
            names.append(package)
            names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
        return names

    # 1. Warm-up in a child: learn which third-party modules our modules pull in.
    names = our_module_names()
    for name in names:
        importlib.import_module(name)
    third_party = [m for m in list(sys.modules) if m.split(".")[0] not in ours]
    for name in list(sys.modules):
        if name.split(".")[0] in ours:
            del sys.modules[name]
    for name in third_party:
        try:
            importlib.import_module(name)
        except Exception:
            pass

    # 2. Tripwires, then import ours again from scratch.
    touched = []
    # Read by libraries while our classes are defined, not by our code: Chalice tags
    # AWS_EXECUTION_ENV when the app object is made; pydantic checks its plugin switch.
    allowed = {{"AWS_EXECUTION_ENV", "PYDANTIC_DISABLE_PLUGINS"}}

    class Environ(dict):
        def __getitem__(self, key):
            if key not in allowed:
                touched.append(key)
            return super().__getitem__(key)
        def get(self, key, default=None):
            if key not in allowed:
                touched.append(key)
            return super().get(key, default)
        def __contains__(self, key):
            if key not in allowed:
                touched.append(key)
            return super().__contains__(key)

    os.environ = Environ(os.environ)
    def no_connect(*args, **kwargs):
        raise AssertionError("connection at import time")
    socket.socket.connect = no_connect
    socket.create_connection = no_connect

    for name in names:
        importlib.import_module(name)
    if touched:
        raise SystemExit("environment read at import time: " + ", ".join(sorted(set(touched))))
    print("imported", len(names), "modules")
    """
)


def test_importing_everything_reads_no_environment_and_opens_no_connection() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(ours=OUR_PACKAGES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imported" in result.stdout
