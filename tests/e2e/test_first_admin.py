"""On an empty deployment the first account is the admin: a fresh stack of its own."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local.testing import StackProcess, free_port

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def empty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    running = StackProcess(
        tmp_path_factory.mktemp("empty-stack") / "stack.log",
        http_port=free_port(),
        ws_port=free_port(),
    )
    running.start(timeout=60)
    try:
        yield running
    finally:
        assert running.stop(signal.SIGINT) == 0, running.output()


def register(api: str, email: str) -> requests.Response:
    return requests.post(
        f"{api}/auth/register", json={"email": email, "password": PASSWORD, "name": "N"}, timeout=30
    )


def test_concurrent_first_registrations_make_exactly_one_admin(empty_stack: StackProcess) -> None:
    emails = [f"racer{i}@example.com" for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda e: register(empty_stack.api, e), emails))
    assert [r.status_code for r in responses] == [201] * 6
    roles = sorted(r.json()["user"]["role"] for r in responses)
    assert roles == ["admin"] + ["member"] * 5

    admin = next(r.json() for r in responses if r.json()["user"]["role"] == "admin")
    member = next(r.json() for r in responses if r.json()["user"]["role"] == "member")
    auth = {"Authorization": f"Bearer {admin['access_token']}"}
    listed = requests.get(f"{empty_stack.api}/users?q=racer&limit=4", headers=auth, timeout=10)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 4
    assert listed.json()["next_cursor"]

    promoted = requests.put(
        f"{empty_stack.api}/users/{member['user']['id']}/role",
        json={"role": "admin"},
        headers=auth,
        timeout=10,
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    member_auth = {"Authorization": f"Bearer {member['access_token']}"}
    assert (
        requests.get(f"{empty_stack.api}/users", headers=member_auth, timeout=10).status_code == 200
    )
