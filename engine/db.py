"""The Neo4j gateway: one driver, named queries, managed transactions with retries."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from neo4j import READ_ACCESS, Driver, GraphDatabase, ManagedTransaction, RoutingControl
from neo4j.exceptions import AuthError, IncompleteCommit, ServiceUnavailable, SessionExpired

from engine.errors import DatabaseUnavailable
from engine.queries import QueryBook, book
from engine.settings import Settings

T = TypeVar("T")
log = logging.getLogger("tubetrace.db")


class Gateway:
    """Every read and write of tubetrace goes through here, by query name."""

    def __init__(self, driver: Driver, database: str, queries: QueryBook | None = None) -> None:
        self.driver = driver
        self.database = database
        self.queries = queries or book()
        self._secret: str | None = None

    def close(self) -> None:
        self.driver.close()

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """A managed read transaction (retried on transient errors) in a fresh session:
        one round trip fewer than `execute_query`, which also commits a bookmark."""
        q = self.queries[name]
        q.check(params)

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [r.data() for r in tx.run(q.text, params)]

        with self.driver.session(
            database=self.database, default_access_mode=READ_ACCESS
        ) as session:
            return session.execute_read(work)

    def write(self, name: str, **params: Any) -> list[dict[str, Any]]:
        q = self.queries[name]
        q.check(params)
        records, _, _ = self.driver.execute_query(
            q.text, params, database_=self.database, routing_=RoutingControl.WRITE
        )
        return [r.data() for r in records]

    def run_in(self, tx: ManagedTransaction, name: str, **params: Any) -> list[dict[str, Any]]:
        q = self.queries[name]
        q.check(params)
        return [r.data() for r in tx.run(q.text, params)]

    def write_tx(self, work: Callable[[ManagedTransaction], T], *, resend: int = 3) -> T:
        """A managed write transaction, retried by the driver on transient errors.

        When the connection drops after COMMIT was sent, the driver cannot know whether the
        transaction committed (`IncompleteCommit`) and does not retry. Every write of
        tubetrace is idempotent (MERGE on keys), so it is sent again."""
        for attempt in range(resend + 1):
            try:
                with self.driver.session(database=self.database) as session:
                    return session.execute_write(work)
            except IncompleteCommit:
                if attempt == resend:
                    raise
                log.warning("connection lost during COMMIT; sending the transaction again")
        raise AssertionError("unreachable")

    def profile(self, name: str, **params: Any) -> Any:
        q = self.queries[name]
        q.check(params)
        with self.driver.session(database=self.database) as session:
            result = session.run("PROFILE " + q.text, params)
            result.consume()
            return result.consume().profile

    def run_auto(self, name: str, **params: Any) -> None:
        """An implicit transaction, for `CALL { ... } IN TRANSACTIONS` statements."""
        q = self.queries[name]
        q.check(params)
        with self.driver.session(database=self.database) as session:
            session.run(q.text, params).consume()

    def apply_schema(self) -> None:
        schema = [q for q in self.queries.all() if q.name.startswith("schema_")]
        for q in sorted(schema, key=lambda q: q.name == "schema_await"):
            self.driver.execute_query(q.text, database_=self.database)

    def secret(self) -> str:
        """The installation's key for opaque person ids, kept in the database itself."""
        if self._secret is None:
            rows = self.write("ensure_secret", key="person_id_secret", value=secrets.token_hex(32))
            self._secret = str(rows[0]["value"])
        return self._secret


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
        uri, auth=(user, password), max_connection_pool_size=50, notifications_min_severity="OFF"
    )
    try:
        driver.verify_connectivity()
    except (ServiceUnavailable, SessionExpired, AuthError, OSError) as exc:
        driver.close()
        raise DatabaseUnavailable(f"Neo4j at {uri} did not answer: {exc}") from exc
    gateway = Gateway(driver, settings.neo4j_database)
    if apply_schema:
        gateway.apply_schema()
    return gateway
