"""Builds the Lambda deployment package's dependencies for the target runtime, not this machine.

Chalice takes the Lambda runtime from the interpreter that packages (3.11 or 3.13) and, when
told otherwise, downloads wheels without `--python-version`, silently leaving out compiled
dependencies (pydantic-core, cffi, argon2-cffi-bindings, wrapt). So the dependencies are built
here, explicitly for `LAMBDA_RUNTIME`:

1. `pip download` every requirement as cp313 manylinux wheels (binary only, no local builds),
2. `pip install --no-deps --target` exactly those wheels into a site-packages directory,
3. drop what the Lambda runtime already provides (see below) and the test suites some
   distributions ship inside their package (`SHIPPED_TESTS`),
4. replace the dependencies' modules by Python 3.13 bytecode (below),
5. stage a Chalice project whose `vendor/` links to that directory and whose `requirements.txt`
   is empty, so Chalice packages the app code and copies the prebuilt dependencies verbatim.

Both the wheels and the installed directory live under `infrastructure/.build/` (gitignored),
keyed by a hash of the requirements, the target and whether bytecode is compiled: a warm synth
never runs pip.

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

Bytecode: Lambda's /var/task is read-only, so a package without `.pyc` files makes every cold
start compile every module it imports. The package therefore carries bytecode compiled by a
CPython 3.13 (`runtime_python()`: this interpreter if it is 3.13, else the newest pyenv 3.13, else
`python3.13` on the PATH, as the Makefile finds it) for every module it ships:

- the app (`app.py`, `chalicelib/`) and the two Chalice modules Chalice adds itself, in
  `__pycache__/<name>.cpython-313.pyc` beside their sources (those of `app.py` and of Chalice's
  modules are placed in the staged `vendor/`, which Chalice copies to the root of the zip);
- the dependencies as sourceless `<name>.pyc` files in place of their `.py` files, compiled
  once into the cached build. Measured: without bytecode the package is 6.3 MB zipped (19.1 MB
  unzipped); with bytecode beside every source 10.4 MB (28.1 MB), over the 10 MB target; with
  the dependencies' sources left out 8.4 MB (21.0 MB). The price: a traceback through a
  dependency shows its file and line, not the line's text.

The `.pyc` files are unchecked-hash (PEP 552): Python loads them without reading the source.
Checked-hash would read and hash the source of every module imported, at every cold start; the
check buys nothing here, because the package is built and deployed whole and /var/task is
read-only, so no source can change under its `.pyc` (nor can the console's code editor, which
does not open packages over 3 MB). Timestamp-based `.pyc` files would be wrong: a zip keeps times
to 2 seconds and without a time zone, so an extracted source need not match the time its `.pyc`
recorded, and Python would compile it anyway. Code objects name their file as on Lambda
(`/var/task/...`), not the build directory; with a fixed order and hash seed, and each `.pyc`
dated like its source, unchanged code gives a byte-identical package. With no 3.13 interpreter,
the package ships no bytecode at all (another version's would be dead weight) and packaging
prints a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
_BUILD_FORMAT = 3

# The runtime's bytecode: `sys.implementation.cache_tag` and `importlib.util.MAGIC_NUMBER` of
# CPython 3.13 (fixed for all 3.13 releases).
RUNTIME_CACHE_TAG = "cpython-313"
RUNTIME_MAGIC_NUMBER = b"\xf3\r\r\n"
# The flags word of every .pyc (PEP 552): hash-based (bit 0), source not checked (bit 1 clear).
# Unchecked: the package is built whole and /var/task is read-only, so a source never changes
# under its .pyc, and checking would read and hash every imported source at each cold start.
PYC_FLAGS = 0b01
# Where Lambda extracts the package: the file name code objects carry (tracebacks show it).
LAMBDA_TASK_ROOT = PurePosixPath("/var/task")

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


def build_site_packages(
    requirements: list[Requirement], build_dir: Path = BUILD_DIR, python: str | None = None
) -> Path:
    """The installed dependencies for the target runtime, built once per requirements set.

    With `python` (a CPython 3.13, see `runtime_python`), their modules are compiled to sourceless
    bytecode (`compile_site_packages`); without it they stay sources only.
    """
    key = hashlib.sha256(
        json.dumps(
            {
                "format": _BUILD_FORMAT,
                "requirements": sorted(str(r) for r in requirements),
                "abi": LAMBDA_ABI,
                "platforms": _MANYLINUX_PLATFORMS,
                "runtime_provided": sorted(RUNTIME_PROVIDED),
                "bytecode": _bytecode_format() if python else None,
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
    if python is not None:
        compile_site_packages(site_packages, python)
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


def stage_project(
    site_packages: Path,
    project_dir: Path,
    repo_root: Path = REPO_ROOT,
    python: str | None = None,
) -> Path:
    """Copy the app into a Chalice project whose only dependencies are `site_packages`.

    `vendor/` is a directory of links to the entries of `site_packages`; with `python` (a CPython
    3.13) the app's bytecode is compiled into the staged copy (`compile_app`).

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
    if vendor.is_symlink():  # the layout before bytecode: one link to site-packages
        vendor.unlink()
    shutil.rmtree(vendor, ignore_errors=True)  # removes the links, not what they point to
    vendor.mkdir()
    for entry in sorted(site_packages.iterdir()):
        # Chalice adds `chalice/` itself; the root's `__pycache__/` is made here (compile_app).
        if entry.name not in {"chalice", "__pycache__"}:
            (vendor / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    if python is not None:
        compile_app(project_dir, python)
    return project_dir


def runtime_python() -> str | None:
    """A CPython 3.13 (the Lambda runtime's version) to compile the package's bytecode, or None.

    This interpreter if it is one; else the newest `3.13*` of pyenv (`$PYENV_ROOT`, or `pyenv
    root`); else `python3.13` on the PATH: the Makefile's RUNTIME_PYTHON, in the same order.
    """
    return next(filter(_is_runtime_python, _runtime_python_candidates()), None)


def _runtime_python_candidates() -> list[str]:
    candidates = [sys.executable]
    pyenv_root = os.environ.get("PYENV_ROOT") or _pyenv_root()
    if pyenv_root:
        found = Path(pyenv_root).glob("versions/3.13*/bin/python3.13")
        candidates += [str(path) for path in sorted(found, key=_version_numbers, reverse=True)]
    on_path = shutil.which("python3.13")
    if on_path:
        candidates.append(on_path)
    return candidates


def _version_numbers(python: Path) -> list[int]:
    """`versions/3.13.10/bin/python3.13` -> [3, 13, 10] (`sort -V`)."""
    return [int(number) for number in re.findall(r"\d+", python.parents[1].name)]


def _pyenv_root() -> str | None:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found = subprocess.run(  # noqa: S603 (pyenv from the PATH, fixed arguments)
            [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
        )
        return found.stdout.strip() or None
    return None


# What a candidate must print: the runtime's bytecode format, from a build with the GIL (a
# free-threaded 3.13 is a different interpreter from the runtime's).
_PROBE = (
    "import importlib.util, sys, sysconfig; print(sys.implementation.cache_tag, "
    "importlib.util.MAGIC_NUMBER.hex(), bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"
)


def _is_runtime_python(candidate: str) -> bool:
    try:
        probe = subprocess.run(  # noqa: S603 (an interpreter found above, fixed arguments)
            [candidate, "-S", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    expected = f"{RUNTIME_CACHE_TAG} {RUNTIME_MAGIC_NUMBER.hex()} False"
    return probe.returncode == 0 and probe.stdout.strip() == expected


def _bytecode_format() -> dict[str, object]:
    return {
        "magic": RUNTIME_MAGIC_NUMBER.hex(),
        "flags": PYC_FLAGS,
        "root": str(LAMBDA_TASK_ROOT),
        "dependency_sources": "replaced",
    }


def compile_site_packages(site_packages: Path, python: str) -> None:
    """Replace every module of the dependencies by its sourceless bytecode (`<name>.pyc`)."""
    for stale in [*site_packages.rglob("__pycache__"), *site_packages.rglob("*.pyc")]:
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    sources = sorted(site_packages.rglob("*.py"))
    compile_bytecode(
        python,
        [
            (
                source,
                source.with_suffix(".pyc"),
                LAMBDA_TASK_ROOT / source.relative_to(site_packages),
            )
            for source in sources
        ],
    )
    for source in sources:
        source.unlink()


def compile_app(project_dir: Path, python: str) -> None:
    """Compile the staged app and the Chalice modules Chalice adds to `__pycache__/` files.

    `chalicelib/`'s go beside its sources; those of `app.py`, `chalice/app.py` and
    `chalice/__init__.py` (which Chalice adds from this interpreter's chalice) go to the same
    paths under `vendor/`, whose contents Chalice copies to the root of the package. A warm
    synth compiles only what changed: `.bytecode/` keeps each .pyc by its inputs' hash.
    """
    import chalice
    import chalice.app

    vendor = project_dir / "vendor"
    app_files = [(project_dir / "app.py", vendor, PurePosixPath("app.py"))]
    for module in (chalice.app, chalice):
        source = Path(inspect.getfile(module).removesuffix("c"))  # as Chalice's packager does
        app_files.append((source, vendor / "chalice", PurePosixPath("chalice", source.name)))
    for source in sorted((project_dir / "chalicelib").rglob("*.py")):
        app_files.append(
            (source, source.parent, PurePosixPath(source.relative_to(project_dir).as_posix()))
        )
    cache = project_dir / ".bytecode"  # outside what Chalice packages and hashes
    cache.mkdir(exist_ok=True)
    staged = []  # (source, its .pyc in the package, the .pyc's copy in the cache)
    to_compile = []
    for source, directory, shipped_as in app_files:
        shown_as = LAMBDA_TASK_ROOT / shipped_as
        inputs = "\0".join([python, _COMPILE, str(shown_as)])
        key = hashlib.sha256(inputs.encode() + b"\0" + source.read_bytes()).hexdigest()
        copy = cache / f"{key}.pyc"
        staged.append(
            (source, directory / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc", copy)
        )
        if not copy.exists():
            to_compile.append((source, copy, shown_as))
    if to_compile:
        compile_bytecode(python, to_compile)
    for source, pyc, copy in staged:
        pyc.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, pyc)
        times = source.stat()
        os.utime(pyc, ns=(times.st_atime_ns, times.st_mtime_ns))
    for unused in set(cache.iterdir()) - {copy for _, _, copy in staged}:
        unused.unlink()


# Run by the 3.13 interpreter with [source, pyc, file name in the code objects] triples on stdin.
_COMPILE = """
import json, py_compile, sys
for source, pyc, shown_as in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=pyc, dfile=shown_as, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError as error:
        sys.exit(f"{source}: {error.msg}")
"""


def compile_bytecode(python: str, files: list[tuple[Path, Path, PurePosixPath]]) -> None:
    """Compile each (source, .pyc path, file name on Lambda) with `python`, unchecked-hash.

    One fresh process in a fixed order with a fixed hash seed: the same sources give the same
    bytes. Each .pyc gets its source's modification time, which Chalice's zip records.
    """
    compiled = subprocess.run(  # noqa: S603 (a 3.13 interpreter found by runtime_python)
        [python, "-S", "-c", _COMPILE],
        input=json.dumps([[str(s), str(pyc), str(shown_as)] for s, pyc, shown_as in files]),
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            "PYTHONHASHSEED": "0",
        },
        check=False,
    )
    if compiled.returncode != 0:
        raise RuntimeError(f"compiling bytecode with {python} failed:\n{compiled.stderr}")
    for source, pyc, _ in files:
        times = source.stat()
        os.utime(pyc, ns=(times.st_atime_ns, times.st_mtime_ns))


@contextlib.contextmanager
def lambda_project(
    repo_root: Path = REPO_ROOT, build_dir: Path = BUILD_DIR
) -> Iterator[LambdaProject]:
    """Build and stage the Lambda project; package it with Chalice inside this block.

    Holds a lock on the build directory (parallel synths share it) and runs the block in a
    scratch working directory, where `chalice.cdk` writes its `chalice.out/` copy of the package.
    """
    python = runtime_python()
    if python is None:
        print(
            "warning: no Python 3.13 found (pyenv's or python3.13 on the PATH): the Lambda "
            "package ships no bytecode, so every cold start compiles every module it imports",
            file=sys.stderr,
        )
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        site_packages = build_site_packages(
            lambda_requirements(repo_root / "requirements.txt"), build_dir, python
        )
        project_dir = stage_project(site_packages, build_dir / "lambda-project", repo_root, python)
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
