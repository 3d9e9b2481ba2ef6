"""Classify commits into the topics a maintainer watches. Pure: paths and text in, topics out."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from tracker.config import TopicConfig


class TopicMatch(NamedTuple):  # one per commit of a history in a first sync: a cheap tuple
    topic: str
    rule: str


class TopicClassifier:
    def __init__(self, topics: Sequence[TopicConfig]) -> None:
        self.topics = tuple(topics)
        # One compiled regex per topic and rule kind: classify() runs once per commit.
        self._paths = {t.name: _alternation(fnmatch.translate(p) for p in t.paths) for t in topics}
        self._keywords = {
            t.name: _alternation((re.escape(k) for k in t.keywords), re.IGNORECASE) for t in topics
        }
        self._symbols = {
            t.name: _alternation(r"\b" + re.escape(x) + r"\b" for x in t.symbols) for t in topics
        }

    def classify(self, subject: str, message: str, paths: Sequence[str]) -> list[TopicMatch]:
        """Topics matched by touched paths, subject keywords or symbols named in the message."""
        found: list[TopicMatch] = []
        for t in self.topics:
            rule = self._match_one(t.name, subject, message, paths)
            if rule:
                found.append(TopicMatch(t.name, rule))
        return found

    def _match_one(self, name: str, subject: str, message: str, paths: Sequence[str]) -> str | None:
        rx = self._paths[name]
        if rx is not None:
            for p in paths:
                if rx.match(p):
                    return f"path {p} matches a topic path"
        rx = self._keywords[name]
        if rx is not None:
            m = rx.search(subject)
            if m:
                return f"subject mentions '{m.group(0)}'"
        rx = self._symbols[name]
        if rx is not None:
            m = rx.search(message)
            if m:
                return f"message names {m.group(0)}()"
        return None

    def symbol_regex(self, topic: str) -> str | None:
        """A POSIX regex for ``git log -G`` over this topic's symbols (None if it has none)."""
        for t in self.topics:
            if t.name == topic and t.symbols:
                return "(" + "|".join(re.escape(s) for s in t.symbols) + ")"
        return None


def _alternation(parts: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    items = list(parts)
    return re.compile("|".join(f"(?:{p})" for p in items), flags) if items else None
