"""Group stored patch mails into series and versions, whatever order the archive gave them in.

Archives deliver a posting out of order: a patch before its cover, patches that answer nothing
(sent without threading), covers without a ``0/N`` tag, a re-roll of two patches of a series.
Grouping therefore never happens while a mail is stored: each sync stores its messages with
``settled`` NULL, then :func:`settle` regroups every posting of the senders it touched from what
the store holds, so the result is a function of the stored messages alone. A message arriving
in a later sync completes an earlier series the same way.

Rules, per sender:

* a patch ``m/n`` belongs to the posting of the message it answers when that is a patch or a
  cover of the same version (a ``[PATCH vN]`` mail with no diff and no counter that patches
  answer is a cover without ``0/N``);
* postings still apart with the same version, total and tags, within :data:`WINDOW` of each
  other and with no patch number twice, are one posting (unthreaded patches, a patch archived
  without its In-Reply-To);
* postings are versions of one series when they carry one b4 ``change-id:``, when their cover
  (or first patch) subjects match, or, across different version numbers, when any patch subject
  matches (as b4 links revisions); two postings of one version (a RESEND) are one version;
* a version is complete when it holds patches 1..n, or, for a partial re-roll posted into the
  previous version's thread, when the previous version holds the missing ones (b4's rule).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from tracker.ingest import reviews
from tracker.parse.mail import SubjectTags, parse_subject
from tracker.store.models import Message, Series, SeriesVersion, Trailer
from tracker.store.queries import chunked

# git send-email posts a series within seconds; a slow SMTP relay or a manual resend of a lost
# patch within hours. Half a day keeps two unrelated same-size series of one sender apart.
WINDOW = timedelta(hours=12)
_IGNORED_TAGS = frozenset({"PATCH", "RESEND"})


@dataclass(frozen=True)
class Posted:
    """One stored message that may take part in a posting."""

    msgid: str
    sender: str
    date: datetime | None
    in_reply_to: str | None
    kind: str
    tags: SubjectTags
    version_id: int | None = None
    change_id: str | None = None

    @property
    def version(self) -> int:
        return self.tags.version or 1

    @property
    def index(self) -> int | None:
        return self.tags.index

    @property
    def coverish(self) -> bool:
        """A cover letter, or a mail that is one if patches answer it (no ``0/N`` tag)."""
        return self.index == 0 or (self.kind != "patch" and self.index is None)

    @property
    def numbered_patch(self) -> bool:
        return self.kind == "patch" and (self.index or 0) >= 1

    @property
    def loose_key(self) -> tuple[int, int | None, frozenset[str]]:
        tags = frozenset(p.upper() for p in self.tags.prefixes) - _IGNORED_TAGS
        return self.version, self.tags.total, tags


def postingish(kind: str, tags: SubjectTags) -> bool:
    """Could this message be part of a posting (a patch, a cover, a cover without ``0/N``)?

    Only mails tagged as posted patches (``[PATCH ...]``, ``[RFC ...]`` or an ``m/n`` counter):
    a stable-queue file or a ``git am``-ready export has the patch but was never a posting."""
    tagged = tags.is_patch or any(p.upper() == "RFC" for p in tags.prefixes)
    if not tagged and tags.index is None:
        return False
    if kind in reviews.POSTING_KINDS:
        return True
    return (
        kind in ("mail", "reply")
        and tags.is_patch
        and not tags.is_reply
        and tags.index in (None, 0)
        and tags.stable_branch is None
    )


@dataclass
class Posting:
    members: list[Posted]

    @property
    def cover(self) -> Posted | None:
        covers = [m for m in self.members if m.coverish]
        return min(covers, key=_order) if covers else None

    @property
    def patches(self) -> list[Posted]:
        return [m for m in self.members if m.kind == "patch"]

    @property
    def indices(self) -> set[int]:
        return _numbers(self.patches)

    @property
    def version(self) -> int:
        return max(m.version for m in self.members)

    @property
    def total(self) -> int:
        counted = [m.tags.total for m in self.members if m.tags.total]
        return max(counted) if counted else 1

    @property
    def root(self) -> Posted:
        cover = self.cover
        if cover is not None:
            return cover
        return min(self.patches, key=lambda m: (m.index or 1, *_order(m)))

    @property
    def start(self) -> datetime | None:
        dates = [m.date for m in self.members if m.date]
        return min(dates) if dates else None

    @property
    def end(self) -> datetime | None:
        dates = [m.date for m in self.members if m.date]
        return max(dates) if dates else None


def _numbers(msgs: Iterable[Posted]) -> set[int]:
    """Patch numbers present (an unnumbered patch is 1; a 0/N with a diff is still the cover)."""
    return {m.index or 1 for m in msgs if m.kind == "patch" and m.index != 0}


def _order(m: Posted) -> tuple[str, str]:
    return (m.date.isoformat() if m.date else "", m.msgid)


def _subject_key(m: Posted) -> str:
    return " ".join(m.tags.subject.split()).lower().strip('"')


def _same_posting(child: Posted, parent: Posted) -> bool:
    if not child.numbered_patch or child.version != parent.version:
        return False
    if parent.coverish:
        return parent.tags.total in (None, child.tags.total)
    return parent.numbered_patch and parent.tags.total == child.tags.total


def group_postings(msgs: Sequence[Posted]) -> list[Posting]:
    """One sender's messages -> postings (a mail without ``0/N`` no patch answers is left out)."""
    by_id = {m.msgid: m for m in msgs}

    def root_of(m: Posted) -> Posted:
        seen = {m.msgid}
        while m.in_reply_to and (p := by_id.get(m.in_reply_to)) is not None:
            if p.msgid in seen or not _same_posting(m, p):
                break
            seen.add(p.msgid)
            m = p
        return m

    groups: dict[str, list[Posted]] = defaultdict(list)
    for m in sorted(msgs, key=_order):
        groups[root_of(m).msgid].append(m)
    # A cover letter alone is a posting too (its patches may have gone to other lists only).
    postings = [
        Posting(g) for g in groups.values() if any(x.kind == "patch" or x.index == 0 for x in g)
    ]
    return _merge_loose(postings)


def _merge_loose(postings: list[Posting]) -> list[Posting]:
    """Join postings that are one unthreaded posting: same tags, close in time, no clash."""
    out: list[Posting] = []
    open_by_key: dict[tuple[int, int | None, frozenset[str]], list[Posting]] = defaultdict(list)
    for p in sorted(postings, key=lambda p: _order(p.root)):
        key = p.root.loose_key
        if p.start is None or key[1] is None or (p.root.index is None and p.cover is None):
            out.append(p)
            continue
        target = None
        for cand in reversed(open_by_key[key]):
            end = cand.end
            if end is None or p.start - end > WINDOW:
                break
            clash = cand.indices & p.indices or (cand.cover is not None and p.cover is not None)
            if not clash:
                target = cand
                break
        if target is None:
            open_by_key[key].append(p)
            out.append(p)
        else:
            target.members.extend(p.members)
    return out


@dataclass(frozen=True)
class VersionPlan:
    version: int
    root: str
    cover: str | None
    total: int
    complete: bool
    posted_at: datetime | None
    members: tuple[Posted, ...]


@dataclass(frozen=True)
class SeriesPlan:
    key: str
    subject: str
    author_email: str | None
    versions: tuple[VersionPlan, ...]


@dataclass
class _Union:
    parent: list[int] = field(default_factory=list)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def link_versions(postings: Sequence[Posting], sender: str) -> list[SeriesPlan]:
    """Postings of one sender -> series, each with its versions in order."""
    uf = _Union(list(range(len(postings))))
    by_root: dict[str, int] = {}
    by_patch: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(postings):
        key = _subject_key(p.root)
        if key in by_root:
            uf.join(i, by_root[key])
        else:
            by_root[key] = i
        for m in p.patches:
            by_patch[_subject_key(m)].append(i)
    by_change: dict[str, int] = {}
    for i, p in enumerate(postings):
        # b4's change-id names one series across versions whatever its subjects became.
        for cid in {m.change_id for m in p.members if m.change_id}:
            if cid in by_change:
                uf.join(i, by_change[cid])
            else:
                by_change[cid] = i
    for ids in by_patch.values():
        if len({postings[i].version for i in ids}) > 1:
            for i in ids[1:]:
                uf.join(i, ids[0])
    groups: dict[int, list[Posting]] = defaultdict(list)
    for i, p in enumerate(postings):
        groups[uf.find(i)].append(p)
    return [_series_plan(g, sender) for g in groups.values()]


def _series_plan(postings: list[Posting], sender: str) -> SeriesPlan:
    by_version: dict[int, list[Posting]] = defaultdict(list)
    for p in postings:
        by_version[p.version].append(p)
    versions: list[VersionPlan] = []
    previous: VersionPlan | None = None
    for number in sorted(by_version):
        same = sorted(by_version[number], key=lambda p: _order(p.root))
        latest = same[-1]
        members = tuple(sorted({m.msgid: m for p in same for m in p.members}.values(), key=_order))
        indices = _numbers(members)
        total = latest.total
        missing = set(range(1, total + 1)) - indices
        complete = not missing
        if missing and previous is not None and previous.total == total:
            # A partial re-roll answers the previous version's thread; b4 borrows the rest.
            before = {m.msgid for m in previous.members}
            have = _numbers(previous.members)
            rerolled = any(m.in_reply_to in before for m in members)
            complete = rerolled and missing <= have
        cover = latest.cover
        plan = VersionPlan(
            version=number,
            root=latest.root.msgid,
            cover=cover.msgid if cover else None,
            total=total,
            complete=complete,
            posted_at=min((p.start for p in same if p.start), default=None),
            members=members,
        )
        versions.append(plan)
        previous = plan
    first = min(by_version[min(by_version)], key=lambda p: _order(p.root))
    last = max(by_version[max(by_version)], key=lambda p: _order(p.root))
    return SeriesPlan(
        key=f"{_subject_key(first.root)}|{sender}"[:998],
        subject=last.root.tags.subject[:4000],
        author_email=sender or None,
        versions=tuple(versions),
    )


# --- the store side -----------------------------------------------------------------------------


@dataclass
class SettleCounts:
    messages: int = 0
    senders: int = 0
    series: int = 0
    versions: int = 0
    reviews: int = 0


def _posted(row: Any) -> Posted | None:
    msgid, sender, date, parent, kind, subject, version_id = row
    tags = parse_subject(subject or "")
    if not postingish(kind, tags):
        return None
    return Posted(msgid, (sender or "").lower(), date, parent, kind, tags, version_id)


_COLUMNS = (
    Message.message_id,
    Message.from_email,
    Message.date,
    Message.in_reply_to,
    Message.kind,
    Message.subject,
    Message.series_version_id,
)


def _postingish_filter() -> Any:
    return or_(
        Message.kind.in_(reviews.POSTING_KINDS),
        Message.kind.in_(("mail", "reply")) & Message.subject.contains("PATCH"),
    )


def _with_change_ids(s: Session, by_sender: dict[str, list[Posted]]) -> None:
    ids = [m.msgid for msgs in by_sender.values() for m in msgs]
    found: dict[str, str] = {}
    for part in chunked(ids):
        for msgid, value in s.execute(
            select(Trailer.message_id, Trailer.value).where(
                Trailer.message_id.in_(part), Trailer.kind == "change-id"
            )
        ):
            if msgid is not None:
                found[msgid] = value
    if found:
        for sender, msgs in by_sender.items():
            by_sender[sender] = [
                replace(m, change_id=found[m.msgid]) if m.msgid in found else m for m in msgs
            ]


def settle(s: Session) -> SettleCounts:
    """Regroup the postings of every sender with unsettled messages; attribute new reviews."""
    counts = SettleCounts()
    touched = list(
        s.execute(
            select(Message.message_id, Message.from_email, Message.kind, Message.subject).where(
                Message.settled.is_(None)
            )
        )
    )
    if not touched:
        return counts
    counts.messages = len(touched)
    senders = sorted(
        {
            sender
            for _, sender, kind, subject in touched
            if sender and postingish(kind, parse_subject(subject or ""))
        }
    )
    counts.senders = len(senders)
    regrouped: set[str] = set()
    for chunk in chunked(senders, 200):
        rows = s.execute(
            select(*_COLUMNS).where(Message.from_email.in_(chunk), _postingish_filter())
        )
        by_sender: dict[str, list[Posted]] = defaultdict(list)
        for row in rows:
            p = _posted(row)
            if p is not None:
                by_sender[p.sender].append(p)
        _with_change_ids(s, by_sender)
        loaded: list[Posted] = []
        plans: list[SeriesPlan] = []
        for sender, msgs in sorted(by_sender.items()):
            plans += link_versions(group_postings(msgs), sender)
            loaded += msgs
        _apply(s, loaded, plans, counts)
        regrouped.update(m.msgid for m in loaded)
    ids = [msgid for msgid, *_ in touched]
    candidates = set(ids) | reviews.descendants(s, regrouped)
    counts.reviews = reviews.attribute(s, reviews.with_reviews(s, candidates))
    messages = _table(Message)
    for part in chunked(ids):
        s.execute(update(messages).where(messages.c.message_id.in_(part)).values(settled=True))
    return counts


def _table(model: type[Message | SeriesVersion | Series]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _ids(values: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(values))
    for i in range(0, len(ordered), 500):
        yield ordered[i : i + 500]


def _apply(
    s: Session, msgs: Sequence[Posted], plans: Sequence[SeriesPlan], c: SettleCounts
) -> None:
    """Replace the stored series and versions of these messages by ``plans``.

    Core statements, a few per batch of senders: a first sync regroups every posting of an
    archive, and an ORM flush per version cost more than the grouping itself."""
    messages, versions, series = _table(Message), _table(SeriesVersion), _table(Series)
    old_versions = {m.version_id for m in msgs if m.version_id is not None}
    old_series: set[int] = set()
    for part in _ids(old_versions):
        old_series.update(
            s.scalars(select(SeriesVersion.series_id).where(SeriesVersion.id.in_(part)))
        )
    for ids in chunked([m.msgid for m in msgs if m.version_id is not None]):
        s.execute(
            update(messages).where(messages.c.message_id.in_(ids)).values(series_version_id=None)
        )
    for part in _ids(old_versions):
        s.execute(delete(versions).where(versions.c.id.in_(part)))
    by_key: dict[str, int] = {}
    for keys in chunked([p.key for p in plans]):
        by_key.update(
            (k, i) for k, i in s.execute(select(Series.key, Series.id).where(Series.key.in_(keys)))
        )
    spare = sorted(old_series - set(by_key.values()))
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for plan in plans:
        row = {
            "key": plan.key,
            "subject": plan.subject,
            "author_email": plan.author_email,
            "latest_version": max(v.version for v in plan.versions),
        }
        if plan.key not in by_key and spare:
            by_key[plan.key] = spare.pop(0)  # an old row of these messages, renamed
        if plan.key in by_key:
            changed_rows.append({"sid": by_key[plan.key], **row})
        else:
            new_rows.append(row)
    if changed_rows:
        # Keys move between rows of one sender only when versions re-link; park them first so
        # no two rows hold one key in between.
        s.execute(
            update(series).where(series.c.id == bindparam("sid")).values(key=bindparam("parked")),
            [{"sid": r["sid"], "parked": f"~{r['sid']}"} for r in changed_rows],
        )
        s.execute(
            update(series)
            .where(series.c.id == bindparam("sid"))
            .values(
                key=bindparam("k"),
                subject=bindparam("subj"),
                author_email=bindparam("author"),
                latest_version=bindparam("latest"),
            ),
            [
                {
                    "sid": r["sid"],
                    "k": r["key"],
                    "subj": r["subject"],
                    "author": r["author_email"],
                    "latest": r["latest_version"],
                }
                for r in changed_rows
            ],
        )
    if new_rows:
        s.execute(insert(series), new_rows)
        for keys in chunked([r["key"] for r in new_rows]):
            by_key.update(
                (k, i)
                for k, i in s.execute(select(Series.key, Series.id).where(Series.key.in_(keys)))
            )
    c.series += len(plans)
    version_rows = [
        {
            "series_id": by_key[plan.key],
            "version": v.version,
            "cover_message_id": v.root,
            "total": v.total,
            "complete": v.complete,
            "posted_at": v.posted_at,
        }
        for plan in plans
        for v in plan.versions
    ]
    c.versions += len(version_rows)
    if version_rows:
        s.execute(insert(versions), version_rows)
    version_id: dict[tuple[int, int], int] = {}
    for part in _ids(by_key[p.key] for p in plans):
        for sid, number, vid in s.execute(
            select(SeriesVersion.series_id, SeriesVersion.version, SeriesVersion.id).where(
                SeriesVersion.series_id.in_(part)
            )
        ):
            version_id[(sid, number)] = vid
    members: list[dict[str, Any]] = []
    covers: list[str] = []
    for plan in plans:
        for v in plan.versions:
            vid = version_id[(by_key[plan.key], v.version)]
            for m in v.members:
                # A cover without "0/N" still stands at 0 in its posting.
                idx = 0 if m.msgid == v.cover else m.index
                members.append({"mid": m.msgid, "vid": vid, "idx": idx})
                if m.msgid == v.cover and m.kind != "cover":
                    covers.append(m.msgid)
    if members:
        s.execute(
            update(messages)
            .where(messages.c.message_id == bindparam("mid"))
            .values(series_version_id=bindparam("vid"), series_index=bindparam("idx")),
            members,
        )
    for ids in chunked(covers):
        s.execute(update(messages).where(messages.c.message_id.in_(ids)).values(kind="cover"))
    for part in _ids(spare):
        used = set(
            s.scalars(select(SeriesVersion.series_id).where(SeriesVersion.series_id.in_(part)))
        )
        unused = [sid for sid in part if sid not in used]
        if unused:
            s.execute(delete(series).where(series.c.id.in_(unused)))
