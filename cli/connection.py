"""What every command shares: one gateway, closed when the command ends, and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.access.keys import Principal, cli_principal
from engine.settings import Settings, get_settings
from engine.store.gateway import Gateway, connect


@contextmanager
def gateway(settings: Settings | None = None) -> Iterator[Gateway]:
    gw = connect(settings or get_settings())
    try:
        yield gw
    finally:
        gw.close()


def me() -> Principal:
    """The machine's own user: audited by name (`cli:USER`)."""
    return cli_principal()
