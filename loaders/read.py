"""`get`: read CSV or JSON Lines input into (line number, record) pairs.

A line that cannot be read at all (bad UTF-8, bad JSON, wrong number of CSV fields) is not
dropped: it comes back as a `Quarantined` entry carrying the line as it was.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import InputError
from loaders.transform import Quarantined

Item = tuple[int | None, "dict[str, Any] | Quarantined"]


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise InputError(f"{path}: unknown file type '{suffix}'; use .csv or .jsonl")


def _decoded_lines(path: Path, kind: str) -> Iterator[tuple[int, str | Quarantined]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    lineno,
                    Quarantined(
                        kind,
                        path.name,
                        lineno,
                        None,
                        f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        raw.decode("utf-8", errors="backslashreplace"),
                    ),
                )
                continue
            yield lineno, text


def read_jsonl(path: Path, kind: str) -> Iterator[Item]:
    for lineno, text in _decoded_lines(path, kind):
        if isinstance(text, Quarantined):
            yield lineno, text
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield (
                lineno,
                Quarantined(
                    kind,
                    path.name,
                    lineno,
                    None,
                    f"not valid JSON: {exc.msg} at column {exc.colno}",
                    text.rstrip("\r\n"),
                ),
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


def read_csv(path: Path, kind: str) -> Iterator[Item]:
    header: list[str] | None = None
    for lineno, text in _decoded_lines(path, kind):
        if isinstance(text, Quarantined):
            yield lineno, text
            continue
        if not text.strip():
            continue
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:
            yield (
                lineno,
                Quarantined(
                    kind, path.name, lineno, None, f"not valid CSV: {exc}", text.rstrip("\r\n")
                ),
            )
            continue
        if header is None:
            header = [h.strip() for h in fields]
            continue
        if len(fields) != len(header):
            yield (
                lineno,
                Quarantined(
                    kind,
                    path.name,
                    lineno,
                    None,
                    f"has {len(fields)} fields but the header has {len(header)}",
                    text.rstrip("\r\n"),
                ),
            )
            continue
        yield lineno, dict(zip(header, fields, strict=True))
    if header is None:
        raise InputError(f"{path}: the CSV file is empty; it needs a header row")


def read_file(path: Path, kind: str) -> Iterator[Item]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = file_format(path)
    return read_csv(path, kind) if fmt == "csv" else read_jsonl(path, kind)


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)
