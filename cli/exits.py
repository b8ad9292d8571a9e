"""The CLI's exit codes: one table (docs/usage.md, "Command line", lists the same)."""

from __future__ import annotations

from enum import IntEnum

from engine.errors import (
    BackupInvalid,
    DatabaseUnavailable,
    NotFound,
    ServerError,
    TargetNotEmpty,
    TransitionError,
    TubetraceError,
)


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # an input that cannot be used, or another error with a sentence
    USAGE = 2  # wrong arguments or options (also typer's own usage errors)
    DATABASE_UNAVAILABLE = 3  # Neo4j does not answer: retry when it is back
    NOT_FOUND = 4  # the tube, person, key or task does not exist
    SERVER_ERROR = 5  # the managed Neo4j could not be provisioned or started
    CONFLICT = 6  # a task move the lifecycle does not allow
    AUDIT_BROKEN = 7  # `audit verify` found a gap or an edit in the audit chain
    BACKUP_INVALID = 8  # `restore`: the backup is partial or damaged; nothing was restored
    TARGET_NOT_EMPTY = 9  # `restore`: the home holds data and --force was not given


def code_for(exc: TubetraceError) -> Exit:
    if isinstance(exc, DatabaseUnavailable):
        return Exit.DATABASE_UNAVAILABLE
    if isinstance(exc, NotFound):
        return Exit.NOT_FOUND
    if isinstance(exc, ServerError):
        return Exit.SERVER_ERROR
    if isinstance(exc, TransitionError):
        return Exit.CONFLICT
    if isinstance(exc, BackupInvalid):
        return Exit.BACKUP_INVALID
    if isinstance(exc, TargetNotEmpty):
        return Exit.TARGET_NOT_EMPTY
    return Exit.ERROR
