"""Backup and restore of the managed server's installation.

A backup is a folder: the database dump (`neo4j-admin database dump`; Neo4j Community dumps a
stopped database only, so the server is stopped, dumped and started again: the API answers 503
with Retry-After meanwhile and recovers by itself), the audit journals of `TUBETRACE_HOME/audit/`
(entries answered but not yet moved into Neo4j), and `manifest.json`, written last: versions,
time, counts and a SHA-256 of every file. What keeps API keys valid is in the dump (keys are
stored as hashes, the person-id key and the webhook secrets are nodes too); the manifest names
it. A folder without a manifest is a backup cut short.

`restore` checks the whole backup before it touches anything, refuses a home that holds data
unless forced, loads the dump, replays the journals into the audit chain and forgets console
sessions and job leases (everyone logs in again). For a server at `NEO4J_URI` neither works:
that server's own tooling makes its backups (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypedDict

from engine.access import audit
from engine.errors import BackupInvalid, InputError, TargetNotEmpty
from engine.settings import Settings
from engine.store.gateway import Gateway, connect

FORMAT = 1
MANIFEST = "manifest.json"
SEAL: Final = "manifest_sha256"
MAINTENANCE = "maintenance.json"
JOURNALS = "audit"
RETRY_AFTER_S = 10  # what a client is told to wait while the database is being dumped
KEY_MATERIAL = (
    "in the dump: API keys (SHA-256 hashes, roles, districts, revocations), the person-id key "
    "(Meta person_id_secret) and webhook secrets; nothing else is needed to keep keys valid"
)


# ---------------------------------------------------------------- the maintenance note


@dataclass(frozen=True)
class Maintenance:
    """Left in `TUBETRACE_HOME` while a backup or restore has the database stopped, so that
    the API can say why it answers 503 (and how long to wait)."""

    what: str
    since: str
    pid: int

    def sentence(self) -> str:
        return (
            f"A {self.what} has the database stopped since {self.since}; it comes back by itself."
        )

    def retry_after_s(self) -> int:
        return RETRY_AFTER_S


def maintenance(home: Path) -> Maintenance | None:
    """The running backup or restore of this home, if any (a note left by a process that
    died is ignored)."""
    try:
        note = json.loads((home / MAINTENANCE).read_text())
        found = Maintenance(str(note["what"]), str(note["since"]), int(note["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return found


@contextlib.contextmanager
def _maintenance(home: Path, what: str) -> Iterator[None]:
    path = home / MAINTENANCE
    home.mkdir(parents=True, exist_ok=True)
    note = {"what": what, "since": _now_text(), "pid": os.getpid()}
    _write_atomic(path, json.dumps(note).encode())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- backup


class Counts(TypedDict):
    """What the database holds: nodes and relationships, and each by label and type."""

    nodes: int
    relationships: int
    labels: dict[str, int]
    types: dict[str, int]


class KeyMaterial(TypedDict):
    api_keys: int
    webhooks: int
    person_id_secret_sha256: str
    where: str


class FileEntry(TypedDict):
    bytes: int
    sha256: str


class Manifest(TypedDict):
    """manifest.json: what a backup holds, sealed by the hash of the rest (`SEAL`)."""

    format: int
    tubetrace_version: str
    neo4j_version: str | None
    neo4j_edition: str | None
    database: str
    dump: str
    created_at: str
    downtime_s: float
    downtime_phases_s: dict[str, float]
    dump_s: float
    counts: Counts
    key_material: KeyMaterial
    files: dict[str, FileEntry]
    manifest_sha256: str


@dataclass
class BackupReport:
    folder: Path
    manifest: Manifest
    downtime_s: float
    dump_s: float


def backup(settings: Settings, target: Path) -> BackupReport:
    """Dump the managed server's database into `target` (a new or empty folder) with the
    audit journals and the manifest.

    Neo4j Community dumps a stopped database only. The server is down just long enough to
    copy its store files to a staging folder beside them (and the journals), then started
    again; the dump is made from the copy while the server serves. The downtime is measured
    from the stop to Bolt answering again."""
    server = _managed(settings, "backup")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target} exists and is not empty; back up into a new folder.")
    was_running = server.pid() is not None
    gw = connect(settings)
    try:
        counts = _counts(gw)
        versions = {r["name"]: r for r in gw.read("server_components")}
        kernel = versions.get("Neo4j Kernel", {})
        keys = _key_material(gw, counts)
    finally:
        gw.close()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)  # it holds full ID numbers and phones, as the database does
    database = settings.neo4j_database
    staging = settings.home / "backup-staging"
    shutil.rmtree(staging, ignore_errors=True)
    stage = type(server)(settings.model_copy(update={"home": staging}))
    try:
        with _maintenance(settings.home, "backup"):
            stop_began = time.monotonic()
            server.stop()
            phases = {"stop_s": time.monotonic() - stop_began}
            try:
                for part in ("databases", "transactions"):
                    shutil.copytree(
                        server.data_dir / part / database, stage.data_dir / part / database
                    )
                # Journals as they are with the database stopped: every entry answered so far.
                journals = _copy_journals(settings.home / "audit", target / JOURNALS)
                phases["copy_s"] = time.monotonic() - stop_began - phases["stop_s"]
            finally:
                if was_running:
                    server.start()
            downtime = time.monotonic() - stop_began
            phases["start_s"] = downtime - sum(phases.values())
        dump_began = time.monotonic()
        stage.admin("database", "dump", database, f"--to-path={target}")
        dump_s = time.monotonic() - dump_began
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dump = target / f"{database}.dump"
    if not dump.is_file():
        raise InputError(f"neo4j-admin wrote no dump into {target}; see {server.log_path}.")
    files = {str(p.relative_to(target)): _file_entry(p) for p in [dump, *journals]}
    manifest: Manifest = {
        "format": FORMAT,
        "tubetrace_version": _version(),
        "neo4j_version": (kernel.get("versions") or [None])[0],
        "neo4j_edition": kernel.get("edition"),
        "database": database,
        "dump": dump.name,
        "created_at": _now_text(),
        "downtime_s": round(downtime, 2),
        "downtime_phases_s": {k.removesuffix("_s"): round(v, 2) for k, v in phases.items()},
        "dump_s": round(dump_s, 2),
        "counts": counts,
        "key_material": keys,
        "files": files,
        SEAL: "",
    }
    manifest[SEAL] = _seal(manifest)
    _write_atomic(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    (target / MANIFEST).chmod(0o600)
    return BackupReport(target, manifest, downtime, dump_s)


# ---------------------------------------------------------------- restore


@dataclass
class RestoreReport:
    manifest: Manifest
    counts: Counts
    journal_entries: int
    downtime_s: float
    warnings: list[str] = field(default_factory=list)


def check_backup(source: Path) -> Manifest:
    """The manifest of a complete, undamaged backup; `BackupInvalid` naming what is wrong."""
    path = source / MANIFEST
    if not source.is_dir():
        raise BackupInvalid(f"{source} is not a folder; give the folder `tubetrace backup` wrote.")
    if not path.is_file():
        raise BackupInvalid(
            f"{source} is not a complete backup: {MANIFEST} is missing (written last, so the "
            "backup was cut short or is still being written). Nothing was restored."
        )
    try:
        manifest: Manifest = json.loads(path.read_text())
        files = manifest["files"]
        dump = str(manifest["dump"])
        format_ = manifest["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupInvalid(
            f"{path} cannot be read ({type(exc).__name__}): the backup is damaged. "
            "Nothing was restored."
        ) from exc
    if format_ != FORMAT:
        raise BackupInvalid(f"{path} is of format {format_!r}; this tubetrace reads {FORMAT}.")
    if manifest.get(SEAL) != _seal(manifest):
        raise BackupInvalid(
            f"{path} was changed after the backup was written (its {SEAL} does not match its "
            "content): the backup is damaged. Nothing was restored."
        )
    if dump not in files:
        raise BackupInvalid(f"{path} lists no database dump: the backup is damaged.")
    for name, want in sorted(files.items()):
        file = source / name
        if not file.is_file():
            raise BackupInvalid(
                f"{name} is missing from {source}: the backup is partial. Nothing was restored."
            )
        got = _file_entry(file)
        if got != want:
            raise BackupInvalid(
                f"{name} in {source} does not match its checksum in {MANIFEST} "
                f"({got['bytes']} bytes, expected {want.get('bytes')}): the backup is damaged. "
                "Nothing was restored."
            )
    extra = sorted(
        str(p.relative_to(source))
        for p in source.rglob("*")
        if p.is_file() and p.name != MANIFEST and str(p.relative_to(source)) not in files
    )
    if extra:
        raise BackupInvalid(
            f"{source} holds files its manifest does not list ({', '.join(extra[:3])}): "
            "not a backup as written. Nothing was restored."
        )
    return manifest.copy()


def restore(settings: Settings, source: Path, *, force: bool = False) -> RestoreReport:
    manifest = check_backup(source)
    server = _managed(settings, "restore")
    warnings: list[str] = []
    journals_here = sorted((settings.home / "audit").glob("journal-*.jsonl"))
    if _has_data(settings) or any(p.stat().st_size for p in journals_here):
        if not force:
            raise TargetNotEmpty(
                f"{settings.home} holds data (a database with nodes or audit journals); "
                "restore into a new TUBETRACE_HOME, or add --force to replace it. "
                "Nothing was restored."
            )
    database = settings.neo4j_database
    with _maintenance(settings.home, "restore"), tempfile.TemporaryDirectory() as staging:
        # neo4j-admin loads `<database>.dump` from a folder: the dump under this database's name.
        staged = Path(staging) / f"{database}.dump"
        staged.symlink_to((source / manifest["dump"]).resolve())
        stop_began = time.monotonic()
        server.stop()
        try:
            server.admin(
                "database", "load", database, f"--from-path={staging}", "--overwrite-destination"
            )
        finally:
            server.start()
        downtime = time.monotonic() - stop_began
    for old in journals_here:  # replaced with the backup's (forced)
        old.unlink(missing_ok=True)
    folder = settings.home / "audit"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in manifest["files"]:
        if name.startswith(f"{JOURNALS}/"):
            shutil.copyfile(source / name, folder / Path(name).name)
            (folder / Path(name).name).chmod(0o600)
    gw = connect(settings)
    try:
        gw.write("clear_service_state")
        counts_loaded = _counts(gw)
        replayed = audit.replay_journals(gw, folder)
        keys = _key_material(gw, counts_loaded)
    finally:
        gw.close()
    want: Mapping[str, object] = manifest.get("counts") or {}
    for what in ("nodes", "relationships"):
        if counts_loaded.get(what) != want.get(what):
            warnings.append(
                f"{what}: {counts_loaded.get(what)} restored, the manifest counted "
                f"{want.get(what)} just before the dump (writes in that moment, or sessions)"
            )
    if keys != manifest.get("key_material"):
        warnings.append("the key material differs from the manifest's")
    return RestoreReport(manifest, counts_loaded, replayed, downtime, warnings)


# ---------------------------------------------------------------- helpers


def _managed(settings: Settings, what: str) -> Any:
    if settings.neo4j_uri:
        raise InputError(
            f"{what} works on the managed server only; NEO4J_URI names another server. Use that "
            "server's own tooling (neo4j-admin database dump on it, or a snapshot of its "
            "volume): see docs/operations.md, 'Backup and restore'."
        )
    from engine.server.managed import ManagedServer

    return ManagedServer(settings)


def _has_data(settings: Settings) -> bool:
    from engine.server.managed import ManagedServer

    server = ManagedServer(settings)
    if not (server.data_dir / "databases" / settings.neo4j_database).exists():
        return False
    gw = connect(settings)
    try:
        return bool(gw.read("backup_has_data").value())
    finally:
        gw.close()


def _counts(gw: Gateway) -> Counts:
    row = gw.read("backup_stats").row()
    skip = {"ConsoleSession", "Lease"}
    labels = {k: int(v) for k, v in sorted(row["labels"].items()) if v and k not in skip}
    return {
        "nodes": int(row["nodes"]) - sum(int(row["labels"].get(k, 0)) for k in skip),
        "relationships": int(row["relationships"]),
        "labels": labels,
        "types": {k: int(v) for k, v in sorted(row["types"].items()) if v and "(" not in k},
    }


def _key_material(gw: Gateway, counts: Counts) -> KeyMaterial:
    secret = gw.secret()
    return {
        "api_keys": counts["labels"].get("ApiKey", 0),
        "webhooks": counts["labels"].get("Webhook", 0),
        "person_id_secret_sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "where": KEY_MATERIAL,
    }


def _copy_journals(folder: Path, target: Path) -> list[Path]:
    copied = []
    for path in sorted(folder.glob("journal-*.jsonl")):
        if path.stat().st_size == 0:
            continue
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        dest = target / path.name
        shutil.copyfile(path, dest)
        dest.chmod(0o600)
        copied.append(dest)
    return copied


def _seal(manifest: Mapping[str, object]) -> str:
    """The SHA-256 of the manifest's own content (all but the seal), so an edited manifest
    (counts, checksums, the dump's name) is refused like a damaged file."""
    body = {k: v for k, v in manifest.items() if k != SEAL}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _file_entry(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    try:
        return metadata.version("tubetrace")
    except metadata.PackageNotFoundError:
        return "unknown"
