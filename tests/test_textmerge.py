"""tracker.simulate.contentmerge against git's own merge (git merge-tree --write-tree: merge-ort
with its defaults, as cherry-pick uses it) on seeded random texts.

All triples of one test go into one repository as files of a base, an "ours" and a "theirs"
commit, and a single merge-tree gives git's verdict and bytes (conflict markers included)
for every file. The texts are drawn from small vocabularies so that lines repeat: that is where
diff algorithms make different choices, where histogram hands regions to myers, and where
myers' cost limits cut in. Each test checks that the code paths it is about actually ran.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.gitutil import FastImport, FileState, git, init_repo
from tracker.simulate import contentmerge as textmerge

Triple = tuple[bytes, bytes, bytes]


def git_merges(repo: Path, triples: list[Triple]) -> list[tuple[bool, bytes]]:
    """(clean, resulting bytes) of git's merge for each triple."""
    names = [f"f{i:04d}" for i in range(len(triples))]
    fi = FastImport()
    base = fi.commit(
        "refs/heads/base", "base", {n: FileState(t[0]) for n, t in zip(names, triples, strict=True)}
    )
    fi.commit(
        "refs/heads/ours",
        "ours",
        {n: FileState(t[1]) for n, t in zip(names, triples, strict=True)},
        parent=base,
    )
    fi.commit(
        "refs/heads/theirs",
        "theirs",
        {n: FileState(t[2]) for n, t in zip(names, triples, strict=True)},
        parent=base,
    )
    fi.run(repo)
    proc = git(repo, "merge-tree", "--write-tree", "--name-only", "ours", "theirs", check=False)
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.decode().split("\n")
    conflicted = set()
    for line in lines[1:]:
        if not line:
            break
        conflicted.add(line)
    oids = {}
    for entry in git(repo, "ls-tree", "-z", lines[0]).stdout.split(b"\0"):
        if entry:
            meta, name = entry.split(b"\t", 1)
            oids[name.decode()] = meta.split()[2].decode()
    batch = git(repo, "cat-file", "--batch", input="".join(oids[n] + "\n" for n in names).encode())
    out, pos, data = [], 0, batch.stdout
    for n in names:
        eol = data.index(b"\n", pos)
        size = int(data[pos:eol].split()[2])
        out.append((n not in conflicted, data[eol + 1 : eol + 1 + size]))
        pos = eol + 1 + size + 1
    return out


def check(repo: Path, triples: list[Triple]) -> tuple[int, int]:
    """Compares every triple; returns (clean, conflicted) counts."""
    truth = git_merges(repo, triples)
    clean = 0
    for i, ((b, o, t), (git_clean, data)) in enumerate(zip(triples, truth, strict=True)):
        got = textmerge.merge(b, o, t, labels=("ours", "theirs"))
        assert (got.clean, got.rendered) == (git_clean, data), f"triple {i}"
        clean += git_clean
    return clean, len(triples) - clean


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts calls of textmerge's inner steps (and which way myers' splits went)."""
    seen: Counter[str] = Counter()

    def counting(name: str) -> None:
        inner: Callable[..., object] = getattr(textmerge, name)

        def wrapper(*args: object) -> object:
            seen[name] += 1
            result = inner(*args)
            if name == "_split":
                assert isinstance(result, tuple)
                seen["cost-cut" if result[2] != result[3] else "middle-snake"] += 1
            if name == "_refine":
                assert isinstance(result, list)
                seen["identical"] += sum(1 for m in result if m.mode == 4)
            return result

        monkeypatch.setattr(textmerge, name, wrapper)

    for name in ("_classic", "_split", "_refine"):
        counting(name)
    yield seen


class Texts:
    def __init__(self, seed: int, vocabulary: list[bytes], unique: float) -> None:
        self.rng = random.Random(seed)
        self.vocabulary = vocabulary
        self.unique = unique
        self.serial = 0

    def line(self) -> bytes:
        if self.rng.random() < self.unique:
            self.serial += 1
            return b"line %d\n" % self.serial
        return self.rng.choice(self.vocabulary)

    def lines(self, n: int) -> list[bytes]:
        return [self.line() for _ in range(n)]

    def edit(self, lines: list[bytes], edits: int, span: int) -> list[bytes]:
        rng, out = self.rng, list(lines)
        for _ in range(edits):
            i = rng.randrange(len(out) + 1)
            op = rng.random()
            if op < 0.35:
                out[i:i] = self.lines(rng.randint(1, span))
            elif op < 0.7:
                del out[i : i + rng.randint(1, span)]
            else:
                out[i : i + rng.randint(1, span)] = self.lines(rng.randint(1, span))
        return out

    def finish(self, lines: list[bytes], crlf: bool, cut_newline: bool) -> bytes:
        data = b"".join(lines)
        if crlf:
            data = data.replace(b"\n", b"\r\n")
        if cut_newline and data.endswith(b"\n"):
            data = data[:-1]
        return data


def test_small_texts_with_repeated_lines(repo: Path, calls: Counter[str]) -> None:
    """Short C-like texts: overlapping, adjacent and identical edits, CRLF and missing final
    newlines."""
    gen = Texts(11, [b"}\n", b"\n", b"\treturn 0;\n", b"{\n", b"a\n", b"b\n", b"x\r\n"], 0.4)
    rng = gen.rng
    triples: list[Triple] = []
    for _ in range(400):
        base = gen.lines(rng.randint(0, 40))
        ours = gen.edit(base, rng.randint(1, 4), 4)
        theirs = gen.edit(base, rng.randint(1, 4), 4) if rng.random() < 0.8 else list(ours)
        if rng.random() < 0.2:
            # the same change on both sides, plus one more of ours
            theirs = gen.edit(base, 2, 3)
            ours = [*theirs, gen.line()]
        crlf, cut = rng.random() < 0.15, rng.random() < 0.15
        triples.append(
            (
                gen.finish(base, crlf, cut),
                gen.finish(ours, crlf, cut),
                gen.finish(theirs, crlf, cut),
            )
        )
    clean, conflicted = check(repo, triples)
    assert clean > 100 and conflicted > 100
    assert calls["_refine"] > 0


def test_identical_sides_found_by_refinement(repo: Path, calls: Counter[str]) -> None:
    """Tiny texts of three distinct lines: now and then the two sides change a region to the
    same lines but their diffs cut it differently, so xdl_do_merge sees a conflict that
    xdl_refine_conflicts then finds identical (and git merges cleanly)."""
    rng = random.Random(1)
    vocabulary = [b"a\n", b"b\n", b"c\n"]

    def edit(lines: list[bytes]) -> list[bytes]:
        out = list(lines)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(out) + 1)
            out[i : i + rng.randint(0, 2)] = [
                rng.choice(vocabulary) for _ in range(rng.randint(0, 2))
            ]
        return out

    triples: list[Triple] = []
    for _ in range(3000):
        base = [rng.choice(vocabulary) for _ in range(rng.randint(3, 10))]
        theirs = edit(base)
        ours = edit(theirs) if rng.random() < 0.5 else list(theirs)
        if rng.random() < 0.5:
            ours.append(b"z\n")
        triples.append((b"".join(base), b"".join(ours), b"".join(theirs)))
    check(repo, triples)
    assert calls["identical"] > 0


def test_regions_left_to_myers(repo: Path, calls: Counter[str]) -> None:
    """Texts made of a few lines repeated hundreds of times: histogram finds no line rare
    enough and hands the region to git's myers, with its cleanup of unmatched lines."""
    triples: list[Triple] = []
    for seed in range(40):
        vocabulary = [b"a\n", b"b\n", b"}\n", b"\n", b"c\n"][: 2 + seed % 4]
        gen = Texts(seed, vocabulary, 0.03 * (seed % 2))
        rng = gen.rng
        base = gen.lines(rng.choice([100, 400, 1200]))
        span = rng.choice([3, 40, 200])
        ours = gen.edit(base, rng.randint(1, 6), span)
        theirs = gen.edit(base, rng.randint(1, 6), span)
        triples.append((b"".join(base), b"".join(ours), b"".join(theirs)))
    check(repo, triples)
    assert calls["_classic"] > 0


def test_myers_cost_limit(repo: Path, calls: Counter[str]) -> None:
    """Long texts of repeated lines, one side scrambled: myers gives up on the optimal path
    after its cost limit (xdl_split's mxcost branch) and git's merge depends on where."""
    triples: list[Triple] = []
    for seed in range(3):
        gen = Texts(100 + seed, [b"b\n", b"c\n", b"d\n", b"e\n"], 0.0)
        rng = gen.rng
        base: list[bytes] = []
        while len(base) < 2500:
            base += (
                [b"a\n"] * rng.randint(15, 40)
                if rng.random() < 0.3
                else gen.lines(rng.randint(5, 60))
            )
        ours = list(base)
        for _ in range(60):
            i = rng.randrange(len(ours))
            ours[i : i + rng.randint(1, 40)] = gen.lines(rng.randint(1, 40))
        theirs = gen.edit(base, 8, 20)
        triples.append((b"".join(base), b"".join(ours), b"".join(theirs)))
    check(repo, triples)
    assert calls["cost-cut"] > 0


def test_no_change_and_one_sided_changes() -> None:
    text = b"a\nb\nc\n"
    assert textmerge.merge(text, text, b"a\nB\nc\n").merged == b"a\nB\nc\n"
    assert textmerge.merge(text, b"a\nb\nc", text).merged == b"a\nb\nc"
    assert textmerge.merge(b"", b"", b"x").merged == b"x"


def test_conflict_regions_are_git_marker_blocks() -> None:
    base = b"".join(b"%d\n" % i for i in range(1, 31))
    ours = base.replace(b"10\n", b"ten\n").replace(b"20\n", b"twenty\n")
    theirs = base.replace(b"10\n", b"TEN\n").replace(b"21\n", b"21!\n")
    result = textmerge.merge(base, ours, theirs, labels=("HEAD", "pick"))
    assert result.merged is None
    # line 10 changed both ways; 20 (ours) and 21 (theirs) touch, so they conflict too
    assert [
        (c.base, c.base_count, c.ours, c.ours_count, c.theirs, c.theirs_count)
        for c in result.conflicts
    ] == [
        (9, 1, 9, 1, 9, 1),
        (19, 2, 19, 2, 19, 2),
    ]
    assert result.rendered.count(b"<<<<<<< HEAD\n") == 2


def test_diff_hunks() -> None:
    assert textmerge.diff_hunks(b"a\nb\nc\n", b"a\nc\nd\n") == [(1, 1, 1, 0), (3, 0, 2, 1)]
    assert textmerge.diff_hunks(b"x", b"x\n") == [(0, 1, 0, 1)]
