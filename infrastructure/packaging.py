"""Builds the Lambda deployment package's dependencies for the target runtime, not this machine.

Chalice takes the Lambda runtime from the interpreter that packages (Python 3.11 here) and, when
told otherwise, downloads wheels without `--python-version`, silently leaving out compiled
dependencies (pydantic-core, cffi, argon2-cffi-bindings, wrapt). So the dependencies are built
here, explicitly for `LAMBDA_RUNTIME`:

1. `pip download` every requirement as cp313 manylinux wheels (binary only, no local builds),
2. `pip install --no-deps --target` exactly those wheels into a site-packages directory,
3. drop what the Lambda runtime already provides (see below) and the test suites some
   distributions ship inside their package (`SHIPPED_TESTS`),
4. stage a Chalice project whose `vendor/` is that directory and whose `requirements.txt` is
   empty, so Chalice packages the app code and copies the prebuilt dependencies verbatim.

Both the wheels and the installed directory live under `infrastructure/.build/` (gitignored),
keyed by a hash of the requirements and the target: a warm synth never runs pip.

boto3 and botocore are NOT packaged. The python3.13 runtime ships them; PynamoDB and the X-Ray
SDK pull botocore in, and botocore 1.44 alone is ~16 MB zipped and ~30 MB unzipped: it would
make the package every function loads nearly four times larger (~6 MB without it) and slow
cold starts. What only the SDK needs (s3transfer, urllib3) goes with it, so the runtime's
botocore runs with its own urllib3; jmespath, python-dateutil and six stay, because Powertools
and croniter need them too. The price is that the SDK version is AWS's, not ours: Taskbeat only
calls long-standing APIs (DynamoDB, Secrets Manager, API Gateway management, Scheduler, Step
Functions) through plain clients. To ship our own SDK instead, empty `RUNTIME_PROVIDED` (and
tests/infra/test_package.py, which guards this decision). Chalice is left out too: its packager
adds the two runtime modules it needs itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LAMBDA_RUNTIME = "python3.13"
LAMBDA_ABI = "cp313"

# The python3.13 runtime is Amazon Linux 2023 (glibc 2.34). pip takes each --platform literally
# (only manylinux2014 implies the older legacy tags), so list every glibc it can load.
_MANYLINUX_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(34, 16, -1)),
    "manylinux2014_x86_64",
)

# Distributions the Lambda runtime provides; anything only they depend on is dropped with them.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Chalice's packager adds `chalice/app.py` and `chalice/__init__.py` itself.
PACKAGED_BY_CHALICE = frozenset({"chalice"})

# What pip's environment markers see on the target (`extra` is filled in per requirement).
_TARGET_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "implementation_version": "3.13.0",
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}

# Test suites some distributions ship inside their package (icalendar's is 2 MB): never
# imported by the package itself, dead weight in every function's package.
SHIPPED_TESTS = ("croniter/tests", "icalendar/tests")

# Bump when the build steps change, so cached builds are not reused.
_BUILD_FORMAT = 2

INFRASTRUCTURE_DIR = Path(__file__).resolve().parent
REPO_ROOT = INFRASTRUCTURE_DIR.parent
# A dot directory: mypy and other tree walkers skip it (it holds third-party code).
BUILD_DIR = INFRASTRUCTURE_DIR / ".build"


@dataclass(frozen=True)
class LambdaProject:
    """A Chalice project directory ready for `chalice.cdk.Chalice(source_dir=...)`."""

    source_dir: Path
    site_packages: Path


def lambda_requirements(requirements_file: Path) -> list[Requirement]:
    """The requirements to build, without what the runtime or Chalice provides."""
    kept = []
    for line in requirements_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ValueError(f"{requirements_file}: options are not supported here: {line!r}")
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) not in RUNTIME_PROVIDED | PACKAGED_BY_CHALICE:
            kept.append(requirement)
    return kept


def build_site_packages(requirements: list[Requirement], build_dir: Path = BUILD_DIR) -> Path:
    """The installed dependencies for the target runtime, built once per requirements set."""
    key = hashlib.sha256(
        json.dumps(
            {
                "format": _BUILD_FORMAT,
                "requirements": sorted(str(r) for r in requirements),
                "abi": LAMBDA_ABI,
                "platforms": _MANYLINUX_PLATFORMS,
                "runtime_provided": sorted(RUNTIME_PROVIDED),
            }
        ).encode()
    ).hexdigest()[:16]
    deps_root = build_dir / "lambda-deps"
    target = deps_root / key
    site_packages = target / "site-packages"
    if (target / "complete").exists():
        return site_packages

    shutil.rmtree(target, ignore_errors=True)
    wheels = target / "wheels"
    wheels.mkdir(parents=True)
    requirements_file = target / "requirements.txt"
    requirements_file.write_text("".join(f"{r}\n" for r in requirements))
    target_args = [
        *(arg for platform in _MANYLINUX_PLATFORMS for arg in ("--platform", platform)),
        "--python-version",
        LAMBDA_ABI.removeprefix("cp"),
        "--implementation",
        "cp",
        "--abi",
        LAMBDA_ABI,
        "--only-binary=:all:",
    ]
    _pip("download", "--requirement", str(requirements_file), "--dest", str(wheels), *target_args)
    _pip(
        "install",
        "--no-deps",
        "--no-compile",  # .pyc files of this interpreter would be dead weight on 3.13
        "--target",
        str(site_packages),
        *target_args,
        *sorted(str(wheel) for wheel in wheels.glob("*.whl")),
    )
    shutil.rmtree(site_packages / "bin", ignore_errors=True)  # console scripts: unused on Lambda
    for shipped_tests in SHIPPED_TESTS:
        shutil.rmtree(site_packages / shipped_tests, ignore_errors=True)
    _remove_unneeded_distributions(site_packages, requirements)
    (target / "complete").write_text(key + "\n")

    # Only the current build is kept; an older one is rebuilt if requirements go back.
    for other in deps_root.iterdir():
        if other != target:
            shutil.rmtree(other, ignore_errors=True)
    return site_packages


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    subprocess.run(command, check=True)  # noqa: S603 (our own interpreter, fixed arguments)


def _remove_unneeded_distributions(site_packages: Path, requirements: list[Requirement]) -> None:
    """Remove every distribution that only runtime-provided distributions depend on."""
    installed: dict[str, importlib.metadata.Distribution] = {
        canonicalize_name(dist.metadata["Name"]): dist
        for dist in importlib.metadata.distributions(path=[str(site_packages)])
    }
    needed = _dependency_closure(requirements, installed)
    for name, dist in installed.items():
        if name not in needed:
            _uninstall(site_packages, dist)


def _dependency_closure(
    roots: Iterable[Requirement], installed: dict[str, importlib.metadata.Distribution]
) -> set[str]:
    needed: set[str] = set()
    pending = list(roots)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in needed or name in RUNTIME_PROVIDED:
            continue
        needed.add(name)
        if name not in installed:
            raise RuntimeError(f"{requirement} was not installed for {LAMBDA_RUNTIME}")
        for line in installed[name].requires or []:
            dependency = Requirement(line)
            if _applies(dependency.marker, requirement.extras):
                pending.append(dependency)
    return needed


def _applies(marker: Marker | None, extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(
        marker.evaluate({**_TARGET_MARKER_ENVIRONMENT, "extra": extra})
        for extra in (extras or {""})
    )


def _uninstall(site_packages: Path, dist: importlib.metadata.Distribution) -> None:
    directories: set[Path] = set()
    for file in dist.files or []:
        path = Path(os.path.normpath(site_packages / file))
        if path.is_relative_to(site_packages) and path != site_packages:
            path.unlink(missing_ok=True)
            directories.update(p for p in path.parents if p.is_relative_to(site_packages))
    # RECORD lists files only: remove the directories they leave empty, deepest first.
    for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
        if directory != site_packages and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def stage_project(site_packages: Path, project_dir: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Copy the app into a Chalice project whose only dependencies are `site_packages`.

    The project directory is kept between synths: Chalice caches its deployment package under
    `.chalice/deployments`, keyed by a hash of the app code and `vendor/`, so an unchanged app
    gives a byte-identical package and CDK sees an unchanged asset.
    """
    project_dir.mkdir(parents=True, exist_ok=True)
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(repo_root / "app.py", project_dir / "app.py")
    shutil.rmtree(project_dir / "chalicelib", ignore_errors=True)
    shutil.copytree(repo_root / "chalicelib", project_dir / "chalicelib", ignore=no_bytecode)
    (project_dir / ".chalice").mkdir(exist_ok=True)
    shutil.copy2(repo_root / ".chalice" / "config.json", project_dir / ".chalice" / "config.json")
    (project_dir / "requirements.txt").write_text(
        "# Empty on purpose: infrastructure/packaging.py prebuilds the dependencies in vendor/.\n"
    )
    vendor = project_dir / "vendor"
    if vendor.is_symlink() or vendor.exists():
        vendor.unlink()
    vendor.symlink_to(site_packages, target_is_directory=True)
    return project_dir


@contextlib.contextmanager
def lambda_project(
    repo_root: Path = REPO_ROOT, build_dir: Path = BUILD_DIR
) -> Iterator[LambdaProject]:
    """Build and stage the Lambda project; package it with Chalice inside this block.

    Holds a lock on the build directory (parallel synths share it) and runs the block in a
    scratch working directory, where `chalice.cdk` writes its `chalice.out/` copy of the package.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        site_packages = build_site_packages(
            lambda_requirements(repo_root / "requirements.txt"), build_dir
        )
        project_dir = stage_project(site_packages, build_dir / "lambda-project", repo_root)
        with (
            tempfile.TemporaryDirectory(prefix="chalice-out-") as scratch,
            contextlib.chdir(scratch),
        ):
            yield LambdaProject(source_dir=project_dir, site_packages=site_packages)
            _prune_package_cache(project_dir, Path(scratch))


def _prune_package_cache(project_dir: Path, scratch: Path) -> None:
    """Keep only the deployment package this synth used; Chalice never deletes old ones."""
    used = {_sha256(path) for path in scratch.glob("chalice.out/*/deployment.zip")}
    if not used:
        return
    for cached in (project_dir / ".chalice" / "deployments").glob("*.zip"):
        if _sha256(cached) not in used:
            cached.unlink()


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
