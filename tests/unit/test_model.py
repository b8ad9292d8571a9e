"""The graph model is declared once (engine/model.py): the constraints in cypher/, the bulk
import headers and the transforms' properties agree with it; the duplicate/conflict rule is
one function for the online loader and the bulk import. No database needed."""

from __future__ import annotations

import re
from pathlib import Path

from engine.model import NODES, RELATIONSHIPS, RecordKind
from loaders import bulk_files, transform

CYPHER = Path(__file__).resolve().parents[2] / "cypher"
REG = {
    "record_id": "R1",
    "collected_at": "2022-04-09T08:00:00+08:00",
    "compound_code": "C1",
    "box_code": "B1",
    "tube_code": "T1",
    "pool_size": "10",
    "method": "nucleic_code",
    "id_type": "passport",
    "id_number": "E1234567",
    "name": "x",
    "phone": "13800000000",
}
RES = {"tube_code": "T1", "result": "positive", "reported_at": "2022-04-09T20:00:00+08:00"}


def test_unique_constraints_are_the_model_keys() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in CYPHER.glob("*.cypher"))
    found = {
        label: key
        for var, label, var2, key in re.findall(
            r"FOR \((\w+):(\w+)\)\s+REQUIRE (\w+)\.(\w+) IS UNIQUE", text
        )
        if var == var2
    }
    assert found == {n.label: n.key for n in NODES.values() if n.key_stored}


def test_bulk_headers_come_from_the_model() -> None:
    assert bulk_files.REG_HEADER[0] == "reg_key:ID(Registration)"
    assert bulk_files.RESULT_HEADER == NODES["Result"].import_header()
    assert RELATIONSHIPS["FILLED_AT"].import_header() == [
        ":START_ID(Box)",
        ":END_ID(Compound)",
        "day",
        ":TYPE",
    ]


def _names(label: str) -> set[str]:
    node = NODES[label]
    return {node.key, *node.properties}


def test_transforms_write_exactly_the_model_properties() -> None:
    reg = transform.transform_registration(REG, "f", 2, tz="Asia/Shanghai", secret="s")
    assert isinstance(reg, transform.Row)
    assert set(reg.props) == _names("Registration")
    # `last_day` is the loaders' bound over the person's registrations, not a record's field.
    assert set(reg.links["person"]) == _names("Person") - {"last_day"}
    res = transform.transform_result(RES | {"lab_code": "L1"}, "f", 2, tz="Asia/Shanghai")
    assert isinstance(res, transform.Row)
    assert set(res.props) == _names("Result")
    comp = transform.transform_compound({"compound_code": "C1"}, "f", 2)
    assert isinstance(comp, transform.Row)
    assert set(comp.props) == _names("Compound")
    q = transform.transform_result({}, "f", 3, tz="Asia/Shanghai")
    assert isinstance(q, transform.Quarantined)
    assert set(q.as_props()) | {"at"} == _names("Quarantine")
    assert [k.value for k in RecordKind] == list(transform.KINDS)


def test_one_conflict_rule_names_the_contract_key() -> None:
    first = transform.transform_result(RES | {"lab_code": "L1"}, "f", 2, tz="Asia/Shanghai")
    again = transform.transform_result(RES | {"lab_code": "L1"}, "f", 3, tz="Asia/Shanghai")
    other = transform.transform_result(
        RES | {"lab_code": "L1", "ct_value": "30"}, "f", 4, tz="Asia/Shanghai"
    )
    assert isinstance(first, transform.Row) and isinstance(again, transform.Row)
    assert isinstance(other, transform.Row)
    assert transform.judge(first, "f", 2, None, None).status == "stored"
    assert transform.judge(again, "f", 3, first.content_hash, first.raw).status == "duplicate"
    status, q, _ = transform.judge(other, "f", 4, first.content_hash, first.raw)
    assert status == "conflict" and q is not None
    assert q.field == "tube_code, lab_code, reported_at" and q.existing == first.raw
    reg = transform.transform_registration(REG, "f", 2, tz="Asia/Shanghai", secret="s")
    changed = transform.transform_registration(
        REG | {"name": "y"}, "f", 3, tz="Asia/Shanghai", secret="s"
    )
    assert isinstance(reg, transform.Row) and isinstance(changed, transform.Row)
    status, q, _ = transform.judge(changed, "f", 3, reg.content_hash, reg.raw)
    assert status == "conflict" and q is not None and q.field == "source, record_id"
    comp = transform.transform_compound({"compound_code": "C1", "name": "a"}, "f", 2)
    comp2 = transform.transform_compound({"compound_code": "C1", "name": "b"}, "f", 3)
    assert isinstance(comp, transform.Row) and isinstance(comp2, transform.Row)
    assert transform.judge(comp2, "f", 3, comp.content_hash, comp.raw).status == "updated"


def test_directory_entries_update_only_when_newer() -> None:
    entry = {"id_type": "passport", "id_number": "E1", "source": "census", "phone": "13800000000"}
    old = transform.transform_directory(
        entry | {"updated_at": "2022-04-01T00:00:00+08:00"}, "f", 2, secret="s"
    )
    new = transform.transform_directory(
        entry | {"updated_at": "2022-04-02T00:00:00+08:00"}, "f", 3, secret="s"
    )
    assert isinstance(old, transform.Row) and isinstance(new, transform.Row)
    assert old.key == new.key
    assert transform.judge(new, "f", 3, old.content_hash, old.raw).status == "updated"
    kept = transform.judge(old, "f", 2, new.content_hash, new.raw, newer=False)
    assert kept.status == "duplicate" and kept.reason and kept.quarantined is None


def test_a_conflict_shows_one_first_version_whatever_the_batch() -> None:
    """Registrations and results keep no raw line: a conflict whose first version came in the
    same batch shows it as `stored_version` rebuilds it from the database (numbers as numbers,
    the phone normalised, the result lower-cased), not as the line was sent, so that the
    quarantine reads the same whatever the batch size and after a bulk import."""
    from datetime import datetime as native

    from neo4j.time import DateTime

    from loaders import write

    sent = REG | {"phone": "+86 138-0000-0000"}
    reg = transform.transform_registration(sent, "f", 2, tz="Asia/Shanghai", secret="s")
    assert isinstance(reg, transform.Row)
    # As the merge query's `stored` reads it: the node's fields (the method as its code), the
    # codes from its relationships, the ID from its person (cypher/ingest.cypher).
    stored = {n: reg.props.get(n) for n in transform.REGISTRATION_FIELDS if n in reg.props}
    assert stored["method"] == "1"
    stored |= {k: reg.links[k] for k in ("tube_code", "box_code", "compound_code")}
    at = native.fromisoformat(REG["collected_at"])
    stored |= {
        "collected_at": DateTime.from_native(at),
        "id_type": REG["id_type"],
        "id_number": REG["id_number"],
    }
    from_db = transform.stored_version({"raw": None, "stored": stored})
    assert from_db is not None and '"pool_size":10' in from_db and "13800000000" in from_db
    assert '"method":"nucleic_code"' in from_db and '"box_code":"' in from_db

    def to_row(record: dict[str, object], source: str, line: int | None) -> transform.Row:
        row = transform.transform_registration(
            dict(record), source, line, tz="Asia/Shanghai", secret="s"
        )
        assert isinstance(row, transform.Row)
        return row

    batch = write._prepare([(2, sent), (3, sent | {"name": "y"})], "registrations", "f", to_row)
    [q] = batch.quarantined
    assert q.existing == from_db != reg.raw

    res = transform.transform_result(
        RES | {"result": "Positive", "ct_value": "31.50"}, "f", 2, tz="Asia/Shanghai"
    )
    assert isinstance(res, transform.Row)
    assert transform.first_version(res) == transform.stored_version(
        {"stored": {n: res.props.get(n) for n in transform.RESULT_FIELDS}}
    )
    assert '"ct_value":31.5' in transform.first_version(res)
