"""The audit log: every read of personal data and every write, append-only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.db import Gateway
from engine.keys import Principal


def record(gw: Gateway, who: Principal, action: str, *, target: str | None = None,
           person_ids: list[str] | None = None, reason: str | None = None,
           status: str = "ok", detail: str | None = None) -> None:
    # A time-ordered id (ms since epoch, then random) pages the log in order.
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    entry = {"audit_id": f"{now_ms:015d}-{uuid.uuid4().hex[:12]}", "key_id": who.key_id,
             "role": who.role, "action": action, "target": target,
             "person_ids": person_ids or [], "reason": reason, "status": status,
             "detail": detail}
    gw.write("append_audit", entry=entry)


def entries(gw: Gateway, *, since: datetime | None, key_id: str | None, after: str = "",
            limit: int = 500) -> list[dict[str, Any]]:
    since = since or datetime(1970, 1, 1, tzinfo=UTC)
    rows = gw.read("list_audit", since=since, key_id=key_id, after=after, limit=limit)
    out = []
    for r in rows:
        e = r["entry"]
        e["at"] = e["at"].to_native().isoformat() if e.get("at") else None
        out.append(e)
    return out


def prune(gw: Gateway, retention_days: int) -> int:
    before = datetime.now(UTC) - timedelta(days=retention_days)
    return int(gw.write("prune_audit", before=before)[0]["pruned"])
