"""One botocore DynamoDB client for every model, table and transaction.

PynamoDB builds a client (and a botocore session that loads the service model) per model: about
100 ms each on a cold Lambda. All our models and transactions share this one instead.
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection

_root: Connection | None = None


def configure(region: str) -> None:
    global _root
    if _root is None or _root.region != region:
        _root = Connection(
            region=region, connect_timeout_seconds=2, read_timeout_seconds=5, max_retry_attempts=3
        )


def forget() -> None:
    """Forget the shared client (`tables.reset()` also forgets each model's connection)."""
    global _root
    _root = None


def root() -> Connection:
    if _root is None:
        raise RuntimeError("tables.bind() has not been called")
    return _root


def botocore_session() -> Any:
    """The botocore session the shared client came from, for the container's other AWS
    clients: a session loads the endpoint rules and each service's model once, and a second
    session would load them again (~70 ms of a cold first request, bench/coldstart.py)."""
    if _root is None:
        from botocore.session import get_session

        return get_session()
    return _root.session


def share_client(table_connection: Any) -> None:
    """Point a PynamoDB TableConnection at the shared client (PynamoDB 6 keeps it in `_client`)."""
    inner = table_connection.connection
    if inner._client is None:
        inner._client = root().client
