"""Secrets Manager: plain secrets read once per container, and the rotating JWT signing keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.ports import SigningKey

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
# How long a container trusts what it read: a rotation reaches every container within this
# (tokens signed meanwhile with the old key carry its kid, which stays valid as AWSPREVIOUS).
KEYS_TTL_SECONDS = 300.0
# An unknown kid re-reads the keys at most this often per container: a rotation elsewhere is
# seen at once, and a flood of made-up kids costs at most one read per interval.
UNKNOWN_KID_REFRESH_SECONDS = 10.0


class SecretsManagerSecrets:
    """Secrets that never rotate (read once per container and cached for its lifetime)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    @translate_aws_failures
    def get(self, secret_id: str) -> str:
        with self._lock:
            if secret_id not in self._cache:
                response = self._client.get_secret_value(SecretId=secret_id)
                self._cache[secret_id] = response["SecretString"]
            return self._cache[secret_id]


class SecretsManagerSigningKeys:
    """The JWT signing key's AWSCURRENT and AWSPREVIOUS versions, named by their version ids.

    AWSCURRENT is read on first use and again after `ttl` seconds, so a rotation is picked up
    without a redeploy. AWSPREVIOUS is read only for a token AWSCURRENT did not sign (after a
    rotation, until the tokens of the previous key expire), and again only once AWSCURRENT has
    moved: a cold start reads one version, not two. An unknown kid re-reads AWSCURRENT at once,
    at most every `unknown_kid_refresh` seconds. Every other version (older, or AWSPENDING
    during a rotation) verifies nothing.
    """

    def __init__(
        self,
        client: Any,
        secret_id: str,
        *,
        ttl: float = KEYS_TTL_SECONDS,
        unknown_kid_refresh: float = UNKNOWN_KID_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._ttl = ttl
        self._unknown_kid_refresh = unknown_kid_refresh
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._current: SigningKey | None = None
        self._previous: SigningKey | None = None
        self._previous_of: str | None = None  # the AWSCURRENT kid AWSPREVIOUS was read under
        self._read_at = 0.0

    def current(self) -> SigningKey:
        with self._lock:
            return self._fresh()

    def find(self, kid: str) -> SigningKey | None:
        with self._lock:
            key = self._match(kid)
            if key is None and self._monotonic() - self._read_at >= self._unknown_kid_refresh:
                self._read()
                key = self._match(kid)
            return key

    def _match(self, kid: str) -> SigningKey | None:
        current = self._fresh()
        if current.kid == kid:
            return current
        if self._previous_of != current.kid:  # AWSPREVIOUS moves only when AWSCURRENT does
            self._previous = self._read_previous()
            self._previous_of = current.kid
        previous = self._previous
        return previous if previous is not None and previous.kid == kid else None

    def _fresh(self) -> SigningKey:
        if self._current is None or self._monotonic() - self._read_at >= self._ttl:
            return self._read()
        return self._current

    @translate_aws_failures
    def _read(self) -> SigningKey:
        current = self._version(CURRENT)
        if current is None:
            raise LookupError(f"secret {self._secret_id} has no {CURRENT} version")
        self._current, self._read_at = current, self._monotonic()
        return current

    @translate_aws_failures
    def _read_previous(self) -> SigningKey | None:
        return self._version(PREVIOUS)  # None before the first rotation

    def _version(self, stage: str) -> SigningKey | None:
        try:
            response = self._client.get_secret_value(SecretId=self._secret_id, VersionStage=stage)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None  # no AWSPREVIOUS before the first rotation
            raise
        return SigningKey(kid=str(response["VersionId"]), secret=str(response["SecretString"]))
