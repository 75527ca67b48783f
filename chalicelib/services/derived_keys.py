"""Keys for one purpose each, derived from the deployment's derivation secret (docs/keys.md).

Every container derives the same key for a purpose, and one leaked derived key reveals neither
the secret nor any other key. The derivation secret is never the JWT signing key: rotating that
one must not change webhook secrets, cursors or calendar tokens.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.ports import Secrets

CURSORS = b"cursors"
CALENDAR_TOKENS = b"calendar-tokens"
_WEBHOOK = b"webhook:"


class DerivedKeys:
    def __init__(self, secrets: Secrets, secret_id: str) -> None:
        self._secrets = secrets
        self._secret_id = secret_id

    def derive(self, purpose: bytes) -> bytes:
        """HMAC-SHA256 of the purpose under the derivation secret (read on first use, then
        cached by the secrets adapter)."""
        secret = self._secrets.get(self._secret_id).encode()
        return hmac.new(secret, purpose, "sha256").digest()

    def webhook_secret(self, project_id: str) -> str:
        """The secret a project's webhook requests are signed with (hex, as shown to admins)."""
        return self.derive(_WEBHOOK + project_id.encode()).hex()
