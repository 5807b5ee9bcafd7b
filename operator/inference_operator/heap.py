"""Give freed heap back to the OS.

Where libjemalloc is installed (the image installs it), the operator re-executes itself on
jemalloc with PYTHONMALLOC=malloc (`use_jemalloc`, INFOP_ALLOCATOR): Python's small-object
arenas go back to the OS only when wholly empty, so the bursts of creation and of a restart left
RSS far above the live objects; jemalloc's decay returns freed pages within a second. Measured at
1,000 InferenceDeployments: 270 -> 242 MiB after a restart (docs/benchmark.md).

Otherwise, on glibc: one arena per thread that ever allocated (kopf's sync handlers run in a pool
of 20 threads) holds the free chunks the bursts leave behind. Two arenas and a periodic
`malloc_trim` return what glibc holds (8 of 204 MiB at 1,000). Where the C library is not glibc
(musl, macOS) those calls are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Callable, Mapping
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


# jemalloc's decay returns freed pages within a second, from a background thread.
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"


def jemalloc_env(
    choice: str, environ: Mapping[str, str], find: Callable[[str], str | None]
) -> dict[str, str] | None:
    """The environment to re-execute the operator in so that every allocation, Python's small
    objects included (PYTHONMALLOC=malloc), goes to jemalloc; None to run as we are.

    Why: Python's small-object arenas are returned only when empty, so the bursts of a start-up
    leave RSS far above the live objects (docs/benchmark.md). `auto` uses jemalloc where its
    library is installed (the image installs it), `system` never, `jemalloc` insists."""
    if choice == "system" or "jemalloc" in environ.get("LD_PRELOAD", ""):
        return None
    library = find("jemalloc")
    if library is None:
        if choice == "jemalloc":
            raise RuntimeError("INFOP_ALLOCATOR=jemalloc, but no libjemalloc is installed")
        return None
    preload = " ".join(p for p in (environ.get("LD_PRELOAD", ""), library) if p)
    return {
        **environ,
        "LD_PRELOAD": preload,
        "PYTHONMALLOC": "malloc",
        "MALLOC_CONF": environ.get("MALLOC_CONF", JEMALLOC_CONF),
    }


def use_jemalloc(choice: str) -> None:
    """Re-execute this process under jemalloc when `jemalloc_env` says so (never returns then)."""
    env = jemalloc_env(choice, os.environ, ctypes.util.find_library)
    if env is not None:
        os.execve(sys.executable, [sys.executable, "-m", "inference_operator", *sys.argv[1:]], env)
