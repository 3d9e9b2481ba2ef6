"""Reading git: reproducible decoding, bytes-exact patch-ids, git's own refusals reported."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gitutil import commit_files, git, git_out, init_repo
from tracker.errors import RepositoryError
from tracker.gitio import GitRepo

NAMES = ["José Müller", "Ωμέγα", "日本語の名前", "Zoë 🐧"]


def _history(tmp_path: Path) -> tuple[Path, list[str]]:
    repo = init_repo(tmp_path / "r")
    shas = []
    for i, name in enumerate(NAMES * 3):
        shas.append(
            commit_files(repo, {f"f{i}.c": f"int x{i};\n"}, f"{name}: change {i}\n\nby {name}")
        )
    return repo, shas


@pytest.mark.parametrize("read_size", [1, 2, 3, 5, 7, 64, 1 << 16])
def test_multibyte_characters_survive_every_read_boundary(tmp_path: Path, read_size: int) -> None:
    repo, shas = _history(tmp_path)
    gr = GitRepo(repo)
    gr.read_size = read_size
    entries = list(gr.log(shas[-1]))
    assert [e.sha for e in entries] == shas
    for i, e in enumerate(entries):
        assert "\ufffd" not in e.message
        assert e.subject == f"{NAMES[i % len(NAMES)]}: change {i}"


def test_patch_id_of_a_non_utf8_diff_is_gits_own(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    commit_files(repo, {"latin1.c": b"/* caf\xe9 */\nint a;\n"}, "base")
    sha = commit_files(repo, {"latin1.c": b"/* caf\xe9 cr\xe8me */\nint a;\nint b;\n"}, "edit")
    diff = git(repo, "show", "--format=commit %H", sha).stdout
    expected = git(repo, "patch-id", "--stable", input=diff).stdout.decode().split()[0]
    assert GitRepo(repo).patch_ids([sha]) == {sha: expected}


def _safe_directory_set() -> bool:
    out = subprocess.run(
        ["git", "config", "--get-all", "safe.directory"], capture_output=True, text=True
    ).stdout
    return bool(out.strip())


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a repository to another user needs root")
def test_a_repository_owned_by_another_user_is_reported_as_git_reports_it(
    tmp_path: Path,
) -> None:
    if _safe_directory_set():
        pytest.skip("safe.directory is configured on this machine")
    repo, _ = _history(tmp_path)
    theirs = tmp_path / "theirs"
    shutil.copytree(repo, theirs)
    for root, dirs, files in os.walk(theirs):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, 65534, 65534)
    os.lchown(theirs, 65534, 65534)
    assert git_out(repo, "rev-parse", "HEAD")
    with pytest.raises(RepositoryError, match="dubious ownership") as info:
        GitRepo(theirs).resolve("HEAD")
    assert "safe.directory" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("read_ahead", [1, 512])
def test_a_reader_that_stops_early_leaves_no_thread_or_git_behind(
    tmp_path: Path, read_ahead: int
) -> None:
    import threading

    repo, shas = _history(tmp_path)
    gr = GitRepo(repo)
    gr.read_size, gr.read_ahead = 3, read_ahead
    entries = gr.log(shas[-1])
    assert next(entries).sha == shas[0]
    entries.close()
    assert not [t for t in threading.enumerate() if t.name == "git-read-ahead"]


def test_paths_name_what_each_diff_touches_unquoted(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    odd = 'tab\there "q".c'
    first = commit_files(repo, {"a.c": "int a;\n", "d/b.c": "int b;\n"}, "two files")
    second = commit_files(repo, {odd: "int odd;\n"}, "an odd name")
    got = GitRepo(repo).paths([first, second])
    assert got == {first: ("a.c", "d/b.c"), second: (odd,)}
    assert [e.paths for e in GitRepo(repo).log(second)] == [("a.c", "d/b.c"), (odd,)]
