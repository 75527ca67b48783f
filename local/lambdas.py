"""Lambda, in process: the registry of Python handlers and the hook that routes moto to it.

moto runs Lambda functions in Docker, which the local stack does not have. Every function is
created in moto as usual (so ARNs, event source mappings and Step Functions tasks resolve), and
moto's `LambdaFunction._invoke_lambda` is replaced by a call into this registry, which runs the
handler registered under the function's name in this process.

A real Lambda execution environment handles one event at a time, and Chalice keeps per-request
state on the app object, so by default a function runs one event at a time. Functions without
such state (the app's pure Lambda functions, like the scheduler's target and the state
machine's steps) are registered with a higher `concurrency`, as Lambda scales them out. There
is no global lock: a handler may write to DynamoDB, whose stream invokes another function while
the first one still runs. Asynchronous invocations (InvocationType=Event, DynamoDB stream
batches) are queued and handled by `concurrency` worker threads per function (one keeps them in
order, as a stream shard is on AWS); the caller does not wait for them (so a handler writing to
a table it consumes, or invoking itself, cannot deadlock on its own slot).
"""

from __future__ import annotations

import io
import json
import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("taskbeat.local.lambda")

Handler = Callable[[Any, Any], Any]

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MEMORY_MB = 512


class LambdaContext:
    """The subset of the Lambda runtime's context object that handlers and Powertools read."""

    def __init__(
        self,
        function_name: str,
        region: str,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        memory_mb: int = DEFAULT_MEMORY_MB,
        request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn(function_name, region)
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"


class FunctionError(Exception):
    """A handler raised: carries the payload Lambda would return with `FunctionError` set."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


@dataclass
class _Function:
    name: str
    handler: Handler
    timeout_seconds: int
    memory_mb: int
    concurrency: int = 1
    slots: threading.Semaphore = field(init=False)
    deliveries: queue.SimpleQueue[Any] | None = None
    workers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = threading.Semaphore(self.concurrency)


_STOP = object()


class FunctionRegistry:
    """Python callables by Lambda function name, invoked one event at a time per function."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._functions: dict[str, _Function] = {}
        self._lock = threading.Lock()
        self._closed = False

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        memory_mb: int = DEFAULT_MEMORY_MB,
        concurrency: int = 1,
    ) -> None:
        """Register (or replace) the handler that runs when function `name` is invoked, at
        most `concurrency` events at once."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        with self._lock:
            self._functions[name] = _Function(
                name, handler, timeout_seconds, memory_mb, concurrency
            )

    def unregister(self, name: str) -> None:
        with self._lock:
            function = self._functions.pop(name, None)
        if function is not None and function.deliveries is not None:
            for _ in function.workers:
                function.deliveries.put(_STOP)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._functions)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._functions

    def _get(self, name: str) -> _Function:
        with self._lock:
            function = self._functions.get(name)
        if function is None:
            raise KeyError(f"no function registered as {name!r}")
        return function

    def invoke(self, name: str, event: Any) -> Any:
        """Run the handler with `event` and a Lambda context; its exceptions propagate."""
        function = self._get(name)
        context = LambdaContext(name, self.region, function.timeout_seconds, function.memory_mb)
        with function.slots:
            return function.handler(event, context)

    def invoke_as_lambda(self, name: str, event: Any) -> tuple[str, bool, str]:
        """What moto's `_invoke_lambda` returns: (payload JSON text, errored, log text)."""
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        errored = True
        if name not in self:
            message = f"no function registered as {name!r}"
            payload = _error_payload("Runtime.HandlerNotFound", message)
        else:
            try:
                result = self.invoke(name, event)
            except Exception as exc:
                log.exception("function %s failed", name)
                payload = _error_payload(type(exc).__name__, str(exc), exc)
            else:
                try:
                    payload, errored = json.dumps(result), False
                except (TypeError, ValueError) as exc:
                    payload = _error_payload("Runtime.MarshalError", f"result is not JSON: {exc}")
        elapsed_ms = (time.monotonic() - started) * 1000
        logs = (
            f"START RequestId: {request_id} Version: $LATEST\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms"
        )
        return payload, errored, logs

    def deliver_later(self, name: str, event: Any) -> None:
        """Queue an event for `name`; events for one function are handled in order."""
        function = self._get(name)
        with self._lock:
            if self._closed:
                return
            if function.deliveries is None:
                function.deliveries = queue.SimpleQueue()
                for number in range(function.concurrency):
                    suffix = f"-{number}" if function.concurrency > 1 else ""
                    worker = threading.Thread(
                        target=self._deliver,
                        args=(function,),
                        name=f"lambda-deliveries-{name}{suffix}",
                        daemon=True,
                    )
                    function.workers.append(worker)
                    worker.start()
        function.deliveries.put(event)

    def _deliver(self, function: _Function) -> None:
        assert function.deliveries is not None
        while (event := function.deliveries.get()) is not _STOP:
            _, errored, _ = self.invoke_as_lambda(function.name, event)
            if errored:
                # AWS would retry (twice for events, until expiry for streams); locally the
                # failure is logged (by invoke_as_lambda) and the queue moves on.
                log.error("dropped an asynchronous event that %s failed to handle", function.name)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the delivery workers once their queues are drained."""
        with self._lock:
            self._closed = True
            functions = list(self._functions.values())
        for function in functions:
            if function.deliveries is not None:
                for _ in function.workers:
                    function.deliveries.put(_STOP)
        for function in functions:
            for worker in function.workers:
                worker.join(timeout)


def _error_payload(error_type: str, message: str, exc: BaseException | None = None) -> str:
    body: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if exc is not None:
        body["stackTrace"] = traceback.format_tb(exc.__traceback__)
    return json.dumps(body)


# ---------------------------------------------------------------------------------------------
# The moto hook


_hook_lock = threading.Lock()
_active: FunctionRegistry | None = None
_originals: dict[str, Any] = {}
_delivery = threading.local()  # .asynchronous: the current moto call is a queued delivery


def _decoded(event: Any) -> Any:
    # moto json-decodes the request body, and passes the text "{}" when there was none.
    if event is None or event == "{}":
        return {}
    return event


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    registry = _active
    if registry is None:
        return _error_payload("Runtime.Unavailable", "the local stack is not running"), True, ""
    name = str(self.function_name)
    if getattr(_delivery, "asynchronous", False) and name in registry:
        registry.deliver_later(name, _decoded(event))
        return "null", False, ""  # non-empty, so moto drops the records it just delivered
    return registry.invoke_as_lambda(name, _decoded(event))


@contextmanager
def _asynchronously() -> Iterator[None]:
    _delivery.asynchronous = True
    try:
        yield
    finally:
        _delivery.asynchronous = False


def _send_dynamodb_items(self: Any, function_arn: str, items: Any, source: str) -> Any:
    # A stream delivers on its own schedule: the write that produced the records returns
    # without waiting for the consumer.
    with _asynchronously():
        return _originals["send_dynamodb_items"](self, function_arn, items, source)


def _invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
    # InvocationType=Event is queued, as Lambda does, so the caller does not wait (and a
    # function that invokes itself this way cannot deadlock on its own lock).
    invocation_type = next(
        (v for k, v in (request_headers or {}).items() if k.lower() == "x-amz-invocation-type"),
        "RequestResponse",
    )
    if invocation_type == "Event":
        with _asynchronously():
            return _originals["invoke"](self, body, request_headers, response_headers)
    return _originals["invoke"](self, body, request_headers, response_headers)


class _StateMachineLambdaClient:
    """What moto's Step Functions interpreter gets for its Lambda tasks: `invoke` runs a
    registered function in process (as moto's Lambda API would, through the hook above, minus
    two HTTP round trips and a new boto3 client per task); anything else goes to moto."""

    def __init__(self, registry: FunctionRegistry, fallback: Callable[[], Any]) -> None:
        self._registry = registry
        self._fallback = fallback

    def invoke(self, **parameters: Any) -> dict[str, Any]:
        name = str(parameters.get("FunctionName", "")).split(":function:")[-1].split(":")[0]
        if name not in self._registry or set(parameters) - {"FunctionName", "Payload"}:
            return self._fallback().invoke(**parameters)  # type: ignore[no-any-return]
        payload = parameters.get("Payload")
        if isinstance(payload, bytes | bytearray):
            payload = payload.decode()
        event = json.loads(payload) if isinstance(payload, str) and payload else payload
        text, errored, _ = self._registry.invoke_as_lambda(name, _decoded(event))
        answer: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": io.BytesIO(text.encode()),
        }
        if errored:
            answer["FunctionError"] = "Unhandled"
        return answer


def _state_machine_client(region: str, service: str, state_credentials: Any = None) -> Any:
    registry = _active
    original = _originals["boto_client_for"]
    if registry is None or service != "lambda":
        return original(region, service, state_credentials)
    return _StateMachineLambdaClient(registry, lambda: original(region, service, state_credentials))


def install(registry: FunctionRegistry) -> None:
    """Route moto's Lambda invocations (in this process) to `registry`."""
    global _active
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    with _hook_lock:
        if not _originals:
            _originals["_invoke_lambda"] = LambdaFunction._invoke_lambda
            _originals["invoke"] = LambdaFunction.invoke
            _originals["send_dynamodb_items"] = LambdaBackend.send_dynamodb_items
            _originals["boto_client_for"] = getattr(lambda_eval_utils, "boto_client_for")  # noqa: B009
            LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
            LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
            LambdaBackend.send_dynamodb_items = _send_dynamodb_items  # type: ignore[method-assign]
            setattr(lambda_eval_utils, "boto_client_for", _state_machine_client)  # noqa: B010
        _active = registry


def uninstall() -> None:
    """Give moto its own Lambda invocation back."""
    global _active
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    with _hook_lock:
        if _originals:
            LambdaFunction._invoke_lambda = _originals.pop("_invoke_lambda")  # type: ignore[method-assign]
            LambdaFunction.invoke = _originals.pop("invoke")  # type: ignore[method-assign]
            LambdaBackend.send_dynamodb_items = _originals.pop("send_dynamodb_items")  # type: ignore[method-assign]
            setattr(lambda_eval_utils, "boto_client_for", _originals.pop("boto_client_for"))  # noqa: B010
        _active = None


@contextmanager
def installed(registry: FunctionRegistry) -> Iterator[FunctionRegistry]:
    install(registry)
    try:
        yield registry
    finally:
        uninstall()
