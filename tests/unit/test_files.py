"""Reading CSV and JSON Lines: nothing unreadable is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from loaders.read import read_file
from loaders.transform import Quarantined


def test_csv_rows_and_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(
        b'\xef\xbb\xbftube_code,name\nT1,\xe5\xbc\xa0\nT2,"a,b"\nT3,x,extra\n\xff\xfe,bad\n'
    )
    items = list(read_file(p, "registrations"))
    assert items[0] == (2, {"tube_code": "T1", "name": "张"})
    assert items[1] == (3, {"tube_code": "T2", "name": "a,b"})
    assert isinstance(items[2][1], Quarantined) and "3 fields" in items[2][1].reason
    assert isinstance(items[3][1], Quarantined) and "UTF-8" in items[3][1].reason
    assert items[3][0] == 5


def test_jsonl_rows_and_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('{"tube_code": "T1", "pool_size": 10}\n\n{"tube_code": \n[1, 2]\n')
    items = list(read_file(p, "registrations"))
    assert items[0] == (1, {"tube_code": "T1", "pool_size": 10})
    assert isinstance(items[1][1], Quarantined) and items[1][0] == 3
    assert isinstance(items[2][1], Quarantined) and "object" in items[2][1].reason


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.xls").write_text("")
    with pytest.raises(InputError, match="unknown file type"):
        read_file(tmp_path / "x.xls", "registrations")
    with pytest.raises(InputError, match="no such file"):
        read_file(tmp_path / "x.csv", "registrations")
