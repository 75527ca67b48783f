"""What is said about a task (comments, with `@email` mentions) and what happened to it (history).

Reads come with the session (the route prefetches the task, its project and the caller's
membership; a comment also names its author and the mentioned addresses' claims), so a read is
one Query more and posting a comment is at most two round trips more: the mentioned users'
memberships, then one transaction with the comment, its history event and the notifications.
"""

from __future__ import annotations

from chalicelib.domain.activity import (
    EventType,
    HistoryEvent,
    Notification,
    NotificationType,
    Record,
)
from chalicelib.domain.comments import Comment, CommentCreate, mentioned_emails
from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.model import Page, PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole, plausible_id
from chalicelib.domain.tasks import Task
from chalicelib.domain.users import User
from chalicelib.ports import (
    Clock,
    CommentRepository,
    EmailDirectory,
    HistoryRepository,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    TaskRepository,
    UserRepository,
    reads,
)
from chalicelib.services.access import TaskReach

COMMENT_ROLE = ProjectRole.MEMBER  # post a comment, or delete one's own
MODERATE_ROLE = ProjectRole.ADMIN  # delete anyone's comment


def mention_message(author: User, task: Task) -> str:
    return f'{author.name} mentioned you on "{task.title}"'


class CommentService:
    def __init__(
        self,
        comments: CommentRepository,
        tasks: TaskRepository,
        projects: ProjectRepository,
        users: UserRepository,
        directory: EmailDirectory,
        prefetcher: Prefetcher,
        clock: Clock,
    ) -> None:
        self._comments = comments
        self._reach = TaskReach(tasks, projects, prefetcher)
        self._projects = projects
        self._users = users
        self._directory = directory
        self._prefetch = prefetcher
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again (TaskReach.require warms the task's): a no-op
    # then, one round trip for any other caller.

    reads_for_find = staticmethod(TaskReach.reads)

    @staticmethod
    def reads_for_post(principal: Principal, task_id: str) -> list[PrefetchKey]:
        """Posting: the task's reads and the author."""
        return [*TaskReach.reads(principal, task_id), reads.user(principal.user_id)]

    @staticmethod
    def reads_for_mentions(principal: Principal, command: CommentCreate) -> list[PrefetchKey]:
        """Posting, from the body: the claims of the mentioned addresses (which name their
        users)."""
        return [reads.user_email(email) for email in mentioned_emails(command.body)]

    @staticmethod
    def reads_for_delete(principal: Principal, task_id: str, comment_id: str) -> list[PrefetchKey]:
        """Deleting: the task's reads and the comment (an id that names none is not read)."""
        comment = (
            [reads.comment(task_id, comment_id)]
            if plausible_id(task_id) and plausible_id(comment_id)
            else []
        )
        return [*TaskReach.reads(principal, task_id), *comment]

    def find(self, principal: Principal, task_id: str, page: PageRequest) -> Page[Comment]:
        self._reach.require(principal, task_id, ProjectRole.VIEWER)
        return self._comments.find(task_id, page)

    def post(self, principal: Principal, task_id: str, command: CommentCreate) -> Comment:
        self._prefetch.warm(
            [*self.reads_for_post(principal, task_id), *self.reads_for_mentions(principal, command)]
        )
        task, _ = self._reach.require(principal, task_id, COMMENT_ROLE)
        author = self._users.get(principal.user_id)
        if author is None:
            raise NotFound("user not found")
        now = self._clock.now()
        comment = Comment(new_id(), task.id, task.project_id, author.id, command.body, now)
        records: list[Record] = [
            HistoryEvent(
                new_id(),
                task.id,
                EventType.COMMENT_CREATED,
                author.id,
                now,
                {"comment_id": (None, comment.id)},
            )
        ]
        message = mention_message(author, task)
        records += [
            Notification(
                new_id(),
                user_id,
                NotificationType.COMMENT_MENTION,
                message,
                now,
                task.id,
                task.project_id,
            )
            for user_id in self._mentioned_members(task, author, command.body)
        ]
        return self._comments.add(comment, records)

    def _mentioned_members(self, task: Task, author: User, body: str) -> list[str]:
        """The members of the task's project that `body` mentions, but the author; each once."""
        emails = mentioned_emails(body)
        if not emails:
            return []
        owners = self._directory.user_ids(emails)
        candidates = [
            owners[email] for email in emails if email in owners and owners[email] != author.id
        ]
        candidates = list(dict.fromkeys(candidates))
        # One round trip for every candidate's membership (none if nobody is mentioned).
        self._prefetch.warm([reads.member(task.project_id, user_id) for user_id in candidates])
        return [
            user_id
            for user_id in candidates
            if self._projects.membership(task.project_id, user_id) is not None
        ]

    def delete(self, principal: Principal, task_id: str, comment_id: str) -> None:
        self._prefetch.warm(self.reads_for_delete(principal, task_id, comment_id))
        task, context = self._reach.require(principal, task_id, ProjectRole.VIEWER)
        comment = self._comments.get(task.id, comment_id)
        if comment is None:
            raise NotFound("comment not found")
        if not context.role.at_least(COMMENT_ROLE):
            raise Forbidden("viewers cannot delete comments")
        if comment.author_id != principal.user_id and not context.role.at_least(MODERATE_ROLE):
            raise Forbidden("members delete their own comments; admins delete any")
        self._comments.delete(comment)


class HistoryService:
    def __init__(
        self,
        history: HistoryRepository,
        tasks: TaskRepository,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
    ) -> None:
        self._history = history
        self._reach = TaskReach(tasks, projects, prefetcher)

    # First reads (see CommentService): the task's.
    reads_for_find = staticmethod(TaskReach.reads)

    def find(self, principal: Principal, task_id: str, page: PageRequest) -> Page[HistoryEvent]:
        self._reach.require(principal, task_id, ProjectRole.VIEWER)
        return self._history.find(task_id, page)
