"""The Neo4j gateway: one driver, named queries, managed transactions with retries.

This is the error boundary towards the database: no driver exception leaves this module.
A database that does not answer becomes `DatabaseUnavailable` within `OUTAGE_BUDGET_S`
(the driver's own retry loop, up to a minute with its defaults, is turned off: the gateway
retries transient errors itself and gives up on an outage quickly); any other driver error
becomes `DatabaseError`. The driver object survives an outage and reconnects by itself."""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, ManagedTransaction, Session
from neo4j import exceptions as nx

from engine.errors import DatabaseError, DatabaseUnavailable
from engine.queries import QueryBook, book
from engine.settings import Settings

T = TypeVar("T")
log = logging.getLogger("tubetrace.db")

CONNECTION_TIMEOUT_S = 1.0  # a TCP connect plus Bolt handshake to a live server takes ms
ACQUISITION_TIMEOUT_S = 5.0  # waiting for a free pooled connection under load
OUTAGE_BUDGET_S = 1.0  # how long one call keeps trying a database that does not answer
TRANSIENT_BUDGET_S = 30.0  # deadlocks and lock timeouts are retried this long
RESEND_INCOMPLETE = 3  # COMMIT sent, answer lost: idempotent, so send again

# Errors that mean "the database is not there" (stopped, restarting, unreachable).
_OUTAGE: tuple[type[Exception], ...] = (
    nx.ServiceUnavailable,
    nx.SessionExpired,
    nx.DatabaseUnavailable,
    nx.ConnectionAcquisitionTimeoutError,
    OSError,
)


def _translate(exc: Exception, what: str) -> Exception:
    """The engine error for a driver error (raise the result `from exc`)."""
    if isinstance(exc, _OUTAGE):
        return DatabaseUnavailable(
            f"The database does not answer ({what}); nothing more was done. Retry shortly."
        )
    if isinstance(exc, nx.AuthError):
        return DatabaseUnavailable(f"The database refused tubetrace's credentials ({what}).")
    return DatabaseError(f"The database failed on {what}: {type(exc).__name__}.")


class Gateway:
    """Every read and write of tubetrace goes through here, by query name."""

    def __init__(self, driver: Driver, database: str, queries: QueryBook | None = None) -> None:
        self.driver = driver
        self.database = database
        self.queries = queries or book()
        self._secret: str | None = None

    def close(self) -> None:
        self.driver.close()

    def _session(self, access_mode: str = WRITE_ACCESS) -> Session:
        return self.driver.session(database=self.database, default_access_mode=access_mode)

    def _execute(self, access_mode: str, work: Callable[[ManagedTransaction], T], what: str) -> T:
        """Run `work` in a managed transaction: transient errors (deadlocks) are retried for
        `TRANSIENT_BUDGET_S`, an outage for `OUTAGE_BUDGET_S` (a stale pooled connection after
        a restart gets a fresh one), then raised as `DatabaseUnavailable`."""
        start = time.monotonic()
        delay = 0.05
        resent = 0
        while True:
            try:
                with self._session(access_mode) as session:
                    if access_mode == READ_ACCESS:
                        return session.execute_read(work)
                    return session.execute_write(work)
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
                if time.monotonic() - start + delay > TRANSIENT_BUDGET_S:
                    raise _translate(exc, what) from exc
            except (nx.Neo4jError, nx.DriverError) as exc:
                raise _translate(exc, what) from exc
            time.sleep(delay * (0.8 + 0.4 * random.random()))  # noqa: S311 - jitter only
            delay = min(delay * 2, 1.0)

    def _once(self, work: Callable[[Session], T], what: str) -> T:
        """One attempt outside a managed transaction (schema, implicit transactions)."""
        try:
            with self._session() as session:
                return work(session)
        except (nx.Neo4jError, nx.DriverError, OSError) as exc:
            raise _translate(exc, what) from exc

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """A managed read transaction in a fresh session: one round trip fewer than
        `execute_query`, which also commits a bookmark."""
        q = self.queries[name]
        q.check(params)

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(q.text, params)]

        return self._execute(READ_ACCESS, work, name)

    def write(self, name: str, **params: Any) -> list[dict[str, Any]]:
        q = self.queries[name]
        q.check(params)

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(q.text, params)]

        return self._execute(WRITE_ACCESS, work, name)

    def run_in(self, tx: ManagedTransaction, name: str, **params: Any) -> list[dict[str, Any]]:
        q = self.queries[name]
        q.check(params)
        return [r.data() for r in tx.run(q.text, params)]

    def write_tx(self, work: Callable[[ManagedTransaction], T], what: str = "a write") -> T:
        """A managed write transaction: retried on transient errors, sent again when the
        connection drops after COMMIT was sent (`IncompleteCommit`), since every write of
        tubetrace is idempotent (MERGE on keys)."""
        return self._execute(WRITE_ACCESS, work, what)

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
        schema = [q for q in self.queries.all() if q.name.startswith("schema_")]
        for q in sorted(schema, key=lambda q: q.name == "schema_await"):
            self._once(_statement(q.text), q.name)

    def secret(self) -> str:
        """The installation's key for opaque person ids, kept in the database itself."""
        if self._secret is None:
            rows = self.write("ensure_secret", key="person_id_secret", value=secrets.token_hex(32))
            self._secret = str(rows[0]["value"])
        return self._secret


def _statement(text: str) -> Callable[[Session], Any]:
    return lambda session: session.run(text).consume()


def split_page(rows: list[T], limit: int) -> tuple[list[T], bool]:
    """Rows fetched with `limit + 1`: the page, and whether another page follows."""
    return rows[:limit], len(rows) > limit


def connect(settings: Settings, *, apply_schema: bool = True) -> Gateway:
    """`NEO4J_URI` when set; otherwise the managed local server, started on demand."""
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
        driver.close()
        raise DatabaseUnavailable(f"Neo4j at {uri} did not answer: {exc}") from exc
    gateway = Gateway(driver, settings.neo4j_database)
    if apply_schema:
        gateway.apply_schema()
    return gateway
