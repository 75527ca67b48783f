"""`rotate_jwt_key`: the JWT signing key's rotation function, invoked by Secrets Manager.

Secrets Manager calls it four times per rotation (`createSecret`, `setSecret`, `testSecret`,
`finishSecret`, see `adapters/aws/key_rotation.py`), on the schedule CDK sets
(`infrastructure/components/secrets.py`) or on `aws secretsmanager rotate-secret`. A step that
raises fails the rotation, which Secrets Manager retries; AWSCURRENT moves only in the last one.
The procedure and its guarantees are in `docs/keys.md`.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.observability import logger


def rotate_jwt_key(event: dict[str, Any]) -> dict[str, Any]:
    step = str(event.get("Step", ""))
    secret_id = str(event.get("SecretId", ""))
    token = str(event.get("ClientRequestToken", ""))
    log = logger()
    log.info("JWT signing key rotation step", extra={"step": step, "version_id": token})
    try:
        bootstrap.key_rotation().run(step, secret_id, token)
    except Exception:
        log.exception("JWT signing key rotation step failed", extra={"step": step})
        raise
    return {"step": step, "version_id": token}
