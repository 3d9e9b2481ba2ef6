"""Write a synthetic public-inbox v2 mirror of realistic patch mail, then time reading it.

    .venv/bin/python benchmarks/pimirror_gen.py /tmp/mirror            # 20,000 messages
    .venv/bin/python benchmarks/pimirror_gen.py /tmp/mirror -n 200000 --per-epoch 50000

Messages are threads of patch series (cover letter, patches with diffstat and diff, trailers
such as Fixes:/Cc: stable/Link:) and replies with quoted hunks and review trailers, written one
commit per message with ``git fast-import`` (one process per epoch), as public-inbox does.
The read figure is ``tracker.ingest.pimirror.iter_new_messages`` over the whole mirror.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracker.ingest.pimirror import iter_new_messages

SUBSYSTEMS = ("mm", "sparc/mm", "x86/mm", "net", "fs/proc", "drm/amd", "usb", "arm64", "sched")
VERBS = ("fix", "avoid", "handle", "drop", "add missing", "use", "restore", "check")
NOUNS = ("lazy mmu mode", "refcount leak", "NULL deref", "race in teardown", "TLB flush",
         "overflow in size calc", "lock ordering", "error path", "stale pointer")  # fmt: skip
PEOPLE = tuple(
    (f"{first} {last}", f"{first.lower()}.{last.lower()}@example.org")
    for first in ("Ryan", "David", "Andreas", "Juergen", "Lorenzo", "Harry", "Oscar", "Rik")
    for last in ("Roberts", "Larsson", "Gross", "Stoakes", "Yoo", "Salvador", "Riel")
)
WORDS = ("the", "page", "table", "is", "not", "held", "when", "we", "call", "into", "arch",
         "code", "which", "may", "sleep", "so", "preemption", "must", "be", "disabled")  # fmt: skip
START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def tick(self, rng: random.Random) -> datetime:
        self.now += timedelta(seconds=rng.randint(1, 600))
        return self.now


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(2, 6)):
        lines.append(sentence(rng, rng.randint(6, 11)))
    return "\n".join(lines)


def diff(rng: random.Random, path: str) -> str:
    hunks = []
    line = rng.randint(10, 2000)
    for _ in range(rng.randint(2, 6)):
        ctx = [f" \t{sentence(rng, 4)}" for _ in range(3)]
        minus = [f"-\t{sentence(rng, 5)}" for _ in range(rng.randint(0, 4))]
        plus = [f"+\t{sentence(rng, 5)}" for _ in range(rng.randint(1, 6))]
        body = ctx + minus + plus + ctx
        hunks.append(f"@@ -{line},{6 + len(minus)} +{line},{6 + len(plus)} @@\n" + "\n".join(body))
        line += rng.randint(40, 400)
    blob_a, blob_b = f"{rng.getrandbits(48):012x}", f"{rng.getrandbits(48):012x}"
    return (
        f"diff --git a/{path} b/{path}\nindex {blob_a}..{blob_b} 100644\n"
        f"--- a/{path}\n+++ b/{path}\n" + "\n".join(hunks) + "\n"
    )


def headers(subject: str, who: tuple[str, str], when: datetime, msgid: str, irt: str | None) -> str:
    out = [
        f"From: {who[0]} <{who[1]}>",
        "To: linux-mm@kvack.org",
        "Cc: linux-kernel@vger.kernel.org, stable@vger.kernel.org",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{msgid}>",
    ]
    if irt:
        out += [f"In-Reply-To: <{irt}>", f"References: <{irt}>"]
    out += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "X-Mailer: gen"]
    return "\n".join(out) + "\n\n"


def series(rng: random.Random, clock: Clock, serial: int) -> Iterator[tuple[str, bytes]]:
    """One posting (cover + patches) and its replies: (subject, raw mail) pairs."""
    author = rng.choice(PEOPLE)
    count = rng.randint(1, 6)
    rev = rng.randint(1, 3)
    title = f"{rng.choice(SUBSYSTEMS)}: {rng.choice(VERBS)} {rng.choice(NOUNS)}"
    base = f"{serial:08d}.{rng.getrandbits(24):06x}"
    cover_id = f"{base}-0-{author[1]}"
    ids = []
    prefix = f"PATCH v{rev}" if rev > 1 else "PATCH"
    if count > 1:
        subject = f"[{prefix} 0/{count}] {title}"
        body = (
            paragraph(rng)
            + f"\n\n{author[0]} ({count}):\n"
            + "\n".join(f"  patch {i}" for i in range(1, count + 1))
        )
        when = clock.tick(rng)
        yield subject, (headers(subject, author, when, cover_id, None) + body + "\n").encode()
    for i in range(1, count + 1):
        msgid = f"{base}-{i}-{author[1]}"
        ids.append(msgid)
        counter = f" {i}/{count}" if count > 1 else ""
        subject = f"[{prefix}{counter}] {title} part {i}"
        path = f"{rng.choice(SUBSYSTEMS).split('/')[0]}/{rng.choice(NOUNS).split()[0]}.c"
        fix = f"{rng.getrandbits(48):012x}"
        body = (
            f"{paragraph(rng)}\n\n{paragraph(rng)}\n\n{paragraph(rng)}\n\n"
            f'Fixes: {fix} ("{rng.choice(SUBSYSTEMS)}: {rng.choice(NOUNS)}")\n'
            "Cc: stable@vger.kernel.org\n"
            f"Link: https://lore.kernel.org/r/{msgid}\n"
            f"Signed-off-by: {author[0]} <{author[1]}>\n---\n"
            f" {path} | 12 ++++++++----\n 1 file changed, 8 insertions(+), 4 deletions(-)\n\n"
            f"{diff(rng, path)}-- \n2.43.0\n"
        )
        irt = cover_id if count > 1 else None
        yield subject, (headers(subject, author, clock.tick(rng), msgid, irt) + body).encode()
    for _ in range(rng.randint(0, count + 1)):
        target = rng.choice(ids)
        who = rng.choice(PEOPLE)
        quote = "\n".join("> " + sentence(rng, 8) for _ in range(rng.randint(3, 15)))
        body = f"{quote}\n\n{paragraph(rng)}\n\nReviewed-by: {who[0]} <{who[1]}>\n"
        subject = f"Re: [{prefix}] {title}"
        reply_id = f"{base}-r{rng.getrandbits(32):08x}-{who[1]}"
        yield subject, (headers(subject, who, clock.tick(rng), reply_id, target) + body).encode()


def messages(total: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    clock = Clock()
    produced = 0
    serial = 0
    while True:
        serial += 1
        for item in series(rng, clock, serial):
            yield item
            produced += 1
            if produced == total:
                return


def write_epoch(gitdir: Path, batch: list[tuple[str, bytes]], start: int) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(gitdir)], check=True)
    proc = subprocess.Popen(
        ["git", f"--git-dir={gitdir}", "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    for offset, (subject, raw) in enumerate(batch):
        when = int(START.timestamp()) + start + offset
        msg = subject.encode()
        proc.stdin.write(
            b"commit refs/heads/master\n"
            b"author gen <gen@example.org> %d +0000\n"
            b"committer public-inbox <pi@example.org> %d +0000\n"
            b"data %d\n%s\n"
            b"M 100644 inline m\ndata %d\n%s\n\n" % (when, when, len(msg), msg, len(raw), raw)
        )
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"git fast-import failed for {gitdir}")


def generate(out: Path, total: int, per_epoch: int, seed: int) -> float:
    if out.exists():
        shutil.rmtree(out)
    (out / "git").mkdir(parents=True)
    began = time.perf_counter()
    batch: list[tuple[str, bytes]] = []
    epoch = 0
    for item in messages(total, seed):
        batch.append(item)
        if len(batch) == per_epoch:
            write_epoch(out / "git" / f"{epoch}.git", batch, epoch * per_epoch)
            batch, epoch = [], epoch + 1
    if batch:
        write_epoch(out / "git" / f"{epoch}.git", batch, epoch * per_epoch)
    return time.perf_counter() - began


def measure(out: Path) -> dict[str, float]:
    began = time.perf_counter()
    scan = iter_new_messages(out, {})
    count = 0
    size = 0
    for message in scan:
        count += 1
        size += len(message.raw)
    elapsed = time.perf_counter() - began
    again = time.perf_counter()
    rescan = iter_new_messages(out, scan.cursors)
    nothing = sum(1 for _ in rescan)
    idle = time.perf_counter() - again
    return {
        "messages": count,
        "bytes": size,
        "seconds": elapsed,
        "rate": count / elapsed if elapsed else 0.0,
        "mib_per_s": size / elapsed / 2**20 if elapsed else 0.0,
        "rescan_seconds": idle,
        "rescan_messages": nothing,
        "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="inbox directory to (re)create")
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--per-epoch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--read-only", action="store_true", help="only time reading an existing mirror"
    )
    args = parser.parse_args()
    if not args.read_only:
        # Note: git children's peak RSS then includes fast-import; use --read-only to isolate.
        written = generate(args.out, args.messages, args.per_epoch, args.seed)
        print(f"wrote {args.messages} messages to {args.out} in {written:.2f} s")
    stats = measure(args.out)
    print(
        "read {messages:.0f} messages ({mib:.1f} MiB) in {seconds:.2f} s: {rate:,.0f} msg/s, "
        "{mib_per_s:.1f} MiB/s; no-op rescan {rescan_seconds:.3f} s "
        "({rescan_messages:.0f} new); peak RSS {rss_self_mib:.0f} MiB (python), "
        "{rss_children_mib:.0f} MiB (largest git child)".format(mib=stats["bytes"] / 2**20, **stats)
    )


if __name__ == "__main__":
    main()
