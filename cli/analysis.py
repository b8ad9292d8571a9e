"""The outbreak analysis commands: `tubetrace exposure`, `tubetrace clusters`, and the
`signals` and `attack-rate` reports of `tubetrace report`. Every page is read (and audited)
through engine/usecases/reads.py; `--json` prints the API's envelope with every page in it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.connection import gateway, me
from cli.render import out, print_json
from engine import contract
from engine.access.audit import DirectAudit
from engine.analysis import outbreak
from engine.usecases import reads


def exposure_cmd(
    person_id: Annotated[str, typer.Argument(help="a person_id, as in a trace")],
    depth: Annotated[int, typer.Option(min=1, max=outbreak.MAX_DEPTH, help="rings 1..N")] = 3,
    days: Annotated[
        int, typer.Option(min=1, max=outbreak.MAX_DAYS, help="sampling days in the window")
    ] = 14,
    until: Annotated[
        str | None, typer.Option(help="the window's last day (default: the person's latest)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who was exposed to a person through pooled tubes, ring by ring (co-pool distance)."""
    with gateway() as gw:
        log = DirectAudit(gw)
        answer = reads.read_exposure(
            gw, log, me(), person_id, depth=depth, days=days, until=until,
            limit=outbreak.EXPOSURE_MAX_PAGE,
        )  # fmt: skip
        while answer["next_cursor"]:
            more = reads.read_exposure(
                gw, log, me(), person_id, depth=depth, days=days, until=until,
                cursor=answer["next_cursor"], limit=outbreak.EXPOSURE_MAX_PAGE,
            )  # fmt: skip
            for ring, extra in zip(answer["rings"], more["rings"], strict=True):
                ring["persons"] += extra["persons"]
            answer["next_cursor"] = more["next_cursor"]
    if as_json:
        print_json(contract.Exposure.model_validate(answer))
        return
    out.print(
        f"Exposure of {person_id}, {answer['since']} .. {answer['until']}, depth {depth}",
        highlight=False,
    )
    for ring in answer["rings"]:
        table = Table("name", "phone", "tube", "day", "compound", title=f"ring {ring['depth']}")
        for p in ring["persons"]:
            table.add_row(
                p["name"] or "",
                p["phone"] or "",
                p["tube_code"],
                p["day"],
                (p["residence"] or {}).get("compound_code") or "",
            )
        out.print(table)
        out.print(f"ring {ring['depth']}: {len(ring['persons'])} persons", highlight=False)


def clusters_cmd(
    since: Annotated[str, typer.Option(help="YYYY-MM-DD, the window's first sampling day")],
    until: Annotated[str, typer.Option(help="YYYY-MM-DD, its last (at most 21 days)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The window's cases in clusters: linked by a shared pooled tube or by the same compound
    within 3 days. Largest first."""
    items: list[contract.ClusterJSON] = []
    with gateway() as gw:
        log = DirectAudit(gw)
        cursor = ""
        while True:
            page = reads.read_clusters(
                gw, log, me(), since, until, cursor=cursor, limit=outbreak.CLUSTERS_MAX_PAGE
            )
            items += page["clusters"]
            if not page["next_cursor"]:
                break
            cursor = page["next_cursor"]
    answer = {"since": page["since"], "until": page["until"], "clusters": items}
    if as_json:
        print_json(contract.Clusters.model_validate(answer | {"next_cursor": None}))
        return
    table = Table("cluster", "size", "first", "last", "compounds", "districts", "links")
    for c in items:
        table.add_row(
            c["cluster_id"],
            str(c["size"]),
            c["first_day"],
            c["last_day"],
            ", ".join(c["compounds"][:6]) + (" ..." if len(c["compounds"]) > 6 else ""),
            ", ".join(c["districts"]),
            f"pool {c['links']['pool']}, compound {c['links']['compound']}",
        )
    out.print(table)
    persons = sum(c["size"] for c in items)
    out.print(
        f"{len(items)} clusters of {persons} persons, {answer['since']} .. {answer['until']}",
        highlight=False,
    )


def analysis_report(
    name: str, date: str | None, since: str | None, until: str | None, as_json: bool
) -> None:
    """`tubetrace report signals --date D` and `report attack-rate --since --until`."""
    signals: contract.SignalsJSON | None = None
    with gateway() as gw:
        log = DirectAudit(gw)
        if name == "signals":
            if date is None:
                raise typer.BadParameter("report signals needs --date YYYY-MM-DD")
            signals = reads.read_signals(gw, log, me(), date)
        else:
            if since is None or until is None:
                raise typer.BadParameter("report attack-rate needs --since and --until")
            rates = reads.read_attack_rate(gw, log, me(), since, until)
    if signals is not None:
        answer = signals
        if as_json:
            print_json(contract.Signals.model_validate(answer))
            return
        table = Table("kind", "subject", "tubes", "evidence", title=f"signals of {date}")
        for s in answer["signals"]:
            evidence = {k: v for k, v in s["evidence"].items() if k != "test"}
            table.add_row(s["kind"], s["subject"], str(len(s["tubes"])), json.dumps(evidence)[:160])
        out.print(table)
        out.print(f"{len(answer['signals'])} signals", highlight=False)
        return
    if as_json:
        print_json(contract.AttackRate.model_validate(rates))
        return
    table = Table(
        "ring",
        "persons",
        f"positive within {rates['follow_days']} days",
        "share",
        title=f"attack rates, {rates['cases']} cases, {rates['since']} .. {rates['until']}",
    )
    rows: list[tuple[str, contract.AttackRateRowJSON]] = [
        *((str(r["depth"]), r) for r in rates["rings"]),
        ("city", rates["city"]),
    ]
    for depth, row in rows:
        share = row["share"]
        table.add_row(
            depth,
            str(row["persons"]),
            str(row["positives"]),
            "-" if share is None else f"{share:.2%}",
        )
    out.print(table)
