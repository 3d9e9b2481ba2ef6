"""The simulator's public result types: verdicts, conflicts, evidence, steps and options.

A new verdict goes in Verdict here, and is decided where the others are: treemerge.py
(_step_from_outcome: CLEAN, CONFLICT, ALREADY_PRESENT of one pick), sequence.py (_SequenceRun:
BLOCKED, MANUAL, the search's judgement of a conflict in a run) or mailpatch.py (a mail).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What became of one step.

    CONFLICT and MANUAL both mean "does not apply here"; MANUAL says more: the prerequisite
    search ran to its end and no verified, minimal, small set of commits makes the step apply,
    so a human has to backport it. CONFLICT is used when the search did not run (switched off,
    budget spent) or when it names the verified prerequisites the step needs. BLOCKED: the step
    conflicts on lines an earlier step of the same sequence changes, and that step did not apply
    (or the caller said it depends on a step that failed).
    """

    CLEAN = "clean"
    CONFLICT = "conflict"
    ALREADY_PRESENT = "already-present"
    BLOCKED = "blocked"
    MANUAL = "manual"


class PrerequisiteMode(StrEnum):
    OFF = "off"
    BOUNDED = "bounded"
    FULL = "full"


class ConflictKind(StrEnum):
    CONTENT = "content"
    BINARY = "binary"
    SYMLINK = "symlink"
    SUBMODULE = "submodule"
    MODE = "mode"
    ADD_ADD = "add-add"
    TYPE_CHANGE = "type-change"
    # ours changed the file, the commit deletes it
    MODIFY_DELETE = "modify-delete"
    # the commit changes a file that ours does not have (and no rename was found): git calls
    # this modify/delete too, but for a backport it means "needs an earlier patch or a rename"
    MISSING_FILE = "missing-file"
    RENAME_DELETE = "rename-delete"
    RENAME_RENAME = "rename-rename"
    RENAME_COLLISION = "rename-collision"
    DIRECTORY_FILE = "directory-file"
    FILE_LOCATION = "file-location"
    DIRECTORY_RENAME_SPLIT = "directory-rename-split"
    PATCH_DOES_NOT_APPLY = "patch-does-not-apply"
    BINARY_PATCH = "binary-patch"


@dataclass(frozen=True)
class LineRange:
    """1-based line range; when count is 0 the range is empty and sits just before line start."""

    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + max(self.count, 1) - 1

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ConflictHunk:
    """A change of the commit that collides with a change on our side.

    base: lines in the commit's parent (what blame looks at); theirs: the same change in the
    commit; ours: the colliding lines in the current tree (None when ours lacks the file).
    """

    base: LineRange
    theirs: LineRange
    ours: LineRange | None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class FileConflict:
    path: str
    kind: ConflictKind
    message: str
    base_path: str | None = None
    hunks: tuple[ConflictHunk, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class RenameNote:
    """A rename the merge followed. side is "theirs" (the commit renames) or "ours"."""

    side: str
    old_path: str
    new_path: str
    similarity: int

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class Evidence:
    commit: str
    subject: str
    path: str
    lines: LineRange | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class PrerequisiteResult:
    """The prerequisite search's answer for one conflicting step.

    stopped is non-empty when a time budget ended the search before it could decide; blockers
    are earlier, unapplied steps of the sequence that last changed the conflicting lines;
    rejected names candidates left out because they are too big for a bounded search.
    """

    fix: str
    found: bool
    commits: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    tried: tuple[tuple[str, ...], ...]
    candidates: tuple[str, ...]
    message: str
    mode: str = "full"
    stopped: str = ""
    blockers: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class HunkText:
    """One conflicting hunk as a maintainer reads a FAILED patch: where, and the actual lines.

    expects: the lines the patch expects (the fix's parent, lines ``base``); has: what the
    branch has there (lines ``ours``; empty with ours None when the branch lacks the file).
    Both are trimmed to a few lines of bounded width; *_more counts the lines left out.
    """

    path: str
    base: LineRange
    ours: LineRange | None
    expects: tuple[str, ...]
    has: tuple[str, ...]
    expects_more: int = 0
    has_more: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    def text(self) -> str:
        where = f"{self.path}:{self.base.start}-{self.base.end}"
        ours = f"{self.ours.start}-{self.ours.end}" if self.ours is not None else "missing"
        return f"{where} (branch lines {ours})"


@dataclass(frozen=True)
class StepResult:
    index: int
    commit: str | None
    subject: str
    verdict: Verdict
    tree: str | None
    conflicts: tuple[FileConflict, ...] = ()
    renames: tuple[RenameNote, ...] = ()
    binary_files: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    prerequisites: PrerequisiteResult | None = None
    detail: str = ""
    # 0-based indexes, in the simulated sequence, of the steps named in blocked_by
    blocked_at: tuple[int, ...] = ()
    hunks: tuple[HunkText, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.CLEAN, Verdict.ALREADY_PRESENT)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class SimulationResult:
    base: str
    base_tree: str
    final_tree: str
    steps: tuple[StepResult, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for s in self.steps if s.verdict is verdict)

    def to_dict(self) -> dict[str, Any]:
        out = _as_dict(self)
        out["counts"] = {v.value: self.count(v) for v in Verdict}
        return out


@dataclass(frozen=True)
class MergeOptions:
    """Knobs that mirror git settings; defaults are git's defaults.

    count_incomplete_last_line: git 2.44 started counting a final line without a newline when it
    estimates rename similarity (before, that line was ignored). Set False to mimic older git.
    """

    rename_threshold: int = 50
    rename_limit: int = 7000
    count_incomplete_last_line: bool = True


def _as_dict(obj: object) -> dict[str, Any]:
    def conv(value: object) -> object:
        if isinstance(value, StrEnum):
            return value.value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: conv(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [conv(v) for v in value]
        return value

    result = conv(obj)
    assert isinstance(result, dict)
    return result
