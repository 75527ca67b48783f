"""Secrets Manager, read once per container and cached."""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.adapters.errors import translate_aws_failures


class SecretsManagerSecrets:
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
