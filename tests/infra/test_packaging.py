"""The packaging helpers that give the Lambda package its bytecode, on small trees (no synth).

The compiling interpreter is whatever `runtime_python()` returned in production; here it is this
one (`sys.executable`), so the tests run on any version: they check what the helpers do with
the interpreter they are given. The synthesized package's bytecode is held to Python 3.13's in
tests/infra/test_package.py.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import chalice
import chalice.app
import pytest

from infrastructure import packaging
from infrastructure.packaging import (
    compile_site_packages,
    lambda_project,
    runtime_python,
    stage_project,
)

pytestmark = pytest.mark.infra

UNCHECKED_HASH_FLAGS = b"\x01\x00\x00\x00"
THIS_PYTHONS_HEADER = importlib.util.MAGIC_NUMBER + UNCHECKED_HASH_FLAGS
# What `runtime_python`'s probe prints for a CPython 3.13 with the GIL.
PYTHON313 = "cpython-313 f30d0d0a False"


def _fake_python(path: Path, prints: str, status: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{prints}'\nexit {status}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_python313(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine whose own interpreter is 3.11, with an empty pyenv and nothing on the PATH."""
    monkeypatch.setattr(
        sys, "executable", str(_fake_python(tmp_path / "python3.11", "cpython-311 a70d0d0a False"))
    )
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "bin").mkdir()
    return tmp_path


def test_runtime_python_is_none_without_a_python313(no_python313: Path) -> None:
    assert runtime_python() is None


def test_runtime_python_takes_the_newest_pyenv_313_before_the_path(no_python313: Path) -> None:
    versions = no_python313 / "pyenv" / "versions"
    for version in ("3.13.2", "3.13.10", "3.13.9"):
        _fake_python(versions / version / "bin" / "python3.13", PYTHON313)
    _fake_python(versions / "3.12.1" / "bin" / "python3.13", PYTHON313)  # not a 3.13* version
    _fake_python(no_python313 / "bin" / "python3.13", PYTHON313)
    assert runtime_python() == str(versions / "3.13.10" / "bin" / "python3.13")


def test_runtime_python_falls_back_to_python313_on_the_path(no_python313: Path) -> None:
    on_path = _fake_python(no_python313 / "bin" / "python3.13", PYTHON313)
    assert runtime_python() == str(on_path)


def test_runtime_python_asks_pyenv_for_its_root(
    no_python313: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYENV_ROOT")
    root = no_python313 / "elsewhere"
    _fake_python(no_python313 / "bin" / "pyenv", str(root))
    python = _fake_python(root / "versions" / "3.13.0" / "bin" / "python3.13", PYTHON313)
    assert runtime_python() == str(python)


def test_runtime_python_is_this_interpreter_when_it_is_313(
    no_python313: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    this = _fake_python(no_python313 / "python", PYTHON313)
    monkeypatch.setattr(sys, "executable", str(this))
    _fake_python(no_python313 / "bin" / "python3.13", PYTHON313)
    assert runtime_python() == str(this)


@pytest.mark.parametrize(
    ("prints", "status"),
    [
        ("cpython-313 f30d0d0a True", 0),  # free-threaded
        ("cpython-313 cb0d0d0a False", 0),  # a 3.13 pre-release's bytecode
        ("cpython-312 cb0d0d0a False", 0),
        (PYTHON313, 1),  # a pyenv shim without a version to run
    ],
)
def test_runtime_python_refuses_other_interpreters(
    no_python313: Path, prints: str, status: int
) -> None:
    _fake_python(no_python313 / "bin" / "python3.13", prints, status)
    assert runtime_python() is None


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_dependencies_are_replaced_by_sourceless_bytecode(tmp_path: Path) -> None:
    site_packages = _tree(
        tmp_path / "site-packages",
        {
            "pkg/__init__.py": "",
            "pkg/mod.py": "def where():\n    return __file__, where.__code__.co_filename\n",
            "pkg/__pycache__/mod.cpython-311.pyc": "stale",
            "top.py": "VALUE = 42\n",
            "pkg-1.0.dist-info/METADATA": "Name: pkg\n",
        },
    )
    compile_site_packages(site_packages, sys.executable)
    files = sorted(str(p.relative_to(site_packages)) for p in site_packages.rglob("*"))
    assert files == [
        "pkg",
        "pkg-1.0.dist-info",
        "pkg-1.0.dist-info/METADATA",
        "pkg/__init__.pyc",
        "pkg/mod.pyc",
        "top.pyc",
    ]
    assert (site_packages / "top.pyc").read_bytes()[:8] == THIS_PYTHONS_HEADER
    # Loaded without its source; its code names the file where Lambda extracts the package.
    loaded = subprocess.run(
        [
            sys.executable,
            "-S",
            "-B",
            "-c",
            "import pkg.mod, top; print(top.VALUE, *pkg.mod.where())",
        ],
        cwd=site_packages,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split() == [
        "42",
        str(site_packages / "pkg" / "mod.pyc"),
        "/var/task/pkg/mod.py",
    ]


def test_a_module_that_does_not_compile_fails_the_build_by_name(tmp_path: Path) -> None:
    site_packages = _tree(tmp_path / "site-packages", {"good.py": "", "bad.py": "def (:\n"})
    with pytest.raises(RuntimeError, match=r"bad\.py"):
        compile_site_packages(site_packages, sys.executable)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "repo",
        {
            "app.py": "from chalicelib import api\n",
            "chalicelib/__init__.py": "",
            "chalicelib/api/__init__.py": "ROUTES = 1\n",
            "chalicelib/api/__pycache__/__init__.cpython-311.pyc": "stale",
            "chalicelib/static/page.html": "<p>",
            ".chalice/config.json": "{}",
            "requirements.txt": "",
        },
    )


@pytest.fixture
def site_packages(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "site-packages",
        {"dep/__init__.py": "", "top.py": "", "dep-1.0.dist-info/METADATA": "Name: dep\n"},
    )


def _files(directory: Path) -> set[str]:
    """Every file under `directory`, following `vendor/`'s links."""
    return {
        str(Path(root, file).relative_to(directory))
        for root, _, files in os.walk(directory, followlinks=True)
        for file in files
    }


def test_staging_without_python313_ships_no_bytecode(
    repo: Path, site_packages: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "vendor").symlink_to(site_packages)  # the layout before bytecode was shipped
    stage_project(site_packages, project, repo, python=None)
    vendor = project / "vendor"
    assert not vendor.is_symlink()
    assert {entry.name: entry.readlink() for entry in vendor.iterdir()} == {
        entry.name: entry for entry in site_packages.iterdir()
    }
    assert {"app.py", "chalicelib/static/page.html", "vendor/dep/__init__.py"} <= _files(project)
    assert [name for name in _files(project) if "__pycache__" in name or ".pyc" in name] == []


# Where each .pyc of the staged project goes, and the source it is compiled from.
def _expected_bytecode(project: Path) -> dict[str, Path]:
    return {
        "chalicelib/__pycache__/__init__.cpython-313.pyc": project / "chalicelib/__init__.py",
        "chalicelib/api/__pycache__/__init__.cpython-313.pyc": project
        / "chalicelib/api/__init__.py",
        # Chalice adds app.py, chalice/app.py and chalice/__init__.py itself: their bytecode
        # reaches the same paths through vendor/, compiled from the very files Chalice adds.
        "vendor/__pycache__/app.cpython-313.pyc": project / "app.py",
        "vendor/chalice/__pycache__/app.cpython-313.pyc": Path(inspect.getfile(chalice.app)),
        "vendor/chalice/__pycache__/__init__.cpython-313.pyc": Path(inspect.getfile(chalice)),
    }


def test_staging_compiles_the_app_and_chalices_modules(
    repo: Path, site_packages: Path, tmp_path: Path
) -> None:
    before = _files(site_packages)
    project = stage_project(site_packages, tmp_path / "project", repo, python=sys.executable)
    expected = _expected_bytecode(project)
    packaged = {name for name in _files(project) if not name.startswith(".bytecode/")}
    assert {name for name in packaged if name.endswith(".pyc")} == set(expected)
    for name, source in expected.items():
        pyc = (project / name).read_bytes()
        assert pyc[:8] == THIS_PYTHONS_HEADER, name
        assert pyc[8:16] == importlib.util.source_hash(source.read_bytes()), name
        # Chalice's zip records modification times: a .pyc's follows its source's.
        assert (project / name).stat().st_mtime_ns == source.stat().st_mtime_ns, name
    assert _files(site_packages) == before  # the cached dependencies are left alone


def test_restaging_unchanged_code_compiles_nothing_and_gives_the_same_bytes(
    repo: Path, site_packages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[list[str]] = []
    compile_bytecode = packaging.compile_bytecode

    def recording(python: str, files: list[tuple[Path, Path, PurePosixPath]]) -> None:
        compiled.append(sorted(str(shown_as) for _, _, shown_as in files))
        compile_bytecode(python, files)

    monkeypatch.setattr(packaging, "compile_bytecode", recording)
    project = tmp_path / "project"

    def staged() -> dict[str, tuple[bytes, int]]:
        stage_project(site_packages, project, repo, python=sys.executable)
        return {
            name: ((project / name).read_bytes(), (project / name).stat().st_mtime_ns)
            for name in _expected_bytecode(project)
        }

    first = staged()
    assert len(compiled) == 1
    assert len(compiled[0]) == 5
    assert staged() == first
    assert len(compiled) == 1

    (repo / "chalicelib/api/__init__.py").write_text("ROUTES = 2\n")
    changed = staged()
    assert compiled[1:] == [["/var/task/chalicelib/api/__init__.py"]]
    assert {name for name in first if changed[name] != first[name]} == {
        "chalicelib/api/__pycache__/__init__.cpython-313.pyc"
    }
    assert len(list((project / ".bytecode").iterdir())) == 5  # the cache keeps what is used


def test_packaging_without_python313_warns_and_ships_no_bytecode(
    repo: Path,
    site_packages: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(packaging, "runtime_python", lambda: None)
    built_with: list[str | None] = []

    def build(requirements: object, build_dir: Path, python: str | None = None) -> Path:
        built_with.append(python)
        return site_packages

    monkeypatch.setattr(packaging, "build_site_packages", build)
    with lambda_project(repo, tmp_path / "build") as project:
        assert built_with == [None]
        assert [name for name in _files(project.source_dir) if ".pyc" in name] == []
    assert "no Python 3.13 found" in capsys.readouterr().err
