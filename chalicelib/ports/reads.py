"""What a use case can read first: the one vocabulary of prefetch keys.

A service declares each use case's first reads with these constructors (`reads.task(id)`,
`reads.member(project_id, user_id)`, ...); the route hands the same declaration to
authentication, which fetches the items with the caller's session in one round trip, and the
service warms it again for callers that are not routes (a warm of what the request already holds
costs nothing). The adapter maps each kind to its item (`item_key` of the DynamoDB adapter, which
checks that every kind has one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReadKind(enum.Enum):
    USER = "user"
    PROJECT = "project"
    MEMBER = "member"  # (project_id, user_id)
    TASK = "task"
    GRAPH = "graph"  # a project's dependency graph, by project id
    SEARCH_TERM = "search_term"  # (project_id, word)
    USER_PROJECTS = "user_projects"  # the projects of a user, by user id
    USER_EMAIL = "user_email"  # an email's claim, which names its user
    COMMENT = "comment"  # (task_id, comment_id)
    NOTIFICATION_STATE = "notification_state"  # a user's "read up to" mark, by user id
    EXECUTION = "execution"
    WORKFLOW = "workflow"
    WORKFLOW_RUN = "workflow_run"
    TEMPLATE = "template"
    RULE = "rule"
    HOOK = "hook"
    DELIVERY = "delivery"


@dataclass(frozen=True)
class PrefetchKey:
    """An item a request will read first, named in domain terms."""

    kind: ReadKind
    ids: tuple[str, ...]


def user(user_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.USER, (user_id,))


def project(project_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.PROJECT, (project_id,))


def member(project_id: str, user_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.MEMBER, (project_id, user_id))


def task(task_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.TASK, (task_id,))


def graph(project_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.GRAPH, (project_id,))


def search_term(project_id: str, word: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.SEARCH_TERM, (project_id, word))


def user_projects(user_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.USER_PROJECTS, (user_id,))


def user_email(email: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.USER_EMAIL, (email,))


def comment(task_id: str, comment_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.COMMENT, (task_id, comment_id))


def notification_state(user_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.NOTIFICATION_STATE, (user_id,))


def execution(execution_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.EXECUTION, (execution_id,))


def workflow(workflow_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.WORKFLOW, (workflow_id,))


def workflow_run(run_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.WORKFLOW_RUN, (run_id,))


def template(template_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.TEMPLATE, (template_id,))


def rule(rule_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.RULE, (rule_id,))


def hook(hook_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.HOOK, (hook_id,))


def delivery(delivery_id: str) -> PrefetchKey:
    return PrefetchKey(ReadKind.DELIVERY, (delivery_id,))
