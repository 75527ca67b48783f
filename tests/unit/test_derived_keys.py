"""The keys derived from the deployment's derivation secret (services/derived_keys.py).

Changing a derivation changes every webhook secret, cursor and calendar token of a deployment
at once: the known answers below pin it."""

from __future__ import annotations

import hashlib
import hmac

from chalicelib.services.derived_keys import CALENDAR_TOKENS, CURSORS, DerivedKeys
from tests.fakes import InMemorySecrets

SECRET_ID = "taskbeat/derivation"
SECRET = "a derivation secret for the tests, long enough"


def _keys() -> tuple[DerivedKeys, InMemorySecrets]:
    secrets = InMemorySecrets({SECRET_ID: SECRET})
    return DerivedKeys(secrets, SECRET_ID), secrets


def test_a_key_is_hmac_sha256_of_its_purpose_under_the_secret() -> None:
    keys, _ = _keys()
    for purpose in (CURSORS, CALENDAR_TOKENS, b"webhook:P1"):
        expected = hmac.new(SECRET.encode(), purpose, hashlib.sha256).digest()
        assert keys.derive(purpose) == expected


def test_known_answers() -> None:
    keys, _ = _keys()
    assert keys.derive(CURSORS).hex() == (
        "fe2dd81aa7cc2b2b45bfd9b45db729f4e619540c9c4499ff14da359ea2d747cc"
    )
    assert keys.webhook_secret("01J00000000000000000000000") == (
        "4e10025cf047c9335d39f314c2c70e9385086a65038dae66d27a33abe2e0077c"
    )


def test_each_purpose_and_project_has_its_own_key() -> None:
    keys, _ = _keys()
    derived = {
        keys.derive(CURSORS),
        keys.derive(CALENDAR_TOKENS),
        bytes.fromhex(keys.webhook_secret("P1")),
        bytes.fromhex(keys.webhook_secret("P2")),
    }
    assert len(derived) == 4


def test_another_secret_gives_other_keys() -> None:
    keys, secrets = _keys()
    before = keys.derive(CURSORS)
    secrets.values[SECRET_ID] = "another derivation secret, just as long"
    assert keys.derive(CURSORS) != before
