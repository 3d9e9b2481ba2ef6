"""Configuration: the example documents every key, lookup order, and errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tracker.config import DEFAULT_TOPICS, SCHEMA, find_config, load_config, parse_config
from tracker.errors import ConfigError, ConfigWarning
from tracker.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "config.example.toml"


def test_example_is_loadable() -> None:
    cfg = load_config(EXAMPLE)
    assert [b.name for b in cfg.branches] == ["linux-6.12.y", "linux-6.6.y", "linux-6.1.y"]
    assert cfg.branch("linux-6.6.y").stable_tag_pattern == r"^v6\.6\.\d+$"
    assert cfg.branch("linux-6.6.y").version == "6.6"
    assert [t.name for t in cfg.topics] == [t.name for t in DEFAULT_TOPICS]


def test_example_documents_every_key() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    text = EXAMPLE.read_text()
    for table, keys in SCHEMA.items():
        assert table in data, f"[{table}] missing from the example"
        section = data[table][0] if isinstance(data[table], list) else data[table]
        for key in keys:
            assert key in section, f"{table}.{key} missing from the example"
            line = next(
                i for i, line in enumerate(text.splitlines()) if line.strip().startswith(f"{key} =")
            )
            assert text.splitlines()[line - 1].lstrip().startswith("#") or key == "name", (
                f"{table}.{key} has no comment above it"
            )


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env, local, xdg = (tmp_path / n for n in ("e.toml", "env.toml", "w", "x"))
    for p in (explicit, env):
        p.write_text("")
    local.mkdir()
    (local / "tracker.toml").write_text("")
    (xdg / "tracker").mkdir(parents=True)
    (xdg / "tracker" / "config.toml").write_text("")
    monkeypatch.chdir(local)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.setenv("TRACKER_CONFIG", str(env))
    assert find_config(explicit) == explicit
    assert find_config(None) == env
    monkeypatch.delenv("TRACKER_CONFIG")
    assert find_config(None) == Path("tracker.toml")
    (local / "tracker.toml").unlink()
    assert find_config(None) == xdg / "tracker" / "config.toml"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({}, "repositories"),
        ({"repositories": [{"name": "l", "path": "."}], "colour": 1}, "key 'colour'"),
        (
            {"repositories": [{"name": "l", "path": "."}], "branches": [{"name": "b"}]},
            "branches[0].base",
        ),
        (
            {
                "repositories": [{"name": "l", "path": "."}],
                "mainline": {"release_tag_pattern": "(["},
            },
            "invalid regular expression",
        ),
        (
            {
                "repositories": [{"name": "l", "path": "."}],
                "trailers": {"upstream": ["^commit ([0-9a-f]{40})"]},
            },
            "(?P<sha>",
        ),
        (
            {
                "repositories": [{"name": "l", "path": "."}],
                "sources": [{"name": "s", "kind": "ftp", "url": "x"}],
            },
            "unknown source kind",
        ),
        (
            {
                "repositories": [{"name": "l", "path": "."}],
                "branches": [{"name": "b", "base": "v1", "repository": "x"}],
            },
            "no configured repo",
        ),
    ],
)
def test_errors_name_file_and_key(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, Path("/etc/tracker.toml"))
    assert "/etc/tracker.toml" in str(exc.value)
    assert needle in str(exc.value)


def test_other_project_trailer_style() -> None:
    cfg = parse_config(
        {
            "repositories": [{"name": "p", "path": "."}],
            "mainline": {"ref": "main", "release_tag_pattern": r"^release-\d+\.\d+$"},
            "trailers": {"upstream": [r"^\[ upstream commit (?P<sha>[0-9a-f]{40}) \]$"]},
            "branches": [{"name": "stable-2.4", "base": "release-2.4", "ref": "stable/2.4"}],
        },
        None,
    )
    assert cfg.mainline.ref == "main"
    assert cfg.branch("stable-2.4").ref == "stable/2.4"
    assert cfg.branch("stable-2.4").version == "2.4"


def test_no_topics_warns_once_and_names_the_defaults() -> None:
    data = {"repositories": [{"name": "p", "path": "."}], "mainline": {"repository": "p"}}
    with pytest.warns(ConfigWarning, match=r"no \[\[topics\]\].*lazy-mmu") as seen:
        cfg = parse_config(data, Path("/etc/tracker.toml"))
    assert len(seen) == 1 and "/etc/tracker.toml" in str(seen[0].message)
    assert cfg.topics == DEFAULT_TOPICS


def test_an_all_paths_topic_takes_every_commit() -> None:
    from tracker.topics import TopicClassifier

    data = {
        "repositories": [{"name": "p", "path": "."}],
        "topics": [{"name": "all", "paths": ["*"]}],
    }
    cfg = parse_config(data, None)
    classify = TopicClassifier(cfg.topics).classify
    assert [m.topic for m in classify("net: x", "", ["drivers/net/a/b.c"])] == ["all"]
    assert [m.topic for m in classify("doc", "", [".mailmap"])] == ["all"]
    assert classify("empty merge", "", []) == []


def test_stable_list_is_configurable_and_checked() -> None:
    base = {
        "repositories": [{"name": "p", "path": "."}],
        "topics": [{"name": "all", "paths": ["*"]}],
    }
    cfg = parse_config({**base, "trailers": {"stable_list": r"stable@dpdk\.org"}}, None)
    assert cfg.stable_list == r"stable@dpdk\.org"
    with pytest.raises(ConfigError, match="stable_list"):
        parse_config({**base, "trailers": {"stable_list": "stable@(dpdk"}}, None)
