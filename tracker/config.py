"""TOML configuration -> frozen dataclasses.

Lookup order: an explicit path (``--config``), ``$TRACKER_CONFIG``, ``./tracker.toml``, then
``$XDG_CONFIG_HOME/tracker/config.toml``. Every error names the file, the key and the problem.
Kernel-specific values live only in the defaults here, so other projects can describe their own
branches, tags and trailer styles.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.errors import ConfigError, ConfigWarning
from tracker.parse.trailers import DEFAULT_STABLE_LIST, DEFAULT_UPSTREAM_PATTERNS

SOURCE_KINDS = (
    "lore-thread",
    "lore-search",
    "public-inbox-atom",
    "public-inbox-mirror",
    "cgit-atom",
    "mbox",
    "maildir",
    "archive-text",
    "stable-queue",
)

# A stable-queue directory is one path component: never an option, never a walk up the tree.
_QUEUE_DIR_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")


# Every table and the keys it accepts; config.example.toml must document each one (a test checks).
SCHEMA: dict[str, set[str]] = {
    "database": {"url", "busy_timeout"},
    "repositories": {"name", "path", "remote"},
    "mainline": {"repository", "ref", "release_tag_pattern"},
    "branches": {"name", "base", "repository", "ref", "stable_tag_pattern", "version"},
    "topics": {"name", "paths", "symbols", "keywords"},
    "sources": {"name", "kind", "url", "path", "list", "query", "queues"},
    "trailers": {"upstream", "stable_list"},
    "templates": {"dir"},
    "email": {"from", "to", "cc", "smtp_server", "smtp_port"},
    "dashboard": {"out", "title"},
    "http": {"timeout", "retries", "max_bytes", "concurrency"},
    "check": {
        "prerequisites",
        "max_prerequisites",
        "max_prerequisite_lines",
        "step_budget",
        "run_budget",
    },
}

PREREQUISITE_MODES = ("off", "bounded", "full")


@dataclass(frozen=True)
class RepositoryConfig:
    name: str
    path: Path
    remote: str | None = None


@dataclass(frozen=True)
class MainlineConfig:
    repository: str
    ref: str = "master"
    release_tag_pattern: str = r"^v\d+\.\d+$"


@dataclass(frozen=True)
class BranchConfig:
    name: str
    base: str
    repository: str
    ref: str
    stable_tag_pattern: str
    version: str


@dataclass(frozen=True)
class TopicConfig:
    name: str
    paths: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    url: str | None = None
    path: Path | None = None
    list: str | None = None
    query: str | None = None
    # stable-queue: (branch name, queue directory) for every configured branch; the default
    # directory is queue-<version>, a ``queues`` table overrides it per branch.
    queues: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EmailConfig:
    from_address: str = "tracker <tracker@localhost>"
    to: tuple[str, ...] = ("stable@vger.kernel.org",)
    cc: tuple[str, ...] = ()
    smtp_server: str | None = None
    smtp_port: int = 587


@dataclass(frozen=True)
class DashboardConfig:
    out: Path | None = None
    title: str = "tracker: backport status"


@dataclass(frozen=True)
class HttpConfig:
    timeout: float = 30.0
    retries: int = 3
    max_bytes: int = 200 * 1024 * 1024
    concurrency: int = 4


@dataclass(frozen=True)
class CheckConfig:
    """``tracker check``'s prerequisite search (see the README's "Will it apply?").

    A maintainer takes a prerequisite when it is a short, self-contained upstream commit; the
    defaults (3 commits of at most 200 changed lines each) match the stable rules' spirit of
    small, obviously correct patches. Budgets are seconds of search (0: no limit).
    """

    prerequisites: str = "bounded"
    max_prerequisites: int = 3
    max_prerequisite_lines: int = 200
    step_budget: float = 5.0
    run_budget: float = 120.0


@dataclass(frozen=True)
class Config:
    path: Path | None
    database_url: str
    repositories: Mapping[str, RepositoryConfig]
    mainline: MainlineConfig
    branches: tuple[BranchConfig, ...]
    topics: tuple[TopicConfig, ...]
    sources: tuple[SourceConfig, ...] = ()
    upstream_patterns: tuple[str, ...] = DEFAULT_UPSTREAM_PATTERNS
    # Regex for the stable list's address in `Cc: <address> # note` trailers.
    stable_list: str = DEFAULT_STABLE_LIST
    templates_dir: Path | None = None
    email: EmailConfig = field(default_factory=EmailConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    # Seconds a command waits for another process's write lock before it gives up (exit 9).
    busy_timeout: float = 30.0
    check: CheckConfig = field(default_factory=CheckConfig)

    def branch(self, name: str) -> BranchConfig:
        for b in self.branches:
            if b.name == name:
                return b
        from tracker.errors import UnknownBranchError

        known = ", ".join(b.name for b in self.branches) or "none configured"
        raise UnknownBranchError(f"unknown branch '{name}' (configured: {known})")

    def topic(self, name: str) -> TopicConfig:
        for t in self.topics:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.topics)
        raise ConfigError(f"unknown topic '{name}' (configured: {known})", path=str(self.path))


DEFAULT_TOPICS: tuple[TopicConfig, ...] = (
    TopicConfig(
        name="lazy-mmu",
        paths=(),
        symbols=("arch_enter_lazy_mmu_mode", "arch_leave_lazy_mmu_mode", "lazy_mmu_mode"),
        keywords=("lazy mmu", "lazy_mmu", "lazy-mmu"),
    ),
    TopicConfig(
        name="mmu_gather",
        paths=("mm/mmu_gather.c", "include/asm-generic/tlb.h", "arch/*/include/asm/tlb.h"),
        symbols=("tlb_gather_mmu", "tlb_finish_mmu", "tlb_remove_table", "tlb_flush_mmu"),
        keywords=("mmu_gather", "mmu gather", "tlb flush", "asm-generic/tlb"),
    ),
    TopicConfig(
        name="hugetlb",
        paths=("mm/hugetlb.c", "mm/hugetlb_*.c", "include/linux/hugetlb.h", "fs/hugetlbfs/*"),
        symbols=("huge_pmd_unshare", "huge_pmd_share", "hugetlb_pmd_shared"),
        keywords=("hugetlb", "huge pmd", "hugepage"),
    ),
)


def xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_database_url() -> str:
    return f"sqlite:///{xdg_data_home() / 'tracker' / 'tracker.db'}"


def find_config(explicit: str | Path | None) -> Path | None:
    """The config file to use, or None when there is none anywhere (callers decide if that's ok)."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError("file not found", path=str(p))
        return p
    env = os.environ.get("TRACKER_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError("file named by $TRACKER_CONFIG not found", path=str(p))
        return p
    for cand in (Path("tracker.toml"), xdg_config_home() / "tracker" / "config.toml"):
        if cand.is_file():
            return cand
    return None


def load_config(explicit: str | Path | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        raise ConfigError(
            "no configuration found (tried --config, $TRACKER_CONFIG, ./tracker.toml, "
            f"{xdg_config_home() / 'tracker' / 'config.toml'}); run 'tracker init'"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    return parse_config(data, path)


class _Reader:
    """Typed access to one TOML table, so every error carries the file and full key path."""

    def __init__(self, data: Mapping[str, Any], path: Path | None, prefix: str) -> None:
        self.data = data
        self.path = path
        self.prefix = prefix

    def err(self, key: str, problem: str) -> ConfigError:
        full = f"{self.prefix}.{key}" if self.prefix else key
        return ConfigError(problem, path=str(self.path) if self.path else None, key=full)

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.err(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def opt(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if key not in self.data:
            if required:
                raise self.err(key, "missing required key")
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.err(key, f"expected a non-empty string, got {value!r}")
        return value

    def req(self, key: str) -> str:
        value = self.opt(key, required=True)
        assert value is not None
        return value

    def strs(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.err(key, "expected a list of strings")
        return tuple(value)

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.err(key, f"expected a non-negative number, got {value!r}")
        return float(value)

    def table(self, key: str) -> _Reader:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.err(key, "expected a table")
        return _Reader(value, self.path, f"{self.prefix}.{key}" if self.prefix else key)

    def tables(self, key: str) -> list[_Reader]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.err(key, "expected an array of tables ([[" + key + "]])")
        return [_Reader(v, self.path, f"{key}[{i}]") for i, v in enumerate(value)]


def _regex(r: _Reader, key: str, value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise r.err(key, f"invalid regular expression {value!r}: {exc}") from None
    return value


def _resolve(base: Path | None, value: str) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base.parent / p
    return p


def _sqlite_relative_to(config_path: Path | None, url: str) -> str:
    """A relative SQLite file is relative to the config file, never to the working directory.

    cron runs from $HOME: resolving against the working directory would silently open (and
    create) an empty database there.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + ":memory:"):
        return url
    raw, sep, query = url.removeprefix(prefix).partition("?")
    if not raw or raw.startswith("/"):
        return url
    resolved = _resolve(config_path, raw)
    if not resolved.is_absolute():
        resolved = resolved.resolve()
    return f"{prefix}{resolved}{sep}{query}"


def _default_topics(path: Path | None) -> tuple[TopicConfig, ...]:
    names = ", ".join(t.name for t in DEFAULT_TOPICS)
    warnings.warn(
        f"{path or '<config>'}: no [[topics]]: watching the kernel defaults ({names}); "
        'add [[topics]] (paths = ["*"] watches every path) to choose',
        ConfigWarning,
        stacklevel=3,
    )
    return DEFAULT_TOPICS


def parse_config(data: Mapping[str, Any], path: Path | None) -> Config:
    top = _Reader(data, path, "")
    top.check_keys(set(SCHEMA))
    db = top.table("database")
    db.check_keys(SCHEMA["database"])
    database_url = _sqlite_relative_to(path, db.opt("url") or default_database_url())

    repos: dict[str, RepositoryConfig] = {}
    for r in top.tables("repositories"):
        r.check_keys(SCHEMA["repositories"])
        name = r.req("name")
        if name in repos:
            raise r.err("name", f"duplicate repository name '{name}'")
        repos[name] = RepositoryConfig(
            name=name, path=_resolve(path, r.req("path")), remote=r.opt("remote")
        )
    if not repos:
        raise top.err("repositories", "at least one [[repositories]] entry is required")

    ml = top.table("mainline")
    ml.check_keys(SCHEMA["mainline"])
    ml_repo = ml.opt("repository") or next(iter(repos))
    if ml_repo not in repos:
        raise ml.err("repository", f"names no configured repository: '{ml_repo}'")
    mainline = MainlineConfig(
        repository=ml_repo,
        ref=ml.opt("ref", "master") or "master",
        release_tag_pattern=_regex(
            ml, "release_tag_pattern", ml.opt("release_tag_pattern", r"^v\d+\.\d+$") or ""
        ),
    )

    branches: list[BranchConfig] = []
    for b in top.tables("branches"):
        b.check_keys(SCHEMA["branches"])
        name = b.req("name")
        if any(x.name == name for x in branches):
            raise b.err("name", f"duplicate branch '{name}'")
        repo = b.opt("repository") or ml_repo
        if repo not in repos:
            raise b.err("repository", f"names no configured repository: '{repo}'")
        base = b.req("base")
        version = b.opt("version") or _version_from(base) or name
        default_pat = r"^" + re.escape(base) + r"\.\d+$"
        branches.append(
            BranchConfig(
                name=name,
                base=base,
                repository=repo,
                ref=b.opt("ref") or name,
                stable_tag_pattern=_regex(
                    b, "stable_tag_pattern", b.opt("stable_tag_pattern", default_pat) or ""
                ),
                version=version,
            )
        )

    topics: list[TopicConfig] = []
    for t in top.tables("topics"):
        t.check_keys(SCHEMA["topics"])
        topics.append(
            TopicConfig(
                name=t.req("name"),
                paths=t.strs("paths"),
                symbols=t.strs("symbols"),
                keywords=t.strs("keywords"),
            )
        )

    sources: list[SourceConfig] = []
    for s in top.tables("sources"):
        s.check_keys(SCHEMA["sources"])
        kind = s.req("kind")
        if kind not in SOURCE_KINDS:
            raise s.err(
                "kind", f"unknown source kind '{kind}' (expected: {', '.join(SOURCE_KINDS)})"
            )
        url, spath = s.opt("url"), s.opt("path")
        if not url and not spath:
            raise s.err("url", "a source needs 'url' or 'path'")
        if kind == "stable-queue" and not spath:
            raise s.err("path", "a stable-queue source needs 'path' (a local clone)")
        sources.append(
            SourceConfig(
                name=s.req("name"),
                kind=kind,
                url=url,
                path=_resolve(path, spath) if spath else None,
                list=s.opt("list"),
                query=s.opt("query"),
                queues=_queues(s, kind, branches),
            )
        )

    tr = top.table("trailers")
    tr.check_keys(SCHEMA["trailers"])
    upstream = tr.strs("upstream", DEFAULT_UPSTREAM_PATTERNS)
    for i, pat in enumerate(upstream):
        _regex(tr, f"upstream[{i}]", pat)
        if "(?P<sha>" not in pat:
            raise tr.err(f"upstream[{i}]", "pattern must have a named group (?P<sha>...)")
    stable_list = tr.opt("stable_list") or DEFAULT_STABLE_LIST
    _regex(tr, "stable_list", stable_list)

    tpl = top.table("templates")
    tpl.check_keys(SCHEMA["templates"])
    tdir = tpl.opt("dir")

    em = top.table("email")
    em.check_keys(SCHEMA["email"])
    email = EmailConfig(
        from_address=em.opt("from", EmailConfig.from_address) or EmailConfig.from_address,
        to=em.strs("to", EmailConfig.to),
        cc=em.strs("cc"),
        smtp_server=em.opt("smtp_server"),
        smtp_port=int(em.number("smtp_port", 587)),
    )

    dash = top.table("dashboard")
    dash.check_keys(SCHEMA["dashboard"])
    dout = dash.opt("out")
    dashboard = DashboardConfig(
        out=_resolve(path, dout) if dout else None,
        title=dash.opt("title", DashboardConfig.title) or DashboardConfig.title,
    )

    ht = top.table("http")
    ht.check_keys(SCHEMA["http"])
    http = HttpConfig(
        timeout=ht.number("timeout", 30.0),
        retries=int(ht.number("retries", 3)),
        max_bytes=int(ht.number("max_bytes", 200 * 1024 * 1024)),
        concurrency=max(1, int(ht.number("concurrency", 4))),
    )

    ck = top.table("check")
    ck.check_keys(SCHEMA["check"])
    mode = ck.opt("prerequisites", "bounded") or "bounded"
    if mode not in PREREQUISITE_MODES:
        raise ck.err("prerequisites", f"expected one of {', '.join(PREREQUISITE_MODES)}")
    check = CheckConfig(
        prerequisites=mode,
        max_prerequisites=max(1, int(ck.number("max_prerequisites", 3))),
        max_prerequisite_lines=max(1, int(ck.number("max_prerequisite_lines", 200))),
        step_budget=ck.number("step_budget", 5.0),
        run_budget=ck.number("run_budget", 120.0),
    )

    return Config(
        path=path,
        database_url=database_url,
        repositories=repos,
        mainline=mainline,
        branches=tuple(branches),
        topics=tuple(topics) if "topics" in data else _default_topics(path),
        sources=tuple(sources),
        upstream_patterns=upstream,
        stable_list=stable_list,
        templates_dir=_resolve(path, tdir) if tdir else None,
        email=email,
        dashboard=dashboard,
        http=http,
        busy_timeout=db.number("busy_timeout", 30.0),
        check=check,
    )


def _queues(r: _Reader, kind: str, branches: list[BranchConfig]) -> tuple[tuple[str, str], ...]:
    """Branch -> stable-queue directory: ``queue-<version>`` unless ``queues`` says otherwise."""
    given = r.data.get("queues", {})
    if not isinstance(given, dict):
        raise r.err("queues", 'expected a table of branch = "queue-X.Y"')
    names = {b.name for b in branches}
    for branch, directory in given.items():
        if branch not in names:
            known = ", ".join(sorted(names)) or "none configured"
            raise r.err(f"queues.{branch}", f"names no configured branch (configured: {known})")
        if not isinstance(directory, str) or not _QUEUE_DIR_RE.match(directory):
            raise r.err(
                f"queues.{branch}",
                f"expected a directory name of the clone such as 'queue-6.12', got {directory!r}",
            )
    if kind != "stable-queue":
        return ()  # checked all the same: a typo should not wait for the kind to change
    return tuple((b.name, str(given.get(b.name, f"queue-{b.version}"))) for b in branches)


def _version_from(tag: str) -> str | None:
    m = re.search(r"(\d+\.\d+)", tag)
    return m.group(1) if m else None
