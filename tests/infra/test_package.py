"""The deployment package the functions run: built for their runtime, holding all the app needs."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

from infrastructure.packaging import (
    LAMBDA_RUNTIME,
    RUNTIME_PROVIDED,
    SHIPPED_TESTS,
    runtime_python,
)
from tests.infra.conftest import FIGURES, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# What the python3.13 Lambda runtime (Amazon Linux 2023, glibc 2.34, x86_64) can load.
TARGET_VERSION = (3, 13)
TARGET_PLATFORMS = [
    *(f"manylinux_2_{minor}_x86_64" for minor in range(34, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
TARGET_TAGS = frozenset(
    [
        *cpython_tags(TARGET_VERSION, abis=["cp313"], platforms=TARGET_PLATFORMS),
        *compatible_tags(TARGET_VERSION, "cp313", platforms=TARGET_PLATFORMS),
    ]
)
COMPILED_MODULE = re.compile(r"\.(cpython-313-x86_64-linux-gnu|abi3)\.so$")
# Modules the package must hold in compiled form (each from a different distribution).
REQUIRED_COMPILED = ("pydantic_core/_pydantic_core.", "_cffi_backend.", "_argon2_cffi_bindings/")
SDK_MODULES = frozenset({"boto3", "botocore", "s3transfer"})
# The bytecode of the python3.13 runtime: `importlib.util.MAGIC_NUMBER` of every CPython 3.13
# (written out: the tests may run on another version), and the flags word of an unchecked-hash
# .pyc (PEP 552: hash-based, source not checked).
PYTHON313_MAGIC = b"\xf3\r\r\n"
UNCHECKED_HASH_FLAGS = b"\x01\x00\x00\x00"


def test_runtime_provided_names_match_the_sdk_modules() -> None:
    assert frozenset(RUNTIME_PROVIDED) == SDK_MODULES


@pytest.fixture(scope="module")
def package(cloud_assembly: CloudAssembly) -> Iterator[zipfile.ZipFile]:
    keys = {f["Properties"]["CodeUri"]["Key"] for f in cloud_assembly.functions().values()}
    assert len(keys) == 1, "every function runs the same package"
    path = cloud_assembly.file_asset(keys.pop())
    with zipfile.ZipFile(path) as package:
        unzipped = sum(info.file_size for info in package.infolist())
        FIGURES["deployment package"] = (
            f"{path.stat().st_size / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped, "
            f"{len(package.namelist())} files"
        )
        yield package


def test_package_is_for_the_runtime_the_functions_declare(cloud_assembly: CloudAssembly) -> None:
    runtimes = {f["Properties"]["Runtime"] for f in cloud_assembly.functions().values()}
    assert runtimes == {LAMBDA_RUNTIME} == {"python3.13"}


def test_package_holds_the_app(package: zipfile.ZipFile) -> None:
    names = set(package.namelist())
    assert {"app.py", "chalicelib/__init__.py", "chalice/__init__.py", "chalice/app.py"} <= names
    assert any(name.startswith("chalicelib/api/") for name in names)
    # Only Chalice's two runtime modules, not the CLI and its dependencies.
    assert {
        name for name in names if name.startswith("chalice/") and "__pycache__" not in name
    } == {
        "chalice/__init__.py",
        "chalice/app.py",
    }


@pytest.fixture(scope="module")
def bytecode_python() -> str | None:
    """The 3.13 the synth compiled the package's bytecode with (found as the synth finds it)."""
    return runtime_python()


def _pycs(package: zipfile.ZipFile) -> list[str]:
    return [name for name in package.namelist() if name.endswith(".pyc")]


def test_package_holds_bytecode_exactly_when_packaging_found_python313(
    package: zipfile.ZipFile, bytecode_python: str | None
) -> None:
    names = set(package.namelist())
    if bytecode_python is None:
        # No bytecode at all (another version's would be dead weight), sources kept.
        assert _pycs(package) == []
        assert "pydantic/main.py" in names
    else:
        # The dependencies ship sourceless bytecode (packaging.py: the package's size).
        assert {"pydantic/main.pyc", "chalicelib/__pycache__/__init__.cpython-313.pyc"} <= names
        assert [name for name in names if name.endswith(".py") and _is_dependency(name)] == []


def _is_dependency(name: str) -> bool:
    return name != "app.py" and not name.startswith(("chalicelib/", "chalice/"))


def test_every_shipped_source_has_its_python313_bytecode(
    package: zipfile.ZipFile, bytecode_python: str | None
) -> None:
    names = set(package.namelist())
    sources = sorted(name for name in names if name.endswith(".py"))
    assert len(sources) > 100
    expected = [_cached_pyc(source) for source in sources]
    if bytecode_python is None:
        assert _pycs(package) == []
    else:
        assert [pyc for pyc in expected if pyc not in names] == []


def _cached_pyc(source: str) -> str:
    directory, _, file = source.rpartition("/")
    cached = f"__pycache__/{file.removesuffix('.py')}.cpython-313.pyc"
    return f"{directory}/{cached}" if directory else cached


def test_all_bytecode_is_python313s_unchecked_hash_and_belongs_to_a_module(
    package: zipfile.ZipFile,
) -> None:
    names = set(package.namelist())
    wrong_header, orphans = [], []
    for pyc in _pycs(package):
        header = package.read(pyc)[:8]
        if header != PYTHON313_MAGIC + UNCHECKED_HASH_FLAGS:
            wrong_header.append((pyc, header))
        directory, _, file = pyc.rpartition("/")
        if directory == "__pycache__" or directory.endswith("/__pycache__"):
            # `__pycache__/<name>.cpython-313.pyc` beside `<name>.py`, nothing of another tag.
            stem, tag, _ = file.rsplit(".", 2)
            source = f"{directory.removesuffix('__pycache__')}{stem}.py"
            if tag != "cpython-313" or source not in names:
                orphans.append(pyc)
        elif pyc.removesuffix("c") in names:
            orphans.append(pyc)  # a sourceless .pyc is only ever loaded without its source
    assert wrong_header == []
    assert orphans == []


# Run by Python 3.13 on the extracted package: what each .pyc's code objects call their file, and
# whether its source hash is that of the source shipped beside it.
_READ_BYTECODE = """
import importlib.util, json, marshal, os, sys
root = sys.argv[1]
found = {}
for directory, _, files in os.walk(root):
    for file in files:
        if file.endswith(".pyc"):
            path = os.path.join(directory, file)
            with open(path, "rb") as pyc:
                data = pyc.read()
            if os.path.basename(directory) == "__pycache__":
                source = os.path.join(os.path.dirname(directory), file.split(".")[0] + ".py")
                with open(source, "rb") as f:
                    matches = importlib.util.source_hash(f.read()) == data[8:16]
            else:
                matches = None  # sourceless: its source is not shipped
            found[os.path.relpath(path, root)] = [marshal.loads(data[16:]).co_filename, matches]
print(json.dumps(found))
"""


def test_bytecode_is_of_the_shipped_sources_and_names_its_file_on_lambda(
    package: zipfile.ZipFile, bytecode_python: str | None, tmp_path: Path
) -> None:
    if bytecode_python is None:
        assert _pycs(package) == []
        return
    package.extractall(tmp_path)
    result = subprocess.run(
        [bytecode_python, "-S", "-c", _READ_BYTECODE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(result.stdout)
    assert set(found) == set(_pycs(package))
    wrong = {}
    for pyc, (filename, matches) in found.items():
        if "/__pycache__/" in f"/{pyc}":
            directory, _, file = pyc.rpartition("__pycache__/")
            source = f"{directory}{file.split('.')[0]}.py"
        else:
            source = pyc.removesuffix("c")
        # Where Lambda extracts the package, whatever the build directory was.
        if filename != f"/var/task/{source}" or matches is False:
            wrong[pyc] = (filename, matches)
    assert wrong == {}
    # Chalice's own modules: compiled from the very files Chalice put in the package.
    assert found["chalice/__pycache__/app.cpython-313.pyc"][1] is True
    assert found["__pycache__/app.cpython-313.pyc"][1] is True


def test_python313_imports_every_module_of_the_app_from_its_bytecode_alone(
    package: zipfile.ZipFile, bytecode_python: str | None, tmp_path: Path
) -> None:
    """Every source in the package is replaced by one that fails: no import may read them."""
    if bytecode_python is None:
        assert _pycs(package) == []
        return
    task = tmp_path / "task"
    package.extractall(task)
    for source in task.rglob("*.py"):
        source.write_text("raise ImportError('compiled from source: its .pyc was not used')\n")
    result = subprocess.run(
        [bytecode_python, "-S", "-B", "-c", _IMPORT_ALL, str(task), str(_sdk(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "POWERTOOLS_TRACE_DISABLED": "true"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    assert imported["app"] == str(task / "__pycache__/app.cpython-313.pyc")
    assert len(imported) > 100  # app, every module of chalicelib, and what they import
    assert imported["pydantic.main"] == str(task / "pydantic/main.pyc")


# Run by Python 3.13 on the extracted package (and the SDK): import app and every module of
# chalicelib, then print where each module of the package was loaded from.
_IMPORT_ALL = """
import importlib, json, pkgutil, sys
sys.path[:0] = sys.argv[1:3]
import app, chalicelib
for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(module.name)
print(json.dumps({
    name: getattr(module, "__cached__", None) or module.__file__
    for name, module in sys.modules.items()
    if (getattr(module, "__file__", None) or "").startswith(sys.argv[1])
}))
"""


def test_compiled_modules_are_built_for_python313(package: zipfile.ZipFile) -> None:
    compiled = [name for name in package.namelist() if name.endswith(".so")]
    for prefix in REQUIRED_COMPILED:
        assert any(name.startswith(prefix) for name in compiled), f"missing {prefix}*.so"
    wrong = [name for name in compiled if not COMPILED_MODULE.search(name)]
    assert wrong == [], "compiled modules for another interpreter"


def test_nothing_is_built_for_the_packaging_interpreter(package: zipfile.ZipFile) -> None:
    assert [name for name in package.namelist() if re.search(r"cp311|cpython-311", name)] == []
    for name in _wheel_files(package):
        assert "cp311" not in package.read(name).decode(), name


def _wheel_files(package: zipfile.ZipFile) -> list[str]:
    return [name for name in package.namelist() if re.fullmatch(r"[^/]+\.dist-info/WHEEL", name)]


def test_every_distribution_is_a_wheel_for_the_runtime(package: zipfile.ZipFile) -> None:
    wheel_files = _wheel_files(package)
    assert len(wheel_files) > 10
    platform_specific = []
    for name in wheel_files:
        metadata = package.read(name).decode()
        tags: set[Tag] = set()
        for line in metadata.splitlines():
            if line.startswith("Tag: "):
                tags |= parse_tag(line.removeprefix("Tag: ").strip())
        assert tags & TARGET_TAGS, f"{name}: {sorted(map(str, tags))}"
        if "Root-Is-Purelib: false" in metadata:
            platform_specific.append(name.split("-")[0])
            assert all(tag.platform.startswith("manylinux") for tag in tags), name
    assert {"pydantic_core", "cffi", "argon2_cffi_bindings"} <= set(platform_specific)


def test_sdk_is_left_to_the_runtime(package: zipfile.ZipFile) -> None:
    """boto3/botocore come with the Lambda runtime (see infrastructure/packaging.py)."""
    top_level = {name.split("/")[0].split("-")[0].lower() for name in package.namelist()}
    assert top_level.isdisjoint(SDK_MODULES | {"urllib3"})


def test_every_module_the_app_imports_is_packaged(package: zipfile.ZipFile) -> None:
    names = package.namelist()
    sources = [name for name in names if name == "app.py" or _is_app_module(name)]
    missing = set()
    for source in sources:
        for module in _imported_modules(package.read(source).decode()):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in SDK_MODULES or top == "chalicelib":
                continue
            if top == "chalice":
                # The package holds Chalice's runtime only.
                if module not in {"chalice", "chalice.app"}:
                    missing.add(f"{module} (in {source})")
                continue
            if not any(
                name.startswith(f"{top}/") or re.fullmatch(rf"{top}(\..*)?\.(py|pyc|so)", name)
                for name in names
            ):
                missing.add(f"{module} (in {source})")
    assert missing == set()


def _is_app_module(name: str) -> bool:
    return name.startswith("chalicelib/") and name.endswith(".py")


def _imported_modules(source: str) -> set[str]:
    """Absolute imports anywhere in the module, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(source)
    typing_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
    }
    modules = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    modules.discard("__future__")
    return modules


def test_test_suites_shipped_inside_distributions_are_left_out(package: zipfile.ZipFile) -> None:
    names = package.namelist()
    # The calendar feeds' library is there (as source or sourceless bytecode)...
    assert {"icalendar/__init__.py", "icalendar/__init__.pyc"} & set(names)
    for shipped in SHIPPED_TESTS:  # ... without the 2 MB of tests it ships
        assert not any(name.startswith(f"{shipped}/") for name in names), shipped


def test_package_fits_lambda_limits(package: zipfile.ZipFile) -> None:
    unzipped = sum(info.file_size for info in package.infolist())
    assert unzipped < 200e6, "Lambda allows 250 MB unzipped, layers included"


# Run by the target interpreter with only the package and the runtime's SDK on sys.path (-S: no
# site-packages), as Lambda does: import the app and serve one request that needs no AWS call.
_SERVE_ONE_REQUEST = """
import json, sys
sys.path[:0] = sys.argv[1:3]
import app
request_context = {"resourcePath": "/v1/openapi.json", "httpMethod": "GET", "stage": "api",
                   "requestId": "smoke", "path": "/api/v1/openapi.json", "identity": {}}
event = {"resource": "/v1/openapi.json", "path": "/v1/openapi.json", "httpMethod": "GET",
         "headers": {"Accept": "application/json"}, "multiValueHeaders": None,
         "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": None, "stageVariables": None, "body": None,
         "isBase64Encoded": False, "requestContext": request_context}
class Context:
    function_name = "smoke"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:smoke"
    aws_request_id = "smoke"
    def get_remaining_time_in_millis(self):
        return 10000
import pydantic_core, _cffi_backend, _argon2_cffi_bindings
response = app.app(event, Context())
print(json.dumps({"status": response["statusCode"], "body": json.loads(response["body"])}))
"""


def _target_interpreter() -> str | None:
    """A CPython 3.13 to run the package with: $TASKBEAT_PYTHON313, PATH, or pyenv's."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("TASKBEAT_PYTHON313"),
        shutil.which("python3.13"),
        *map(str, sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_package_serves_a_request_on_python313(package: zipfile.ZipFile, tmp_path: Path) -> None:
    interpreter = _target_interpreter()
    # The machine image ships CPython 3.13 under pyenv; proving the package runs on the Lambda
    # runtime's version is the point of this test, so its absence is a failure, not a skip.
    assert interpreter is not None, "no Python 3.13 found: install one or set TASKBEAT_PYTHON313"
    package.extractall(tmp_path / "task")
    result = subprocess.run(
        [interpreter, "-S", "-c", _SERVE_ONE_REQUEST, str(tmp_path / "task"), str(_sdk(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "POWERTOOLS_TRACE_DISABLED": "true"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["status"] == 200
    assert response["body"]["openapi"].startswith("3.")


def _sdk(tmp_path: Path) -> Path:
    """What the Lambda runtime adds: the AWS SDK, pure Python, taken from this environment."""
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    for module in (*sorted(SDK_MODULES), "urllib3"):
        source = Path(importlib.import_module(module).__file__ or "").parent
        (sdk / module).symlink_to(source, target_is_directory=True)
    return sdk
