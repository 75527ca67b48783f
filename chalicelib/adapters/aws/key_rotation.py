"""The four steps of a Secrets Manager rotation of the JWT signing key.

Secrets Manager drives a rotation by invoking the rotation function once per step with the
secret, a `ClientRequestToken` (the id of the version being made, which it has staged
AWSPENDING before `createSecret`) and the step's name. Each step is idempotent: Secrets Manager
retries a failed step, and a step may run again after it succeeded.

- `createSecret`: a new random key as the value of the AWSPENDING version (kept if present).
- `setSecret`: nothing: the key lives only in this secret (no database to tell).
- `testSecret`: the pending value is a usable HS256 key.
- `finishSecret`: AWSCURRENT moves to the new version; Secrets Manager moves AWSPREVIOUS to the
  version that was current, and the version that was previous loses its label (tokens it signed
  stop verifying).

Only this secret rotates: webhook secrets and cursors derive from a separate key that never
does (`docs/keys.md`).
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws.secrets import CURRENT
from chalicelib.adapters.errors import translate_aws_failures

PENDING = "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# 48 random bytes, 64 URL-safe characters: the same strength as the key CDK generates.
KEY_BYTES = 48
MIN_KEY_LENGTH = 32


class RotationRefused(Exception):
    """The event does not describe a rotation this function may carry out."""


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


class SigningKeyRotation:
    def __init__(self, client: Any, expected_secret: str | None = None) -> None:
        self._client = client
        # The one secret this function rotates (its ARN or name); None: whatever it is given.
        self._expected_secret = expected_secret

    @translate_aws_failures
    def run(self, step: str, secret_id: str, token: str) -> None:
        if step not in STEPS:
            raise RotationRefused(f"unknown step {step!r}")
        metadata = self._client.describe_secret(SecretId=secret_id)
        if self._expected_secret and self._expected_secret not in (
            metadata["ARN"],
            metadata["Name"],
        ):
            raise RotationRefused(f"this function rotates {self._expected_secret} only")
        versions: dict[str, list[str]] = metadata.get("VersionIdsToStages", {})
        if token not in versions:
            raise RotationRefused(f"version {token} is not a version of the secret")
        if CURRENT in versions[token]:
            return  # this rotation is finished already: every step is a no-op
        if PENDING not in versions[token]:
            raise RotationRefused(f"version {token} is not staged {PENDING}")
        if step == "createSecret":
            self.create(secret_id, token)
        elif step == "testSecret":
            self.test(secret_id, token)
        elif step == "finishSecret":
            self.finish(secret_id, token, versions)
        # setSecret: the key is used only from this secret; there is nothing to set elsewhere.

    def create(self, secret_id: str, token: str) -> None:
        self._client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)  # it must exist
        if self._pending_value(secret_id, token) is not None:
            return  # created by an earlier attempt of this step: keep it
        self._client.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=new_key(),
            VersionStages=[PENDING],
        )

    def test(self, secret_id: str, token: str) -> None:
        value = self._pending_value(secret_id, token)
        if value is None or len(value) < MIN_KEY_LENGTH:
            raise RotationRefused(f"the pending key of {secret_id} is missing or too short")
        current = self._client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
        if current["SecretString"] == value:
            raise RotationRefused("the pending key is the current key")

    def finish(self, secret_id: str, token: str, versions: dict[str, list[str]]) -> None:
        current = next((v for v, stages in versions.items() if CURRENT in stages), None)
        if current == token:
            return
        move: dict[str, str] = {"MoveToVersionId": token}
        if current is not None:
            move["RemoveFromVersionId"] = current
        self._client.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT, **move)

    def _pending_value(self, secret_id: str, token: str) -> str | None:
        try:
            response = self._client.get_secret_value(
                SecretId=secret_id, VersionId=token, VersionStage=PENDING
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        value = response.get("SecretString")
        return str(value) if value is not None else None
