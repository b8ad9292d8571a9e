"""One root exception; each subclass carries a sentence a person can act on."""

from __future__ import annotations


class TubetraceError(Exception):
    """Root of every error tubetrace raises on purpose."""


class ServerError(TubetraceError):
    """The managed Neo4j server could not be provisioned, started or reached."""


class DatabaseUnavailable(TubetraceError):
    """Neo4j did not answer (stopped, restarting or unreachable): retry later."""


class DatabaseError(TubetraceError):
    """Neo4j answered with an error that is not an outage (a bug, or a broken database)."""


class QueryFileError(TubetraceError):
    """A `cypher/*.cypher` file is malformed (duplicate name, empty body, parameter mismatch)."""


class NotFound(TubetraceError):
    """The thing asked for does not exist (or is outside the caller's reach)."""


class CursorExpired(TubetraceError):
    """A feed cursor older than the oldest kept event: the retention deleted what came after
    it. The reader resynchronises and reads on from `oldest_cursor`."""

    def __init__(self, message: str, oldest_cursor: str) -> None:
        super().__init__(message)
        self.oldest_cursor = oldest_cursor


class InputError(TubetraceError):
    """An input file or request cannot be read at all."""


class TooLarge(InputError):
    """A question whose answer needs more of the database's memory than one query may take."""


class TransitionError(TubetraceError):
    """A task status change that the lifecycle does not allow."""


class Forbidden(TubetraceError):
    """The caller's role may not do this."""


class BackupInvalid(TubetraceError):
    """A backup folder that is partial or damaged (no manifest, a file missing or changed)."""


class TargetNotEmpty(TubetraceError):
    """A restore into a home that holds data, without --force."""
