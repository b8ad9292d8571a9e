"""`get`: read CSV, JSON Lines or `.xlsx` input into (line number, record) pairs.

Files come from the field as Excel writes them: `.xlsx` workbooks, or CSV saved on a Chinese
system in GB18030/GBK (with or without a BOM), with line breaks inside quoted fields. The CSV
encoding is detected from the start of the file (`encoding=` overrides it) and every line is
decoded strictly while it streams, so memory stays flat at any size.

A line that cannot be read at all (undecodable bytes, bad JSON, wrong number of CSV fields) is
not dropped: it comes back as a `Quarantined` entry carrying the line as it was.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from engine.errors import InputError
from loaders.transform import Quarantined

Item = tuple[int | None, "dict[str, Any] | Quarantined"]

SAMPLE_BYTES = 1 << 20
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise InputError(f"{path}: unknown file type '{suffix}'; use .csv, .jsonl or .xlsx")


def check_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    # A codec that is not a text encoding (rot13, base64: bytes to bytes) reads no file.
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InputError(f"unknown encoding '{encoding}'; e.g. utf-8, gb18030, gbk")
    return info.name


def detect_encoding(path: Path) -> str:
    """UTF-8 (a BOM, or a start that is valid UTF-8) or else GB18030 (a superset of GBK and
    GB2312), chosen by which of the two reads more of the non-ASCII lines of the first MiB.
    UTF-8 text is often also valid GB18030 (as nonsense), GB18030 text almost never valid UTF-8."""
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if len(sample) == SAMPLE_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8 = other = 0
    for line in sample.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            other += 1
    return "utf-8" if utf8 > other else "gb18030"


def _decoded_lines(
    path: Path, kind: str, encoding: str | None
) -> Iterator[tuple[int, str | Quarantined]]:
    enc = check_encoding(encoding) or detect_encoding(path)
    first = "utf-8-sig" if enc == "utf-8" else enc
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and enc == "gb18030" and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode(first if lineno == 1 else enc)
            except UnicodeDecodeError as exc:
                label = "UTF-8" if enc == "utf-8" else enc.upper()
                yield (
                    lineno,
                    Quarantined(
                        kind,
                        path.name,
                        lineno,
                        None,
                        f"not {label} text ({exc.reason} at byte {exc.start})",
                        raw.decode("utf-8", errors="backslashreplace"),
                    ),
                )
                continue
            yield lineno, text


def read_jsonl(path: Path, kind: str, encoding: str | None = None) -> Iterator[Item]:
    for lineno, text in _decoded_lines(path, kind, encoding):
        if isinstance(text, Quarantined):
            yield lineno, text
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = (
                f"not valid JSON: {exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else f"not readable JSON: {exc}"
                if isinstance(exc, ValueError)
                else "not readable JSON: nested too deeply"
            )
            yield (
                lineno,
                Quarantined(kind, path.name, lineno, None, reason, text.rstrip("\r\n")),
            )
            continue
        if not isinstance(value, dict):
            yield (
                lineno,
                Quarantined(
                    kind,
                    path.name,
                    lineno,
                    None,
                    "a JSON Lines record must be an object",
                    text.rstrip("\r\n"),
                ),
            )
            continue
        yield lineno, value


def read_csv(path: Path, kind: str, encoding: str | None = None) -> Iterator[Item]:
    """Records of a CSV file; a quoted field may span lines (the record's line is its first)."""
    pending: list[tuple[int, Quarantined]] = []
    consumed: list[tuple[int, str]] = []

    def lines() -> Iterator[str]:
        for lineno, text in _decoded_lines(path, kind, encoding):
            if isinstance(text, Quarantined):
                pending.append((lineno, text))
                continue
            consumed.append((lineno, text))
            yield text

    reader = csv.reader(lines())
    header: list[str] | None = None
    while True:
        consumed.clear()
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield from pending
            pending.clear()
            start = consumed[0][0] if consumed else None
            raw = "".join(t for _, t in consumed).rstrip("\r\n")
            yield start, Quarantined(kind, path.name, start, None, f"not valid CSV: {exc}", raw)
            continue
        yield from pending
        pending.clear()
        if not consumed or not any(f.strip() for f in fields):
            continue
        start = consumed[0][0]
        if header is None:
            header = [h.strip().lstrip("\ufeff") for h in fields]
            continue
        if len(fields) != len(header):
            raw = "".join(t for _, t in consumed).rstrip("\r\n")
            yield (
                start,
                Quarantined(
                    kind,
                    path.name,
                    start,
                    None,
                    f"has {len(fields)} fields but the header has {len(header)}",
                    raw,
                ),
            )
            continue
        yield start, dict(zip(header, fields, strict=True))
    yield from pending
    if header is None:
        raise InputError(f"{path}: the CSV file is empty; it needs a header row")


def _cell(value: Any) -> Any:
    """A workbook cell as the text a CSV would carry: whole numbers without '.0', dates in ISO
    8601 (a date typed in Excel has no UTC offset, so a timestamp in it is flagged invalid)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def read_xlsx(path: Path, kind: str) -> Iterator[Item]:
    """The first sheet of a workbook, header in its first non-empty row."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        rows = sheet.iter_rows()
    except CalamineError as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    header: list[str] | None = None
    for lineno, row in enumerate(rows, start=1):
        cells = [_cell(v) for v in row]
        if all(c is None for c in cells):
            continue
        if header is None:
            header = [str(c).strip() if c is not None else "" for c in cells]
            continue
        record = {h: c for h, c in zip(header, cells, strict=False) if h and c is not None}
        yield lineno, record
    if header is None:
        raise InputError(f"{path}: the workbook's first sheet is empty; it needs a header row")


def read_file(path: Path, kind: str, encoding: str | None = None) -> Iterator[Item]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = file_format(path)
    if fmt == "xlsx":
        return read_xlsx(path, kind)
    check_encoding(encoding)
    if fmt == "csv":
        return read_csv(path, kind, encoding)
    return read_jsonl(path, kind, encoding)


def count_lines(path: Path) -> int:
    """Records in the file, roughly: lines of a text file, rows of a workbook's first sheet."""
    if path.suffix.lower() == ".xlsx":
        from python_calamine import CalamineWorkbook

        try:
            return int(CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).height)
        except Exception:  # noqa: BLE001 - only a progress estimate; read_file reports errors
            return 0
    with path.open("rb") as fh:
        return sum(1 for _ in fh)
