"""How the CLI and the demo print: one console for answers, one for errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.contract import TraceJSON

# No console markup: what the CLI prints holds user data (URLs such as http://[fe80::1]/, names,
# reasons) that rich would read as [style] tags and drop. Styled words go through `styled`.
out = Console(width=None if sys.stdout.isatty() else 200, markup=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200, markup=False)


def styled(style: str, word: str, rest: str) -> Text:
    """`word` in `style`, then `rest` as it is (never read as markup)."""
    return Text.assemble((word, style), rest)


def _plain(value: Any) -> Any:
    """A contract model as the API renders it; anything else as it is."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def print_json(value: Any) -> None:
    sys.stdout.write(
        json.dumps(_plain(value), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    )


def render_json(value: Any) -> str:
    """One line of JSON, for streamed lists."""
    return json.dumps(_plain(value), ensure_ascii=False)


def print_trace(t: TraceJSON) -> None:
    tube = t["tube"]
    c: Mapping[str, object] = t["compound"] or {}
    out.print(
        styled(
            "bold",
            f"Tube {tube['code']}",
            f"  pool {tube['pool_size']}  "
            f"collected {tube['collected_at']}  result {tube['result']} ({tube['reported_at']})",
        ),
        highlight=False,
    )
    out.print(
        f"Box {', '.join(t['boxes']) or '-'}   Compound {c.get('code')} {c.get('name') or ''}"
        f"  {c.get('address') or ''}  {c.get('district') or ''} {c.get('subdistrict') or ''}",
        highlight=False,
    )
    if t["flags"]:
        out.print(f"Tube flags: {', '.join(t['flags'])}", highlight=False)
    table = Table(
        "#", "name", "id", "phone", "residence", "district", "registered", "sep.", "flags"
    )
    for i, p in enumerate(t["persons"], start=1):
        res = p["residence"]
        sep = {True: "yes", False: "no", None: "?"}[p["household_separated"]]
        table.add_row(
            str(i),
            p["name"] or "",
            p["id_number"] or "",
            p["phone"] or "",
            res["compound_code"] or "",
            res["district_code"] or "",
            p["registered_district_code"] or "",
            sep,
            ", ".join(p["flags"]),
        )
    out.print(table)
