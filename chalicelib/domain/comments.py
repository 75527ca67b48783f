"""Comments on tasks, and the `@email` mentions in them.

The rules (the comment service enforces them):

- Members (and above) of a task's project may comment; viewers may read the comments.
- A comment's author may delete it while still a member (member role or above); admins and the
  owner may delete any comment of the project. Comments are never edited.
- Every `@email` in a body that names a member of the project (other than the author) notifies
  that member once, however often it appears. Mentions of anyone else are ignored, and only the
  first `MAX_MENTIONS` distinct addresses are looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from chalicelib.domain.model import Input
from chalicelib.domain.users import normalise_email

BODY_MAX = 10_000
# Each mention costs a key in the request's first BatchGetItem (<= 100 keys) and possibly an
# item of the comment's transaction (<= 100 items): a bound keeps both within DynamoDB's limits.
MAX_MENTIONS = 50
EMAIL_MAX = 254  # longer "addresses" belong to no account (and would not fit a key)

# `@` + an address, not preceded by a character that would make it part of a word or address
# (so the `@` inside `ada@example.com` alone is no mention). A trailing dot ends the sentence.
_MENTION = re.compile(
    r"(?<![\w.@+-])@([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)


def mentioned_emails(body: str) -> list[str]:
    """The distinct addresses mentioned in `body` (normalised, in order of first mention)."""
    emails = dict.fromkeys(
        normalise_email(match) for match in _MENTION.findall(body) if len(match) <= EMAIL_MAX
    )
    return list(emails)[:MAX_MENTIONS]


@dataclass(frozen=True)
class Comment:
    id: str
    task_id: str
    project_id: str
    author_id: str
    body: str
    created_at: datetime


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than white space")
    return value


CommentBody = Annotated[
    str, StringConstraints(min_length=1, max_length=BODY_MAX), AfterValidator(_not_blank)
]


class CommentCreate(Input):
    body: CommentBody
