"""In-memory applicability checker: would these commits (or this mail patch) apply to a branch?

This is the only package that imports pygit2. Nothing here touches a work tree, an index file or
a ref; results are computed on trees held in memory (merged blobs and rebuilt trees are written
to the object database, which is harmless and lets tree ids be compared with git's).

A cherry-pick is a three-way merge: base = the commit's parent tree, ours = the current tree,
theirs = the commit's tree (design.md section 4). A whole-tree merge costs time proportional to
the size of the tree; here only the paths the commit touches are looked at, plus the paths that
rename detection drags in, so the cost follows the size of the patch. The rules follow git's
merge-ort, read from its source and checked against git 2.39 by the differential test: which
rename sources are "relevant", exact then basename then matrix rename matching with git's own
similarity estimate, directory renames in the default "conflict" mode, and handle_content_merge's
mode and content rules. Content merges are git's own (contentmerge: histogram diff and xdl_merge
as merge-ort calls them), not libgit2's, whose merge diffs with myers.

The modules, one concept each (lower ones never import higher ones): results (the public types),
objects (modes, versions, revisions, raw trees), similarity and contentmerge (git's estimates
and file merge), engine (one repository and its caches), renames, pathmerge and treemerge (one
cherry-pick), cascade (lines earlier steps wrote, hunk texts), prerequisites (the search),
sequence (a run over a plan), mailpatch (git am in memory). This module is the public API.
"""

from tracker.simulate.mailpatch import apply_mail_patch
from tracker.simulate.prerequisites import (
    SearchLimits,
    SearchSession,
    SearchStats,
    find_prerequisites,
)
from tracker.simulate.results import (
    ConflictHunk,
    ConflictKind,
    Evidence,
    FileConflict,
    HunkText,
    LineRange,
    MergeOptions,
    PrerequisiteMode,
    PrerequisiteResult,
    RenameNote,
    SimulationResult,
    StepResult,
    Verdict,
)
from tracker.simulate.sequence import simulate_sequence

__all__ = [
    "ConflictHunk",
    "ConflictKind",
    "Evidence",
    "FileConflict",
    "HunkText",
    "LineRange",
    "MergeOptions",
    "PrerequisiteMode",
    "PrerequisiteResult",
    "RenameNote",
    "SearchLimits",
    "SearchSession",
    "SearchStats",
    "SimulationResult",
    "StepResult",
    "Verdict",
    "apply_mail_patch",
    "find_prerequisites",
    "simulate_sequence",
]
