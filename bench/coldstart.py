"""Cold start: importing the Lambda handler module as Lambda would, against a bare Chalice app;
and the size of the deployment package.

`python -m bench.coldstart` builds the deployment package the way `cdk synth` does
(infrastructure/packaging.py stages the project, `chalice package` zips it) and measures:

- the package's size, zipped (target at most 10 MB) and unzipped;
- `import app` in a fresh interpreter, interleaved with `import bare_app` (bench/bare_app.py: a
  Chalice app with one route), each run several times and the median taken. The child sees only
  what the function would: the standard library, the package's top-level modules and the SDK the
  runtime provides (a module installed here but outside those, e.g. `cryptography`, which PyJWT
  would pick up, is refused as it would be missing). Two variants:
    * as packaged: the package holds no bytecode and /var/task is read-only, so Lambda compiles
      every module of the app and its dependencies from source at each cold start; the child
      finds bytecode for the standard library only (as the runtime ships it);
    * with bytecode: what shipping `.pyc` files built for the runtime would give.
  Targets, on both: at most 2x the bare app and at most 250 ms.
- the first request after the import (with bytecode), `GET /v1/tasks/{id}` on in-memory
  adapters, in the same fresh process: what was deferred at import (validators built on first
  use, libraries imported on first use: PyJWT, Powertools) is paid here. The in-memory world is
  written straight into the fakes first, loading none of that. Not included: building the real
  container (settings, boto3 clients), which a real first request also pays. No target; it
  keeps the import figure honest.

The interpreter here is 3.11, the functions run 3.13: the figures compare, they do not predict
Lambda's init duration.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import Figure, SuiteResult, Target, main_for_suite

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
IMPORT_BUDGET_MS = 250.0
RATIO_BUDGET = 2.0
PACKAGE_BUDGET_MB = 10.0
# What the python3.13 runtime provides besides the standard library (infrastructure/packaging.py
# leaves the SDK out of the package for this reason).
RUNTIME_MODULES = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "awslambdaric"})
GROUP = "cold start"

# The child: refuse modules the function would not have, import the handler module, time it.
PROBE = """
import json, sys, time
from importlib.machinery import PathFinder
allowed = set(json.loads(sys.argv[2]))
installed = tuple(p for p in sys.path if p.endswith("site-packages"))
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if path is not None or name in allowed or name in sys.stdlib_module_names:
            return None
        spec = PathFinder.find_spec(name)
        if spec is not None and (spec.origin or "").startswith(installed):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the package)", name=name)
        return None
sys.meta_path.insert(0, Refuse())
sys.path.insert(0, sys.argv[3])
module = sys.argv[1]
started, cpu = time.perf_counter(), time.process_time()
handler = __import__(module)
result = {
    "import_ms": (time.perf_counter() - started) * 1000,
    "import_cpu_ms": (time.process_time() - cpu) * 1000,
}
if sys.argv[4] == "first-request":
    sys.path.insert(0, sys.argv[5])
    result["first_request_ms"] = __import__("bench.coldstart").coldstart.first_request(module)
print(json.dumps(result))
"""


@dataclass(frozen=True)
class Package:
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    top_level: frozenset[str]


def build_package() -> Package:
    """The deployment package, built as `cdk synth` builds it (infrastructure/packaging.py,
    then `chalice package`; warm builds reuse the dependency cache and Chalice's own)."""
    from chalice import api

    from infrastructure import packaging

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with (
        packaging.lambda_project() as project,
        tempfile.TemporaryDirectory(prefix="bench-package-") as out,
        open(os.devnull, "w") as devnull,
        redirect_stdout(devnull),
    ):
        api.package_app(
            project_dir=str(project.source_dir),
            output_dir=str(Path(out) / "package"),
            stage="dev",
            # The functions' role comes from CDK; any ARN will do for packaging.
            chalice_config={"iam_role_arn": "arn:aws:iam::123456789012:role/bench"},
        )
        path = Path(out) / "package" / "deployment.zip"
        with zipfile.ZipFile(path) as package:
            infos = package.infolist()
            return Package(
                zipped_bytes=path.stat().st_size,
                unzipped_bytes=sum(info.file_size for info in infos),
                files=len(infos),
                top_level=frozenset(_top_level(info.filename) for info in infos) - {""},
            )


def _top_level(name: str) -> str:
    first = name.split("/", 1)[0]
    if "/" not in name:  # a module file at the root: name.py, name.cpython-313-...so
        first = first.split(".", 1)[0]
    return "" if first.endswith((".dist-info", ".egg-info")) else first


@contextmanager
def bytecode_caches() -> Iterator[tuple[Path, Path]]:
    """Two bytecode caches (PYTHONPYCACHEPREFIX) for the children: every module's, and the
    standard library's alone (the package ships no bytecode; the runtime's stdlib has it)."""
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as scratch:
        everything, stdlib_only = Path(scratch) / "all", Path(scratch) / "stdlib"
        yield everything, stdlib_only


def _prepare_caches(everything: Path, stdlib_only: Path, allowed: list[str]) -> None:
    # One run that writes bytecode for all it imports (handler, bare app, first request).
    for module in ("app", "bare_app"):
        _child(module, allowed, everything, write_bytecode=True, first_request=True)
    shutil.copytree(everything, stdlib_only)
    # Drop what is not the standard library: this checkout, and site-packages.
    paths = sysconfig.get_paths()
    for tree in {ROOT, Path(paths["purelib"]), Path(paths["platlib"])}:
        shutil.rmtree(stdlib_only / tree.resolve().relative_to("/"), ignore_errors=True)


def _child(
    module: str,
    allowed: list[str],
    cache: Path,
    *,
    write_bytecode: bool = False,
    first_request: bool = False,
) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TASKBEAT_"))}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    location = ROOT if module == "app" else ROOT / "bench"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            module,
            json.dumps(allowed),
            str(location),
            "first-request" if first_request else "import-only",
            str(ROOT),
        ],
        cwd=location,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{result.stderr}")
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def first_request(module: str) -> float:
    """In the child, after the import: one `GET /v1/tasks/{id}` through the handler (app) or
    the bare route (bare_app), in milliseconds. The in-memory world is set up first, through
    the services; the request is timed alone."""
    import time

    from bench.inmemory import LambdaContext, in_memory_container, quiet_observability, rest_event

    handler = sys.modules[module].app
    if module == "app":
        from chalicelib import bootstrap

        world = in_memory_container()
        bootstrap.override(world.container)
        event = rest_event(
            "GET", "/v1/tasks/{task_id}", {"task_id": world.task_id}, token=world.token
        )
    else:
        event = rest_event("GET", "/v1/hello")
    with quiet_observability(build_now=False):
        started = time.perf_counter()
        response = handler(event, LambdaContext())
        elapsed = (time.perf_counter() - started) * 1000
    if response["statusCode"] != 200:
        raise AssertionError(f"first request: {response}")
    return elapsed


def measure(runs: int = RUNS) -> SuiteResult:
    package = build_package()
    allowed = sorted(package.top_level | RUNTIME_MODULES | {"app", "bare_app", "bench", "tests"})
    samples: dict[str, list[dict[str, float]]] = {
        "app_source": [],
        "bare_source": [],
        "app_bytecode": [],
        "bare_bytecode": [],
    }
    with bytecode_caches() as (everything, stdlib_only):
        _prepare_caches(everything, stdlib_only, allowed)
        for _ in range(runs):  # interleaved: load on the machine hits all four alike
            for module in ("app", "bare"):
                name = "app" if module == "app" else "bare_app"
                samples[f"{module}_source"].append(_child(name, allowed, stdlib_only))
                samples[f"{module}_bytecode"].append(
                    _child(name, allowed, everything, first_request=True)
                )

    def median(kind: str, key: str = "import_ms") -> float:
        return statistics.median(sample[key] for sample in samples[kind])

    figures = [
        Figure(
            "package.zipped_mb",
            "deployment package, zipped",
            package.zipped_bytes / 1e6,
            "MB",
            Target("<=", PACKAGE_BUDGET_MB),
            GROUP,
        ),
        Figure(
            "package.unzipped_mb",
            "deployment package, unzipped",
            package.unzipped_bytes / 1e6,
            "MB",
            Target("<=", 250.0),  # Lambda's limit for a zip package
            GROUP,
        ),
    ]
    for variant, title in (("source", "as packaged (no .pyc)"), ("bytecode", "with .pyc")):
        app_ms, bare_ms = median(f"app_{variant}"), median(f"bare_{variant}")
        figures += [
            Figure(
                f"coldstart.{variant}.import_app_ms",
                f"import app, {title}",
                app_ms,
                "ms",
                Target("<=", IMPORT_BUDGET_MS),
                GROUP,
            ),
            Figure(
                f"coldstart.{variant}.import_bare_ms",
                f"import bare Chalice app, {title}",
                bare_ms,
                "ms",
                None,
                GROUP,
            ),
            Figure(
                f"coldstart.{variant}.ratio",
                f"import app / bare app, {title}",
                app_ms / bare_ms,
                "x",
                Target("<=", RATIO_BUDGET),
                GROUP,
            ),
        ]
    figures += [
        Figure(
            "coldstart.first_request_app_ms",
            "first request after import, app (GET /tasks/{id})",
            median("app_bytecode", "first_request_ms"),
            "ms",
            None,
            GROUP,
        ),
        Figure(
            "coldstart.first_request_bare_ms",
            "first request after import, bare app",
            median("bare_bytecode", "first_request_ms"),
            "ms",
            None,
            GROUP,
        ),
    ]
    data: dict[str, Any] = {"runs": runs, "samples": samples}
    return SuiteResult(figures, data)


if __name__ == "__main__":
    main_for_suite(measure, sys.argv[1:])
