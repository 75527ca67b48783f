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

from infrastructure.packaging import LAMBDA_RUNTIME, RUNTIME_PROVIDED, SHIPPED_TESTS
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
    assert {name for name in names if name.startswith("chalice/")} == {
        "chalice/__init__.py",
        "chalice/app.py",
    }


def test_package_holds_no_bytecode_of_the_build_interpreter(package: zipfile.ZipFile) -> None:
    assert [name for name in package.namelist() if name.endswith(".pyc")] == []


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
                name.startswith(f"{top}/") or re.fullmatch(rf"{top}(\..*)?\.(py|so)", name)
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
    assert "icalendar/__init__.py" in names  # the calendar feeds' library is there...
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
    # What the Lambda runtime adds: the AWS SDK, pure Python, taken from this environment.
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    for module in (*sorted(SDK_MODULES), "urllib3"):
        source = Path(importlib.import_module(module).__file__ or "").parent
        (sdk / module).symlink_to(source, target_is_directory=True)
    result = subprocess.run(
        [interpreter, "-S", "-c", _SERVE_ONE_REQUEST, str(tmp_path / "task"), str(sdk)],
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
