"""Calendar feeds over real HTTP against the local stack, read the way a calendar client reads
them: no Authorization header, the body parsed with `icalendar`; rotation and membership end a
feed at once, and the stack's own request log never shows a token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import icalendar
import pytest
import requests

from local.testing import ApiClient, StackProcess

pytestmark = pytest.mark.e2e


def fetch(stack: StackProcess, path: str, **headers: str) -> requests.Response:
    """A calendar client's GET: no bearer token."""
    return requests.get(f"{stack.api}{path}", headers=headers, timeout=30)


def uids(response: requests.Response) -> set[str]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    return {str(event["UID"]).removesuffix("@taskbeat") for event in calendar.events}


def test_a_calendar_client_subscribes_rotates_and_loses_a_project(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    owner, viewer = new_user(name="Owner"), new_user(name="Viewer")
    as_owner = ApiClient(stack.api, owner["access_token"])
    as_viewer = ApiClient(stack.api, viewer["access_token"])
    project = as_owner("POST", "/projects", {"name": "Launch"}, 201)["id"]
    as_owner(
        "POST",
        f"/projects/{project}/members",
        {"user_id": viewer["user"]["id"], "role": "viewer"},
        201,
    )

    def task(title: str, **fields: Any) -> str:
        body = {"title": title, "project_id": project, **fields}
        return str(as_owner("POST", "/tasks", body, 201)["id"])

    for_viewer = task("Review", due_date="2099-05-01", assignee_id=viewer["user"]["id"])
    for_owner = task("Launch", due_date="2099-05-02T15:00:00Z", assignee_id=owner["user"]["id"])
    task("Someday")

    token = as_viewer("GET", "/users/profile")["calendar_token"]
    mine = fetch(stack, f"/calendar/{token}.ics")
    assert uids(mine) == {for_viewer}
    assert mine.headers["Cache-Control"] == "private, max-age=300"
    again = fetch(stack, f"/calendar/{token}.ics", **{"If-None-Match": mine.headers["ETag"]})
    assert again.status_code == 304
    project_feed = f"/calendar/{token}/projects/{project}.ics"
    assert uids(fetch(stack, project_feed)) == {for_viewer, for_owner}

    rotated = as_viewer("POST", "/users/profile/calendar-token")["calendar_token"]
    assert rotated != token
    for gone in (f"/calendar/{token}.ics", project_feed):
        answer = fetch(stack, gone)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    new_project_feed = f"/calendar/{rotated}/projects/{project}.ics"
    assert uids(fetch(stack, new_project_feed)) == {for_viewer, for_owner}

    as_owner("DELETE", f"/projects/{project}/members/{viewer['user']['id']}", expect=204)
    assert fetch(stack, new_project_feed).status_code == 404
    assert uids(fetch(stack, f"/calendar/{rotated}.ics")) == set()  # left: its tasks go too

    output = stack.output()
    assert "/calendar/[redacted]" in output  # the request lines are there, the tokens are not
    assert token not in output
    assert rotated not in output
