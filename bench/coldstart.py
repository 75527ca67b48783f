"""Cold start: importing each Lambda function's handler module as Lambda would, and serving its
first request, beside two baselines; and the deployment package's size.

`python -m bench.coldstart` builds the deployment package the way `cdk synth` does
(infrastructure/packaging.py stages the project, `chalice package` zips it), unzips it, starts a
DynamoDB and Secrets Manager (moto's server, on loopback) holding one user, project and task, and
measures in a fresh interpreter per sample, 7 samples each, interleaved, the median taken:

- the baselines: `bench/bare_app.py` (Chalice, one constant route) and `bench/workshop_app.py`
  (shaped like the Chalice workshop's todo app: Chalice, boto3 and PyJWT at module level, the
  JWT key from SSM Parameter Store and the table resource made on first use, one authenticated
  route doing a GetItem);
- the API function: `import app`, then its first request, `GET /v1/tasks/{id}` with a bearer
  token, on the real adapters: what it reads (the JWT signing key, the session, the task and
  the membership) comes from the moto server over HTTP, as the workshop app's item does;
- the other functions: importing their entry module (`chalicelib.functions`, every non-HTTP
  function's handler), and, as the honest figure beside it, the sweep's first event (its
  handler module, the container, two queries).

The child runs from the unzipped package, with its shipped bytecode and no other (writing
bytecode off, as /var/task is read-only), and sees only what the function would: the standard
library, the package and the SDK the runtime provides; a module installed here but not packaged
(e.g. `cryptography`, which PyJWT would load) is refused. The interpreter must be the runtime's
(3.13) for that; on another one the package's compiled modules cannot load, and the children
run from this checkout with bytecode of everything instead (the figures say which).

Not included: the interpreter's start and the Lambda runtime's own init, the same for all.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import Figure, SuiteResult, Target, main_for_suite

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
PACKAGE_BUDGET_MB = 10.0
IMPORT_RATIO_BUDGET = 1.0  # import app / import of the workshop app
COLD_RATIO_BUDGET = 1.5  # import + first request, app / workshop app
FUNCTION_RATIO_BUDGET = 0.5  # import of a non-HTTP function / import app
RUNTIME_VERSION = (3, 13)
# What the python3.13 runtime provides besides the standard library (infrastructure/packaging.py
# leaves the SDK out of the package for this reason).
RUNTIME_MODULES = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "awslambdaric"})
GROUP = "cold start"

# The child: refuse modules the function would not have, import the handler module, time it,
# then (unless told not to) call the handler with the event once and time that.
PROBE = """
import json, sys, time
from importlib.machinery import PathFinder
module, allowed, roots, handler_name, event_file = sys.argv[1:6]
allowed = set(json.loads(allowed))
installed = tuple(p for p in sys.path if p.endswith("site-packages"))
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if path is not None or name in allowed or name in sys.stdlib_module_names:
            return None
        spec = PathFinder.find_spec(name)
        if spec is not None and (spec.origin or "").startswith(installed):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the package)", name=name)
        return None
class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    aws_request_id = "bench-cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self):
        return 29_000
sys.meta_path.insert(0, Refuse())
sys.path[:0] = json.loads(roots)
import importlib
started, cpu = time.perf_counter(), time.process_time()
handler_module = importlib.import_module(module)
result = {
    "import_ms": (time.perf_counter() - started) * 1000,
    "import_cpu_ms": (time.process_time() - cpu) * 1000,
}
if handler_name:
    with open(event_file) as file:
        event = json.load(file)
    handler = getattr(handler_module, handler_name)
    started = time.perf_counter()
    answer = handler(event, Context())
    result["first_ms"] = (time.perf_counter() - started) * 1000
    status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
    if status != 200:
        raise SystemExit(f"first call answered {answer}")
print(json.dumps(result))
"""


@dataclass(frozen=True)
class Package:
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    top_level: frozenset[str]
    bytecode_files: int


@contextmanager
def deployment_package() -> Iterator[tuple[Package, Path]]:
    """The deployment package, built as `cdk synth` builds it (infrastructure/packaging.py,
    then `chalice package`; warm builds reuse the dependency cache and Chalice's own), and the
    directory it is unzipped in."""
    from chalice import api

    from infrastructure import packaging

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: a line per call
    with (
        packaging.lambda_project() as project,
        tempfile.TemporaryDirectory(prefix="bench-package-") as out,
    ):
        with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
            api.package_app(
                project_dir=str(project.source_dir),
                output_dir=str(Path(out) / "package"),
                stage="dev",
                # The functions' role comes from CDK; any ARN will do for packaging.
                chalice_config={"iam_role_arn": "arn:aws:iam::123456789012:role/bench"},
            )
        path = Path(out) / "package" / "deployment.zip"
        unzipped = Path(out) / "task"
        with zipfile.ZipFile(path) as package:
            infos = package.infolist()
            package.extractall(unzipped)
        yield (
            Package(
                zipped_bytes=path.stat().st_size,
                unzipped_bytes=sum(info.file_size for info in infos),
                files=len(infos),
                top_level=frozenset(_top_level(info.filename) for info in infos) - {""},
                bytecode_files=sum(info.filename.endswith(".pyc") for info in infos),
            ),
            unzipped,
        )


def _top_level(name: str) -> str:
    first = name.split("/", 1)[0]
    if "/" not in name:  # a module file at the root: name.py, name.cpython-313-...so
        first = first.split(".", 1)[0]
    return "" if first.endswith((".dist-info", ".egg-info")) else first


@dataclass(frozen=True)
class World:
    """What the children need to serve their first request: environment and events."""

    env: dict[str, str]
    events: dict[str, Path]


WORKSHOP_TABLE = "workshop-todos"
WORKSHOP_AUTH_KEY_PARAMETER = "/workshop/auth-key"
WORKSHOP_AUTH_KEY = b"workshop-auth-key-" + b"k" * 32


@contextmanager
def moto_world(scratch: Path) -> Iterator[World]:
    """moto's server on loopback with Taskbeat's tables and secrets, one user with a project
    and a task (made through the API, in this process), the workshop app's table with one
    item; the children's environment and their first events."""
    import boto3
    import jwt
    from chalice.test import Client
    from moto.server import ThreadedMotoServer

    from app import app
    from bench.inmemory import rest_event
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb import tables
    from chalicelib.settings import Settings

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TASKBEAT_TABLE_PREFIX": "coldstart-",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as every deployed function has it
        "WORKSHOP_TABLE": WORKSHOP_TABLE,
        "WORKSHOP_AUTH_KEY_PARAMETER": WORKSHOP_AUTH_KEY_PARAMETER,
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = Settings()
        tables.create_all(boto3.client("dynamodb"), settings.table_prefix)
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name=settings.jwt_secret_id, SecretString="k" * 64)
        secrets.create_secret(Name=settings.derivation_secret_id, SecretString="d" * 64)
        workshop = boto3.resource("dynamodb").create_table(
            TableName=WORKSHOP_TABLE,
            KeySchema=[
                {"AttributeName": "username", "KeyType": "HASH"},
                {"AttributeName": "uid", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "username", "AttributeType": "S"},
                {"AttributeName": "uid", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        workshop.put_item(Item={"username": "ada", "uid": "todo-1", "description": "write"})
        boto3.client("ssm").put_parameter(
            Name=WORKSHOP_AUTH_KEY_PARAMETER,
            Value=base64.b64encode(WORKSHOP_AUTH_KEY).decode(),
            Type="SecureString",
        )
        bootstrap.override(bootstrap.build(settings))
        with Client(app) as client:

            def call(path: str, body: Any, token: str | None = None) -> Any:
                headers = {"content-type": "application/json"}
                if token:
                    headers["authorization"] = f"Bearer {token}"
                response = client.http.post(path, body=json.dumps(body), headers=headers)
                assert response.status_code in {200, 201}, response.body
                return json.loads(response.body)

            user = {"email": "ada@example.com", "password": "p" * 16, "name": "Ada"}
            token = call("/v1/auth/register", user)["access_token"]
            project = call("/v1/projects", {"name": "Cold start"}, token)
            task = call("/v1/tasks", {"project_id": project["id"], "title": "First"}, token)
        events = {
            "app": rest_event("GET", "/v1/tasks/{task_id}", {"task_id": task["id"]}, token=token),
            "workshop_app": rest_event(
                "GET",
                "/v1/todos/{uid}",
                {"uid": "todo-1"},
                token=jwt.encode({"sub": "ada"}, WORKSHOP_AUTH_KEY, algorithm="HS256"),
            ),
            "bare_app": rest_event("GET", "/v1/hello"),
            "chalicelib.functions": {},  # the sweep's scheduled event: nothing it reads
        }
        paths = {}
        for module, event in events.items():
            paths[module] = scratch / f"{module}.json"
            paths[module].write_text(json.dumps(event))
        yield World(env, paths)
    finally:
        bootstrap.override(None)
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


@dataclass(frozen=True)
class Layout:
    """Where the children import from: the unzipped package (on the runtime's Python), or this
    checkout with bytecode of everything (elsewhere)."""

    roots: list[str]
    allowed: list[str]
    cache: Path | None  # PYTHONPYCACHEPREFIX, for the checkout
    label: str


def _layout(package: Package, unzipped: Path, scratch: Path) -> Layout:
    bench = str(ROOT / "bench")
    allowed = sorted(package.top_level | RUNTIME_MODULES | {"bare_app", "workshop_app"})
    if sys.version_info[:2] == RUNTIME_VERSION and package.bytecode_files:
        return Layout([str(unzipped), bench], allowed, None, "as packaged")
    return Layout([str(ROOT), bench], allowed, scratch / "pycache", "from the checkout")


def _child(
    layout: Layout, module: str, world: World, handler: str = "", write_bytecode: bool = False
) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TASKBEAT_"))}
    env |= world.env
    env |= {  # what Lambda sets (active tracing: the X-Ray SDK sends to a daemon nobody runs)
        "LAMBDA_TASK_ROOT": layout.roots[0],
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_X_AMZN_TRACE_ID": f"Root=1-67891233-{'a' * 24};Parent=53995c3f42cd8ad8;Sampled=1",
    }
    if layout.cache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(layout.cache)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            module,
            json.dumps(layout.allowed),
            json.dumps(layout.roots),
            handler,
            str(world.events[module]),
        ],
        cwd=tempfile.gettempdir(),  # not this checkout: only the roots are importable
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module}.{handler} failed:\n{result.stderr}{result.stdout}")
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


# (sample name, module, handler called once after the import, or "" for the import alone)
SAMPLES = (
    ("bare", "bare_app", "app"),
    ("workshop", "workshop_app", "app"),
    ("app", "app", "app"),
    ("functions", "chalicelib.functions", ""),
    ("sweep", "chalicelib.functions", "sweep"),
)


def measure(runs: int = RUNS) -> SuiteResult:
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in SAMPLES}
    with (
        tempfile.TemporaryDirectory(prefix="bench-coldstart-") as scratch_dir,
        deployment_package() as (package, unzipped),
    ):
        scratch = Path(scratch_dir)
        layout = _layout(package, unzipped, scratch)
        with moto_world(scratch) as world:
            if layout.cache is not None:  # the checkout's bytecode, written once beforehand
                for _, module, handler in SAMPLES:
                    _child(layout, module, world, handler, write_bytecode=True)
            for _ in range(runs):  # interleaved: load on the machine hits all alike
                for name, module, handler in SAMPLES:
                    samples[name].append(_child(layout, module, world, handler))
        shutil.rmtree(unzipped, ignore_errors=True)

    def median(name: str, key: str = "import_ms") -> float:
        return statistics.median(sample[key] for sample in samples[name])

    def cold(name: str) -> float:
        return statistics.median(s["import_ms"] + s["first_ms"] for s in samples[name])

    how = f"{layout.label}, Python {sys.version_info[0]}.{sys.version_info[1]}"
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
        Figure("package.files", "files in the package", package.files, "files", None, GROUP),
        Figure(
            "package.bytecode_files",
            "of which .pyc (compiled for the runtime)",
            package.bytecode_files,
            "files",
            None,
            GROUP,
        ),
    ]
    for name, title in (
        ("bare", "bare Chalice app"),
        ("workshop", "workshop-shaped app"),
        ("app", "app (API function)"),
    ):
        figures += [
            Figure(
                f"coldstart.import_{name}_ms",
                f"import {title}, {how}",
                median(name),
                "ms",
                None,
                GROUP,
            ),
            Figure(
                f"coldstart.first_request_{name}_ms",
                f"first request of {title}",
                median(name, "first_ms"),
                "ms",
                None,
                GROUP,
            ),
            Figure(
                f"coldstart.cold_{name}_ms",
                f"import + first request, {title}",
                cold(name),
                "ms",
                None,
                GROUP,
            ),
        ]
    figures += [
        Figure(
            "coldstart.import_ratio",
            "import app / import workshop app",
            median("app") / median("workshop"),
            "x",
            Target("<=", IMPORT_RATIO_BUDGET),
            GROUP,
        ),
        Figure(
            "coldstart.cold_ratio",
            "import + first request, app / workshop app",
            cold("app") / cold("workshop"),
            "x",
            Target("<=", COLD_RATIO_BUDGET),
            GROUP,
        ),
        Figure(
            "coldstart.import_app_vs_bare",
            "import app / import bare app",
            median("app") / median("bare"),
            "x",
            None,
            GROUP,
        ),
        Figure(
            "coldstart.import_function_ms",
            f"import of a non-HTTP function (chalicelib.functions), {how}",
            median("functions"),
            "ms",
            None,
            GROUP,
        ),
        Figure(
            "coldstart.function_ratio",
            "import of a non-HTTP function / import app",
            median("functions") / median("app"),
            "x",
            Target("<=", FUNCTION_RATIO_BUDGET),
            GROUP,
        ),
        Figure(
            "coldstart.cold_sweep_ms",
            "import + first event, sweep (handler, container, two queries)",
            cold("sweep"),
            "ms",
            None,
            GROUP,
        ),
    ]
    data: dict[str, Any] = {"runs": runs, "layout": layout.label, "samples": samples}
    return SuiteResult(figures, data)


if __name__ == "__main__":
    main_for_suite(measure, sys.argv[1:])
