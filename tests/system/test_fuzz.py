"""Any value JSON or CSV can carry, in any field of any input kind, through the API and the file
loader: stored with a flag or quarantined with a reason, never a 500 or a traceback, and the
good records around it stored."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from api.deps import MAX_STRING
from engine import domain
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import transform
from loaders.transform import Quarantined
from tests.helpers import bearer, cli

PER_FIELD = 12  # drawn by hypothesis per field and example, besides the fixed edge values
EXAMPLES = 3
EDGES: list[Any] = [
    "1e19",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+08:00",
    "1900-01-01T08:00:00+08:00",
    "2999-01-01T08:00:00+08:00",
    "2022-04-09T08:00:00+23:59",
    "\ud800x",
    "x\x00y",
    "T\u202e1",
    "１２３４５６",
    10**30,
    -(10**19),
    10**600,
    float("nan"),
    float("inf"),
    -0.0,
    True,
    False,
    {"a": [1, {"b": None}]},
    [],
    ["x"],
    "",
    " ",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(EDGES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
counter = itertools.count()


def resident_id(n: int) -> str:
    """A valid, distinct resident ID for each n (one person per good record)."""
    first17 = f"310115{1950 + n // 1000 % 60}0101{n % 1000:03d}"
    return first17 + domain.id_check_char(first17)


def good(kind: str, n: int) -> dict[str, Any]:
    if kind == "compounds":
        return {
            "compound_code": f"FC{n}",
            "name": "n",
            "address": "a",
            "district_code": "310115",
            "lat": "31.2",
            "lon": "121.5",
        }
    if kind == "registrations":
        return {
            "record_id": f"FR{n}",
            "collected_at": "2022-04-09T08:00:00+08:00",
            "compound_code": "C1",
            "box_code": "B1",
            "tube_code": f"FT{n}",
            "pool_size": 1 + n % 2 * 9,
            "method": "nucleic_code",
            "id_type": "resident_id",
            "id_number": resident_id(n),
            "name": "x",
            "phone": "13800000000",
            "registered_address": "r",
            "collector_id": "c",
        }
    return {
        "tube_code": f"FT{n}",
        "result": ("positive", "negative", "invalid")[n % 3],
        "reported_at": "2022-04-09T20:00:00+08:00",
        "lab_code": f"L{n}",
        "ct_value": 30.5,
    }


FIELDS = {
    "compounds": transform.COMPOUND_FIELDS,
    "registrations": transform.REGISTRATION_FIELDS,
    "results": transform.RESULT_FIELDS,
}


def batch(kind: str, values: dict[str, list[Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Good records around one record per (field, value); returns the good records' keys."""
    records: list[dict[str, Any]] = []
    goods: list[str] = []
    for name in FIELDS[kind]:
        for value in values[name]:
            g = good(kind, next(counter))
            records.append(g)
            goods.append(
                g[
                    {"compounds": "compound_code", "registrations": "record_id"}.get(
                        kind, "tube_code"
                    )
                ]
            )
            records.append({**good(kind, next(counter)), name: value})
    return records, goods


def over_limit(record: dict[str, Any]) -> bool:
    """A top-level value longer than the API's string limit (a number counts by its digits)."""
    for value in record.values():
        if isinstance(value, str) and len(value) > MAX_STRING:
            return True
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 10**MAX_STRING or len(str(value)) > MAX_STRING:
                return True
    return False


def csv_cell(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
    return '"' + text.replace('"', '""') + '"'


def write_files(
    tmp: Path, kind: str, records: list[dict[str, Any]], fields: list[str] | None = None
) -> list[Path]:
    fields = fields or list(FIELDS[kind])
    tag = next(counter)
    jsonl = tmp / f"{kind}-{tag}.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="ascii")
    csv = tmp / f"{kind}-{tag}.csv"
    lines = [",".join(fields)]
    lines += [",".join(csv_cell(r.get(f)) for f in fields) for r in records]
    # A lone surrogate becomes bytes that are not UTF-8, as a broken export would write them.
    csv.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    return [jsonl, csv]


def stored_keys(gw: Gateway, kind: str, keys: list[str]) -> set[str]:
    rows = gw.read("fuzz_stored", kind=kind, keys=keys)
    return {r["key"] for r in rows}


def test_implausible_and_edge_values_are_flags() -> None:
    base = good("registrations", 0)
    for stamp in (
        "1900-01-01T08:00:00+08:00",
        "2999-01-01T08:00:00+08:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+08:00",
        "2022-04-09T08:00:00+23:00",
    ):
        row = transform.transform_registration(
            {**base, "collected_at": stamp}, "t", 1, tz="Asia/Shanghai", secret="s"
        )
        assert not isinstance(row, Quarantined)
        assert "invalid_collected_at" in row.flags and row.props["collected_at"] is None
    for value in ("1e19", True, 10**30, "nan", "0", {"a": 1}):
        row = transform.transform_registration(
            {**base, "pool_size": value}, "t", 1, tz="Asia/Shanghai", secret="s"
        )
        assert not isinstance(row, Quarantined)
        assert "invalid_pool_size" in row.flags and row.props["pool_size"] is None, value
    row = transform.transform_registration(
        {**base, "name": "\ud800x", "tube_code": "T\u202e1\x00"},
        "t",
        1,
        tz="Asia/Shanghai",
        secret="s",
    )
    assert not isinstance(row, Quarantined)
    assert (row.props["name"], row.links["tube_code"]) == ("x", "T1")
    assert {"invalid_name", "invalid_tube_code"} <= set(row.flags)
    assert "\\ud800" in row.raw and domain.content_hash({"x": "\ud800"})


def test_any_value_in_any_field_is_stored_or_quarantined(
    gw: Gateway,
    settings: Settings,
    api_url: str,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    heads = {
        "registrations": bearer(create_key(gw, role="collector", district=None).secret),
        "results": bearer(create_key(gw, role="lab", district=None, labs=["LAB01"]).secret),
    }
    tried: Counter[str] = Counter()
    errors = Counter[str]()

    def post(kind: str, records: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(
            f"{api_url}/v1/{kind}",
            content=json.dumps(records).encode(),
            headers=heads[kind] | {"content-type": "application/json"},
            timeout=300,
        )

    @hyp_settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
    @given(data=st.data())
    def one_round(data: st.DataObject) -> None:
        for kind in ("compounds", "registrations", "results"):
            values = {
                name: EDGES
                + data.draw(st.lists(json_values, min_size=PER_FIELD, max_size=PER_FIELD))
                for name in FIELDS[kind]
            }
            for name, vs in values.items():
                tried[f"{kind}.{name}"] += len(vs)
            records, goods = batch(kind, values)
            if kind in heads:
                # The contract refuses a request whole when one value is over the string limit
                # (413, nothing stored): those records go in a request of their own, the rest in
                # the batch that must store every good record around the bad ones.
                api_records = records
                if kind == "results":
                    # A lab key sends its own lab's results only (any other lab code refuses
                    # the request whole, 403): its lab codes are fuzzed through the files.
                    api_records = [r | {"lab_code": "LAB01"} for r in records]
                refused = [r for r in api_records if over_limit(r)]
                if refused:
                    resp = post(kind, refused)
                    errors["server errors"] += resp.status_code >= 500
                    assert resp.status_code == 413, resp.text[:2000]
                    assert resp.json()["error"] == "payload_too_large", resp.text[:2000]
                    errors["refused whole"] += 1
                sent = [r for r in api_records if not over_limit(r)]
                resp = post(kind, sent)
                errors["server errors"] += resp.status_code >= 500
                errors["requests"] += 1
                assert resp.status_code == 200, resp.text[:2000]
                answer = resp.json()
                assert answer["summary"]["read"] == len(sent)
                for record, outcome in zip(sent, answer["outcomes"], strict=True):
                    assert outcome["status"] in ("stored", "duplicate", "conflict", "quarantined")
                    if outcome["status"] in ("quarantined", "conflict"):
                        assert outcome["reason"], (record, outcome)
                assert stored_keys(gw, kind, goods) == set(goods)
                errors["API records stored or quarantined"] += len(sent)
            for path in write_files(tmp_path, kind, records):
                done = cli(subprocess_env, "load", kind, str(path))
                errors["tracebacks"] += "Traceback" in done.stdout + done.stderr
                errors["files"] += 1
                assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
                assert f"read {len(records)}" in done.stdout or path.suffix == ".csv", done.stdout
            assert stored_keys(gw, kind, goods) == set(goods)

    one_round()
    print(
        "fuzz: values tried per field "
        + ", ".join(f"{k} {v}" for k, v in sorted(tried.items()))
        + f"; {errors['requests']} API batches ({errors['API records stored or quarantined']} "
        f"records answered one by one), {errors['refused whole']} over-limit requests refused "
        "whole (413), "
        f"{errors['files']} files loaded by the CLI; "
        f"server errors {errors['server errors']}, tracebacks {errors['tracebacks']}"
    )
    assert errors["server errors"] == errors["tracebacks"] == 0


def directory_entry(n: int, **kw: Any) -> dict[str, Any]:
    return {
        "id_type": "resident_id",
        "id_number": resident_id(n),
        "name": "x",
        "phone": f"137{n % 10**8:08d}",
        "phone_owner": "household",
        "residence_compound_code": "C1",
        "source": "census",
        "updated_at": "2022-04-01T00:00:00+08:00",
    } | kw


def test_directory_edge_values_are_flags_not_errors(
    gw: Gateway, api_url: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """POST /v1/directory and `load directory` with every edge value in every field: no 500, no
    traceback, the good entries around it stored. An `updated_at` out of the plausible years or
    with an offset beyond 14 hours is `invalid_updated_at` (a year-9999 entry would otherwise win
    over every later update; a +23:00 offset answered 500)."""
    for stamp in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00+08:00", "2022-04-09T08:00:00+23:00"):
        row = transform.transform_directory(
            directory_entry(0, updated_at=stamp), "t", 1, secret="s"
        )
        assert not isinstance(row, Quarantined)
        assert "invalid_updated_at" in row.flags and row.props["updated_at"] is None, stamp
    admin = bearer(create_key(gw, role="admin", district=None).secret)
    sent: list[dict[str, Any]] = []
    goods: list[int] = []
    for name in transform.DIRECTORY_FIELDS:
        for value in EDGES:
            goods.append(len(sent))
            sent.append(directory_entry(next(counter)))
            sent.append(directory_entry(next(counter), **{name: value}))
    records = sent[:]  # the files carry all; the request leaves out over-limit values (a 413)
    for i in reversed(range(len(sent))):
        if over_limit(sent[i]):
            del sent[i]
            goods = [g - 1 if g > i else g for g in goods]
    resp = httpx.post(
        f"{api_url}/v1/directory",
        content=json.dumps(sent).encode(),
        headers=admin | {"content-type": "application/json"},
        timeout=300,
    )
    assert resp.status_code == 200, resp.text[:2000]
    outcomes = resp.json()["outcomes"]
    assert [outcomes[i]["status"] for i in goods] == ["stored"] * len(goods)
    assert all(o["reason"] for o in outcomes if o["status"] == "quarantined"), outcomes
    # A later real update wins over an implausible stamp.
    first = directory_entry(10**6, updated_at="9999-12-31T23:59:59Z")
    later = directory_entry(10**6, phone_owner="self", updated_at="2022-04-09T00:00:00+08:00")
    answers = [
        httpx.post(f"{api_url}/v1/directory", json=[r], headers=admin, timeout=60).json()
        for r in (first, later)
    ]
    assert [a["outcomes"][0]["status"] for a in answers] == ["stored", "updated"], answers
    fields = list(transform.DIRECTORY_FIELDS)
    for path in write_files(tmp_path, "directory", records, fields):
        done = cli(subprocess_env, "load", "directory", str(path))
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert "directory: read" in done.stdout, done.stdout
