"""One graph shape for a trace: cytoscape.js elements, drawn by the web console and written by
`tubetrace export` (Cytoscape JSON, or GraphML for Gephi through networkx).

The elements follow the data's direction: sampling compound -> box -> tube -> persons ->
residence compounds. A compound is drawn twice when it is both (it usually is: residents are
swabbed where they live), once as the site and once as a residence, so the picture stays a
flow from top to bottom. Every element has `data.id`; every edge's `source` and `target` exist."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypedDict

import networkx as nx

from engine.contract import TraceJSON


class Element(TypedDict):
    """A node or an edge: its attributes (`id`; an edge's `source` and `target`) in `data`."""

    data: dict[str, object]


class Elements(TypedDict):
    nodes: list[Element]
    edges: list[Element]


def _clean(attrs: Mapping[str, object]) -> dict[str, object]:
    """GraphML takes scalars only: lists are joined, None dropped."""
    out: dict[str, object] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = ",".join(map(str, v)) if isinstance(v, list) else v
    return out


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, object]] = {}
        self.edges: dict[str, dict[str, object]] = {}

    def node(self, node_id: str, **data: object) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"id": node_id, **data}
        return node_id

    def edge(self, kind: str, source: str, target: str, key: str = "", **data: object) -> None:
        edge_id = f"{kind}:{source}->{target}" + (f"#{key}" if key else "")
        self.edges.setdefault(
            edge_id, {"id": edge_id, "source": source, "target": target, "type": kind, **data}
        )


def cytoscape_elements(traces: Iterable[TraceJSON]) -> Elements:
    """Elements of one or more traces (as the caller may see them: pass masked traces for a
    masked picture), ready for `cytoscape({elements})` and `cy.json({elements})`."""
    b = _Builder()
    for t in traces:
        tube = t["tube"]
        tube_id = b.node(
            f"tube:{tube['code']}",
            kind="tube",
            label=tube["code"],
            code=tube["code"],
            pool_size=tube["pool_size"],
            result=tube["result"],
            flags=list(t["flags"]),
        )
        sites = [b.node(f"compound:{c}", kind="compound", label=c, code=c) for c in t["compounds"]]
        c = t.get("compound")
        if c and c.get("code") in t["compounds"]:
            b.nodes[f"compound:{c['code']}"].update(
                name=c.get("name"), district_code=c.get("district_code"), label=c["code"]
            )
        boxes = [b.node(f"box:{x}", kind="box", label=x, code=x) for x in t["boxes"]]
        # A tube with one site or one box pins every site-box pair; with several of both the
        # pairs are not in the trace, so each is drawn and marked inferred.
        exact = len(sites) <= 1 or len(boxes) <= 1
        for site in sites:
            for box in boxes:
                b.edge("FILLED", site, box, inferred=not exact)
        for box in boxes:
            b.edge("HOLDS", box, tube_id)
        for p in t["persons"]:
            person_id = b.node(
                f"person:{p['person_id']}",
                kind="person",
                label=p["name"] or p["record_id"],
                person_id=p["person_id"],
                record_id=p["record_id"],
                name=p["name"],
                id_type=p["id_type"],
                id_number=p["id_number"],
                phone=p["phone"],
                registered_district_code=p["registered_district_code"],
                household_separated=p["household_separated"],
                flags=list(p["flags"]),
                flagged=bool(p["flags"]),
            )
            b.edge("SWABBED", tube_id, person_id, key=p["record_id"], record_id=p["record_id"])
            residence = p["residence"]
            code = residence["compound_code"]
            if code:
                res_id = b.node(
                    f"residence:{code}",
                    kind="residence",
                    label=code,
                    code=code,
                    address=residence["address"],
                    district_code=residence["district_code"],
                )
                b.edge("RESIDES_AT", person_id, res_id)
    return {
        "nodes": [{"data": d} for d in b.nodes.values()],
        "edges": [{"data": d} for d in b.edges.values()],
    }


def trace_graph(traces: Iterable[TraceJSON]) -> nx.MultiDiGraph:
    """The same elements as a networkx graph, for GraphML."""
    elements = cytoscape_elements(traces)
    g: nx.MultiDiGraph = nx.MultiDiGraph()
    for n in elements["nodes"]:
        d = dict(n["data"])
        g.add_node(d.pop("id"), **_clean(d))
    for e in elements["edges"]:
        d = dict(e["data"])
        g.add_edge(d.pop("source"), d.pop("target"), key=d["id"], **_clean(d))
    return g


def write(traces: list[TraceJSON], path: Path, fmt: str) -> tuple[int, int]:
    """Write GraphML or Cytoscape JSON; answers (nodes, edges)."""
    if fmt == "graphml":
        graph = trace_graph(traces)
        nx.write_graphml(graph, path)
        return graph.number_of_nodes(), graph.number_of_edges()
    elements = cytoscape_elements(traces)
    doc = {"format_version": "1.0", "generated_by": "tubetrace", "elements": elements}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    return len(elements["nodes"]), len(elements["edges"])
