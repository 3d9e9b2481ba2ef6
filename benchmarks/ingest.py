"""Ingest benchmark: a real public-inbox mirror through tracker's mirror source, beside b4.

By default it clones the sparclinux corpus bundle (``shared/corpus``, 17,891 real messages) into
a temporary inbox, as its README says, and measures, each in a fresh child process so that peak
memory is the measured side's own:

* tracker: ``tracker sync`` of a ``public-inbox-mirror`` source into a new SQLite database
  (read the epoch with one ``git cat-file --batch``, keep each raw mail compressed, parse
  headers, diff, patch-id and trailers, record messages, series and trailers), then the no-op
  resync;
* b4: the same messages, read the same way (not timed), then parsed with b4's own email policy
  and filed with ``LoreMailbox.add_message``, which is what b4 does with a thread.

It prints both rates, their ratio (goal >= 2.0x), peak RSS of each side's process and all its
children together (goal < 300 MB; watched from this process), the no-op resync and what the
corpus became (messages, series, complete versions, patches in no series, Fixes: tags
repaired or still invalid, document errors).

    .venv/bin/python benchmarks/ingest.py [--bundle PATH] [--limit N] [--profile]
    .venv/bin/python benchmarks/ingest.py --generated 20000     # the old synthetic mirror
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUNDLE = Path(__file__).resolve().parents[2] / "shared/corpus/sparclinux-2019-2026.bundle"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _peaks() -> dict[str, float]:
    """This process's own peak RSS (VmHWM)."""
    own = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_mib": own / 1024}


class TreeWatch:
    """Peak memory of a process and every process under it (parse workers, git), watched from
    outside so that watching costs the measured side nothing.

    Two figures, since neither alone is the whole truth: the largest sum of the tree's RSS seen
    at one moment (sampled every 20 ms, so a spike shorter than that can be missed), and the sum
    of every process's own peak (VmHWM, exact per process; an upper bound, since processes do
    not all peak at once)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tree_peak_kib = 0
        self.hwm_kib: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in _tree(self.pid):
                fields = _proc_status(pid)
                if not fields:
                    continue
                total += fields.get("VmRSS", 0)
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), fields.get("VmHWM", 0))
                self.names.setdefault(pid, fields.get("Name", "?"))
            self.tree_peak_kib = max(self.tree_peak_kib, total)
            self._stop.wait(0.02)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        by_name: dict[str, float] = {}
        for pid, kib in self.hwm_kib.items():
            name = str(self.names.get(pid, "?"))
            by_name[name] = max(by_name.get(name, 0.0), kib / 1024)
        return {
            "tree_peak_mib": self.tree_peak_kib / 1024,
            "hwm_sum_mib": sum(self.hwm_kib.values()) / 1024,
            "processes": len(self.hwm_kib),
            "largest_by_name_mib": by_name,
        }


def _proc_status(pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Name":
            out[key] = value.strip()
        elif key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for p in pids:  # grows while it is walked: breadth first
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                pids += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return pids


def make_inbox(work: Path, bundle: Path | None, generated: int | None) -> Path:
    inbox = work / "inbox" / "sparclinux"
    if generated:
        from benchmarks.pimirror_gen import generate

        generate(inbox, generated, 10_000, 1)
        return inbox
    assert bundle is not None
    epoch = inbox / "git" / "0.git"
    epoch.parent.mkdir(parents=True)
    subprocess.run(
        ["git", "clone", "--quiet", "--mirror", str(bundle), str(epoch)],
        check=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    return inbox


def read_all(inbox: Path, limit: int | None) -> list[bytes]:
    from tracker.ingest.pimirror import iter_new_messages

    out: list[bytes] = []
    for m in iter_new_messages(inbox, {}):
        out.append(m.raw)
        if limit and len(out) >= limit:
            break
    return out


def limit_inbox(inbox: Path, limit: int) -> None:
    """Point the epoch's HEAD at its ``limit``-th commit, so tracker reads only those."""
    gitdir = inbox / "git" / "0.git"
    revs = subprocess.run(
        ["git", f"--git-dir={gitdir}", "rev-list", "--reverse", "HEAD"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    if limit < len(revs):
        head = subprocess.run(
            ["git", f"--git-dir={gitdir}", "symbolic-ref", "HEAD"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        subprocess.run(
            ["git", f"--git-dir={gitdir}", "update-ref", head, revs[limit - 1]], check=True
        )


# -- the measuring children ---------------------------------------------------------------------


def measure_b4(inbox: Path) -> dict[str, Any]:
    import email.parser
    import logging
    from email.message import EmailMessage

    import b4

    b4.can_network = False
    # b4 warns on stderr about odd threads; formatting those lines is not parsing work.
    logging.getLogger("b4").setLevel(logging.CRITICAL)
    raws = read_all(inbox, None)
    t0 = time.perf_counter()
    parser = email.parser.BytesParser(policy=b4.emlpolicy, _class=EmailMessage)
    for raw in raws:
        parser.parsebytes(raw)
    parse_only = time.perf_counter() - t0
    t0 = time.perf_counter()
    mailbox = b4.LoreMailbox()
    for raw in raws:
        msg = email.parser.BytesParser(policy=b4.emlpolicy, _class=EmailMessage).parsebytes(raw)
        mailbox.add_message(msg)
    took = time.perf_counter() - t0
    return {"messages": len(raws), "seconds": took, "parse_only_s": parse_only, **_peaks()}


def _config(work: Path, inbox: Path) -> Any:
    from tracker.config import parse_config

    return parse_config(
        {
            "database": {"url": f"sqlite:///{work / 'tracker.db'}"},
            "repositories": [{"name": "l", "path": str(work)}],
            "sources": [{"name": "mirror", "kind": "public-inbox-mirror", "path": str(inbox)}],
        },
        None,
    )


def corpus_figures(work: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(work / "tracker.db")

    def one(sql: str) -> int:
        return int(db.execute(sql).fetchone()[0])

    figures = {
        "messages": one("SELECT count(*) FROM messages"),
        "patches": one("SELECT count(*) FROM messages WHERE kind = 'patch'"),
        "series": one("SELECT count(*) FROM series"),
        "versions": one("SELECT count(*) FROM series_versions"),
        "versions_complete": one("SELECT count(*) FROM series_versions WHERE complete"),
        "patches_in_no_series": one(
            "SELECT count(*) FROM messages WHERE kind = 'patch' AND series_version_id IS NULL"
        ),
        "fixes_tags": one("SELECT count(*) FROM trailers WHERE kind = 'fixes'"),
        "fixes_repaired": one(
            "SELECT count(*) FROM trailers WHERE kind = 'fixes' AND note LIKE '{\"repaired\"%'"
        ),
        "fixes_invalid": one(
            "SELECT count(*) FROM trailers WHERE kind = 'invalid' AND value LIKE 'Fixes:%'"
        ),
        "document_errors": one("SELECT count(*) FROM documents WHERE error IS NOT NULL"),
    }
    db.close()
    return figures


def measure_tracker(work: Path, inbox: Path, profile: bool) -> dict[str, Any]:
    from tracker import usecases

    cfg = _config(work, inbox)
    store = usecases.open_store(cfg)
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    (rep,) = usecases.sync_sources(cfg, store)
    if prof:
        prof.disable()
        prof.dump_stats(work / "ingest.prof")
    took = time.perf_counter() - t0
    peaks = _peaks()
    t0 = time.perf_counter()
    (again,) = usecases.sync_sources(cfg, store)
    noop = time.perf_counter() - t0
    store.close()
    return {
        "messages": rep.counts.messages,
        "documents": rep.counts.documents,
        "errors": len(rep.counts.errors),
        "seconds": took,
        "noop_s": noop,
        "noop_added": again.counts.messages,
        "db_mib": (work / "tracker.db").stat().st_size / 2**20,
        **peaks,
        "corpus": corpus_figures(work),
    }


def run_child(which: str, work: Path, inbox: Path, profile: bool) -> dict[str, Any]:
    out = work / f"{which}.json"
    cmd = [sys.executable, __file__, "--measure", which, "--workdir", str(work)]
    cmd += ["--inbox", str(inbox)] + (["--profile"] if profile else [])
    proc = subprocess.Popen(cmd)
    watch = TreeWatch(proc.pid)
    code = proc.wait()
    tree = watch.stop()
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)
    result: dict[str, Any] = json.loads(out.read_text())
    result["tree"] = tree
    return result


def report(tr: dict[str, Any], b4: dict[str, Any]) -> str:
    ours = tr["messages"] / tr["seconds"]
    theirs = b4["messages"] / b4["seconds"]
    c = tr["corpus"]
    tt = tr["tree"]
    rows = [
        (
            "tracker ingest",
            f"{tr['messages']:,} messages ({tr['documents']:,} documents) in "
            f"{tr['seconds']:.2f} s: {ours:,.0f} messages/s",
        ),
        (
            "b4 parse + add_message",
            f"{b4['messages']:,} messages in {b4['seconds']:.2f} s: {theirs:,.0f} messages/s "
            f"(stdlib parse alone {b4['messages'] / b4['parse_only_s']:,.0f}/s)",
        ),
        ("ratio tracker / b4", f"{ours / theirs:.2f}x (goal >= 2.0x)"),
        (
            "peak RSS tracker",
            f"{tt['tree_peak_mib']:.0f} MiB = {tt['tree_peak_mib'] * 1.048576:.0f} MB "
            "(goal < 300 MB), the process and all its children at once (sampled every 20 ms)",
        ),
        (
            "",
            f"sum of each of its {tt['processes']} processes' own peaks "
            f"{tt['hwm_sum_mib']:.0f} MiB; the main process {tr['rss_mib']:.0f} MiB; largest: "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(tt["largest_by_name_mib"].items())),
        ),
        (
            "peak RSS b4",
            f"{b4['tree']['tree_peak_mib']:.0f} MiB (process and children at once)",
        ),
        ("no-op resync", f"{tr['noop_s'] * 1000:.0f} ms, {tr['noop_added']} messages added"),
        ("database", f"{tr['db_mib']:.1f} MiB"),
        ("document errors", f"{c['document_errors']:,} ({tr['errors']:,} reported by the sync)"),
        (
            "series",
            f"{c['series']:,} series, {c['versions']:,} versions, "
            f"{c['versions_complete']:,} complete",
        ),
        ("patches", f"{c['patches']:,}, {c['patches_in_no_series']:,} in no series"),
        (
            "Fixes: tags",
            f"{c['fixes_tags']:,} read, {c['fixes_repaired']:,} of them repaired; "
            f"{c['fixes_invalid']:,} invalid",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=BUNDLE)
    ap.add_argument("--generated", type=int, default=None, help="a synthetic mirror of N mails")
    ap.add_argument("--limit", type=int, default=None, help="only the first N messages")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--profile", action="store_true", help="cProfile tracker's sync")
    ap.add_argument("--measure", choices=("tracker", "b4"), help=argparse.SUPPRESS)
    ap.add_argument("--inbox", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        work, inbox = args.workdir, args.inbox
        if args.measure == "b4":
            result = measure_b4(inbox)
        else:
            result = measure_tracker(work, inbox, args.profile)
        (work / f"{args.measure}.json").write_text(json.dumps(result, indent=2))
        return
    if not args.generated and not args.bundle.exists():
        sys.exit(f"no corpus bundle at {args.bundle} (give --bundle, or --generated N)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        inbox = make_inbox(work, args.bundle, args.generated)
        if args.limit:
            limit_inbox(inbox, args.limit)
        b4 = run_child("b4", work, inbox, False)
        tr = run_child("tracker", work, inbox, args.profile)
        print(report(tr, b4))
        (work / "figures.json").write_text(json.dumps({"tracker": tr, "b4": b4}, indent=2))
        if args.profile:
            buf = io.StringIO()
            pstats.Stats(str(work / "ingest.prof"), stream=buf).sort_stats("tottime").print_stats(
                25
            )
            print(buf.getvalue())
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
