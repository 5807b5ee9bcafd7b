"""Give freed heap back to the OS.

glibc's malloc keeps one arena per thread that ever allocated (kopf's sync handlers run in a pool
of 20 threads), each holding the free chunks the bursts of creation and resumption leave behind.
Two arenas and a periodic `malloc_trim` return what glibc holds: measured, 8 of 204 MiB at 1,000
InferenceDeployments (docs/benchmark.md); most of the rest of the gap between live objects and
RSS sits in Python's own small-object allocator, which this cannot reach. Where the C library is
not glibc (musl, macOS) both calls are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from typing import Any

# mallopt(3): M_ARENA_MAX.
_M_ARENA_MAX = -8


@functools.cache
def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def limit_arenas(count: int) -> bool:
    """At most `count` malloc arenas; call before threads start. False where unsupported."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, count) == 1)


def trim() -> bool:
    """Return free heap pages to the OS. True when some memory was released."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)


class Trimmer:
    """A daemon thread that trims the heap every `period` seconds until stopped."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heap-trim", daemon=True)

    def start(self) -> Trimmer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            trim()
