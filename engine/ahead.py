"""Work ahead of the caller: the next items of an iterator made in a thread while the caller
handles this one (`read_ahead`), or a function mapped over items by a few threads, in order
(`ordered_map`): the database answers one while Python works on another, on two cores."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 1, name: str = "read-ahead") -> Generator[T]:
    """`items` in order, up to `depth` of them made ahead by one thread. An error of the making
    side is raised on the caller's side, in its place; a caller that stops early (closes the
    generator) stops the thread, which finishes the item it is making and leaves (no thread
    is left behind, and none waits for a caller that is gone)."""
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put(exc)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while (item := ahead.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int = 2, name: str = "ordered-map"
) -> Generator[R]:
    """`fn` of each item, in the items' order, by `workers` threads: at most `workers` calls
    run at once and at most one result waits for the caller beyond them. An error of a call is
    raised on the caller's side, in its place; a caller that stops early cancels the calls not
    yet started and waits for the running ones to end (no thread is left behind)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        window: deque[Future[R]] = deque()
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) > workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
