"""The Neo4j gateway: one driver, named queries; a read is one auto-commit statement, writes run
in managed transactions; both retried.

This is the error boundary towards the database: no driver exception leaves this module.
A database that does not answer becomes `DatabaseUnavailable` within `OUTAGE_BUDGET_S`
(the driver's own retry loop, up to a minute with its defaults, is turned off: the gateway
retries transient errors itself and gives up on an outage quickly); a transaction past the
server's memory limits becomes `TooLarge` (not sent again); any other driver error becomes
`DatabaseError`. The driver object survives an outage and reconnects by itself.

A frozen server (a stopped process, a long pause) is an outage too: the managed server promises
a Bolt chunk every second on a busy connection and hints the driver to drop a connection silent
for three, so a call to a frozen server ends as `DatabaseUnavailable` after at most ~3 s. Once
the database failed to answer, the gateway's breaker answers every call at once for
`BREAKER_COOL_S`; then one call at a time tries again (the others still answer at once) until
one succeeds. A gateway made while the database was down applies the schema on first contact."""

from __future__ import annotations

import logging
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    Driver,
    GraphDatabase,
    ManagedTransaction,
    Result,
    Session,
)
from neo4j import exceptions as nx

from engine.errors import DatabaseError, DatabaseUnavailable, TooLarge
from engine.settings import Settings
from engine.store.querybook import Query, QueryBook, Rows, book

T = TypeVar("T")
log = logging.getLogger("tubetrace.db")

CONNECTION_TIMEOUT_S = 1.0  # a TCP connect plus Bolt handshake to a live server takes ms
ACQUISITION_TIMEOUT_S = 3.0  # a free pooled connection, or a new one through its HELLO
OUTAGE_BUDGET_S = 1.0  # how long one call keeps trying a database that does not answer
TRANSIENT_BUDGET_S = 30.0  # deadlocks and lock timeouts are retried this long
RESEND_INCOMPLETE = 3  # COMMIT sent, answer lost: idempotent, so send again
BREAKER_COOL_S = 1.0  # after an outage answer, calls answer at once this long before a retry

# Errors that mean "the database is not there" (stopped, restarting, unreachable).
_OUTAGE: tuple[type[Exception], ...] = (
    nx.ServiceUnavailable,
    nx.SessionExpired,
    nx.DatabaseUnavailable,
    nx.ConnectionAcquisitionTimeoutError,
    OSError,
)


# Neo4j's refusals of a transaction past db.memory.transaction.max or the server's pool for all
# transactions. A transient error to the driver, but the same question needs the same memory
# again. (Not `General.OutOfMemoryError`: the JVM's heap itself, a server fault.)
_MEMORY_LIMITS = (
    "Neo.ClientError.General.TransactionOutOfMemoryError",
    "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
)


def _out_of_memory(exc: Exception) -> bool:
    return getattr(exc, "code", None) in _MEMORY_LIMITS


def _procedures_of_another_build(exc: Exception) -> bool:
    """A call that does not fit the signature of a tubetrace procedure the server has: a build
    older or newer than this tubetrace's (a server not restarted since an upgrade)."""
    message = str(getattr(exc, "message", ""))
    return str(getattr(exc, "code", "")).startswith("Neo.ClientError.Statement") and bool(
        re.search(r"\btubetrace\.\w+ has signature|procedure output", message)
        and "tubetrace." in message
    )


def _translate(exc: Exception, what: str) -> Exception:
    """The engine error for a driver error (raise the result `from exc`)."""
    if isinstance(exc, _OUTAGE):
        return DatabaseUnavailable(
            f"The database does not answer ({what}); nothing more was done. Retry shortly."
        )
    if isinstance(exc, nx.AuthError):
        return DatabaseUnavailable(f"The database refused tubetrace's credentials ({what}).")
    if _out_of_memory(exc):
        return TooLarge(
            f"The database refused {what}: it needs more memory than one transaction may "
            "take (db.memory.transaction.max, TUBETRACE_NEO4J_TX_MEMORY). Ask a smaller "
            "question (fewer days, a lower depth, a shorter window) or send smaller batches."
        )
    if _procedures_of_another_build(exc):
        return DatabaseError(
            f"The database has another build of tubetrace's procedures than this tubetrace "
            f"({what}): restart it (tubetrace neo4j stop, then start) so that the managed "
            "server installs this one; another server needs the jar of "
            "engine/server/procedures built from this version (docs/operations.md)."
        )
    if getattr(exc, "code", None) == "Neo.ClientError.Procedure.ProcedureNotFound" and (
        "tubetrace." in str(getattr(exc, "message", ""))
    ):
        return DatabaseError(
            f"The database lacks tubetrace's procedures ({what}). The managed server installs "
            "them when it starts: restart it (tubetrace neo4j stop, then start); why a build "
            "failed is in its logs/procedures.log. Another server needs the jar of "
            "engine/server/procedures in its plugins (docs/operations.md)."
        )
    return DatabaseError(f"The database failed on {what}: {type(exc).__name__}.")


class Breaker:
    """Open after an outage: calls fail at once for `cool_s`, then one trial call at a time
    goes to the database (the others still fail at once) until one succeeds."""

    def __init__(self, cool_s: float = BREAKER_COOL_S) -> None:
        self.cool_s = cool_s
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed, the database answers
        self._trial = False

    def enter(self, what: str) -> None:
        """Let a call through (closed, or as the one trial of an open breaker) or raise."""
        with self._lock:
            if self._open_until is None:
                return
            if time.monotonic() < self._open_until or self._trial:
                raise DatabaseUnavailable(
                    f"The database does not answer ({what}); nothing was done. Retry shortly."
                )
            self._trial = True

    def succeeded(self) -> None:
        with self._lock:
            if self._open_until is not None:
                log.warning("the database answers again")
            self._open_until, self._trial = None, False

    def failed(self) -> None:
        with self._lock:
            if self._open_until is None:
                log.warning("the database does not answer; answering 'unavailable' meanwhile")
            self._open_until, self._trial = time.monotonic() + self.cool_s, False

    def is_open(self) -> bool:
        """Whether calls are being answered 'unavailable' (an outage was seen, no success yet)."""
        with self._lock:
            return self._open_until is not None

    def release(self) -> None:
        """A trial that ended without telling (another error): let the next call try."""
        with self._lock:
            self._trial = False


def _rows(query: Query, result: Result) -> Rows:
    """Records as dicts, checked against the query's shape (`// name: q -> row`). The named
    queries return values, lists and maps, never nodes or relationships, so the driver's
    `Record.data()` (which walks every value in Python to turn graph objects into dicts,
    ~12 us a record) is not needed."""
    keys = result.keys()
    rows = [dict(zip(keys, record, strict=True)) for record in result]
    query.check_rows(rows, keys)
    return Rows(query, rows)


class Gateway:
    """Every read and write of tubetrace goes through here, by query name."""

    def __init__(
        self,
        driver: Driver,
        database: str,
        queries: QueryBook | None = None,
        *,
        schema_pending: bool = False,
    ) -> None:
        self.driver = driver
        self.database = database
        self.queries = queries or book()
        self.breaker = Breaker()
        # Seconds and calls per named query inside transactions, when a profiler asks for them
        # (`bench/write_profile.py`): `gw.timings = {}`.
        self.timings: dict[str, float] | None = None
        self.calls: Counter[str] = Counter()
        self._secret: str | None = None
        # What the engine keeps in this process about this database's data, by name
        # (engine/analysis/reports.py, DayPairs); emptied when the database is wiped
        # (bench/devdb.py, `wipe`).
        self.memo: dict[str, object] = {}
        self._schema_pending = schema_pending
        self._schema_lock = threading.Lock()

    def close(self) -> None:
        self.driver.close()

    @property
    def schema_applied(self) -> bool:
        """False while a gateway made during an outage has not reached the database yet."""
        return not self._schema_pending

    def _session(self, access_mode: str = WRITE_ACCESS) -> Session:
        return self.driver.session(database=self.database, default_access_mode=access_mode)

    def _guarded(self, call: Callable[[], T], what: str) -> T:
        """`call` behind the breaker (and the schema of a gateway made during an outage)."""
        self.breaker.enter(what)
        try:
            if self._schema_pending:
                self._apply_pending_schema()
            result = call()
        except DatabaseUnavailable:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.succeeded()
        return result

    def _apply_pending_schema(self) -> None:
        with self._schema_lock:
            if self._schema_pending:
                self._apply_schema()
                self._schema_pending = False
                log.warning("schema applied on first contact with the database")

    def _execute(self, access_mode: str, work: Callable[[Session], T], what: str) -> T:
        return self._guarded(lambda: self._execute_now(access_mode, work, what), what)

    def _execute_now(self, access_mode: str, work: Callable[[Session], T], what: str) -> T:
        """Run `work` in a fresh session: transient errors (deadlocks) are retried for
        `TRANSIENT_BUDGET_S`, an outage for `OUTAGE_BUDGET_S` (a stale pooled connection after
        a restart gets a fresh one), then raised as `DatabaseUnavailable`."""
        start = time.monotonic()
        delay = 0.05
        resent = 0
        while True:
            try:
                with self._session(access_mode) as session:
                    return work(session)
            except nx.IncompleteCommit as exc:
                # Every write of tubetrace is idempotent (MERGE on keys): send it again.
                if resent == RESEND_INCOMPLETE:
                    raise _translate(exc, what) from exc
                resent += 1
                log.warning("connection lost during COMMIT; sending the transaction again")
                continue
            except _OUTAGE as exc:
                if time.monotonic() - start + delay > OUTAGE_BUDGET_S:
                    raise _translate(exc, what) from exc
            except nx.TransientError as exc:
                if _out_of_memory(exc) or time.monotonic() - start + delay > TRANSIENT_BUDGET_S:
                    raise _translate(exc, what) from exc
            except (nx.Neo4jError, nx.DriverError) as exc:
                raise _translate(exc, what) from exc
            time.sleep(delay * (0.8 + 0.4 * random.random()))  # noqa: S311 - jitter only
            delay = min(delay * 2, 1.0)

    def _once(self, work: Callable[[Session], T], what: str) -> T:
        """One attempt, not retried: schema statements, PROFILE, `CALL ... IN TRANSACTIONS`."""
        return self._guarded(lambda: self._once_now(work, what), what)

    def _once_now(self, work: Callable[[Session], T], what: str) -> T:
        try:
            with self._session() as session:
                return work(session)
        except (nx.Neo4jError, nx.DriverError, OSError) as exc:
            raise _translate(exc, what) from exc

    def read(self, name: str, **params: Any) -> Rows:
        """One read statement as an implicit (auto-commit) transaction in a fresh read
        session: RUN and PULL in one round trip, where a managed transaction needs a second
        one for its COMMIT (~0.35 ms of a 1.6 ms trace here). A single statement is atomic
        either way; retried as a managed one would be (`_execute_now`)."""
        q = self.queries[name]
        q.check(params)

        def work(session: Session) -> Rows:
            return _rows(q, session.run(q.text, params))

        return self._execute(READ_ACCESS, work, name)

    def write(self, name: str, **params: Any) -> Rows:
        """One write statement in its own managed transaction (`write_tx`)."""
        q = self.queries[name]
        q.check(params)

        def work(tx: ManagedTransaction) -> Rows:
            return _rows(q, tx.run(q.text, params))

        return self.write_tx(work, name)

    def run_in(self, tx: ManagedTransaction, name: str, **params: Any) -> Rows:
        """One statement inside the caller's transaction (`write_tx`)."""
        q = self.queries[name]
        q.check(params)
        if self.timings is None:
            return _rows(q, tx.run(q.text, params))
        start = time.perf_counter()
        try:
            return _rows(q, tx.run(q.text, params))
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self.calls[name] += 1

    def write_tx(self, work: Callable[[ManagedTransaction], T], what: str = "a write") -> T:
        """A managed write transaction: retried on transient errors, sent again when the
        connection drops after COMMIT was sent (`IncompleteCommit`), since every write of
        tubetrace is idempotent (MERGE on keys)."""
        return self._execute(WRITE_ACCESS, lambda session: session.execute_write(work), what)

    def profile(self, name: str, **params: Any) -> Any:
        q = self.queries[name]
        q.check(params)

        def work(session: Session) -> Any:
            result = session.run("PROFILE " + q.text, params)
            result.consume()
            return result.consume().profile

        return self._once(work, name)

    def run_auto(self, name: str, **params: Any) -> None:
        """An implicit transaction, for `CALL { ... } IN TRANSACTIONS` statements."""
        q = self.queries[name]
        q.check(params)
        self._once(lambda session: session.run(q.text, params).consume(), name)

    def apply_schema(self) -> None:
        self._guarded(self._apply_schema, "the schema")

    def _apply_schema(self) -> None:
        schema = [q for q in self.queries.all() if q.name.startswith("schema_")]
        for q in sorted(schema, key=lambda q: q.name == "schema_await"):
            self._once_now(_statement(q.text), q.name)

    def secret(self) -> str:
        """The installation's key for opaque person ids, kept in the database itself."""
        if self._secret is None:
            rows = self.write("ensure_secret", key="person_id_secret", value=secrets.token_hex(32))
            self._secret = str(rows.value())
        return self._secret


def _statement(text: str) -> Callable[[Session], Any]:
    return lambda session: session.run(text).consume()


def split_page(rows: list[T], limit: int) -> tuple[list[T], bool]:
    """Rows fetched with `limit + 1`: the page, and whether another page follows."""
    return rows[:limit], len(rows) > limit


def connect(
    settings: Settings,
    *,
    apply_schema: bool = True,
    wait: bool = True,
    queries: QueryBook | None = None,
) -> Gateway:
    """`NEO4J_URI` when set; otherwise the managed local server, started on demand.
    A database that does not answer raises `DatabaseUnavailable`; with `wait=False` (a
    long-running service) the gateway is returned anyway, answers `DatabaseUnavailable` until
    the database is there, and applies the schema on first contact."""
    if settings.neo4j_uri:
        uri = settings.neo4j_uri
        password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
        user = settings.neo4j_user
    else:
        from engine.server.managed import ManagedServer

        server = ManagedServer(settings)
        server.start()
        uri, user, password = server.bolt_uri, "neo4j", server.password()
    driver = GraphDatabase.driver(
        uri,
        auth=(user, password),
        max_connection_pool_size=50,
        notifications_min_severity="OFF",
        connection_timeout=CONNECTION_TIMEOUT_S,
        connection_acquisition_timeout=ACQUISITION_TIMEOUT_S,
        # The gateway retries itself (`Gateway._execute`); the driver tries once.
        max_transaction_retry_time=0.0,
        initial_retry_delay=0.0,
    )
    try:
        driver.verify_connectivity()
    except (nx.Neo4jError, nx.DriverError, OSError) as exc:
        if wait:
            driver.close()
            raise DatabaseUnavailable(f"Neo4j at {uri} did not answer: {exc}") from exc
        log.warning("Neo4j at %s does not answer yet (%s); answering 'unavailable'", uri, exc)
        return Gateway(driver, settings.neo4j_database, queries, schema_pending=apply_schema)
    gateway = Gateway(driver, settings.neo4j_database, queries)
    if apply_schema:
        gateway.apply_schema()
    return gateway
