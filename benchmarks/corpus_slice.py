"""Cut a few real threads out of a public-inbox epoch into a small bundle for the tests.

The result is itself a public-inbox v2 epoch (one commit per message, blob ``m``, in the
corpus' archive order, authors and dates kept), so tests clone it exactly as they would the whole
corpus. Run by hand when the test data must change:

``.venv/bin/python benchmarks/corpus_slice.py CORPUS.bundle \
 tests/data/corpus/sparclinux-slice.bundle``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

# Subjects kept (the first match of each Message-ID in archive order): "Fix lazy mmu mode" v1
# and v2 with the replies acking v1 2/4 and v2's cover, the six "Nesting support for lazy MMU
# mode" covers, "MVME: Adopt standard RTC driver" v2..v4, whose v3 1/2 was archived before
# its cover, Miaoqian Lin's three leak fixes threaded under 2/3, and "close-on-fork" v1 (a cover
# without any tag) and v2 (a "[PATCH v2]" cover without 0/N), and the v4 and v5 covers of a
# series renamed between them (one b4 change-id).
KEEP = (
    "[PATCH v1 0/4] Fix lazy mmu mode",
    "[PATCH v1 1/4] mm: Fix lazy mmu docs and usage",
    "[PATCH v1 2/4] sparc/mm: Disable preemption in lazy mmu mode",
    "[PATCH v1 3/4] sparc/mm: Avoid calling arch_enter/leave_lazy_mmu() in set_ptes",
    '[PATCH v1 4/4] Revert "x86/xen: allow nesting of same lazy mode"',
    "Re: [PATCH v1 2/4] sparc/mm: Disable preemption in lazy mmu mode",
    "[PATCH v2 0/5] Fix lazy mmu mode",
    "[PATCH v2 1/5] mm: Fix lazy mmu docs and usage",
    "[PATCH v2 2/5] fs/proc/task_mmu: Reduce scope of lazy mmu region",
    "[PATCH v2 3/5] sparc/mm: Disable preemption in lazy mmu mode",
    "[PATCH v2 4/5] sparc/mm: Avoid calling arch_enter/leave_lazy_mmu() in set_ptes",
    '[PATCH v2 5/5] Revert "x86/xen: allow nesting of same lazy mode"',
    "Nesting support for lazy MMU mode",
    "MVME: Adopt standard RTC driver",
    "rtc: m48t59: Use platform_data struct for year offset value",
    "Fix reference leak in scan_of_devices",
    "Fix reference leak in of_console_init",
    "Fix reference leak in jbusmc_probe",
    "Implement close-on-fork",
    "[PATCH v4 0/3] fs: introduce getfsxattrat and setfsxattrat syscalls",
    "[PATCH v5 0/7] fs: introduce file_getattr and file_setattr syscalls",
)
# Replies only where they carry what the tests check (the two acks of v1 2/4, the ack on v2's
# cover); other replies would only make the data bigger.
REPLY_AUTHORS = ("david@redhat.com", "andreas@gaisler.com", "jgross@suse.com")


def _git(gitdir: Path, *args: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["git", f"--git-dir={gitdir}", *args], input=data, capture_output=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _wanted(subject: str, email: str) -> bool:
    subject = " ".join(subject.split())  # commit subjects keep the mail's folding spaces
    if subject[:3].lower() == "re:":
        if email not in REPLY_AUTHORS:
            return False
        return any(subject == k for k in KEEP if k.startswith("Re:")) or subject.endswith(
            "[PATCH v2 0/5] Fix lazy mmu mode"
        )
    return any(k in subject for k in KEEP if not k.startswith("Re:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.git"
        subprocess.run(["git", "clone", "-q", "--mirror", str(args.corpus), str(src)], check=True)
        log = _git(src, "log", "--reverse", "--format=%H%x00%an%x00%ae%x00%ad%x00%s", "--date=raw")
        stream: list[bytes] = []
        seen: set[str] = set()
        n = 0
        for line in log.decode("utf-8", "replace").splitlines():
            sha, name, email, date, subject = line.split("\0")
            if not _wanted(subject, email):
                continue
            raw = _git(src, "cat-file", "blob", f"{sha}:m")
            msgid = next(
                (ln for ln in raw.split(b"\n") if ln.lower().startswith(b"message-id:")), b""
            )
            if msgid in seen:
                continue  # a second delivery of one message: kept once
            seen.add(msgid)
            n += 1
            msg = subject.encode()
            name = "".join(ch for ch in name if ch not in "<>\n") or email
            stream += [
                b"blob\nmark :%d\ndata %d\n" % (2 * n, len(raw)),
                raw,
                b"\ncommit refs/heads/master\nmark :%d\n" % (2 * n + 1),
                f"author {name} <{email}> {date}\ncommitter {name} <{email}> {date}\n".encode(),
                b"data %d\n" % len(msg),
                msg,
                b"\n" + (b"from :%d\n" % (2 * n - 1) if n > 1 else b""),
                b"M 100644 :%d m\n\n" % (2 * n),
            ]
        dst = Path(tmp) / "slice.git"
        subprocess.run(["git", "init", "-q", "--bare", str(dst)], check=True)
        _git(dst, "fast-import", "--quiet", "--date-format=raw-permissive", data=b"".join(stream))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        _git(dst, "bundle", "create", str(args.out.resolve()), "master")
        print(f"{n} messages -> {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
