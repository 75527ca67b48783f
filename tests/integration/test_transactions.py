"""`Transaction` names the item whose condition failed, whatever order the items were added in
(PynamoDB sends them grouped by kind: checks, deletes, puts, updates)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb.models import ClaimModel
from chalicelib.adapters.dynamodb.transactions import Transaction

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def claim(key: str) -> ClaimModel:
    return ClaimModel(key=key, owner_id="o", created_at=AT)


@pytest.mark.usefixtures("moto_aws")
@pytest.mark.parametrize("failing", ["put", "check", "update", "delete"])
def test_the_failed_item_is_named_in_any_order(failing: str) -> None:
    for key in ("held", "checked", "doomed", "taken"):
        claim(key).save()
    exists, missing = ClaimModel.key.exists(), ClaimModel.key.does_not_exist()
    conditions = dict.fromkeys(("put", "check", "update", "delete"), exists)
    conditions["put"] = missing
    # Make exactly one condition fail.
    if failing == "put":
        put_key = "taken"
    else:
        put_key = "fresh"
        conditions[failing] = ClaimModel.key.exists() & (ClaimModel.owner_id == "nobody")

    tx = Transaction()

    def commit() -> None:
        with tx:
            tx.update("update", claim("held"), [ClaimModel.owner_id.set("p")], conditions["update"])
            tx.save("put", claim(put_key), conditions["put"])
            tx.delete("delete", claim("doomed"), conditions["delete"])
            tx.check("check", ClaimModel, "checked", conditions["check"])

    with pytest.raises(TransactWriteError) as cancelled:
        commit()
    assert tx.failed(cancelled.value) == {failing}
