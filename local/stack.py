"""The whole local stack in one process: moto, Lambda in process, the REST API, the WebSocket
gateway and the scheduler ticker. `python -m local` runs it; tests use it as a context manager.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any

from local.lambdas import FunctionRegistry

log = logging.getLogger("taskbeat.local")

DEFAULT_REGION = "us-east-1"

# Fixed values the stack needs in the environment before anything builds an AWS client.
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}
_POWERTOOLS = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    # EMF metrics are for CloudWatch; locally they would only flood the terminal.
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Taskbeat",
    "POWERTOOLS_SERVICE_NAME": "taskbeat",
}
# A profile would take precedence over the fake credentials (and may not exist here).
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class _Environment:
    """Changes to os.environ that `restore()` undoes (tests share the process)."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def set_default(self, name: str, value: str) -> None:
        if not os.environ.get(name):
            self.set(name, value)

    def unset(self, name: str) -> None:
        if name in os.environ:
            self._saved.setdefault(name, os.environ[name])
            del os.environ[name]

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()


def _forget_cached_aws_clients() -> None:
    """Clients built before the stack started (by earlier tests in this process) point at
    another endpoint; the app rebuilds them lazily, now with the stack's."""
    from chalicelib.adapters.dynamodb import tables

    tables.reset()


class LocalStack:
    """Start with `start()` (or `with LocalStack(...) as stack:`), stop with `stop()`.

    Ports of 0 pick free ones; the real ports are in `http_port`, `ws_port` and the URLs.
    `target="aws"` skips moto, provisioning and the ticker and serves the API against the
    AWS account of the ambient credentials.
    """

    def __init__(
        self,
        http_port: int = 8000,
        ws_port: int = 8001,
        host: str = "127.0.0.1",
        target: str = "local",
        ticker_interval_seconds: float = 1.0,
        quiet: bool = False,
        sweep_interval_seconds: float = 5.0,
    ) -> None:
        if target not in ("local", "aws"):
            raise ValueError(f"unknown target {target!r}: use 'local' or 'aws'")
        self.host = host
        self.target = target
        self._http_port = http_port
        self._ws_port = ws_port
        self._ticker_interval = ticker_interval_seconds
        # The due-date sweep's period (0: no sweeps); 5 minutes on AWS.
        self._sweep_interval = sweep_interval_seconds
        self._quiet = quiet
        self._env = _Environment()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.region = DEFAULT_REGION
        self.registry = FunctionRegistry(DEFAULT_REGION)
        self.moto_endpoint: str | None = None
        self.provisioned: Any = None
        self._http: Any = None
        self._gateway: Any = None
        self._ticker: Any = None
        self._sweeper: Any = None
        self._hook_poller: Any = None

    # --- URLs --------------------------------------------------------------------------------

    @property
    def http_port(self) -> int:
        return int(self._http.port)

    @property
    def ws_port(self) -> int:
        return int(self._gateway.port)

    @property
    def api_url(self) -> str:
        return str(self._http.api_url)

    @property
    def dashboard_url(self) -> str:
        return str(self._http.dashboard_url)

    @property
    def docs_url(self) -> str:
        return f"{self.api_url}/docs"

    @property
    def ws_url(self) -> str:
        return str(self._gateway.url)

    @property
    def management_url(self) -> str:
        return str(self._gateway.management_url)

    @property
    def ticker(self) -> Any:
        """The scheduler ticker (`tick(now)` drives it); None when targeting AWS."""
        return self._ticker

    @property
    def hook_poller(self) -> Any:
        """The hook delivery queue's consumer (`poll_once()` drives it); None when not running."""
        return self._hook_poller

    @property
    def sweeper(self) -> Any:
        """The due-date sweep's ticker (`sweep_now()` runs one); None when not sweeping."""
        return self._sweeper

    def register_function(self, name: str, handler: Callable[[Any, Any], Any]) -> str:
        """Add a Lambda function running `handler` in process (e.g. a test's probe); its ARN."""
        from local.provision import create_function

        if self.provisioned is None:
            raise RuntimeError("functions can only be added while the stack runs on moto")
        return create_function(self.registry, name, handler, self.provisioned.role_arn)

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # Imported here so `import local.stack` stays cheap. Importing the app reads nothing;
        # the environment below is complete before anything builds an AWS client.
        from app import app as chalice_app
        from chalicelib import bootstrap
        from chalicelib.settings import Settings
        from local import lambdas, moto_patches
        from local.dashboard import Dashboard
        from local.http_api import HttpApi
        from local.provision import lambda_entry_points, provision
        from local.scheduler_ticker import SchedulerTicker
        from local.websocket_gateway import WebSocketGateway, route_functions

        self._stops.append(("environment", self._env.restore))
        self._env.set_default("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)
        self.region = os.environ["AWS_REGION"]
        self._env.set("AWS_DEFAULT_REGION", self.region)
        self.registry.region = self.region
        for name, value in _POWERTOOLS.items():
            self._env.set_default(name, value)
        if self.target == "local":
            for name, value in _FAKE_CREDENTIALS.items():
                self._env.set(name, value)
            for name in _UNSET:
                self._env.unset(name)
            self._env.set_default("TASKBEAT_ALLOW_PRIVATE_WEBHOOKS", "true")
            self._start_moto()
            lambdas.install(self.registry)
            self._stops.append(("lambda hook", lambdas.uninstall))
            moto_patches.install()
            self._stops.append(("moto write lock", moto_patches.uninstall))

        self._stops.append(("function registry", self.registry.close))
        self._gateway = WebSocketGateway(
            self.registry,
            route_functions(chalice_app.websocket_handlers),
            host=self.host,
            port=self._ws_port,
            quiet=self._quiet,
        )
        self._gateway.start_management_api()
        self._stops.append(("WebSocket gateway", self._gateway.stop))
        self._env.set_default("TASKBEAT_WS_MANAGEMENT_URL", self._gateway.management_url)

        # The app reads its settings now, with the environment complete.
        _forget_cached_aws_clients()
        self._stops.append(("cached AWS clients", _forget_cached_aws_clients))
        bootstrap.override(None)
        self._stops.append(("app container", lambda: bootstrap.override(None)))
        settings = Settings()
        entry_points = lambda_entry_points(chalice_app)
        if self.target == "local":
            self.provisioned = provision(settings, self.registry, entry_points, chalice_app)
            for name, value in self.provisioned.environment.items():
                self._env.set_default(name, value)
        else:
            for name, handler in entry_points.items():
                self.registry.register(name, handler)

        self._gateway.start()
        self._stops.append(("WebSocket connections", self._gateway.close_sockets))
        self._http = HttpApi(
            chalice_app,
            self.host,
            self._http_port,
            quiet=self._quiet,
            dashboard=Dashboard(ws_port=self._gateway.port),
        )
        self._http.start()
        self._stops.append(("REST API", self._http.stop))
        if self.target == "local":
            self._ticker = SchedulerTicker(
                self.region, self._ticker_interval, invoke_async=self._queue_invocation
            )
            self._ticker.start()
            self._stops.append(("scheduler ticker", self._ticker.stop))
            self._start_sweeper()
            self._start_hook_poller()

    def _start_sweeper(self) -> None:
        """The due-date sweep on its own thread, as the EventBridge rule invokes it on AWS."""
        from local.sweep_ticker import SWEEP_FUNCTION, SweepTicker

        if self._sweep_interval <= 0 or SWEEP_FUNCTION not in self.registry:
            return
        self._sweeper = SweepTicker(self.registry, self.region, self._sweep_interval)
        self._sweeper.start()
        self._stops.append(("due-date sweep", self._sweeper.stop))

    def _start_hook_poller(self) -> None:
        """The hook delivery queue's consumer on its own thread, as the SQS event source
        mapping on AWS."""
        from local.hook_poller import HOOKS_FUNCTION, HookPoller

        queue_url = getattr(self.provisioned, "hook_queue_url", "")
        if not queue_url or HOOKS_FUNCTION not in self.registry:
            return
        self._hook_poller = HookPoller(self.registry, self.region, queue_url)
        self._hook_poller.start()
        self._stops.append(("hook delivery poller", self._hook_poller.stop))

    def _queue_invocation(self, function_arn: str, payload: str) -> bool:
        """An asynchronous invocation of one of the stack's functions, queued in process (what
        moto's Lambda API would do, without the round trip)."""
        name = function_arn.rsplit(":", 1)[-1]
        if name not in self.registry:
            return False
        self.registry.deliver_later(name, json.loads(payload))
        return True

    def _start_moto(self) -> None:
        import requests
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call
        server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        server.start()
        self._stops.append(("moto", server.stop))
        host, port = server.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        self._env.set("AWS_ENDPOINT_URL", self.moto_endpoint)
        # moto's Step Functions interpreter calls back into moto at localhost:$MOTO_PORT.
        self._env.set("MOTO_PORT", str(port))
        # In-memory state is per process: start empty even if something ran moto before.
        requests.post(f"{self.moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self._enable_step_functions_execution()

    def _enable_step_functions_execution(self) -> None:
        from moto.core.config import default_user_config

        # The config is process-wide (GET does not show this part): remember it for stop().
        previous = dict(default_user_config.get("stepfunctions") or {})
        self._set_step_functions_config({"execute_state_machine": True})
        self._stops.append(("moto config", lambda: self._set_step_functions_config(previous)))

    def _set_step_functions_config(self, config: dict[str, Any]) -> None:
        import requests

        requests.post(
            f"{self.moto_endpoint}/moto-api/config", json={"stepfunctions": config}, timeout=10
        ).raise_for_status()

    def stop(self) -> None:
        """Stop everything that was started, newest first; safe to call twice."""
        while self._stops:
            what, stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", what)
