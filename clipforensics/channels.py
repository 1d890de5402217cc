"""Handing items from a thread that makes them to the one that uses them, through a bounded queue, without either
side waiting forever when the other stops."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from queue import Full, Queue
from typing import TypeVar

T = TypeVar("T")
_END = object()


def offer(channel: Queue, item: object, stop: threading.Event) -> bool:
    """Waits for room in ``channel``, unless the caller has stopped listening (False then)."""
    while not stop.is_set():
        try:
            channel.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False


def made_ahead(items: Generator[T, None, None], depth: int, name: str) -> Iterator[T]:
    """``items``, made in a thread of their own (``name``) at most ``depth`` ahead of the caller, so that making
    them overlaps with using them; an error in making one is raised here, in its place. Closing the result stops
    the thread and closes ``items`` (in the thread that advanced them)."""
    channel: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in items:
                if not offer(channel, item, stop):
                    return
            offer(channel, _END, stop)
        except BaseException as error:  # raised again in the caller's thread
            offer(channel, error, stop)
        finally:
            items.close()

    thread = threading.Thread(target=make, name=name, daemon=True)
    thread.start()
    try:
        while (item := channel.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
