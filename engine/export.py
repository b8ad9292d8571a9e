"""Trace subgraphs as networkx graphs, for Gephi (GraphML) and Cytoscape (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import networkx as nx


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    """GraphML takes scalars only: lists are joined, None dropped."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = ",".join(map(str, v)) if isinstance(v, list) else v
    return out


def trace_graph(traces: Iterable[dict[str, Any]]) -> nx.MultiDiGraph:
    g: nx.MultiDiGraph = nx.MultiDiGraph()
    for t in traces:
        tube = t["tube"]
        tid = f"tube:{tube['code']}"
        g.add_node(
            tid,
            **_clean(
                {
                    "label": "Tube",
                    "code": tube["code"],
                    "pool_size": tube["pool_size"],
                    "result": tube["result"],
                    "flags": t["flags"],
                }
            ),
        )
        for box in t["boxes"]:
            g.add_node(f"box:{box}", label="Box", code=box)
            g.add_edge(tid, f"box:{box}", key="IN_BOX", type="IN_BOX")
        for p in t["persons"]:
            pid = f"person:{p['person_id']}"
            g.add_node(
                pid,
                **_clean(
                    {
                        "label": "Person",
                        "name": p["name"],
                        "phone": p["phone"],
                        "registered_district_code": p["registered_district_code"],
                        "household_separated": p["household_separated"],
                        "flags": p["flags"],
                    }
                ),
            )
            g.add_edge(
                pid,
                tid,
                key=p["record_id"],
                type="SWABBED_INTO",
                **_clean({"record_id": p["record_id"], "collected_at": p["collected_at"]}),
            )
            code = p["residence"]["compound_code"]
            if code:
                cid = f"compound:{code}"
                g.add_node(
                    cid,
                    **_clean(
                        {
                            "label": "Compound",
                            "code": code,
                            "district_code": p["residence"]["district_code"],
                            "address": p["residence"]["address"],
                        }
                    ),
                )
                g.add_edge(pid, cid, key="RESIDES_AT", type="RESIDES_AT")
    return g


def write(graph: nx.MultiDiGraph, path: Path, fmt: str) -> None:
    if fmt == "graphml":
        nx.write_graphml(graph, path)
    else:
        path.write_text(json.dumps(nx.cytoscape_data(graph), ensure_ascii=False, indent=1))
