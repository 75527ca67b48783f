"""Full-text search over tasks: words, their weights, and ranking.

A task is indexed under each distinct word of its title (weight 3), tags (2) and description
(1); a query matches the tasks that contain every one of its words, best total weight first.
Words are compared lower-cased, accents kept, punctuation dropped, so "Deploy," matches
"deploy". A word is a whole word: "deploy" does not match "deployment".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from chalicelib.domain.tasks import Task

TITLE_WEIGHT = 3
TAG_WEIGHT = 2
DESCRIPTION_WEIGHT = 1
MAX_QUERY_WORDS = 8
# A description indexes at most this many distinct words (the first ones): it bounds the index
# writes of one task change.
MAX_DESCRIPTION_WORDS = 100
MAX_WORD_LENGTH = 40

# Letters and digits; an apostrophe inside a word keeps it whole ("don't"); hyphens split.
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)


def words(text: str) -> list[str]:
    """The distinct words of `text`, lower-cased, in order of first appearance."""
    found = (match.group(0).lower() for match in _WORD.finditer(text))
    return list(dict.fromkeys(w[:MAX_WORD_LENGTH] for w in found))


def index_terms(task: Task) -> dict[str, int]:
    """Each word the task is found by, with its weight (the best place it appears in)."""
    terms: dict[str, int] = {}
    for word in words(task.description)[:MAX_DESCRIPTION_WORDS]:
        terms[word] = DESCRIPTION_WEIGHT
    for tag in task.tags:
        for word in words(tag):
            terms[word] = max(terms.get(word, 0), TAG_WEIGHT)
    for word in words(task.title):
        terms[word] = TITLE_WEIGHT
    return terms


def query_words(q: str) -> list[str]:
    return words(q)[:MAX_QUERY_WORDS]


def matches(task: Task, wanted: Iterable[str]) -> bool:
    """Does the task (as it is now) contain every word? Guards against a lagging index."""
    present = set(words(f"{task.title} {task.description} {' '.join(task.tags)}"))
    return all(word in present for word in wanted)


def rank(postings: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Task ids found under every word, by total weight (ties: newest first)."""
    if not postings:
        return []
    lists = list(postings.values())
    common = set(lists[0]).intersection(*lists[1:])
    score = {task_id: sum(p[task_id] for p in lists) for task_id in common}
    return sorted(common, key=lambda task_id: (-score[task_id], _reverse(task_id)))


def _reverse(task_id: str) -> tuple[int, ...]:
    # Newest first among equal scores: ULIDs sort by time, so compare them backwards.
    return tuple(-ord(ch) for ch in task_id)
