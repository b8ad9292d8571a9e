"""The audit log: every read of personal data and every write, append-only and tamper-evident.

Durable before the answer: the API appends each entry to a local journal under
`TUBETRACE_HOME/audit/` and fsyncs it (one fsync covers every entry written meanwhile: group
commit) before the answer is sent; a background thread moves journalled entries into Neo4j in
batches. A journal left by a process that died (kill -9) is replayed into Neo4j when the next
API starts. The CLI writes each entry to Neo4j directly, before it prints.

Tamper-evident: every (:Audit) carries `seq` (1, 2, 3 ... with no gap), `prev_hash` and `hash`
(SHA-256 over its content and `prev_hash`). Seq and hashes are given in the one transaction
that appends a batch, under the write lock of the chain's head node, so that API and CLI
processes share one chain. `verify` reports a gap (a deleted entry) or an edit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from neo4j import ManagedTransaction

from engine import context, domain
from engine.access.keys import Principal
from engine.contract import AuditEntryJSON
from engine.errors import DatabaseUnavailable
from engine.store.gateway import Gateway

log = logging.getLogger("tubetrace.audit")

HASHED = (
    "audit_id",
    "at",
    "key_id",
    "role",
    "action",
    "target",
    "person_ids",
    "reason",
    "status",
    "detail",
    "seq",
    "prev_hash",
)
JOURNAL_TRUNCATE_BYTES = 1 << 20


def _utc_text(at: Any) -> str:
    native = at.to_native() if hasattr(at, "to_native") else at
    if isinstance(native, str):
        native = datetime.fromisoformat(native)
    text: str = native.astimezone(UTC).isoformat(timespec="microseconds")
    return text


def make_entry(
    who: Principal,
    action: str,
    *,
    target: str | None = None,
    person_ids: list[str] | None = None,
    reason: str | None = None,
    status: str = "ok",
    detail: str | None = None,
    claimed_key_id: str | None = None,
) -> AuditEntryJSON:
    """An entry. `key_id` names a key only when it was proven (it exists and its secret
    matched); a refused caller's entry has none, and the key id it typed, unverified, is in
    `claimed_key_id`."""
    now = datetime.now(UTC)
    # A time-ordered id (ms since epoch, then random) pages the log in order.
    entry: AuditEntryJSON = {
        "audit_id": f"{int(now.timestamp() * 1000):015d}-{uuid.uuid4().hex[:12]}",
        "at": _utc_text(now),
        "key_id": who.key_id or None,
        "role": who.role,
        "action": action,
        "target": target,
        "person_ids": person_ids or [],
        "reason": reason,
        "status": status,
        "detail": detail,
    }
    if claimed_key_id is not None:  # typed by a refused caller: never proven
        entry["claimed_key_id"] = claimed_key_id
    rid = context.current_request_id()
    if rid is not None:  # the API request that wrote it (its X-Request-ID and log line)
        entry["request_id"] = rid
    return entry


class Chained(AuditEntryJSON):
    """An entry in the chain: its place, the hash of the entry before it, and its own."""

    seq: int
    prev_hash: str | None
    hash: str


def entry_hash(entry: Mapping[str, object]) -> str:
    """SHA-256 over the entry's content (time as UTC text) and the previous entry's hash."""
    content = {name: entry.get(name) for name in HASHED}
    content["at"] = _utc_text(content["at"]) if content["at"] is not None else None
    ids = content["person_ids"]
    content["person_ids"] = list(ids) if isinstance(ids, list | tuple) else []
    for optional in ("request_id", "claimed_key_id"):  # hashed when present (older: none)
        if entry.get(optional) is not None:
            content[optional] = entry[optional]
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def append_chained(gw: Gateway, entries: list[AuditEntryJSON]) -> int:
    """Append entries to the chain in one transaction; an entry already stored (a replayed
    journal, a resent COMMIT) is skipped. Returns how many were added."""
    if not entries:
        return 0

    def work(tx: ManagedTransaction) -> int:
        head = gw.run_in(tx, "lock_audit_head").row()
        if head["seq"] is None:  # the head was deleted under us (a wipe): take it afresh
            raise _HeadGone
        ids = [e["audit_id"] for e in entries]
        stored = {r["audit_id"] for r in gw.run_in(tx, "existing_audit_ids", ids=ids)}
        seq, prev = int(head["seq"]), str(head["hash"])
        rows = []
        for e in entries:
            if e["audit_id"] in stored:
                continue
            stored.add(e["audit_id"])
            seq += 1
            row: Chained = {**e, "seq": seq, "prev_hash": prev, "hash": ""}
            row["hash"] = prev = entry_hash(row)
            rows.append(row)
        if rows:
            gw.run_in(tx, "append_audit_batch", entries=rows, seq=seq, hash=prev)
        return len(rows)

    for attempt in range(5):
        try:
            return gw.write_tx(work)
        except _HeadGone:
            time.sleep(0.05 * (attempt + 1))
    return gw.write_tx(work)


class _HeadGone(Exception):
    pass


class AuditSink(Protocol):
    """Where the engine's use cases record what they showed."""

    def record(self, who: Principal, action: str, **fields: Any) -> None: ...


class DirectAudit:
    """The CLI's audit log: each entry is committed to Neo4j before `record` returns."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def record(self, who: Principal, action: str, **fields: Any) -> None:
        append_chained(self.gw, [make_entry(who, action, **fields)])


class Marked:
    """Another sink, each entry's detail marked with how it was read (`console`: the console's
    pages)."""

    def __init__(self, sink: AuditSink, how: str) -> None:
        self.sink = sink
        self.how = how

    def record(self, who: Principal, action: str, **fields: Any) -> None:
        detail = fields.get("detail")
        fields["detail"] = f"{detail} ({self.how})" if detail else self.how
        self.sink.record(who, action, **fields)


def _read_journal(path: Path) -> list[AuditEntryJSON]:
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a torn last line: its fsync never finished, no answer was sent
            log.warning("audit journal %s: skipping an unreadable line", path.name)
    return out


def replay_journals(gw: Gateway, folder: Path) -> int:
    """Move the entries of journals whose writer died into Neo4j, then delete the journals.
    A journal still locked belongs to a live process and is left alone."""
    replayed = 0
    for path in sorted(folder.glob("journal-*.jsonl")):
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            entries = _read_journal(path)
            for start in range(0, len(entries), 500):
                replayed += append_chained(gw, entries[start : start + 500])
            path.unlink()
        finally:
            os.close(fd)
    if replayed:
        log.warning("audit journal: %d entries of a stopped API replayed into Neo4j", replayed)
    return replayed


class AuditWriter:
    """The API's audit log. `record` appends the entry to this process's journal and returns
    once the journal is fsynced; a thread writes queued entries to Neo4j every `interval_s`.
    `flush()` writes everything queued; it runs before the log is read and when the API stops."""

    def __init__(
        self,
        gw: Gateway,
        home: Path,
        interval_s: float = 0.2,
        max_batch: int = 500,
        fsync: bool = True,
    ) -> None:
        self.gw = gw
        self.fsync = fsync
        self.interval_s = interval_s
        self.max_batch = max_batch
        self.folder = home / "audit"
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._replay_pending = True  # journals of stopped APIs, moved in once Neo4j answers
        self._outage_logged = False
        self.path = self.folder / f"journal-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._queue: list[AuditEntryJSON] = []
        self._bytes = 0
        self._written = 0
        self._synced = 0
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.flush()
        self._thread.start()

    def record(self, who: Principal, action: str, **fields: Any) -> None:
        entry = make_entry(who, action, **fields)
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        with self._lock:
            os.write(self._fd, line)
            self._queue.append(entry)
            self._bytes += len(line)
            self._written += 1
            mine = self._written
        if not self.fsync:
            return
        with self._sync_lock:  # group commit: one fsync covers every line written before it
            if self._synced >= mine:
                return
            target = self._written
            os.fsync(self._fd)
            self._synced = target

    def flush(self) -> None:
        with self._flush_lock:
            try:
                self._flush()
            except DatabaseUnavailable as exc:  # kept journalled; written when it is back
                if not self._outage_logged:
                    log.warning("audit log: %s; %d entries kept journalled", exc, self.pending())
                    self._outage_logged = True
                return
            self._outage_logged = False

    def _flush(self) -> None:
        if self._replay_pending:
            replay_journals(self.gw, self.folder)  # this process's own journal is locked
            self._replay_pending = False
        while True:
            with self._lock:
                batch = self._queue[: self.max_batch]
                if not batch:
                    if self._bytes > JOURNAL_TRUNCATE_BYTES:
                        os.ftruncate(self._fd, 0)  # every line in it is in Neo4j
                        self._bytes = 0
                    return
            try:
                append_chained(self.gw, batch)
            except DatabaseUnavailable:
                raise
            except Exception:
                log.exception("audit log write failed; %d entries kept journalled", len(batch))
                return
            with self._lock:
                del self._queue[: len(batch)]

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def journals_replayed(self) -> bool:
        """Whether the journals of stopped APIs found at start are in Neo4j now."""
        return not self._replay_pending

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        with self._lock:
            done = not self._queue
        os.close(self._fd)
        if done:
            self.path.unlink(missing_ok=True)


def entries(
    gw: Gateway, *, since: datetime | None, key_id: str | None, after: str = "", limit: int = 500
) -> list[AuditEntryJSON]:
    since = since or datetime(1970, 1, 1, tzinfo=UTC)
    rows = gw.read("list_audit", since=since, key_id=key_id, after=after, limit=limit)
    out = []
    for r in rows:
        e = r["entry"]
        e["at"] = domain.iso(e.get("at"))
        out.append(e)
    return out


def prune(gw: Gateway, retention_days: int) -> int:
    before = datetime.now(UTC) - timedelta(days=retention_days)
    return int(gw.write("prune_audit", before=before).value())


@dataclass
class Verification:
    """What `verify` found: entries checked and every problem, in chain order."""

    checked: int = 0
    head_seq: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _chain(gw: Gateway, page: int = 5000) -> Iterator[Chained]:
    after = 0
    while rows := gw.read("audit_chain_page", after=after, limit=page):
        for r in rows:
            yield r["entry"]
        after = int(rows[-1]["entry"]["seq"])


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first} to {last}"


def verify(gw: Gateway) -> Verification:
    """Walk the chain by seq: a missing seq is a gap (a deleted entry), a hash that does not
    match its entry's content is an edit, a `prev_hash` that does not match the entry before
    is a broken link. Seqs up to the head's `pruned_through` were removed by retention."""
    head = gw.read("audit_head").row()
    report = Verification(head_seq=int(head["seq"]))
    expected_seq = int(head["pruned_through"]) + 1
    prev_hash: str | None = None
    for e in _chain(gw):
        seq = int(e["seq"])
        report.checked += 1
        if seq > expected_seq:
            report.problems.append(
                f"gap: {_span(expected_seq, seq - 1)} missing (deleted from the log)"
            )
            prev_hash = None
        if entry_hash(e) != e["hash"]:
            report.problems.append(
                f"edit: entry {seq} ({e['audit_id']}) does not match its hash (changed after "
                "it was written)"
            )
        if prev_hash is not None and e["prev_hash"] != prev_hash:
            report.problems.append(f"broken link: entry {seq} does not follow entry {seq - 1}")
        prev_hash = e["hash"]
        expected_seq = seq + 1
    if report.head_seq >= expected_seq:
        report.problems.append(
            f"gap: {_span(expected_seq, report.head_seq)} missing at the end of the log"
        )
    elif prev_hash is not None and prev_hash != head["hash"]:
        report.problems.append("edit: the last entry does not match the chain's head")
    return report
