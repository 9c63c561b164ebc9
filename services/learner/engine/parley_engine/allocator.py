"""glibc's allocator, made deliberate for training steps. By default glibc returns freed memory above its
dynamic mmap threshold to the kernel and refaults it on the next step: a small CPU step spent about 45% of
its time in the kernel on a 2-core AMD EPYC machine. Raising the mmap and trim thresholds (and a top pad)
keeps the step's buffers in the heap: bench/RESULTS.md "Engine step allocator" has the measurements
(glibc tuned ≈ tcmalloc, about 1.4–1.6× faster than the default here; jemalloc was slower).

Applied with mallopt at start, so every launcher (the image, `parley run`, `--pods`) gets it; MALLOC_*
environment variables set by the operator win, and a libc without mallopt (not glibc) is left alone."""

import ctypes
import ctypes.util
import os

# mallopt parameters (glibc <malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

SETTINGS = {
    # Blocks below this come from the heap, not fresh mmaps (glibc's dynamic threshold caps at 32 MiB).
    _M_MMAP_THRESHOLD: 1 << 30,
    # Free memory at the top of the heap is returned only above this (mallopt takes an int: 2 GiB - 1).
    _M_TRIM_THRESHOLD: 2**31 - 1,
    # Extra heap requested per sbrk, so growing by a step's buffers is one call.
    _M_TOP_PAD: 256 << 20,
}
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def tune_allocator() -> bool:
    """Applies SETTINGS unless MALLOC_* variables are set or mallopt is missing; returns whether it did."""
    if any(os.environ.get(k) for k in _ENV) or os.environ.get("PARLEY_DEFAULT_ALLOCATOR") == "1":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = True
    for param, value in SETTINGS.items():
        ok = mallopt(param, value) == 1 and ok
    return ok
