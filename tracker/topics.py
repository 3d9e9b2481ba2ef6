"""Classify commits into the topics a maintainer watches. Pure: paths and text in, topics out."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tracker.config import TopicConfig


@dataclass(frozen=True)
class TopicMatch:
    topic: str
    rule: str


class TopicClassifier:
    def __init__(self, topics: Sequence[TopicConfig]) -> None:
        self.topics = tuple(topics)
        self._keywords = {
            t.name: [re.compile(re.escape(k), re.IGNORECASE) for k in t.keywords] for t in topics
        }
        self._symbols = {
            t.name: re.compile(r"\b(" + "|".join(re.escape(s) for s in t.symbols) + r")\b")
            for t in topics
            if t.symbols
        }

    def classify(self, subject: str, message: str, paths: Sequence[str]) -> list[TopicMatch]:
        """Topics matched by touched paths, subject keywords or symbols named in the message."""
        found: list[TopicMatch] = []
        for t in self.topics:
            rule = self._match_one(t, subject, message, paths)
            if rule:
                found.append(TopicMatch(t.name, rule))
        return found

    def _match_one(
        self, t: TopicConfig, subject: str, message: str, paths: Sequence[str]
    ) -> str | None:
        for pat in t.paths:
            for p in paths:
                if fnmatch.fnmatchcase(p, pat):
                    return f"path {p} matches {pat}"
        for rx in self._keywords[t.name]:
            if rx.search(subject):
                return f"subject mentions '{rx.pattern.replace(chr(92), '')}'"
        sym = self._symbols.get(t.name)
        if sym:
            m = sym.search(message)
            if m:
                return f"message names {m.group(1)}()"
        return None

    def symbol_regex(self, topic: str) -> str | None:
        """A POSIX regex for ``git log -G`` over this topic's symbols (None if it has none)."""
        for t in self.topics:
            if t.name == topic and t.symbols:
                return "(" + "|".join(re.escape(s) for s in t.symbols) + ")"
        return None
