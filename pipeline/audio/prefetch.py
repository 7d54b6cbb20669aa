"""Overlap decoding with processing: run a block iterator in a background thread.

Decoders (libsndfile, FFmpeg) and soxr release the GIL while they work, so with two cores the decode of
block ``k + 1`` can run while block ``k`` is mixed, resampled and measured. The queue between the two
threads is bounded (``depth`` blocks), so memory stays bounded by the block size.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(source: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """Yield the items of ``source``, produced ``depth`` items ahead in a daemon thread.

    Exceptions raised by ``source`` are re-raised in the consumer at the point they occurred. When the
    consumer stops early (``close()`` or garbage collection of this generator), the producer thread is
    told to stop and ``source`` is closed from that thread.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def _put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce() -> None:
        try:
            for item in source:
                if not _put(item):
                    break
            else:
                _put(_DONE)
        except BaseException as exc:  # handed to the consumer, never lost
            _put(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    # The producer runs in a copy of the consumer's context: its decoder notes reach the consumer's collector.
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(_produce,), name="voiceprep-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
