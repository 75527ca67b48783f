"""HTTP API: the routes (registered from `route_table`), the error mapping and the OpenAPI
document.

Every route is registered at import from the table; a route's module (its views, request and
response models, and the services they use) is imported when the route first serves a request.
A cold start serving `GET /tasks/{id}` loads the tasks module alone.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from chalicelib.api.route_table import API_PREFIX, ROUTE_MODULES

if TYPE_CHECKING:
    from chalice.app import Chalice, Response

    from chalicelib.api.routing import RouteSpec

# Chalice refuses other content types with 415 before our code runs; every route accepts the
# usual ones for bodies, so the JSON check (chalicelib.api.routing) gives the contract's 400.
CONTENT_TYPES = ["application/json", "text/plain", "application/octet-stream"]

_loading = threading.Lock()
# Route modules imported whole. A view is only handed requests once its module is in here:
# its entry in routing.VIEWS exists as soon as its decorator has run, while the rest of the
# module (what the view calls) may still be executing in the thread importing it.
_loaded: set[str] = set()


def load_routes(modules: tuple[str, ...] = tuple(ROUTE_MODULES)) -> None:
    """Import route modules (all by default, in the table's order): the OpenAPI document and
    the tests that walk every route need them all."""
    with _loading:  # one thread imports a module; the others wait for it whole
        for module in modules:
            importlib.import_module(module)
            _loaded.add(module)


def all_routes() -> list[RouteSpec]:
    """Every route's declaration, in the table's order."""
    from chalicelib.api.routing import ROUTES

    load_routes()
    return ROUTES


def register_api(app: Chalice) -> None:
    """Register every route of the table and the middleware on `app`."""
    from chalicelib.api.middleware import register_middleware

    for module, paths in ROUTE_MODULES.items():
        for path, methods in paths.items():
            app.route(API_PREFIX + path, methods=list(methods), content_types=CONTENT_TYPES)(
                _view(app, module, API_PREFIX + path)
            )
    register_middleware(app)


def _view(app: Chalice, module: str, path: str) -> Any:
    def view(**params: str) -> Response:
        from chalicelib.api.routing import VIEWS, handle

        request = app.current_request
        assert request is not None, "Chalice sets the request before calling a view"
        if module not in _loaded:
            load_routes((module,))
        spec, function = VIEWS[(path, request.method)]
        return handle(spec, function, request, params)

    # Chalice names a route by its view (handler_map, the local stack's function list).
    view.__name__ = view.__qualname__ = _view_name(path)
    return view


def _view_name(path: str) -> str:
    words = [part.strip("{}").replace("-", "_") for part in path.split("/") if part]
    return "route_" + "_".join(words)
