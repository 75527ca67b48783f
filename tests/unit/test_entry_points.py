"""Each Lambda function imports what it uses, and the route table says where every route is.

The import sets are checked in fresh interpreters (this process has imported everything):
- the API function (`app`) imports Chalice, the route table and the middleware, no route
  module, no model, no service, no AWS SDK; its first `GET /v1/tasks/{id}` imports the tasks
  routes and no other route module, nor the OpenAPI generator;
- every other function (`chalicelib.functions.<name>`, what CDK names as its handler) imports
  neither Chalice nor any of the HTTP API's routes, request models or OpenAPI generator, also
  once its handler module and the container's services are loaded.
"""

from __future__ import annotations

import collections
import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import chalicelib.api
from chalicelib import functions
from chalicelib.api import load_routes, routing
from chalicelib.api.route_table import API_PREFIX, ROUTE_MODULES

ROOT = Path(__file__).resolve().parents[2]

# What importing the API function's module may load of ours.
API_IMPORT = {
    "app",
    "chalicelib",
    "chalicelib.api",
    "chalicelib.api.errors",
    "chalicelib.api.middleware",
    "chalicelib.api.request_ids",
    "chalicelib.api.route_table",
    "chalicelib.bootstrap",
    "chalicelib.domain",
    "chalicelib.domain.errors",
    "chalicelib.functions",
    "chalicelib.observability",
}
# Third-party packages that no function's module import may load (each is loaded on use).
HEAVY = {"pydantic", "boto3", "botocore", "pynamodb", "jwt", "aws_lambda_powertools", "argon2"}
# The HTTP API's own modules: routes, request models, the OpenAPI generator.
HTTP_ONLY = {
    *ROUTE_MODULES,
    "chalicelib.api.routing",
    "chalicelib.api.openapi",
    "chalicelib.api.queries",
    "chalicelib.api.middleware",
    "chalice",
}


def _run(code: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def _ours(modules: list[str]) -> set[str]:
    return {m for m in modules if m == "app" or m.split(".")[0] == "chalicelib"}


def _third_party(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_route_table_lists_what_the_modules_declare() -> None:
    # Every module of chalicelib.api, so a route declared in a module the table misses counts.
    for info in pkgutil.iter_modules(chalicelib.api.__path__, "chalicelib.api."):
        importlib.import_module(info.name)
    load_routes()
    declared: dict[str, dict[str, set[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(set)
    )
    for (path, method), (_, view) in routing.VIEWS.items():
        declared[view.__module__][path.removeprefix(API_PREFIX)].add(method)
    tabled = {
        module: {path: set(methods) for path, methods in paths.items()}
        for module, paths in ROUTE_MODULES.items()
    }
    expected = "\n".join(
        f"{module!r}: {{{', '.join(f'{p!r}: {tuple(sorted(m))!r}' for p, m in paths.items())}}},"
        for module, paths in sorted(declared.items())
    )
    assert tabled == {m: dict(p) for m, p in declared.items()}, (
        "chalicelib/api/route_table.py is out of date; the modules declare:\n" + expected
    )


def test_every_function_of_the_app_has_an_entry_point_and_no_other() -> None:
    import app

    declared = {f.name for f in app.app.pure_lambda_functions} | {
        "ws_connect",
        "ws_message",
        "ws_disconnect",
    }
    assert set(functions.HANDLED_BY) == declared


def test_importing_the_api_function_loads_no_route_model_service_or_sdk() -> None:
    loaded = _run(
        """
        import json, sys
        import app
        print(json.dumps({"modules": sorted(sys.modules)}))
        """
    )["modules"]
    assert _ours(loaded) <= API_IMPORT, sorted(_ours(loaded) - API_IMPORT)
    assert not _third_party(loaded) & HEAVY, sorted(_third_party(loaded) & HEAVY)


def test_the_first_request_loads_its_route_module_and_no_other() -> None:
    loaded = _run(
        """
        import json, sys
        import app
        from chalicelib import bootstrap
        from bench.inmemory import LambdaContext, in_memory_container, quiet_observability
        from bench.inmemory import rest_event

        world = in_memory_container()
        bootstrap.override(world.container)
        before = set(sys.modules)
        event = rest_event(
            "GET", "/v1/tasks/{task_id}", {"task_id": world.task_id}, token=world.token
        )
        with quiet_observability(build_now=False):
            response = app.app(event, LambdaContext())
        assert response["statusCode"] == 200, response
        print(json.dumps({"before": sorted(before), "after": sorted(sys.modules)}))
        """
    )
    routes_before = set(loaded["before"]) & set(ROUTE_MODULES)
    routes_after = set(loaded["after"]) & set(ROUTE_MODULES)
    assert routes_before == set(), "setting up the in-memory world imported routes"
    assert routes_after == {"chalicelib.api.tasks"}
    assert "chalicelib.api.openapi" not in loaded["after"]


@pytest.mark.parametrize("name", sorted(functions.HANDLED_BY))
def test_a_function_that_serves_no_http_imports_no_part_of_the_http_api(name: str) -> None:
    loaded = _run(
        f"""
        import json, sys
        import chalicelib.functions
        on_import = sorted(sys.modules)
        # What its first event loads: its handler module and the container's services.
        import importlib
        importlib.import_module(chalicelib.functions.HANDLED_BY[{name!r}][0])
        from chalicelib import bootstrap
        from chalicelib.settings import Settings
        bootstrap.build(Settings())
        print(json.dumps({{"on_import": on_import, "in_use": sorted(sys.modules)}}))
        """
    )
    assert _ours(loaded["on_import"]) == {"chalicelib", "chalicelib.functions"}
    assert not _third_party(loaded["on_import"]) & (HEAVY | {"chalice"})
    in_use = set(loaded["in_use"])
    api_modules = {m for m in in_use if m.startswith("chalicelib.api")}
    assert api_modules == set(), sorted(api_modules)
    assert not in_use & HTTP_ONLY, sorted(in_use & HTTP_ONLY)


SLOW_ROUTE_MODULE = """
import threading
from chalicelib.api.routing import Reply, route

registered = threading.Event()
release = threading.Event()


@route("/slow-route-module-test", "GET", summary="test", tag="test", auth=False)
def view(call):
    return Reply({"answer": answer()})


registered.set()  # the view is in routing.VIEWS; the rest of the module is not run yet
release.wait(10)


def answer():
    return 42
"""


def test_a_route_is_served_once_its_module_is_imported_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that arrives while another thread imports the route's module waits for the
    whole module, not only for its view's decorator (the view calls what comes after it)."""
    import contextlib
    import threading
    from types import SimpleNamespace

    from chalicelib import api, bootstrap

    # The route reads nothing: a container of no services, so no real one is ever built here.
    monkeypatch.setattr(
        bootstrap, "container", lambda: SimpleNamespace(request_scope=contextlib.nullcontext)
    )
    name = "slow_route_module_for_test"
    (tmp_path / f"{name}.py").write_text(SLOW_ROUTE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = API_PREFIX + "/slow-route-module-test"
    request = SimpleNamespace(
        method="GET", headers={}, context={"requestId": "r"}, raw_body=b"", query_params=None
    )
    view = api._view(SimpleNamespace(current_request=request), name, path)
    importer = threading.Thread(target=api.load_routes, args=((name,),))
    importer.start()
    try:
        module = _wait_for_module(name)
        assert module.registered.wait(10)
        answers: list[object] = []
        caller = threading.Thread(target=lambda: answers.append(view()))
        caller.start()
        caller.join(0.2)
        assert caller.is_alive(), "the view was called before its module was imported whole"
        module.release.set()
        caller.join(10)
        assert json.loads(answers[0].body) == {"answer": 42}  # type: ignore[attr-defined]
    finally:
        if name in sys.modules:
            sys.modules[name].release.set()
        importer.join(10)
        for key in [k for k in routing.VIEWS if k[0] == path]:
            del routing.VIEWS[key]
        routing.ROUTES[:] = [spec for spec in routing.ROUTES if spec.path != path[3:]]
        sys.modules.pop(name, None)
        api._loaded.discard(name)


def _wait_for_module(name: str) -> Any:
    """The module once its import has begun and defined `registered` (a module is in
    sys.modules before its first line runs)."""
    import time

    deadline = time.monotonic() + 10
    while not hasattr(sys.modules.get(name), "registered"):
        assert time.monotonic() < deadline, f"{name} was never imported"
        time.sleep(0.01)
    return sys.modules[name]
