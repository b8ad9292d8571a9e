"""A question past the memory one transaction may take is refused with a clear error, and the
server answers on: tubetrace's procedures count what they hold with the transaction's memory
tracker (engine/server/procedures/tubetrace/Cursors.java), and the managed server bounds a
transaction (db.memory.transaction.max: TUBETRACE_NEO4J_TX_MEMORY, else half the heap).
A planted pool of 40,000 persons stands for what a whole city's rings or clusters would hold;
the session's server is restarted with a limit of 8 MiB (its start takes 2), and back without it."""

from __future__ import annotations

import pytest

from engine.analysis import outbreak
from engine.errors import TooLarge
from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway

pytestmark = pytest.mark.slow

DAY, SINCE = "2022-04-10", "2022-03-28"
BIG = 40000  # ~400 bytes counted a ring member, ~900 a cluster member: 15 and 34 MiB


def _restart(settings: Settings) -> None:
    server = ManagedServer(settings)
    server.stop()
    server.start()


def test_a_question_past_the_memory_limit_is_refused_and_the_server_answers_on(
    gw: Gateway, settings: Settings
) -> None:
    if settings.neo4j_uri:
        pytest.skip("the limit is set by the managed server's configuration")
    assert gw.write("plant_big_pool", code="T-BIG", day=DAY, size=BIG).value() == BIG
    assert gw.write("plant_big_pool", code="T-SMALL", day=DAY, size=10).value() == 10
    big, small = "T-BIG_p1", "T-SMALL_p1"

    def members(person_id: str) -> int:
        return int(
            gw.read("exposure_count", person_id=person_id, since=SINCE, until=DAY, depth=2).value()
        )

    def rings(person_id: str) -> list[outbreak.RingMember]:
        return outbreak.ring_members(gw, [{"person_id": person_id, "until": DAY}], depth=2)[
            person_id
        ]

    # Without the small limit (half the heap), everything answers.
    assert members(big) == len(rings(big)) == BIG - 1
    assert members(small) == len(rings(small)) == 9
    assert gw.read("clusters_count", since=SINCE, until=DAY).value() == 2
    clusters = outbreak.find_clusters(gw, SINCE, DAY).clusters
    assert sorted(len(c.members) for c in clusters) == [10, BIG]

    _restart(settings.model_copy(update={"tx_memory": "8m"}))
    try:
        # The procedures alone (Cypher holds nothing of their members): refused by what they
        # count of their own.
        with pytest.raises(TooLarge, match="more memory than one transaction may take"):
            members(big)
        with pytest.raises(TooLarge):
            gw.read("clusters_count", since=SINCE, until=DAY)
        # The queries of the API and the CLI: the same, with what to do about it.
        with pytest.raises(TooLarge, match="Ask a smaller question"):
            rings(big)
        with pytest.raises(TooLarge):
            outbreak.find_clusters(gw, SINCE, DAY)
        # A small question answers as before, and so does the rest of the server.
        assert members(small) == len(rings(small)) == 9
        assert gw.read("ping").value() == 1
    finally:
        _restart(settings)
    assert members(big) == BIG - 1
