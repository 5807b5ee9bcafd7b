"""The operator gives freed heap back to the OS (glibc); elsewhere the calls are no-ops."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from inference_operator import heap

glibc_only = pytest.mark.skipif(heap._glibc() is None, reason="not glibc")


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@glibc_only
def test_trim_returns_the_free_chunks_a_burst_leaves_behind() -> None:
    held: list[bytes] = []

    def burst() -> None:
        # In a thread of its own, as kopf's handlers run: 2 KiB chunks go to malloc, not to
        # Python's small-object allocator; one in 50 stays alive and pins its neighbours.
        chunks = [os.urandom(8) * 256 for _ in range(100_000)]
        held.extend(chunks[::50])

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()
    before = rss_bytes()
    assert heap.trim()
    after = rss_bytes()
    # ~200 MB were allocated and ~196 MB freed; without trim glibc keeps nearly all of it.
    assert before - after > 100 * 2**20, (before, after)
    assert len(held) == 2000


@glibc_only
def test_arenas_can_be_limited() -> None:
    assert heap.limit_arenas(2)


def test_the_trimmer_trims_periodically_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = threading.Semaphore(0)
    monkeypatch.setattr(heap, "trim", lambda: calls.release() or True)
    trimmer = heap.Trimmer(0.01).start()
    try:
        for _ in range(3):
            assert calls.acquire(timeout=5), "the trimmer did not trim"
    finally:
        trimmer.stop()
    assert not trimmer._thread.is_alive()


def _found(name: str) -> str | None:
    return "libjemalloc.so.2" if name == "jemalloc" else None


def _absent(name: str) -> str | None:
    return None


def test_auto_moves_every_allocation_to_jemalloc_where_it_is_installed() -> None:
    env = heap.jemalloc_env("auto", {"PATH": "/bin", "LD_PRELOAD": "libx.so"}, _found)
    assert env is not None
    assert env["LD_PRELOAD"] == "libx.so libjemalloc.so.2"
    assert env["PYTHONMALLOC"] == "malloc"  # Python's small objects too
    assert env["MALLOC_CONF"] == heap.JEMALLOC_CONF
    assert env["PATH"] == "/bin"
    # Already under jemalloc (after the re-exec), or told not to: run as we are.
    assert heap.jemalloc_env("auto", env, _found) is None
    assert heap.jemalloc_env("system", {}, _found) is None
    # A user's MALLOC_CONF is kept.
    assert heap.jemalloc_env("auto", {"MALLOC_CONF": "narenas:1"}, _found) == {
        "MALLOC_CONF": "narenas:1",
        "LD_PRELOAD": "libjemalloc.so.2",
        "PYTHONMALLOC": "malloc",
    }


def test_without_the_library_auto_stays_and_jemalloc_refuses() -> None:
    assert heap.jemalloc_env("auto", {}, _absent) is None
    with pytest.raises(RuntimeError, match="INFOP_ALLOCATOR=jemalloc"):
        heap.jemalloc_env("jemalloc", {}, _absent)
