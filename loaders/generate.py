"""A seeded, streaming generator of a synthetic city round, in the contract's file formats.

The same generator feeds the demo, the tests and the benchmarks. It writes compounds,
registrations, results and a small population directory (phones for some persons registered
without one, residences for some persons at the unknown compound); every kind of bad record in
the contract is planted at least once
(at any size), and more are sprinkled at `messy_rate` on larger cities. Memory stays flat in
the size except for the positive pools, which it remembers to generate their retests.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from engine import domain
from loaders.transform import (
    COMPOUND_FIELDS,
    DIRECTORY_FIELDS,
    REGISTRATION_FIELDS,
    RESULT_FIELDS,
)

CST = timezone(timedelta(hours=8))
# Share of Shanghai's population by district (2020 census, rounded), used to size districts.
DISTRICT_WEIGHTS = {
    "310115": 23,
    "310112": 11,
    "310113": 9,
    "310117": 8,
    "310114": 7,
    "310104": 5,
    "310107": 5,
    "310110": 5,
    "310118": 5,
    "310120": 5,
    "310106": 4,
    "310105": 3,
    "310109": 3,
    "310101": 3,
    "310116": 3,
    "310151": 2,
}
SUBDISTRICTS = ("街道一", "街道二", "街道三", "镇一", "镇二")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
HISTORIC_CODES = ("310103", "310108", "310119", "310230")
OUTSIDE_CODES = ("320102", "330106", "340104", "110105", "420102")


@dataclass
class CityStats:
    registrations: int = 0
    tubes: int = 0
    compounds: int = 0
    results: int = 0
    positive_tubes: int = 0
    directory: int = 0
    planted: dict[str, int] = field(default_factory=dict)

    def plant(self, kind: str) -> None:
        self.planted[kind] = self.planted.get(kind, 0) + 1


def make_resident_id(rng: random.Random, area: str) -> str:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
    seq = f"{rng.randrange(0, 1000):03d}"
    first17 = f"{area}{born:%Y%m%d}{seq}"
    return first17 + domain.id_check_char(first17)


def make_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"


class _Writer:
    """One output file, CSV or JSON Lines, with the contract's field names."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.fields = fields
        self.fh: TextIO = path.open("w", encoding="utf-8", newline="")
        self.jsonl = path.suffix == ".jsonl"
        self.csv = (
            None
            if self.jsonl
            else csv.DictWriter(self.fh, fieldnames=list(fields), extrasaction="ignore")
        )
        if self.csv is not None:
            self.csv.writeheader()

    def write(self, record: dict[str, Any]) -> None:
        if self.csv is not None:
            self.csv.writerow(
                {k: "" if record.get(k) is None else record.get(k) for k in self.fields}
            )
        else:
            self.fh.write(
                json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False)
                + "\n"
            )

    def raw(self, line: str) -> None:
        self.fh.write(line + "\n")

    def close(self) -> None:
        self.fh.close()


@dataclass(frozen=True)
class Person:
    id_type: str
    id_number: str
    name: str
    phone: str | None


class City:
    def __init__(
        self,
        seed: int,
        registrations: int,
        days: int,
        positive_rate: float,
        messy_rate: float,
        start: date,
    ) -> None:
        self.seed = seed
        self.target = registrations
        self.days = days
        self.positive_rate = positive_rate
        self.messy_rate = messy_rate
        self.start = start
        per_compound_round = 1000
        self.n_compounds = max(12, registrations // (per_compound_round * days) or 1)
        self.rng = random.Random(seed)
        self.compounds = list(self._compounds())
        self.residents_per_compound = max(25, registrations // (self.n_compounds * days))

    def _compounds(self) -> Iterator[dict[str, Any]]:
        districts = list(DISTRICT_WEIGHTS)
        weights = list(DISTRICT_WEIGHTS.values())
        rng = random.Random(self.seed * 7 + 1)
        for k in range(self.n_compounds):
            # The first compounds cover every district; the rest follow population shares.
            d = districts[k] if k < len(districts) else rng.choices(districts, weights)[0]
            yield {
                "compound_code": f"C{k + 1:05d}",
                "name": f"{domain.district_name(d)}第{k + 1}小区",
                "address": f"上海市{domain.district_name(d)}{rng.randrange(1, 999)}弄",
                "district_code": d,
                "subdistrict": rng.choice(SUBDISTRICTS),
                "lat": round(31.0 + rng.random() * 0.5, 6),
                "lon": round(121.2 + rng.random() * 0.6, 6),
                "low_risk": rng.random() < 0.2,
            }

    def person(self, k: int, i: int) -> Person:
        rng = random.Random(f"{self.seed}:{k}:{i}")
        compound = self.compounds[k]
        roll = rng.random()
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        phone = make_phone(rng)
        if roll < 0.04:
            return Person("passport", f"E{rng.randrange(10**7, 10**8)}", name, phone)
        if roll < 0.70:
            area = compound["district_code"]
        elif roll < 0.88:
            area = rng.choice(list(DISTRICT_WEIGHTS))
        elif roll < 0.94:
            area = rng.choice(HISTORIC_CODES)
        else:
            area = rng.choice(OUTSIDE_CODES)
        return Person("resident_id", make_resident_id(rng, area), name, phone)


def _stamp(day: date, minutes: int) -> str:
    moment = datetime(day.year, day.month, day.day, 7, 0, tzinfo=CST) + timedelta(minutes=minutes)
    return moment.isoformat()


def generate_city(
    out_dir: Path,
    *,
    seed: int = 20220409,
    registrations: int = 3000,
    days: int = 2,
    positive_rate: float = 0.02,
    messy_rate: float = 0.03,
    fmt: str = "csv",
    start: date = date(2022, 4, 9),
    mix_pools: bool = False,
) -> CityStats:
    """Write compounds, registrations and results files into `out_dir`; return what it made."""
    out_dir.mkdir(parents=True, exist_ok=True)
    city = City(seed, registrations, days, positive_rate, messy_rate, start)
    rng = city.rng
    stats = CityStats(compounds=len(city.compounds))
    comp_w = _Writer(out_dir / f"compounds.{fmt}", COMPOUND_FIELDS)
    reg_w = _Writer(out_dir / f"registrations.{fmt}", REGISTRATION_FIELDS)
    res_w = _Writer(out_dir / f"results.{fmt}", RESULT_FIELDS)
    dir_w = _Writer(out_dir / f"directory.{fmt}", DIRECTORY_FIELDS)
    # Its own random stream, so that the rest of the city is the same with or without it.
    dir_rng = random.Random(seed * 31 + 3)
    # One compound is named by registrations but never loaded as master data.
    unknown_code = "C99999"
    phoned: list[str] = []
    for c in city.compounds:
        # Some residents' committees have a phone on file (a landline, as they do).
        phone = None
        if dir_rng.random() < 0.3:
            phone = f"021-{dir_rng.randrange(10**7, 10**8)}"
            phoned.append(c["compound_code"])
        comp_w.write(dict(c, contact_phone=phone))
    comp_w.close()

    record_no = 0
    tube_no = 0
    # Positive pools are remembered as (day, compound, resident indices): a few ints a tube.
    positives: list[tuple[int, int, list[int]]] = []
    planted_day = {"box_multiple_compounds": False}
    boxes_by_district: dict[str, list[str]] = {}
    for k, c in enumerate(city.compounds):
        boxes_by_district.setdefault(c["district_code"], []).append(f"B{k + 1:05d}")

    def emit(rec: dict[str, Any]) -> None:
        nonlocal record_no
        reg_w.write(rec)
        stats.registrations += 1
        _directory_rows(rec, city, dir_rng, dir_w, stats, unknown_code, phoned)

    def next_record_id() -> str:
        nonlocal record_no
        record_no += 1
        return f"R{record_no:09d}"

    for d in range(days):
        day = start + timedelta(days=d)
        minute = 0
        for k, c in enumerate(city.compounds):
            district_boxes = boxes_by_district[c["district_code"]]
            # Boxes are reused across days: on day d a compound takes its district's next box.
            box_index = (district_boxes.index(f"B{k + 1:05d}") + d) % len(district_boxes)
            box = district_boxes[box_index]
            pool = 20 if c["low_risk"] else 10
            residents = city.residents_per_compound
            members = list(range(residents))
            if mix_pools and d > 0:
                # People queue in a different order each day, so pools differ between days
                # (the benchmark's second exposure ring needs that); its own seeded stream.
                random.Random(f"{seed}:mix:{d}:{k}").shuffle(members)
            for start_i in range(0, residents, pool):
                tube_no += 1
                tube = f"T{tube_no:09d}"
                stats.tubes += 1
                in_tube = members[start_i : start_i + pool]
                for i in in_tube:
                    p = city.person(k, i)
                    minute += 1
                    rec: dict[str, Any] = {
                        "record_id": next_record_id(),
                        "collected_at": _stamp(day, minute % 600),
                        "compound_code": c["compound_code"],
                        "box_code": box,
                        "tube_code": tube,
                        "pool_size": pool,
                        "method": "nucleic_code" if rng.random() < 0.8 else "id_card",
                        "id_type": p.id_type,
                        "id_number": p.id_number,
                        "name": p.name,
                        "phone": p.phone,
                        "registered_address": None,
                        "collector_id": f"V{k:04d}",
                    }
                    if rec["method"] == "id_card" and rng.random() < 0.25:
                        rec["phone"] = None
                        stats.plant("missing_phone")
                    if rng.random() < messy_rate:
                        _mess(rec, rng, stats, unknown_code)
                    emit(rec)
                result = (
                    "positive"
                    if rng.random() < positive_rate
                    else ("invalid" if rng.random() < 0.005 else "negative")
                )
                if result == "positive":
                    stats.positive_tubes += 1
                    if d + 1 < days or days == 1:
                        positives.append((d, k, in_tube))
                res_w.write(
                    {
                        "tube_code": tube,
                        "result": result,
                        "reported_at": _stamp(day, 720 + minute % 300),
                        "lab_code": f"LAB{(tube_no % 5) + 1:02d}",
                        "ct_value": round(18 + rng.random() * 17, 1)
                        if result == "positive"
                        else None,
                    }
                )
                stats.results += 1
            if not planted_day["box_multiple_compounds"] and k == 1:
                # The previous compound's box also gets one tube here, the same day.
                planted_day["box_multiple_compounds"] = True
                _plant_tube_anomalies(
                    city,
                    k,
                    day,
                    box,
                    boxes_by_district,
                    emit,
                    next_record_id,
                    stats,
                    res_w,
                    unknown_code,
                )
                tube_no += 10
    # Single-tube retests of positive pools, the next day; the first member is confirmed.
    for d, k, members_of_tube in positives:
        day = start + timedelta(days=min(d + 1, days - 1 if days > 1 else d))
        for j, i in enumerate(members_of_tube):
            p = city.person(k, i)
            tube_no += 1
            tube = f"T{tube_no:09d}"
            c = city.compounds[k]
            emit(
                {
                    "record_id": next_record_id(),
                    "collected_at": _stamp(day, 400 + j),
                    "compound_code": c["compound_code"],
                    "box_code": f"RB{k + 1:05d}",
                    "tube_code": tube,
                    "pool_size": 1,
                    "method": "nucleic_code",
                    "id_type": p.id_type,
                    "id_number": p.id_number,
                    "name": p.name,
                    "phone": p.phone,
                    "collector_id": "V-RETEST",
                }
            )
            res_w.write(
                {
                    "tube_code": tube,
                    "result": "positive" if j == 0 else "negative",
                    "reported_at": _stamp(day, 800 + j),
                    "lab_code": "LAB01",
                    "ct_value": 25.0 if j == 0 else None,
                }
            )
            stats.tubes += 1
            stats.results += 1
    _plant_file_anomalies(reg_w, res_w, stats)
    reg_w.close()
    res_w.close()
    dir_w.close()
    return stats


def _directory_rows(
    rec: dict[str, Any],
    city: City,
    rng: random.Random,
    dir_w: _Writer,
    stats: CityStats,
    unknown_code: str,
    phoned: list[str],
) -> None:
    """What the population register and health-code accounts know that the registration does
    not: phones for some persons without a usable one (their own, a household member's, the
    compound manager's; some listed twice, a stale version first), residences for some persons
    swabbed at the unknown compound (compounds with a phone, so that they can be reached)."""
    if not rec.get("id_number"):
        return
    no_phone = rec.get("phone") is None or not domain.phone_valid(str(rec["phone"]))
    unknown = rec.get("compound_code") == unknown_code
    planted = rec.get("collector_id") == "V-PLANT"
    if not (no_phone or unknown) or (rng.random() < 0.3 and not planted):
        return
    base = {
        "id_type": rec["id_type"],
        "id_number": rec["id_number"],
        "name": rec.get("name"),
        "source": rng.choice(("health_code", "census")),
        "updated_at": _stamp(city.start - timedelta(days=rng.randrange(1, 60)), 0),
    }
    if unknown:
        codes = phoned or [c["compound_code"] for c in city.compounds]
        base["residence_compound_code"] = rng.choice(codes)
    if no_phone and unknown and (planted or rng.random() < 0.5):
        # Only where they live: reached through that compound's phone.
        no_phone = False
    if no_phone:
        owner = rng.choices(("self", "household", "compound_manager"), (5, 3, 2))[0]
        base["phone"] = make_phone(rng)
        base["phone_owner"] = owner
        if rng.random() < 0.2:
            # A stale version of the same (person, source, phone): the later one wins.
            dir_w.write(dict(base, phone_owner="self", updated_at=_stamp(date(2021, 1, 1), 0)))
            stats.directory += 1
    dir_w.write(base)
    stats.directory += 1


def _full_width(text: str) -> str:
    """As typed on a Chinese keyboard in full-width mode: ０-９ and Ｘ."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


def _mess(rec: dict[str, Any], rng: random.Random, stats: CityStats, unknown_code: str) -> None:
    kind = rng.choice(
        (
            "invalid_phone",
            "invalid_id_number",
            "missing_name",
            "unknown_compound",
            "phone_format",
            "lower_x",
            "invalid_collected_at",
            "missing_record_id",
        )
    )
    if kind == "invalid_phone":
        rec["phone"] = "1234567"
    elif kind == "invalid_id_number" and rec["id_type"] == "resident_id":
        last = rec["id_number"][-1]
        rec["id_number"] = rec["id_number"][:-1] + ("0" if last != "0" else "1")
    elif kind == "missing_name":
        rec["name"] = None
    elif kind == "unknown_compound":
        rec["compound_code"] = unknown_code
    elif kind == "phone_format" and rec["phone"]:
        p = rec["phone"]
        rec["phone"] = f"+86 {p[:3]}-{p[3:7]}-{p[7:]}"
    elif kind == "lower_x" and rec["id_type"] == "resident_id":
        rec["id_number"] = rec["id_number"].lower()
    elif kind == "invalid_collected_at":
        rec["collected_at"] = rec["collected_at"][:19]
    elif kind == "missing_record_id":
        rec["record_id"] = None
    stats.plant(kind)


def _plant_tube_anomalies(
    city: City,
    k: int,
    day: date,
    box: str,
    boxes_by_district: dict[str, list[str]],
    emit: Any,
    next_record_id: Any,
    stats: CityStats,
    res_w: _Writer,
    unknown_code: str,
) -> None:
    """Every tube-level flag of the contract, once, with data that reads like the real mistake."""
    c = city.compounds[k]
    other = city.compounds[0]
    base = {
        "collected_at": _stamp(day, 610),
        "compound_code": c["compound_code"],
        "box_code": box,
        "method": "nucleic_code",
        "collector_id": "V-PLANT",
    }

    def reg(tube: str, pool: int, person: Person, **over: Any) -> None:
        rec = dict(
            base,
            record_id=next_record_id(),
            tube_code=tube,
            pool_size=pool,
            id_type=person.id_type,
            id_number=person.id_number,
            name=person.name,
            phone=person.phone,
        )
        rec.update(over)
        emit(rec)

    people = [city.person(k, 1000 + i) for i in range(40)]
    # over_pool_size: 11 people in a 10-in-1 tube.
    for p in people[:11]:
        reg("TX-OVER", 10, p)
    stats.plant("over_pool_size")
    # pool_size_mismatch: the app said 10 for some swabs and 20 for others.
    for i, p in enumerate(people[11:15]):
        reg("TX-MISMATCH", 10 if i < 2 else 20, p)
    stats.plant("pool_size_mismatch")
    # tube_multiple_boxes and tube_multiple_compounds.
    for i, p in enumerate(people[15:19]):
        reg(
            "TX-SPLIT",
            10,
            p,
            box_code=box if i < 2 else "B-OTHER",
            compound_code=c["compound_code"] if i % 2 == 0 else other["compound_code"],
        )
    stats.plant("tube_multiple_boxes")
    stats.plant("tube_multiple_compounds")
    # box_multiple_compounds: compound 0's box of this day carries a tube filled here too.
    other_box = boxes_by_district[other["district_code"]][0]
    for p in people[19:21]:
        reg("TX-BOXSHARE", 10, p, box_code=other_box)
    stats.plant("box_multiple_compounds")
    # duplicate_registration: one person swabbed into two pooled tubes the same day.
    reg("TX-DUP-A", 10, people[21])
    reg("TX-DUP-B", 10, people[21])
    stats.plant("duplicate_registration")
    # unknown_compound, missing and invalid fields, a household-separated passport holder.
    reg("TX-MESSY", 10, people[22], compound_code=unknown_code, phone=None, method="id_card")
    reg("TX-MESSY", 10, people[23], phone=None, method="id_card")
    reg("TX-MESSY", 10, people[24], phone="021-5555")
    reg("TX-MESSY", 10, people[25], id_number=people[25].id_number[:-1] + "Y")
    reg("TX-MESSY", 10, people[26], record_id=None)
    reg("TX-MESSY", 10, people[27], name=None, pool_size="ten")
    # A first-generation 15-digit card, and an ID typed with full-width digits.
    legacy = f"{c['district_code']}620314123"
    reg("TX-MESSY", 10, people[28], id_type="resident_id", id_number=legacy, method="id_card")
    wide = make_resident_id(random.Random(f"{city.seed}:wide"), c["district_code"])
    reg("TX-MESSY", 10, people[29], id_type="resident_id", id_number=_full_width(wide))
    stats.plant("legacy_id_15")
    for kind in (
        "unknown_compound",
        "missing_phone",
        "invalid_phone",
        "invalid_id_number",
        "missing_record_id",
        "missing_name",
        "invalid_pool_size",
    ):
        stats.plant(kind)
    for tube in (
        "TX-OVER",
        "TX-MISMATCH",
        "TX-SPLIT",
        "TX-BOXSHARE",
        "TX-DUP-A",
        "TX-DUP-B",
        "TX-MESSY",
    ):
        res_w.write(
            {
                "tube_code": tube,
                "result": "positive" if tube in ("TX-OVER", "TX-MESSY") else "negative",
                "reported_at": _stamp(day, 900),
                "lab_code": "LAB02",
                "ct_value": 30.5 if tube in ("TX-OVER", "TX-MESSY") else None,
            }
        )
        stats.results += 1
    # result_conflict: the positive pool TX-OVER reported negative an hour later (its members
    # stay in follow-up until their single-tube retests).
    res_w.write(
        {
            "tube_code": "TX-OVER",
            "result": "negative",
            "reported_at": _stamp(day, 960),
            "lab_code": "LAB02",
            "ct_value": None,
        }
    )
    stats.plant("result_conflict")
    stats.results += 1
    # no_registrations: a lab result for a tube nobody registered.
    res_w.write(
        {
            "tube_code": "TX-ORPHAN",
            "result": "positive",
            "reported_at": _stamp(day, 901),
            "lab_code": "LAB03",
            "ct_value": 33.0,
        }
    )
    stats.plant("no_registrations")
    stats.results += 1


def _plant_file_anomalies(reg_w: _Writer, res_w: _Writer, stats: CityStats) -> None:
    """Lines that go to the quarantine or count as duplicates and conflicts."""
    first = {"record_id": "R000000001"}
    # A registration with no tube code, a conflicting re-send, and an unreadable line.
    reg_w.write(
        {
            "record_id": "RX-NOTUBE",
            "collected_at": "2022-04-09T10:00:00+08:00",
            "compound_code": "C00001",
            "box_code": "B00001",
            "tube_code": None,
            "pool_size": 10,
            "method": "nucleic_code",
            "id_type": "passport",
            "id_number": "E0000001",
            "name": "无管号",
            "phone": "13900000000",
        }
    )
    reg_w.write(
        {
            **first,
            "collected_at": "2022-04-09T07:01:00+08:00",
            "compound_code": "C00001",
            "box_code": "B00001",
            "tube_code": "T-CONFLICT",
            "pool_size": 10,
            "method": "manual",
            "id_type": "passport",
            "id_number": "E0000002",
            "name": "冲突",
            "phone": "13900000001",
        }
    )
    reg_w.raw(
        '{"record_id": "RX-BROKEN", "tube_code": ' if reg_w.jsonl else 'RX-BROKEN,"unterminated,,,'
    )
    res_w.write(
        {
            "tube_code": None,
            "result": "positive",
            "reported_at": "2022-04-09T21:00:00+08:00",
            "lab_code": "LAB09",
        }
    )
    for kind in ("quarantine_no_tube", "conflict", "unparseable", "result_no_tube"):
        stats.plant(kind)
